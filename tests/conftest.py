"""Fixtures shared by every test that runs real parts: broker, simulator, bridge, Kafka reader.

Everything a fixture starts it also stops; ``no_leaked_tasks`` fails a test that leaves asyncio
tasks running behind it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import io
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from hypothesis import settings as hypothesis_settings

from bridge import logs, schema_files
from bridge.app import Bridge
from bridge.embedded_broker import EmbeddedBroker, free_port
from bridge.icws.sink import Health
from bridge.settings import Settings, load_settings
from bridge.simulator import Simulator, SimulatorConfig

# Property tests judge behaviour, not speed: a loaded CI machine must not fail them on time.
hypothesis_settings.register_profile("bridge", deadline=None, print_blob=True)
hypothesis_settings.load_profile("bridge")

USER = "agent.one"
PASSWORD = "s3cret-Pa55word"
SIM_VERSION = "CIC 2020 R1 Patch15"  # the product version the simulator's logins announce


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test if it leaves tasks running (a loop that never stops is a bug)."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    leaked = [
        t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()
    ]
    if leaked:
        for task in leaked:
            task.cancel()
        await asyncio.gather(*leaked, return_exceptions=True)
        pytest.fail(f"tasks leaked: {[t.get_name() for t in leaked]}")


@pytest.fixture(name="log_lines")
def fixture_log_lines() -> Iterator[io.StringIO]:
    """Every log line the bridge writes during the test, as JSON lines."""
    stream = io.StringIO()
    logs.configure("DEBUG", "json", stream)
    yield stream
    logging.getLogger().handlers.clear()


@functools.cache
def topic_schemas() -> Path:
    """Per-topic record schemas for the topic names and event contract the tests' bridges use.

    Made from the settings the tests' bridges are built from (``bridge_settings`` changes no
    topic name and no event setting), once per process, and removed at exit.
    """
    directory = Path(tempfile.mkdtemp(prefix="icws-bridge-topic-schemas-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    schema_files.write(directory, schema_files.topic_files(schema_files.configured()))
    return directory


@pytest.fixture(name="broker")
async def fixture_broker() -> AsyncIterator[EmbeddedBroker]:
    """A fresh Tansu broker on a free loopback port that refuses records breaking the schemas."""
    broker = EmbeddedBroker(schema_registry=topic_schemas())
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


@pytest.fixture(name="simulator")
async def fixture_simulator() -> AsyncIterator[Simulator]:
    """The ICWS simulator with one user, on a free loopback port."""
    sim = Simulator(SimulatorConfig(users={USER: PASSWORD}, sse_keepalive_seconds=0.5))
    await sim.start(host="127.0.0.1", port=0)
    try:
        yield sim
    finally:
        await sim.stop()


SUBSCRIPTION_PATHS = (
    "messaging/subscriptions/interaction-alerting",
    "messaging/subscriptions/interaction-history",
    "messaging/subscriptions/status/status-messages",
    "messaging/subscriptions/interactions/agent-assistance",
)


def subscribed_sessions(sim: Simulator) -> list[str]:
    """Session ids that PUT every subscription successfully, in order of first PUT."""
    seen: dict[str, set[str]] = {}
    for method, path, status in sim.requests:
        if method == "PUT" and status in (200, 204):
            for sub in SUBSCRIPTION_PATHS:
                if path.endswith(sub):
                    seen.setdefault(path.split("/")[2], set()).add(sub)
    return [sid for sid, subs in seen.items() if len(subs) == len(SUBSCRIPTION_PATHS)]


CONSUMER_GROUP_FAST = {
    "consumer_session_timeout_ms": 1500,
    "consumer_heartbeat_interval_ms": 300,
    "consumer_rebalance_timeout_ms": 1500,
}


def bridge_settings(broker: EmbeddedBroker, *servers: str, **groups: dict[str, Any]) -> Settings:
    """Settings for a bridge against the given broker and ICWS servers, fast for tests."""
    base: dict[str, dict[str, Any]] = {
        "icws": {
            "servers": list(servers),
            "username": USER,
            "password": PASSWORD,
            "poll_interval_seconds": 0.05,
            "sse_idle_timeout_seconds": 3,
            "connection_check_seconds": 1,
            "request_timeout_seconds": 3,
            "backoff_initial_seconds": 0.05,
            "backoff_max_seconds": 0.5,
            "bad_credentials_retry_seconds": 1,
            "shutdown_timeout_seconds": 2,
            "login_spread_seconds": 0,
        },
        "kafka": {
            "bootstrap_servers": [broker.bootstrap],
            "enable_idempotence": False,
            "request_timeout_ms": 3000,
            "linger_ms": 1,
            # Tansu takes seconds to form a group with production timeouts.
            **CONSUMER_GROUP_FAST,
        },
        "topics": {"partitions": 3},
        "pipeline": {"outage_seconds": 2, "flush_timeout_seconds": 10},
        "health": {"host": "127.0.0.1", "port": 0},
    }
    for name, values in groups.items():
        base[name] = {**base.get(name, {}), **values}
    return load_settings(**base)


def bridge_env(broker: EmbeddedBroker, *servers: str, **extra: str) -> dict[str, str]:
    """Environment for a ``bridge run`` process against the broker and servers, fast for tests."""
    return {
        **os.environ,
        "BRIDGE_ICWS__SERVERS": ",".join(servers),
        "BRIDGE_ICWS__USERNAME": USER,
        "BRIDGE_ICWS__PASSWORD": PASSWORD,
        "BRIDGE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "BRIDGE_KAFKA__ENABLE_IDEMPOTENCE": "false",
        "BRIDGE_TOPICS__PARTITIONS": "3",
        "BRIDGE_HEALTH__HOST": "127.0.0.1",
        "BRIDGE_HEALTH__PORT": str(free_port()),
        "BRIDGE_LOG__LEVEL": "WARNING",
        "BRIDGE_ICWS__LOGIN_SPREAD_SECONDS": "0",
        **{f"BRIDGE_KAFKA__{k.upper()}": str(v) for k, v in CONSUMER_GROUP_FAST.items()},
        **extra,
    }


@contextlib.asynccontextmanager
async def bridge_cli(
    *args: str,
    env: dict[str, str] | None = None,
    stdout: int = asyncio.subprocess.DEVNULL,
    stderr: int = asyncio.subprocess.DEVNULL,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bridge ARGS`` as a child process; killed if still running at exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", *args, env=env, stdout=stdout, stderr=stderr
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def bridge_process(
    broker: EmbeddedBroker, *servers: str, stderr: int = asyncio.subprocess.DEVNULL, **extra: str
) -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """A real ``bridge run`` process (to SIGKILL or SIGTERM); killed if still running at exit."""
    return bridge_cli("run", env=bridge_env(broker, *servers, **extra), stderr=stderr)


@dataclass
class RunningBridge:
    """A bridge running in this event loop, with a way to stop it and to wait on it."""

    bridge: Bridge
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        """Wait until ``predicate()`` holds, failing clearly when it never does."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if self.task.done():
                    self.task.result()
                    raise AssertionError("bridge stopped before the condition held")
                await asyncio.sleep(0.02)

    async def ready(self, timeout: float = 15.0) -> None:
        await self.until(self.bridge.ready, timeout)

    @property
    def session(self) -> Any:
        """The one account's session, or a stand-in (down, "not held") while none is held."""
        held = self.bridge.session
        return held if held is not None else SimpleNamespace(up=False, health=Health("not held"))

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


