"""Login pacing: a server that slows down under a login storm (off by default).

Every login passes one `LoginGate`. It counts the logins in flight (arrived, not yet answered)
and those handled at once, and remembers both peaks, so a test can check that a client spreads
its logins. With `max_concurrent_logins` only that many are handled at once and the rest wait
their turn; with `login_latency_seconds` each handled login takes that long. Both knobs are read
per login, so they can change at runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from .config import SimulatorConfig


class LoginGate:
    """Admits logins one slot at a time, as the config allows, and counts them."""

    def __init__(self, config: SimulatorConfig, stopping: asyncio.Event):
        self._config = config
        self._stopping = stopping
        self._slots = asyncio.Condition()
        self._handling = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.peak_handling = 0

    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        """Hold a slot (waiting for one under the cap), sleep the latency, then handle."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            async with self._slots:
                await self._slots.wait_for(self._has_room)
                self._handling += 1
                self.peak_handling = max(self.peak_handling, self._handling)
            try:
                await self._latency()
                yield
            finally:
                async with self._slots:
                    self._handling -= 1
                    self._slots.notify_all()
        finally:
            self.in_flight -= 1

    def _has_room(self) -> bool:
        cap = self._config.max_concurrent_logins
        return cap is None or self._handling < cap or self._stopping.is_set()

    async def _latency(self) -> None:
        seconds = self._config.login_latency_seconds
        if seconds:
            # A stopping simulator must not wait out the latency.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)
