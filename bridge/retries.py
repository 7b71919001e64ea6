"""Every retry in the bridge is stamina's: jittered, capped, exponential, off in tests.

:func:`attempts` is the one schedule; :func:`forever` is its loop that retries until it succeeds
(Kafka sends, the journal read, connecting at start-up, ICWS logins, sessions and streams). Tests
turn the waits off with ``stamina.set_testing(True)``.

stamina sleeps between attempts and offers no way to wake it early, but the bridge must: a stop
(SIGTERM) ends any wait at once, even the 300 s after rejected ICWS credentials, and a probe that
sees an ICWS host answer again ends the backoff. So such a loop runs in a task, its judge marks
when stamina is about to sleep (:meth:`Pacing.pauses`), and :func:`run_paced` cancels the task
only then, when a waker fires. An attempt in progress (a Kafka connect, a login, a whole session
that is reading) is never cancelled: it watches the stop itself and ends at its own safe point.
:func:`until_stopped` is the common case: an attempt retried until it succeeds or a stop comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import stamina

T = TypeVar("T")
Judge = Callable[[Exception], bool | float]
"""False: give up (re-raise); True: stamina's backoff; a number: wait that many seconds instead."""
Waker = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """A capped exponential schedule: the first wait (also the jitter) and the longest."""

    initial: float
    maximum: float


KAFKA = Backoff(0.2, 5.0)
"""Kafka sends and reads: the broker usually answers again within seconds."""
RESTART = Backoff(0.5, 10.0)
"""Starting a whole part again (the command consumer, Kafka at start-up)."""


def attempts(
    on: Judge | type[Exception],
    backoff: Backoff,
    *,
    limit: int | None = None,
    within: float | None = None,
    at_least: float = 0.0,
) -> AsyncIterable[stamina.Attempt]:
    """Attempts while ``on`` accepts the failure, at most ``limit`` of them for ``within`` seconds.

    ``at_least`` raises the first wait (and the cap, if need be): a server's SSE ``retry:``
    delay, which a backoff must not undercut. The jitter stays the schedule's own.
    """
    initial = max(backoff.initial, at_least)
    return stamina.retry_context(
        on=on,
        attempts=limit,
        timeout=within,
        wait_initial=initial,
        wait_max=max(backoff.maximum, initial),
        wait_jitter=backoff.initial,
    )


def forever(
    on: Judge | type[Exception], backoff: Backoff, *, at_least: float = 0.0
) -> AsyncIterable[stamina.Attempt]:
    """Attempts without end while ``on`` accepts the failure; any other failure is raised."""
    return attempts(on, backoff, at_least=at_least)


class Pacing:
    """Whether a retry loop is waiting between attempts (safe to cancel) or in an attempt."""

    def __init__(self) -> None:
        self.pausing = asyncio.Event()

    def attempt_starts(self) -> None:
        self.pausing.clear()

    def pauses(self) -> None:
        self.pausing.set()


async def run_paced(work: Coroutine[Any, Any, T], pacing: Pacing, *wakers: Waker) -> T | None:
    """``work``'s result; None if a waker fired while it paused (it is then cancelled)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            waiting = [asyncio.ensure_future(_then_paused(w, pacing)) for w in wakers]
            try:
                done, _ = await asyncio.wait({task, *waiting}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiting:
                    waiter.cancel()
                await asyncio.gather(*waiting, return_exceptions=True)
            if task in done:
                return task.result()
            if pacing.pausing.is_set():
                task.cancel()
                await asyncio.wait({task})
                return None if task.cancelled() else task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _then_paused(waker: Waker, pacing: Pacing) -> None:
    await waker()
    await pacing.pausing.wait()


async def until_stopped(
    attempt: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    on: Callable[[Exception], bool],
    backoff: Backoff,
) -> bool:
    """Run ``attempt`` until it returns (True), retrying failures ``on`` accepts.

    False when ``stop`` is set while stamina waits between attempts: the wait ends at once.
    """
    pacing = Pacing()

    def judge(exc: Exception) -> bool:
        retry = on(exc)
        if retry:
            pacing.pauses()  # stamina sleeps next: the only moment a cancel is safe
        return retry

    async def loop() -> bool:
        async for trying in forever(judge, backoff):
            with trying:
                pacing.attempt_starts()
                await attempt()
        return True

    return await run_paced(loop(), pacing, stop.wait) is not None
