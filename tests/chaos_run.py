"""One chaos run's moving parts: the `Run` and the faults it injects.

The `Run` holds the bridge process, the simulator, the broker and what the run saw; each fault
causes one failure and undoes it.

The driver and the verdict live in tests/chaos.py; the checks in tests/chaos_checks.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from bridge.embedded_broker import EmbeddedBroker
from bridge.settings import Settings
from bridge.simulator import Simulator
from tests.chaos_checks import SentCommand

PRIMARY, BACKUP = "127.0.0.1", "127.0.0.2"
KILL_GRACE = 3.0  # seconds before a SIGKILL whose messages are reconciled, not counted


@dataclass
class Run:
    """Everything one chaos run drives, and what it saw."""

    rng: random.Random
    sim: Simulator
    broker: EmbeddedBroker
    settings: Settings
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    host: str = PRIMARY
    injected: Counter[str] = field(default_factory=Counter)
    recovered: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    forgiven: list[tuple[int, int]] = field(default_factory=list)
    commands: list[SentCommand] = field(default_factory=list)
    timeline: list[tuple[float, int]] = field(default_factory=list)

    async def spawn(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            "run",
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def ready(self, timeout: float = 60.0) -> float:
        """Seconds until /readyz says ready (raises TimeoutError)."""
        started = time.monotonic()
        url = f"http://127.0.0.1:{self.env['BRIDGE_HEALTH__PORT']}/readyz"
        async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url) as answer:
                        if answer.status == 200:
                            return time.monotonic() - started
                await asyncio.sleep(0.1)

    def sent_index_at(self, moment: float) -> int:
        """How many messages the simulator had sent by ``moment`` (from the sampled timeline)."""
        index = 0
        for when, count in self.timeline:
            if when > moment:
                break
            index = count
        return index


# --- faults: each injects one failure and undoes it; the run then waits for readiness --------


async def expire(run: Run) -> None:
    run.sim.faults.expire_session()


async def down(run: Run) -> None:
    run.sim.faults.send_down(should_reconnect=True)


async def down_no_reconnect(run: Run) -> None:
    run.sim.faults.send_down(should_reconnect=False)


async def switchover(run: Run) -> None:
    other = BACKUP if run.host == PRIMARY else PRIMARY
    run.sim.faults.refuse_logins(alternates=[other], on_host=run.host)
    run.sim.faults.expire_session()
    run.host = other
    await asyncio.sleep(3)
    run.sim.faults.accept_logins()


async def server_errors(run: Run) -> None:
    run.sim.faults.fail_requests(4, status=500)


async def slow_answers(run: Run) -> None:
    run.sim.faults.delay_requests(4.0, count=1, path_regex=r"/connection$")


async def sse_cut(run: Run) -> None:
    run.sim.faults.cut_sse(mid_event=True)


async def sse_silence(run: Run) -> None:
    run.sim.faults.silence_sse()
    await asyncio.sleep(4)
    run.sim.faults.clear()


async def broker_pause(run: Run) -> None:
    run.broker.pause()
    try:
        await asyncio.sleep(run.rng.uniform(2, 5))
    finally:
        run.broker.resume()


async def bridge_kill(run: Run) -> None:
    assert run.process is not None
    killed_at = time.monotonic()
    run.process.send_signal(signal.SIGKILL)
    await run.process.wait()
    await asyncio.sleep(run.rng.uniform(0.5, 2))
    start = run.sent_index_at(killed_at - KILL_GRACE)
    await run.spawn()
    await run.ready()
    run.forgiven.append((start, len(run.sim.sent_messages)))


# Faults that end the ICWS session: recovery is counted until a new login is ready.
SESSION_FAULTS = {
    "session expiry",
    "Down message",
    "Down, no reconnect",
    "switchover",
    "500 burst",
    "slow answers",
    "SSE cut mid-event",
    "SSE silence",
}

FAULTS: dict[str, Callable[[Run], Awaitable[None]]] = {
    "session expiry": expire,
    "Down message": down,
    "Down, no reconnect": down_no_reconnect,
    "switchover": switchover,
    "500 burst": server_errors,
    "slow answers": slow_answers,
    "SSE cut mid-event": sse_cut,
    "SSE silence": sse_silence,
    "broker pause": broker_pause,
    "bridge SIGKILL": bridge_kill,
}
