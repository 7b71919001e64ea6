"""The chaos run's workload: ICWS activity from a seeded scenario, and commands sent to Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from aiokafka import AIOKafkaProducer

from bridge.simulator.scenario import LivelyScenario
from tests.chaos_checks import SentCommand
from tests.chaos_run import Run
from tests.conftest import USER


async def activity(
    run: Run, rate: float, stop: asyncio.Event, users: Sequence[str] = (USER,)
) -> None:
    """Drive ICWS at ``rate`` changes a second for ``users``, noting the messages sent so far."""
    scenario = LivelyScenario(run.sim.world, list(users), seed=run.rng.randrange(1 << 30))
    while not stop.is_set():
        scenario.step()
        run.timeline.append((time.monotonic(), len(run.sim.sent_messages)))
        await asyncio.sleep(run.rng.expovariate(rate))


async def commanding(
    run: Run, every: float, stop: asyncio.Event, owners: Sequence[str] = ()
) -> None:
    """Send assistance commands (some completes) keyed by request, or by owner in a fleet."""
    producer = AIOKafkaProducer(bootstrap_servers=run.broker.bootstrap, enable_idempotence=False)
    await producer.start()
    completed: set[str] = set()
    prefix = run.settings.events.type_prefix
    try:
        while not stop.is_set():
            await asyncio.sleep(run.rng.expovariate(1 / every))
            open_ids = sorted(
                aid
                for aid, r in run.sim.world.assistance.items()
                if r["initiator"] in (owners or (USER,))
                and r["state"] != 2
                and aid not in completed
            )
            if not open_ids:
                continue
            target = run.rng.choice(open_ids)
            ident = str(uuid.UUID(int=run.rng.getrandbits(128)))
            kind: Literal["update", "complete"] = "complete" if run.rng.random() < 0.2 else "update"
            data: dict[str, Any] = {"assistanceId": target}
            if kind == "update":
                data["text"] = f"chaos {ident}"
            else:
                completed.add(target)
            event = {
                "specversion": "1.0",
                "id": ident,
                "source": "/chaos",
                "type": f"{prefix}.command.assistance.{kind}.v1",
                "datacontenttype": "application/json",
                "data": data,
            }
            # Tracked before the send, so a send cut short is still accounted for.
            command = SentCommand(ident, kind, target, data.get("text"), acked=False)
            run.commands.append(command)
            key = run.sim.world.assistance[target]["initiator"] if owners else target
            if await _send(producer, run.settings.topics.commands, event, key):
                run.commands[-1] = dataclasses.replace(command, acked=True)
    finally:
        await producer.stop()


async def _send(producer: AIOKafkaProducer, topic: str, event: dict[str, Any], key: str) -> bool:
    """Send one command; False when Kafka did not acknowledge it (it may still have arrived)."""
    with contextlib.suppress(Exception):  # a paused broker: the send times out
        await asyncio.wait_for(
            producer.send_and_wait(
                topic,
                json.dumps(event).encode(),
                key=key.encode(),
                headers=[("content-type", b"application/cloudevents+json")],
            ),
            10,
        )
        return True
    return False
