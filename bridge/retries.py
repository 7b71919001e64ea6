"""Every backoff in the bridge is stamina's: jittered, capped, exponential, and off in tests.

:func:`forever` is the schedule of a loop that retries until it succeeds (Kafka sends, the
journal read, connecting at start-up). stamina sleeps between attempts and cannot be woken, but
a stop must end any wait at once: :func:`until_stopped` runs such a loop in a task and cancels
it when the stop comes while stamina sleeps. An attempt in progress is never cancelled; it
watches the stop itself and ends at its own safe point. Tests turn the waits off with
``stamina.set_testing(True)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass

import stamina

Judge = Callable[[Exception], bool]


@dataclass(frozen=True, slots=True)
class Backoff:
    """A capped exponential schedule: the first wait (also the jitter) and the longest."""

    initial: float
    maximum: float


KAFKA = Backoff(0.2, 5.0)
"""Kafka sends and reads: the broker usually answers again within seconds."""
RESTART = Backoff(0.5, 10.0)
"""Starting a whole part again (the command consumer, Kafka at start-up)."""


def forever(on: Judge | type[Exception], backoff: Backoff) -> AsyncIterable[stamina.Attempt]:
    """Attempts without end while ``on`` accepts the failure; any other failure is raised."""
    return stamina.retry_context(
        on=on,
        attempts=None,
        timeout=None,
        wait_initial=backoff.initial,
        wait_max=backoff.maximum,
        wait_jitter=backoff.initial,
    )


async def until_stopped(
    attempt: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    on: Judge,
    backoff: Backoff,
) -> bool:
    """Run ``attempt`` until it returns (True), retrying failures ``on`` accepts.

    False when ``stop`` is set while stamina waits between attempts: the wait ends at once.
    """
    waiting = asyncio.Event()

    def judge(exc: Exception) -> bool:
        retry = on(exc)
        if retry:
            waiting.set()  # stamina sleeps next: the only moment a cancel is safe
        return retry

    async def loop() -> None:
        async for trying in forever(judge, backoff):
            with trying:
                waiting.clear()
                await attempt()

    task = asyncio.create_task(loop())
    try:
        await _first(task, stop.wait())
        while not task.done():
            await _first(task, waiting.wait())
            if waiting.is_set() and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return False
        task.result()
        return True
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _first(task: asyncio.Task[None], other: Awaitable[object]) -> None:
    """Wait until ``task`` ends or ``other`` completes, whichever is first."""
    waiter = asyncio.ensure_future(other)
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
