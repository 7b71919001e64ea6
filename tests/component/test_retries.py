"""stamina loops that a stop or a waker can end: at once while waiting, never in an attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from bridge import retries

T = TypeVar("T")
HOUR = retries.Backoff(3600.0, 3600.0)  # a wait no test could sit out: only a stop ends it


class Down(Exception):
    """A retriable failure."""


def retriable(exc: Exception) -> bool:
    return isinstance(exc, Down)


async def _fired_during_attempt(
    loop: Awaitable[T], started: asyncio.Event, fire: asyncio.Event, release: asyncio.Event
) -> T:
    """``loop``'s result after ``fire`` was set during its attempt, which then ran to its end."""
    task = asyncio.ensure_future(loop)
    await started.wait()
    fire.set()
    for _ in range(20):  # give a wrong implementation every chance to cancel the attempt
        await asyncio.sleep(0)
    assert not task.done()
    release.set()
    return await task


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

        loop = retries.until_stopped(attempt, stop, retriable, HOUR)
        assert await _fired_during_attempt(loop, started, stop, release) is True
        assert finished == ["done"]

    async def test_other_failures_are_raised(self) -> None:
        """A failure the judge refuses is raised, not retried."""

        async def attempt() -> None:
            raise ValueError("a bug")

        with pytest.raises(ValueError, match="a bug"):
            await retries.until_stopped(attempt, asyncio.Event(), retriable, HOUR)


class TestSchedule:
    async def test_at_least_raises_the_first_wait_and_keeps_the_jitter(
        self, scheduled: asyncio.Queue[float]
    ) -> None:
        """A server's longer retry delay is waited, plus at most the schedule's own jitter."""
        failures: list[int] = []

        async def loop() -> None:
            async for attempt in retries.forever(
                retriable, retries.Backoff(0.001, 0.002), at_least=0.02
            ):
                with attempt:
                    failures.append(1)
                    if len(failures) < 3:
                        raise Down

        await loop()
        waits = [scheduled.get_nowait(), scheduled.get_nowait()]
        assert all(0.02 <= wait <= 0.021 for wait in waits)

    async def test_limit_raises_the_last_failure(self) -> None:
        """With a limit, the failure of the last allowed attempt is raised."""
        tried: list[int] = []

        async def loop() -> None:
            async for attempt in retries.attempts(Down, retries.Backoff(0.001, 0.001), limit=3):
                with attempt:
                    tried.append(1)
                    raise Down

        with pytest.raises(Down):
            await loop()
        assert len(tried) == 3


class TestRunPaced:
    async def test_a_waker_cancels_only_once_the_loop_pauses(self) -> None:
        """A waker that fires during an attempt waits for the pause, then ends the loop: None."""
        pacing = retries.Pacing()
        woken, started, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
        finished: list[str] = []

        async def work() -> str:
            async for attempt in retries.forever(judge, HOUR):
                with attempt:
                    pacing.attempt_starts()
                    started.set()
                    await release.wait()
                    finished.append("attempt")
                    raise Down
            return "never"

        def judge(exc: Exception) -> bool:
            pacing.pauses()
            return retriable(exc)

        paced = retries.run_paced(work(), pacing, woken.wait)
        assert await _fired_during_attempt(paced, started, woken, release) is None
        assert finished == ["attempt"]

    async def test_the_work_result_is_returned(self) -> None:
        """Work that ends before any waker fires hands back its result."""

        async def work() -> str:
            return "logged in"

        never = asyncio.Event()
        assert await retries.run_paced(work(), retries.Pacing(), never.wait) == "logged in"
