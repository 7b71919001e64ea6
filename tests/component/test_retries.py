"""stamina loops that a stop can end: at once while waiting, never in the middle of an attempt."""

from __future__ import annotations

import asyncio

import pytest

from bridge import retries

HOUR = retries.Backoff(3600.0, 3600.0)  # a wait no test could sit out: only a stop ends it


class Down(Exception):
    """A retriable failure."""


def retriable(exc: Exception) -> bool:
    return isinstance(exc, Down)


class TestUntilStopped:
    async def test_success_after_failures(self) -> None:
        """Failures the judge accepts are retried until the attempt succeeds: True."""
        attempts: list[int] = []

        async def attempt() -> None:
            attempts.append(1)
            if len(attempts) < 3:
                raise Down

        stop = asyncio.Event()
        ok = await retries.until_stopped(attempt, stop, retriable, retries.Backoff(0.001, 0.001))
        assert ok is True
        assert len(attempts) == 3

    async def test_stop_ends_a_long_wait_at_once(self) -> None:
        """A stop while stamina waits an hour between attempts ends the loop: False."""
        stop = asyncio.Event()
        failed = asyncio.Event()

        async def attempt() -> None:
            failed.set()
            raise Down

        loop = asyncio.create_task(retries.until_stopped(attempt, stop, retriable, HOUR))
        await failed.wait()
        stop.set()
        assert await loop is False

    async def test_stop_never_cuts_an_attempt(self) -> None:
        """A stop during an attempt lets it finish; its own completion ends the loop."""
        stop = asyncio.Event()
        started, release = asyncio.Event(), asyncio.Event()
        finished: list[str] = []

        async def attempt() -> None:
            started.set()
            await release.wait()
            finished.append("done")

        loop = asyncio.create_task(retries.until_stopped(attempt, stop, retriable, HOUR))
        await started.wait()
        stop.set()
        for _ in range(20):  # give a wrong implementation every chance to cancel the attempt
            await asyncio.sleep(0)
        assert not loop.done()
        release.set()
        assert await loop is True
        assert finished == ["done"]

    async def test_other_failures_are_raised(self) -> None:
        """A failure the judge refuses is raised, not retried."""

        async def attempt() -> None:
            raise ValueError("a bug")

        with pytest.raises(ValueError, match="a bug"):
            await retries.until_stopped(attempt, asyncio.Event(), retriable, HOUR)
