"""The ICWS simulator in a process of its own, driven by JSON lines on stdin (one answer each).

The benchmark keeps the bridge on one core and everything else on the other, so the simulator
runs here, beside the broker, not in the bridge's event loop. The parent sends one JSON object
per line (``{"cmd": "queue", "count": 40000}``) and reads one JSON object per line back; the
first line written is ``{"url": ...}`` once the simulator listens.

Every message the simulator hands to a client is timestamped *after* its bytes were written to
the socket (wall clock, nanoseconds), which is the source time of the latency benchmark.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.workload import CallWorkload, populate, run_messages
from bridge.simulator import Simulator, SimulatorConfig

USER = "agent.one"
PASSWORD = "bench-Pa55word"  # noqa: S105 - a loopback simulator's made-up user

_KEYS = {
    "urn:inin.com:interactions:interactionAlertingMessage": (
        "alerting",
        ("alertingInteractionDetails",),
        "interactionId",
    ),
    "urn:inin.com:interactions:historyMessage": (
        "history",
        ("interactionHistory",),
        "interactionId",
    ),
    "urn:inin.com:status:statusMessagesMessage": (
        "status_messages",
        ("statusMessagesAdded", "statusMessagesChanged", "statusMessagesRemoved"),
        "statusId",
    ),
}


class TimedSent(list[tuple[str, Any]]):
    """The simulator's record of sent messages, also noting when each one was written."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[int] = []

    def append(self, item: tuple[str, Any]) -> None:
        self.times.append(time.time_ns())
        super().append(item)


def entries(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(aggregate, entity key) of every entry of a message, as the bridge will key its events."""
    found = _KEYS.get(message.get("__type", ""))
    if found is None:
        return []
    aggregate, lists, key = found
    keys: list[tuple[str, str]] = []
    for name in lists:
        for entry in message.get(name) or []:
            value = entry if isinstance(entry, str) else entry[key]
            keys.append((aggregate, value.casefold() if aggregate == "status_messages" else value))
    return keys


class Driver:
    """Runs the commands against one simulator."""

    def __init__(self, sim: Simulator, sent: TimedSent) -> None:
        self.sim = sim
        self.sent = sent
        self.actions = CallWorkload(sim.world, USER).actions()

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command.pop("cmd")
        faults = self.sim.faults
        simple = {
            "silence": faults.silence_sse,
            "release": faults.clear,
            "expire": faults.expire_session,
            "refuse": faults.refuse_logins,
            "accept": faults.accept_logins,
        }
        if name in simple:
            simple[name]()
            return {}
        if name == "queue":
            started = time.perf_counter()
            queued = run_messages(self.actions, int(command["count"]))
            return {"queued": queued, "seconds": time.perf_counter() - started}
        if name == "paced":
            return await self._paced(float(command["rate"]), int(command["count"]))
        if name == "populate":
            populate(self.sim.world, USER, int(command["alerting"]), int(command["history"]))
            return {}
        if name == "assist":
            for interaction_id in list(self.sim.world.history(USER))[: int(command["count"])]:
                self.sim.world.create_assistance(USER, interaction_id, "Can you approve a refund?")
            return {}
        if name == "timings":
            since = int(command["since"])
            rows = [
                [self.sent.times[i], aggregate, key]
                for i in range(since, len(self.sent))
                for aggregate, key in entries(self.sent[i][1])
            ]
            return {"rows": rows}
        if name == "state":
            return self._state()
        raise ValueError(f"unknown command {name!r}")

    async def _paced(self, rate: float, count: int) -> dict[str, Any]:
        # An absolute schedule: a late wake-up is caught up, so the average rate holds.
        # The collector is off meanwhile: this process keeps every message it sent (the
        # timings), so its full collections grew to 60 ms within a 5,000/s run, and each
        # pause went out afterwards as one burst of the schedule's backlog, which the latency
        # run then charged to the bridge (BENCHMARKS.md, issue #15 latency).
        loop = asyncio.get_running_loop()
        start = loop.time()
        queued = 0
        gc.disable()
        try:
            while queued < count:
                delay = start + queued / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                queued += next(self.actions)()
        finally:
            gc.enable()
        return {"queued": queued, "seconds": loop.time() - start}

    def _state(self) -> dict[str, Any]:
        sessions = self.sim.sessions
        return {
            "sessions": len(sessions),
            "subscribed": sum(len(s.subscriptions) >= 4 for s in sessions.values()),
            "streaming": sum(s.stream is not None for s in sessions.values()),
            "queued": sum(len(s.queue) for s in sessions.values()),
            "sent": len(self.sent),
            "logins": self.sim.logins,
        }


async def serve() -> None:
    config = SimulatorConfig(users={USER: PASSWORD}, sse_keepalive_seconds=5.0)
    sim = Simulator(config)
    sent = TimedSent()
    await drive(sim, sent, Driver(sim, sent).handle)


async def drive(
    sim: Simulator,
    sent: TimedSent,
    handle: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
) -> None:
    """Start ``sim``, then answer each command line on stdin with ``handle`` until quit or EOF."""
    # The simulator appends every delivered message to this list right after writing it; the
    # benchmark swaps in a list that also notes the time (bench-only, no simulator change).
    sim._records.sent_messages = sent
    await sim.start(host="127.0.0.1", port=0)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    _answer({"url": sim.url})
    try:
        while line := await reader.readline():
            command = json.loads(line)
            if command.get("cmd") == "quit":
                break
            try:
                _answer({"ok": True, **await handle(command)})
            except Exception as exc:  # any failure is reported to the parent
                _answer({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        await sim.stop()


def _answer(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(serve())