@pytest.fixture(name="start_bridge")
async def fixture_start_bridge() -> AsyncIterator[Callable[[Settings], RunningBridge]]:
    """Start bridges in-process; every one still running at the end is stopped."""
    running: list[RunningBridge] = []

    def start(settings: Settings) -> RunningBridge:
        bridge = Bridge(settings)
        stop = asyncio.Event()
        handle = RunningBridge(bridge, stop, asyncio.create_task(bridge.run(stop), name="bridge"))
        running.append(handle)
        return handle

    yield start
    for handle in running:
        handle.stop.set()
    for handle in running:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(handle.task, 30)


@dataclass
class Reader:
    """Reads topics from the beginning with a real consumer and keeps every record seen."""

    bootstrap: str
    topics: list[str]
    records: list[Any] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> Reader:
        self._consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            metadata_max_age_ms=500,
        )
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=100)
        for records in batch.values():
            self.records.extend(records)

    async def wait_for(
        self,
        predicate: Callable[[list[Any]], bool],
        timeout: float = 15.0,
        explain: Callable[[list[Any]], str] | None = None,
    ) -> None:
        """Read until ``predicate(records)`` holds; on time-out say why (``explain``)."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self.records):
                    await self.poll()
        except TimeoutError:
            why = (
                explain(self.records)
                if explain
                else str([self.describe(r) for r in self.records][-20:])
            )
            raise AssertionError(f"records never matched ({len(self.records)}): {why}") from None

    async def settle(self, timeout: float = 30.0) -> None:
        """Read every record the broker had acknowledged when called (its high-water marks).

        A positive marker instead of a quiet window: whatever was on Kafka before the call is
        read, however slowly, and nothing is waited for beyond that.
        """
        marks = await high_water_marks(self.bootstrap, self.topics)
        async with asyncio.timeout(timeout):
            while any(self._read_up_to(topic, p) < mark for (topic, p), mark in marks.items()):
                await self.poll()

    def _read_up_to(self, topic: str, partition: int) -> int:
        """The offset after the last record read from one partition (0 when none)."""
        offsets = [r.offset for r in self.records if (r.topic, r.partition) == (topic, partition)]
        return max(offsets, default=-1) + 1

    @staticmethod
    def event(record: Any) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(record.value)
        return value

    def describe(self, record: Any) -> str:
        if record.value is None:
            return f"{record.topic}:{record.key!r}:tombstone"
        event = self.event(record)
        return f"{event.get('type', '?').split('.', 3)[-1]}:{event.get('subject')}"

    def events(self, topic: str | None = None) -> list[dict[str, Any]]:
        return [
            self.event(r)
            for r in self.records
            if r.value is not None and (topic is None or r.topic == topic)
        ]

    def types(self, topic: str | None = None) -> list[str]:
        return [e["type"].split(".", 3)[-1] for e in self.events(topic)]


async def high_water_marks(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    """Each partition's high-water mark now, from a fresh consumer's first fetches.

    ``highwater()`` is used, not ``end_offsets()``, which Tansu gets wrong for batches.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return {}
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while any(consumer.highwater(tp) is None for tp in partitions):
            await consumer.getmany(*partitions, timeout_ms=100, max_records=1)
        return {(tp.topic, tp.partition): consumer.highwater(tp) or 0 for tp in partitions}
    finally:
        await consumer.stop()


@pytest.fixture(name="reader")
def fixture_reader(broker: EmbeddedBroker) -> Callable[[list[str]], Reader]:
    """Make readers of the test broker's topics (each closes itself: use ``async with``)."""

    def make(topics: list[str]) -> Reader:
        return Reader(broker.bootstrap, topics)

    return make


__all__ = [
    "PASSWORD",
    "SUBSCRIPTION_PATHS",
    "USER",
    "Reader",
    "RunningBridge",
    "bridge_cli",
    "bridge_env",
    "bridge_process",
    "bridge_settings",
    "subscribed_sessions",
    "topic_schemas",
]
