"""What the command side needs of ICWS, per user: a session to call on, and a view of requests.

The command pipeline never imports the event pipeline or the fleet: app.py hands it a
:class:`Sessions` (the fleet, also for the one-account shorthand), which
says which users this replica holds and gives each one's :class:`Caller` (its live session) and
:class:`View` (its reconciled assistance requests). A command runs only on its owner's session.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from bridge.core.icws_api import Answer, Call


class Caller(Protocol):
    """Sends a call on the live ICWS session (waiting while there is none)."""

    @property
    def up(self) -> bool: ...

    async def request(self, make: Callable[[str], Call]) -> Answer: ...


class View(Protocol):
    """The bridge's own view of ICWS assistance requests (its reconciled state)."""

    def fresh(self) -> bool: ...

    def assistance(self, assistance_id: str) -> Mapping[str, Any] | None: ...


class Sessions(Protocol):
    """The ICWS users this replica holds, each with its session and its view."""

    def held(self) -> Sequence[str]: ...

    def caller(self, user: str) -> Caller | None: ...

    def view(self, user: str) -> View | None: ...
