"""stamina retry loops whose waits can be cut short: by a stop, or by a sign that waiting is over.

stamina paces every retry in the ICWS adapter (jittered, capped, exponential; its test mode turns
the waits off). It sleeps between attempts and offers no way to wake it early, but the bridge
must: a stop (SIGTERM) ends any wait at once, even the 300 s after rejected credentials, and a
probe that sees an ICWS host answer again ends the backoff. So the retry loop runs in a task,
its retry hook marks when stamina is about to sleep (:meth:`Pacing.pauses`), and
:func:`run_paced` cancels the task only then, when a waker fires. An attempt in progress (a
login, a whole session that is reading) is never cancelled: it ends at its own safe points.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import stamina

from bridge.settings import IcwsSettings

T = TypeVar("T")
Waker = Callable[[], Awaitable[object]]


def forever(
    settings: IcwsSettings, on: Callable[[Exception], bool | float], at_least: float = 0.0
) -> AsyncIterable[stamina.Attempt]:
    """Attempts without end, paced by stamina as ``settings`` say; ``on`` judges failures.

    ``on`` returns False (give up: re-raise), True (stamina's jittered exponential backoff) or
    a number of seconds to wait instead. ``at_least`` raises the first wait (and the cap, if
    need be): a server's SSE ``retry:`` delay, which a backoff must not undercut.
    """
    initial = max(settings.backoff_initial_seconds, at_least)
    return stamina.retry_context(
        on=on,
        attempts=None,
        timeout=None,
        wait_initial=initial,
        wait_max=max(settings.backoff_max_seconds, initial),
        wait_jitter=settings.backoff_initial_seconds,
    )


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
