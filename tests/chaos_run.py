"""One chaos run's moving parts: the `Run` and the faults it injects.

The `Run` holds the bridge process, the simulator, the broker and what the run saw; each fault
causes one failure and undoes it. Faults that end a session are judged recovered on a new login;
faults that only end or spoil a stream (cut, silence, recycling, a hanging or HTML answer) on a
positive marker instead: a status message added to ICWS during the fault is read back from
Kafka, the simulator saw a new stream (or recycled streams), and for a fallback the bridge's
`/metrics` and `/readyz` said "polling" while that change arrived, then SSE again. These must
cost no login (`LOGINLESS_FAULTS`, checked by tests/chaos_checks.py).

The driver and the verdict live in tests/chaos.py; the checks in tests/chaos_checks.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import re
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bridge.embedded_broker import EmbeddedBroker
from bridge.settings import Settings
from bridge.simulator import Simulator
from tests.chaos_checks import SentCommand, Window
from tests.conftest import Reader, bridge_env

PRIMARY, BACKUP = "127.0.0.1", "127.0.0.2"
KILL_GRACE = 3.0  # seconds before a SIGKILL whose messages are reconciled, not counted
# The chaos bridge's SSE fallback: a retry short enough to come back to SSE within one fault,
# long enough that a change made once it polls arrives before it does.
SSE_FAILURES_BEFORE_POLLING = 3
SSE_RETRY_AFTER_SECONDS = 8.0
MARK_TIMEOUT = 30.0  # seconds for one positive marker of a stream fault
_TRANSPORT = re.compile(r'^icws_bridge_transport\{transport="(\w+)"\} 1\.0$', re.MULTILINE)


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
    windows: list[Window] = field(default_factory=list)
    # The status-message topic, read for the markers of stream faults (set once the bridge runs).
    marks: Reader | None = None
    _mark_ids: itertools.count[int] = field(default_factory=itertools.count)

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

    async def stop(self) -> None:
        """SIGTERM the bridge process, SIGKILL it if it does not stop within 30 s."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()

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

    def counter(self, name: str) -> int:
        """One of the simulator's `/_sim/state` counters."""
        return self.sim.counters[name]

    def mark(self) -> str:
        """Add a status message with a fresh id to ICWS now; its Kafka subject."""
        status_id = f"ChaosMark{next(self._mark_ids)}"
        self.sim.world.add_status_message(status_id)
        return status_id.casefold()

    async def arrived(self, subject: str) -> None:
        """Wait until the status message ``subject`` is on Kafka (TimeoutError otherwise)."""
        assert self.marks is not None
        topic = self.settings.topics.status_messages
        scanned = 0

        def seen(records: list[Any]) -> bool:
            nonlocal scanned  # each record is parsed once per wait, not once per poll
            fresh, scanned = records[scanned:], len(records)
            return any(
                r.topic == topic
                and r.value is not None
                and json.loads(r.value)["subject"] == subject
                for r in fresh
            )

        try:
            await self.marks.wait_for(seen, MARK_TIMEOUT)
        except AssertionError:
            raise TimeoutError(f"status message {subject} never reached Kafka") from None

    async def reading_by(self) -> str | None:
        """How the bridge reads ICWS now, when its /metrics and /readyz agree: "sse" or "poll"."""
        base = f"http://127.0.0.1:{self.env['BRIDGE_HEALTH__PORT']}"
        with contextlib.suppress(aiohttp.ClientError, KeyError, ValueError):
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/metrics") as answer:
                    found = _TRANSPORT.search(await answer.text())
                async with http.get(f"{base}/readyz") as answer:
                    detail = (await answer.json())["checks"]["icws_sessions"]["detail"]
            polling = "polling" in str(detail)
            if found is not None and (found.group(1) == "poll") == polling:
                return found.group(1)
        return None

    async def until_reading_by(self, transport: str) -> None:
        """Wait until the bridge reads ICWS by ``transport`` (TimeoutError otherwise)."""
        async with asyncio.timeout(MARK_TIMEOUT):
            while True:
                if await self.reading_by() == transport:
                    return
                await asyncio.sleep(0.2)

    def sent_index_at(self, moment: float) -> int:
        """How many messages the simulator had sent by ``moment`` (from the sampled timeline)."""
        index = 0
        for when, count in self.timeline:
            if when > moment:
                break
            index = count
        return index


