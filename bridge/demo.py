"""``bridge demo``: broker, simulator and bridge together, with every event printed as it lands.

The broker is an embedded Tansu, the simulator runs a lively seeded scenario, and the events are
read back from Kafka by a real consumer, so what is printed is what consumers would see.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import TextIO

from bridge.app import Bridge
from bridge.embedded_broker import EmbeddedBroker
from bridge.kafka import TopicReader
from bridge.settings import KafkaSettings, load_settings
from bridge.simulator import Simulator, SimulatorConfig
from bridge.simulator.scenario import run_lively

USER, PASSWORD = "agent.one", "demo-password"


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
    if isinstance(extra, list):
        extra = "changed: " + ", ".join(extra[:6])
    sequence = f"#{event['sequence']}" if "sequence" in event else ""
    print(f"{event['time']}  {kind:40} {event['subject']:22} {sequence:5} {extra}", file=out)


async def print_events(kafka: KafkaSettings, topics: list[str], stop: asyncio.Event) -> None:
    """Read the event topics from the start and print each event until stopped."""
    # Topics the bridge creates after this starts are seen within a second.
    reader = TopicReader(kafka, topics, metadata_max_age_ms=1000)
    await reader.start()
    try:
        while not stop.is_set():
            for record in await reader.read(timeout_ms=300):
                if record.value is not None:
                    describe(record.value, sys.stdout)
            sys.stdout.flush()
    finally:
        await reader.stop()


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Run the whole demo until ``stop`` is set or the duration has passed."""
    broker = EmbeddedBroker()
    await broker.start()
    sim = Simulator(SimulatorConfig(users={USER: PASSWORD}))
    await sim.start(host="127.0.0.1", port=0)
    settings = load_settings(
        icws={"servers": [sim.url], "username": USER, "password": PASSWORD, "verify_tls": True},
        kafka={"bootstrap_servers": [broker.bootstrap], "enable_idempotence": False},
        topics={"partitions": 3},
        health={"host": "127.0.0.1", "port": args.health_port},
    )
    bridge = Bridge(settings)
    t = settings.topics
    topics = [t.status_messages, t.alerting, t.history, t.assistance, t.lifecycle]
    print(f"broker {broker.bootstrap}, simulator {sim.url}, health :{args.health_port}", flush=True)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(bridge.run(stop))
            group.create_task(run_lively(sim, [USER], args.rate, args.seed, stop=stop))
            group.create_task(print_events(settings.kafka, topics, stop))
            if args.duration is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.duration)
                stop.set()
    finally:
        await sim.stop()
        await broker.stop()
