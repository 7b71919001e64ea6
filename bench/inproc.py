"""A bridge running in the benchmark's own event loop, with a clock on every Kafka acknowledgement.

The bridge is the real one (``bridge.app.Bridge`` with the shipped defaults from
``config/bridge.yaml``); only the Kafka adapter's producer factory is swapped for one whose
producers note when Kafka acknowledged each record (a done-callback on the future ``send``
returns, one callback per batch) and which records the bridge produced, to replay them through
the bare-producer baseline; nothing else of the bridge is touched. The own-work run swaps in a
producer that acknowledges at once (:class:`NoIoProducer`), so only the bridge's work is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from prometheus_client import Counter

import bridge.__main__
import bridge.kafka.producers
from bench.simproc import PASSWORD, USER
from bridge import logs
from bridge.app import Bridge
from bridge.core.events import LIFECYCLE_NAMES, Record
from bridge.kafka.producers import Producer, RecordSender, producer_options

if TYPE_CHECKING:
    from bridge.kafka.batches import Batch
from bridge.settings import KafkaSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
FREEZE: Callable[[], None] | None = getattr(bridge.__main__, "freeze_start_up_objects", None)


def bench_settings(bootstrap: str, icws_url: str, **groups: dict[str, Any]) -> Settings:
    """The shipped defaults, pointed at the benchmark's broker and simulator.

    Idempotence is off because Tansu has no idempotent producer (as in the tests); everything
    else (acks=all, gzip, linger 5 ms, buffer 10,000, SSE) is the default. The command side,
    where there is one, is off: these runs measure the event path, and its consumer group
    would only add its join time (seconds on Tansu) to every start.
    """
    base: dict[str, dict[str, Any]] = {
        "icws": {"servers": [icws_url], "username": USER, "password": PASSWORD},
        "kafka": {"bootstrap_servers": [bootstrap], "enable_idempotence": False},
        "health": {"host": "127.0.0.1", "port": 0},
        "log": {"level": "WARNING", "format": "json"},
    }
    if "commands" in Settings.model_fields:
        base["commands"] = {"enabled": False}
    for name, values in groups.items():
        base[name] = {**base.get(name, {}), **values}
    with contextlib.chdir(ROOT):  # config/bridge.yaml is found relative to the work tree
        return load_settings(**base)


@dataclass
class Acks:
    """Records the bridge handed to its producer, and when Kafka acknowledged each."""

    keep_records: bool = False  # the throughput run keeps the records for the baseline
    timing: bool = True  # the latency run notes each acknowledgement (a callback per batch)
    no_io: bool = False  # the own-work run: a producer acknowledging at once, no Kafka
    # (topic, key, acknowledged at, wall clock ns)
    times: list[tuple[str, bytes | None, int]] = field(default_factory=list)
    # in the order the bridge sent them (kept as they are: copying would slow the burst down)
    records: list[Record] = field(default_factory=list)

    def producer(self, kafka: KafkaSettings, *, awaited: bool = False) -> RecordSender:
        """The adapter's producer, noting each acknowledgement (a ProducerFactory)."""
        if self.no_io:
            return NoIoProducer()
        return _TimedProducer(self, producer_options(kafka, awaited=awaited))


class _TimedProducer(Producer):
    """A bridge producer telling :class:`Acks` what it sent and when each batch was acknowledged."""

    def __init__(self, acks: Acks, options: dict[str, Any]) -> None:
        super().__init__(options)
        self._acks = acks

    async def send_all(self, records: Sequence[Record]) -> list[BaseException | None]:
        if self._acks.keep_records:
            self._acks.records.extend(records)
        return await super().send_all(records)

    async def send(self, record: Record) -> asyncio.Future[Any]:
        # Only a tree from before batch sends (issue #15) sends the publisher's records one by
        # one; timing them here lets the same benchmark measure that tree side by side.
        future = await super().send(record)
        if self._acks.timing and not hasattr(Producer, "_submit"):
            future.add_done_callback(_noting(self._acks.times, [(record.topic, record.key)]))
        return future

    async def _submit(self, batch: Batch, records: Sequence[Record]) -> asyncio.Future[Any]:
        future = await super()._submit(batch, records)
        if not self._acks.timing:
            return future
        sent = [(records[i].topic, records[i].key) for i in batch.indices]
        future.add_done_callback(_noting(self._acks.times, sent))
        return future