def chaos_env(broker: EmbeddedBroker, primary: str) -> dict[str, str]:
    """The bridge process's environment: fast timeouts, so faults are noticed within seconds."""
    return bridge_env(
        broker,
        primary,
        BRIDGE_ICWS__BAD_CREDENTIALS_RETRY_SECONDS="1",
        BRIDGE_ICWS__SSE_IDLE_TIMEOUT_SECONDS="2",
        BRIDGE_ICWS__CONNECTION_CHECK_SECONDS="1",
        BRIDGE_ICWS__REQUEST_TIMEOUT_SECONDS="3",
        BRIDGE_ICWS__BACKOFF_MAX_SECONDS="1",
        BRIDGE_ICWS__SSE_FAILURES_BEFORE_POLLING=str(SSE_FAILURES_BEFORE_POLLING),
        BRIDGE_ICWS__SSE_RETRY_AFTER_SECONDS=str(SSE_RETRY_AFTER_SECONDS),
        BRIDGE_KAFKA__REQUEST_TIMEOUT_MS="3000",
        BRIDGE_KAFKA__CONSUMER_SESSION_TIMEOUT_MS="2000",
        BRIDGE_KAFKA__CONSUMER_HEARTBEAT_INTERVAL_MS="300",
        BRIDGE_KAFKA__CONSUMER_REBALANCE_TIMEOUT_MS="2000",
    )


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
    opened = run.counter("streamsOpened")
    run.sim.faults.cut_sse(mid_event=True)
    await resumed(run, opened, run.mark())


async def sse_silence(run: Run) -> None:
    opened = run.counter("streamsOpened")
    run.sim.faults.silence_sse()
    subject = run.mark()  # queued behind the silence
    await asyncio.sleep(4)
    run.sim.faults.clear()
    await resumed(run, opened, subject)


async def stream_recycle(run: Run) -> None:
    """The server ends healthy streams every few seconds, with a `retry:` delay, for a while."""
    recycled = run.counter("streamsRecycled")
    run.sim.configure(
        sse_recycle_seconds=run.rng.uniform(1.5, 3.0), sse_retry_ms=run.rng.randrange(100, 1500)
    )
    try:
        end_streams(run)  # the open stream began before recycling did, so it would not end
        await run.sim.wait_for(lambda: run.counter("streamsRecycled") > recycled, MARK_TIMEOUT)
        subject = run.mark()
        await run.sim.wait_for(lambda: run.counter("streamsRecycled") > recycled + 1, MARK_TIMEOUT)
        await run.arrived(subject)
    finally:
        run.sim.configure(sse_recycle_seconds=None, sse_retry_ms=None)


async def sse_hang(run: Run) -> None:
    """The next SSE requests hang (a proxy buffering the stream): poll, then SSE again."""
    run.sim.faults.hang_sse(send_headers=True, count=SSE_FAILURES_BEFORE_POLLING)
    await falls_back(run)


async def sse_html(run: Run) -> None:
    """The next SSE requests get a proxy's HTML page: poll, then SSE again."""
    status = run.rng.choice([200, 502])
    run.sim.faults.html_sse(status=status, count=SSE_FAILURES_BEFORE_POLLING)
    await falls_back(run)


def end_streams(run: Run) -> None:
    """End every open stream cleanly, as a server may at any time."""
    for session in run.sim.sessions.values():
        if session.stream is not None:
            session.stream.close()


async def resumed(run: Run, opened: int, subject: str) -> None:
    """A new stream was opened (after `opened` had been) and the change ``subject`` arrived."""
    await run.sim.wait_for(lambda: run.counter("streamsOpened") > opened, MARK_TIMEOUT)
    await run.arrived(subject)


async def falls_back(run: Run) -> None:
    """Metric and /readyz say polling, a change made then arrives while polling, then SSE."""
    end_streams(run)  # the open stream is healthy; the fault spoils the next requests
    await run.until_reading_by("poll")
    await run.arrived(run.mark())
    if await run.reading_by() != "poll":
        raise TimeoutError("SSE came back before the change made while polling arrived")
    await run.until_reading_by("sse")


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
}
# Faults that end or spoil only a stream: a stream is not a session, so they cost no login.
LOGINLESS_FAULTS = {
    "SSE cut mid-event",
    "SSE silence",
    "stream recycling",
    "SSE hang",
    "SSE HTML page",
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
    "stream recycling": stream_recycle,
    "SSE hang": sse_hang,
    "SSE HTML page": sse_html,
    "broker pause": broker_pause,
    "bridge SIGKILL": bridge_kill,
}


def fault_order(
    seed: int, first: Sequence[str] = (), kinds: Iterable[str] = FAULTS
) -> Iterator[str]:
    """The ``first`` kinds, then every kind once per round, each round shuffled from ``seed``.

    Rounds, not independent draws, so a short run still sees most kinds; an own generator, so
    the order depends on the seed alone, not on how the run's tasks interleave.
    """
    yield from first
    rng = random.Random(f"faults {seed}")
    while True:
        deck = sorted(kinds)
        rng.shuffle(deck)
        yield from deck


async def inject_one(
    run: Run, name: str, faults: Mapping[str, Callable[[Run], Awaitable[None]]] = FAULTS
) -> None:
    """Inject one fault, wait until it recovered, and note its window with the logins around it."""
    logins, injected = run.sim.logins, time.monotonic()
    run.injected[name] += 1
    try:
        with contextlib.suppress(TimeoutError):  # not recovered: the matrix shows it
            await faults[name](run)
            if name in SESSION_FAULTS:
                await run.sim.wait_for(lambda: run.sim.logins > logins, 60)
            await run.ready()
            run.recovered[name].append(time.monotonic() - injected)
    finally:
        run.windows.append(Window(name, injected, time.monotonic(), logins, run.sim.logins))
