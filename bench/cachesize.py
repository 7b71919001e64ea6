"""The state cache alone: bytes per live entity, measured with tracemalloc in a fresh process.

Realistic ICWS messages come from the simulator's world (no HTTP), are parsed and applied to
the core's state exactly as the pump does, and tracemalloc counts what stays allocated once
the messages are gone: the cache's own share of the bridge's RSS, per aggregate. Run as
``python -m bench.cachesize ENTITIES``; prints one JSON object.
"""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
from typing import Any

from bench.workload import populate
from bridge.core import messages
from bridge.core.state import new_states
from bridge.simulator import SimulatorConfig
from bridge.simulator.messages import Render
from bridge.simulator.world import World

ATTRIBUTES = {"attributeNames": ["Eic_CallDirection", "Eic_RemoteName", "Eic_WorkgroupName"]}


class Recorder:
    """A world publisher that keeps each message as the JSON text a session would read."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def publish(self, subscription: str, render: Render, *, user: str | None = None) -> None:
        message = render(ATTRIBUTES if subscription == "interaction-alerting" else {})
        if message is not None:
            self.sent.append(json.dumps(message, separators=(",", ":")))


def measure(aggregate: str, entities: int) -> dict[str, Any]:
    """Bytes the cache holds for ``entities`` live entities of ``aggregate``."""
    recorder = Recorder()
    world = World(SimulatorConfig(), recorder)
    alerting = entities if aggregate == "alerting" else 0
    populate(world, "agent.one", alerting, entities - alerting)
    del world
    states = new_states()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    while recorder.sent:
        message = messages.parse(json.loads(recorder.sent.pop()))
        assert isinstance(message, messages.Update)
        states[message.aggregate].apply(message)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(states[aggregate].entities) == entities  # type: ignore[index]
    return {"entities": entities, "mb": round(held / 1e6, 1), "bytes_per_entity": held // entities}


def main() -> None:
    entities = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    result = {aggregate: measure(aggregate, entities) for aggregate in ("alerting", "history")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
