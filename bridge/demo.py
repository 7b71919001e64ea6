"""``bridge demo``: broker, simulator and bridge together, with every event printed as it lands.

The broker is an embedded Tansu, the simulator serves a handful of agents and runs a lively
seeded scenario across them, and the events are read back from Kafka by a real consumer, so what
is printed is what consumers would see, each line with the agent it belongs to. The bridge holds
every agent's session from an accounts directory (one file per user, as a Kubernetes Secret
mounts it), or only the first agent when this build of the bridge has no ``icws.accounts_dir``.
Once the bridge is ready the demo sends one scripted command (an assistance update on a request
the first agent opens), keyed by that owning user id as senders do, and prints its
``command.result``; the lively activity starts after that result, so no random step can complete
the request before the command reaches it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bridge.app import Bridge, contract_from
from bridge.core.events import Record
from bridge.embedded_broker import EmbeddedBroker
from bridge.kafka import TopicReader, new_producer
from bridge.settings import IcwsSettings, KafkaSettings, Settings, load_settings
from bridge.simulator import Simulator, SimulatorConfig
from bridge.simulator.config import users_named
from bridge.simulator.scenario import run_lively

PASSWORD = "demo-password"  # noqa: S105 - the simulated agents' made-up password
AGENTS = users_named("agent", 4, PASSWORD)
# The first agent opens the scripted request, so the command is keyed by (and runs as) it.
USER = min(AGENTS)
DEMO_INTERACTION = "100123456780170101"
RESULT_NAME = "command.result"
# Tansu takes seconds to form a consumer group with production timeouts; these are the tests'.
FAST_GROUP = {
    "consumer_session_timeout_ms": 1500,
    "consumer_heartbeat_interval_ms": 300,
    "consumer_rebalance_timeout_ms": 1500,
}
# How long the lively activity waits for the scripted command's result before starting anyway.
RESULT_WAIT_SECONDS = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--rate", type=float, default=2.0, help="simulated changes per second")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated activity")
    parser.add_argument("--health-port", type=int, default=8080, help="port of /readyz, /metrics")


def describe(value: bytes, out: TextIO) -> None:
    """Print one CloudEvent as a line people can read."""
    event = json.loads(value)
    data = event.get("data") or {}
    kind = event["type"].split(".", 3)[-1]
    extra = data.get("changedFields") or data.get("reason") or ""
    if "outcome" in data:
        extra = f"outcome: {data['outcome']}"
    if isinstance(extra, list):
        extra = "changed: " + ", ".join(extra[:6])
    sequence = f"#{event['sequence']}" if "sequence" in event else ""
    user = data.get("userId") or "-"
    line = f"{event['time']}  {kind:40} {event['subject']:22} {sequence:5} {user:11} {extra}"
    print(line.rstrip(), file=out)


async def print_events(
    kafka: KafkaSettings, topics: list[str], stop: asyncio.Event, result_seen: asyncio.Event
) -> None:
    """Read the event topics from the start and print each event until stopped."""
    # Topics the bridge creates after this starts are seen within a second.
    reader = TopicReader(kafka, topics, metadata_max_age_ms=1000)
    await reader.start()
    try:
        while not stop.is_set():
            for record in await reader.read(timeout_ms=300):
                if record.value is not None:
                    describe(record.value, sys.stdout)
                    if RESULT_NAME in json.loads(record.value).get("type", ""):
                        result_seen.set()
            sys.stdout.flush()
    finally:
        await reader.stop()


def update_command(settings: Settings, owner: str, assistance_id: str) -> Record:
    """The scripted ``assistance update`` as a sender writes it: keyed by the owning user id.

    The key puts it on the partition, so the replica, holding that user's session.
    """
    contract = contract_from(settings.events, settings.topics)
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/bridge-demo",
        "type": contract.type_of("command.assistance.update"),
        "datacontenttype": "application/json",
        "data": {"assistanceId": assistance_id, "text": "Refund approved, tell the customer"},
    }
    value = json.dumps(event).encode()
    return Record(settings.topics.commands, owner.encode(), value, (), "command")


@dataclass(frozen=True, slots=True)
class Demo:
    """The running parts the scripted activity drives."""

    bridge: Bridge
    sim: Simulator
    settings: Settings
    stop: asyncio.Event
    result_seen: asyncio.Event = field(default_factory=asyncio.Event)


async def send_scripted_command(demo: Demo) -> bool:
    """Once the bridge is ready, open a request as the demo user and send an update for it."""
    while not demo.bridge.ready():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(demo.stop.wait(), 0.1)
        if demo.stop.is_set():
            return False
    text = "Customer asks for a refund"
    assistance_id = demo.sim.world.create_assistance(USER, DEMO_INTERACTION, text)
    record = update_command(demo.settings, USER, assistance_id)
    producer = new_producer(demo.settings.kafka, awaited=True)
    await producer.start()
    try:
        await producer.send_and_wait(record)
    finally:
        await producer.stop()
    ident = json.loads(record.value or b"{}")["id"]
    print(
        f"command sent: assistance update {ident} on request {assistance_id} keyed by {USER}",
        flush=True,
    )
    return True


async def activity(demo: Demo, rate: float, seed: int) -> None:
    """The scripted command, then (after its result, or a bound) the lively scenario."""
    if not await send_scripted_command(demo):
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(demo.result_seen.wait(), RESULT_WAIT_SECONDS)
    await run_lively(demo.sim, sorted(AGENTS), rate, seed, stop=demo.stop, spread="cycle")


def fleet_supported() -> bool:
    """Whether this build of the bridge reads an accounts directory (``icws.accounts_dir``)."""
    return "accounts_dir" in IcwsSettings.model_fields


@contextlib.contextmanager
def accounts_directory(agents: Mapping[str, str]) -> Iterator[Path]:
    """A temporary accounts directory: one file per user, its content the password."""
    with tempfile.TemporaryDirectory(prefix="bridge-demo-accounts-") as name:
        directory = Path(name)
        for user, password in agents.items():
            (directory / user).write_text(password)
        yield directory


def icws_settings(servers: list[str], accounts: Path) -> dict[str, Any]:
    """The demo's ICWS settings: every agent from the directory, or the first one alone."""
    base: dict[str, Any] = {"servers": servers, "verify_tls": True}
    if not fleet_supported():
        return {**base, "username": USER, "password": AGENTS[USER]}
    # No login jitter: a demo with four agents should be up at once.
    return {**base, "accounts_dir": str(accounts), "login_spread_seconds": 0}


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Run the whole demo until ``stop`` is set or the duration has passed."""
    broker = EmbeddedBroker()
    await broker.start()
    sim = Simulator(SimulatorConfig(users=dict(AGENTS)))
    try:
        await sim.start(host="127.0.0.1", port=0)
        with accounts_directory(AGENTS) as accounts:
            settings = load_settings(
                icws=icws_settings([sim.url], accounts),
                kafka={"bootstrap_servers": [broker.bootstrap], "enable_idempotence": False}
                | FAST_GROUP,
                topics={"partitions": 3},
                health={"host": "127.0.0.1", "port": args.health_port},
            )
            demo = Demo(Bridge(settings), sim, settings, stop)
            print(f"broker {broker.bootstrap}, simulator {sim.url}, health :{args.health_port}")
            held = sorted(AGENTS) if fleet_supported() else [USER]
            source = f"directory {accounts}" if fleet_supported() else "one-account settings"
            print(f"accounts: {', '.join(held)} ({source})", flush=True)
            await run_parts(demo, args)
    finally:
        await sim.stop()
        await broker.stop()


async def run_parts(demo: Demo, args: argparse.Namespace) -> None:
    """The bridge, the scripted and lively activity, and the printer, until stopped."""
    t = demo.settings.topics
    topics = [t.status_messages, t.alerting, t.history, t.assistance, t.lifecycle]
    topics.append(t.command_results)
    async with asyncio.TaskGroup() as group:
        group.create_task(demo.bridge.run(demo.stop))
        group.create_task(activity(demo, args.rate, args.seed))
        group.create_task(print_events(demo.settings.kafka, topics, demo.stop, demo.result_seen))
        if args.duration is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(demo.stop.wait(), args.duration)
            demo.stop.set()
