"""What the ICWS session shows the rest of the bridge: where it delivers, and how it is.

Kept apart from ``session.py`` so that module holds only the session's life. The event pipeline
implements :class:`Sink`; the composition root reads :class:`Health` into readiness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bridge.core.messages import Aggregate, Message


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What the rest of the bridge may know about a new session (no secrets)."""

    session_id: str
    host: str
    server: str
    version: str
    transport: str
    subscribed: tuple[str, ...]


class Sink(Protocol):
    """Where the session delivers parsed messages; ``deliver`` may wait (back-pressure)."""

    async def session_up(self, info: SessionInfo) -> None: ...

    async def session_down(self, reason: str) -> None: ...

    async def deliver(self, batch: Sequence[Message], read_at: float) -> None: ...
    async def subscription_lost(self, aggregate: Aggregate, reason: str) -> None: ...


@dataclass
class Health:
    """How the session is: its state and, when not up, why; what readiness and metrics show.

    The fleet counts its accounts' ``Health`` at each scrape (accounts per state, transport,
    subscription and host), so no one session writes a single-value metric.
    """

    state: str = "down"
    problem: str = "not logged in yet"
    unavailable: dict[str, str] = field(default_factory=dict)
    note: str = ""  # while up: how it reads, when that is worth saying (polling after SSE failed)
    transport: str | None = None  # reading now with: "sse" or "poll"
    subscribed: tuple[str, ...] = ()  # while up: the subscriptions made (less ``unavailable``)
    host: str = ""  # of the last login, kept while down (where it will try first)
    icws_version: str = ""  # the server's, at the last login

    @property
    def active(self) -> list[str]:
        """The subscriptions in place now."""
        return [name for name in self.subscribed if name not in self.unavailable]