def _noting(
    times: list[tuple[str, bytes | None, int]], sent: list[tuple[str, bytes | None]]
) -> Callable[[asyncio.Future[Any]], None]:
    """A done-callback noting the acknowledgement time of each sent (topic, key)."""

    def done(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            at = time.time_ns()
            times.extend((topic, key, at) for topic, key in sent)

    return done


class NoIoProducer:
    """A producer that acknowledges every record at once: the bridge's own work, without Kafka."""

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send_all(self, records: Sequence[Record]) -> list[BaseException | None]:
        return [None] * len(records)

    async def send_and_wait(self, record: Record) -> None:
        pass


def total(counter: Counter, **labels: str) -> float:
    """The sum of a counter's samples (``_total``), optionally only those with ``labels``."""
    value = 0.0
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                value += sample.value
    return value


class RunningBridge:
    """One in-process bridge; use as ``async with running(settings, acks) as bridge``."""

    def __init__(self, instance: Bridge, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        self.bridge = instance
        self._stop = stop
        self.task = task

    async def until(self, predicate: Callable[[], bool], limit: float, poll: float = 0.002) -> None:
        """Wait until ``predicate()`` holds; TimeoutError naming the bridge state otherwise."""
        try:
            async with asyncio.timeout(limit):
                while not predicate():
                    if self.task.done():
                        self.task.result()
                        raise RuntimeError("the bridge stopped")
                    await asyncio.sleep(poll)
        except TimeoutError:
            raise TimeoutError(
                f"bridge condition not met; checks: {self.bridge.checks()}"
            ) from None

    def settled(self) -> bool:
        """Ready, every account's session up and each subscription reconciled, Kafka idle.

        Before an account's session is up its pump awaits nothing yet, so "nothing pending"
        alone would let a run start (and silence the stream) before the first snapshots.
        """
        b = self.bridge
        pipelines = b.fleet.pipelines().values()
        reconciled = bool(pipelines) and all(
            p.session.up and not p.pump.resync_pending for p in pipelines
        )
        return b.ready() and reconciled and self.resyncs > 0 and b.publisher.depth == 0

    @property
    def resyncs(self) -> float:
        return total(self.bridge.metrics.events, type="bridge.resync.completed")

    @property
    def entity_events(self) -> float:
        """Entity events built so far (lifecycle events excluded)."""
        events = self.bridge.metrics.events
        return total(events) - sum(total(events, type=name) for name in LIFECYCLE_NAMES)

    @property
    def messages(self) -> float:
        return total(self.bridge.metrics.messages_read)

    @property
    def records(self) -> float:
        return total(self.bridge.metrics.records_published)


@contextlib.asynccontextmanager
async def running(settings: Settings, acks: Acks, log: Path) -> AsyncIterator[RunningBridge]:
    """Run a bridge in this loop until the block ends; then stop it in order."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        log.open("a", encoding="utf-8") as stream,
        mock.patch.object(bridge.kafka.producers, "new_producer", acks.producer),
    ):
        logs.configure(settings.log.level, "json", stream)
        instance = Bridge(settings)
        if FREEZE is not None and os.environ.get("BENCH_GC_FREEZE", "1") == "1":
            FREEZE()  # as ``bridge run`` does, in a tree that does it
        stop = asyncio.Event()
        task = asyncio.create_task(instance.run(stop), name="bench-bridge")
        try:
            yield RunningBridge(instance, stop, task)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 60)
