"""One session's reading for its whole life: streams reopen on the same session, SSE falls back.

A stream is not a session (docs/icws-protocol.md §10). When an SSE stream ends (closed, broken,
silent) or never works, the :class:`StreamKeeper` asks the session whether it is still up (the
``alive`` check, ``GET /connection``); if so it opens a new stream on the same session after
the server's ``retry:`` delay: no login, no re-subscription, no gap, no snapshot, and whatever
ICWS queued meanwhile arrives on the new stream. Streams that keep failing back off through
stamina, and with ``transport=auto`` the ``sse_failures_before_polling``-th failure in a row
switches to short polling on the same session for ``sse_retry_after_seconds``; then SSE is tried
again. :func:`~bridge.core.session_rules.after_stream_end` makes each decision.

It shows the transport in use in the session's :class:`~bridge.icws.sink.Health` (the fleet
counts it into ``icws_bridge_transport``) and, while polling after a fallback, in a note
readiness shows. Waits end at once on an interrupt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import assert_never

from bridge import retries
from bridge.core import session_rules
from bridge.core.icws_api import Transport
from bridge.core.session_rules import FallBack, Reopen
from bridge.icws.login import backoff_of
from bridge.icws.sink import Health
from bridge.icws.transports import ReaderFactory, Reading, StreamEnded, interrupted_within
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.settings import IcwsSettings

Alive = Callable[[], Awaitable[bool]]  # True: up; False: lost (the session was told why)


class _Pause(Exception):
    """A failed stream: stamina backs off before the next one."""


class StreamKeeper:
    """Reads one session's messages, reopening its streams until the session ends."""

    def __init__(
        self,
        settings: IcwsSettings,
        metrics: Metrics,
        reader_for: ReaderFactory,
        alive: Alive,
        health: Health,
    ) -> None:
        self._settings = settings
        self._backoff = backoff_of(settings)
        self._metrics = metrics
        self._reader_for = reader_for
        self._alive = alive
        self._health = health
        self._failures = 0
        self._retry_ms: int | None = None
        self._pacing = retries.Pacing()
        self._log = get_logger("bridge.icws.streams")

    async def read(self, reading: Reading, transport: Transport) -> None:
        """Read until the reader returns (interrupt or the session's end); IcwsError when lost."""
        self._show("poll" if transport == "poll" else "sse", "")
        try:
            if transport == "poll":
                await self._reader_for("poll").read(reading)
                return
            while not reading.interrupt.is_set():
                # stamina gives up only in its test mode (capped attempts): go on.
                with contextlib.suppress(_Pause):
                    if await retries.run_paced(
                        self._round(reading), self._pacing, reading.interrupt.wait
                    ):
                        return
        finally:
            self._health.transport = None

    async def _round(self, reading: Reading) -> bool:
        """Streams until one ends the reading (True) or worked and ended (False: a new round).

        A new round after a stream that worked starts stamina's backoff afresh.
        """
        retry = (self._retry_ms or 0) / 1000
        async for attempt in retries.forever(self._pause_after, self._backoff, at_least=retry):
            with attempt:
                self._pacing.attempt_starts()
                return await self._one(reading)
        return False  # not reached: stamina either returns from the attempt or raises

    def _pause_after(self, exc: Exception) -> bool:
        if not isinstance(exc, _Pause):
            return False
        self._pacing.pauses()
        return True

    async def _one(self, reading: Reading) -> bool:
        """One stream; True when the reading is over. Raises _Pause after a failed stream."""
        try:
            await self._reader_for("sse").read(replace(reading, touch=self._touched(reading)))
            return True
        except StreamEnded as end:
            ended = end
        if ended.retry_ms is not None:
            self._retry_ms = ended.retry_ms
        if not await self._alive():
            return True
        verdict = session_rules.after_stream_end(
            ended.reason,
            self._failures,
            self._retry_ms,
            mode=self._settings.transport,
            limit=self._settings.sse_failures_before_polling,
            initial=self._settings.backoff_initial_seconds,
        )
        self._failures = verdict.failures
        self._metrics.stream_reconnects.labels(reason=ended.reason).inc()
        match verdict:
            case Reopen(wait=wait):
                self._log.info(
                    "icws.stream.reopened",
                    reason=ended.reason,
                    detail=ended.detail,
                    failures=verdict.failures,
                    wait_seconds=wait,
                )
                if wait is None:
                    raise _Pause(ended.detail)
                return await interrupted_within(reading.interrupt, wait)
            case FallBack():
                return await self._poll_for_a_while(reading, ended)
            case _:
                assert_never(verdict)

    async def _poll_for_a_while(self, reading: Reading, ended: StreamEnded) -> bool:
        """Short-poll the same session until SSE is due again; True when the reading is over."""
        seconds = self._settings.sse_retry_after_seconds
        why = f"SSE failed {self._failures} times: {ended.detail}"
        self._log.warning(
            "icws.transport.fallback", transport="poll", detail=why, retry_sse_in_seconds=seconds
        )
        self._show("poll", f"polling: {why}")
        stint = asyncio.Event()

        async def until_sse_is_due() -> None:
            await interrupted_within(reading.interrupt, seconds)
            stint.set()

        timer = asyncio.ensure_future(until_sse_is_due())
        try:
            await self._reader_for("poll").read(replace(reading, interrupt=stint))
        finally:
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)
        if reading.interrupt.is_set() or not stint.is_set():
            return True  # stopped, lost, or the poll's batch ended the session
        self._log.info("icws.transport.retrying_sse", failures=self._failures)
        return False

    def _touched(self, reading: Reading) -> Callable[[], None]:
        """The reading's touch, which also shows SSE working again after a fallback."""

        def touch() -> None:
            if self._failures >= self._settings.sse_failures_before_polling:
                self._log.info("icws.transport.restored", transport="sse")
            self._failures = 0
            self._show("sse", "")
            reading.touch()

        return touch

    def _show(self, transport: Transport, note: str) -> None:
        self._health.transport = transport
        self._health.note = note
