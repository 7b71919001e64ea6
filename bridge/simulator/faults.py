"""Fault injection: the ways a real IC server misbehaves, scripted for tests and demos.

Request faults (refused logins, failures, delays) are rules the app consults before handling an
`/icws` request; each rule counts down and retires itself. Session faults (expiry, Down, a
Suspended or Faulted subscription) and stream faults (cut, silence) act on the session registry
at once. SSE request faults (a stream that hangs, a `text/html` proxy page) are counted rules
that only SSE requests consult; polls are unaffected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from .messages import subscription_state_message
from .sessions import Ending, Session, SessionRegistry
from .wire import IcwsError, SubscriptionState


@dataclass
class _Rule:
    """One counted request fault; `remaining` None means "until cleared"."""

    remaining: int | None
    path: re.Pattern[str] | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule still applies to the request."""
        if self.spent:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or self.path.search(path) is not None

    def consume(self) -> None:
        """Count one use."""
        if self.remaining is not None:
            self.remaining -= 1

    @property
    def spent(self) -> bool:
        """Whether the rule has no uses left."""
        return self.remaining is not None and self.remaining <= 0


@dataclass
class _Failure(_Rule):
    status: int = 500


@dataclass
class _Delay(_Rule):
    seconds: float = 0.0


@dataclass
class _Refusal(_Rule):
    status: int = 503
    alternates: tuple[str, ...] = ()
    error_id: str = "error.server.notAcceptingConnections"
    on_host: str | None = None


@dataclass
class SseFault(_Rule):
    """How the next SSE requests misbehave: hang (with or without headers) or answer HTML."""

    html: bool = False
    send_headers: bool = True
    status: int = 502


_R = TypeVar("_R", bound=_Rule)


def _compile(path_regex: str | None) -> re.Pattern[str] | None:
    return None if path_regex is None else re.compile(path_regex)


class Faults:
    """The fault switchboard exposed as `sim.faults`."""

    def __init__(self, registry: SessionRegistry):
        self._registry = registry
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []
        self._refusal: _Refusal | None = None
        self._sse_fault: SseFault | None = None
        self._silenced = False
        self._repeats = 0

    # ---- session faults -----------------------------------------------------------------------

    def expire_session(self, session_id: str | None = None) -> None:
        """Invalidate a session (or all): later requests get 401 and its SSE stream closes."""
        for session in self._targets(session_id):
            self._registry.forget(session)

    def send_down(
        self,
        should_reconnect: bool | None = True,
        reason: str = "Session terminated by administrator",
        session_id: str | None = None,
    ) -> None:
        """Deliver a Down `connectionStateChangeMessage`, then end the session(s)."""
        for session in self._targets(session_id):
            self._registry.go_down(session, Ending(reason, should_reconnect))

    def fail_subscription(
        self,
        subscription: str,
        state: int = SubscriptionState.SUSPENDED,
        message: str = "The subscription was suspended by the server.",
        session_id: str | None = None,
    ) -> None:
        """Suspend (2) or fault (3) a subscription: its state message is queued, deltas stop.

        `subscription` is the resource path below `/messaging/subscriptions/`, e.g.
        `interaction-alerting` or `interactions/agent-assistance/<id>`. A new PUT re-creates it
        (with a fresh snapshot, as always).
        """
        if state not in (SubscriptionState.SUSPENDED, SubscriptionState.FAULTED):
            raise ValueError(f"state must be 2 (Suspended) or 3 (Faulted), not {state!r}")
        targets = [s for s in self._targets(session_id) if subscription in s.subscriptions]
        if not targets:
            raise KeyError(f"no live session has the {subscription!r} subscription")
        for session in targets:
            note = subscription_state_message(subscription, state, message)
            self._registry.end_subscription(session, subscription, note)

    def _targets(self, session_id: str | None) -> list[Session]:
        if session_id is None:
            return list(self._registry.live.values())
        session = self._registry.live.get(session_id)
        if session is None:
            raise KeyError(f"no live session {session_id!r}")
        return [session]

    # ---- request faults -----------------------------------------------------------------------

    def refuse_logins(
        self,
        count: int | None = None,
        status: int = 503,
        alternates: Sequence[str] = (),
        error_id: str = "error.server.notAcceptingConnections",
        on_host: str | None = None,
    ) -> None:
        """Answer the next `count` logins (None: all until `accept_logins`) with a redirect.

        `on_host` limits the refusal to logins arriving on one listening address, so one
        simulator listening on two addresses plays a primary and its switchover partner.
        """
        self._refusal = _Refusal(
            count,
            status=status,
            alternates=tuple(alternates),
            error_id=error_id,
            on_host=on_host,
        )

    def accept_logins(self) -> None:
        """Stop refusing logins."""
        self._refusal = None

    def fail_requests(
        self,
        count: int,
        status: int = 500,
        path_regex: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` and an ICWS error body."""
        self._failures.append(_Failure(count, _compile(path_regex), method, status=status))

    def delay_requests(
        self, seconds: float, count: int | None = None, path_regex: str | None = None
    ) -> None:
        """Hold the next `count` matching requests (None: all until cleared) for `seconds`."""
        self._delays.append(_Delay(count, _compile(path_regex), seconds=seconds))

    def repeat_updates(self, count: int = 1) -> None:
        """Apply the next `count` assistance updates twice, as a server running a call again."""
        self._repeats = count

    def take_repeat(self) -> bool:
        """Whether the assistance update being handled must be applied twice."""
        if self._repeats <= 0:
            return False
        self._repeats -= 1
        return True

    def take_refusal(self, local_host: str | None = None) -> IcwsError | None:
        """The refusal for a login about to be handled, if logins are being refused."""
        refusal = self._refusal
        if refusal is None or refusal.spent:
            return None
        if refusal.on_host is not None and refusal.on_host != local_host:
            return None
        refusal.consume()
        if refusal.spent:
            self._refusal = None
        return IcwsError(
            refusal.status,
            {
                "alternateHostList": list(refusal.alternates),
                "errorId": refusal.error_id,
                "message": "This Session Manager is not currently accepting connections.",
            },
        )

    def take_failure(self, method: str, path: str) -> IcwsError | None:
        """The injected failure for this request, if a rule matches."""
        rule = self._take(self._failures, method, path)
        return None if rule is None else IcwsError.for_status(rule.status)

    def take_delay(self, method: str, path: str) -> float:
        """How long to hold this request before answering (0 when no rule matches)."""
        rule = self._take(self._delays, method, path)
        return 0.0 if rule is None else rule.seconds

    @staticmethod
    def _take(rules: list[_R], method: str, path: str) -> _R | None:
        for rule in rules:
            if rule.matches(method, path):
                rule.consume()
                if rule.spent:
                    rules.remove(rule)
                return rule
        return None

    # ---- stream faults ------------------------------------------------------------------------

    def cut_sse(self, mid_event: bool = True) -> None:
        """Drop every open SSE connection abruptly, after half a `data:` line if `mid_event`."""
        for stream in self._registry.streams():
            stream.cut(mid_event)

    def hang_sse(self, send_headers: bool = True, count: int | None = None) -> None:
        """The next `count` SSE requests (None: all until `clear`) never send a byte of body.

        With `send_headers` the 200 and its headers go out first (a proxy buffering the
        stream); without, not even those. Each ends only when the client hangs up.
        """
        self._sse_fault = SseFault(count, send_headers=send_headers)

    def html_sse(self, status: int = 502, count: int | None = None) -> None:
        """The next `count` SSE requests (None: all until `clear`) get a `text/html` page."""
        self._sse_fault = SseFault(count, html=True, status=status)

    def take_sse_fault(self) -> SseFault | None:
        """The fault for an SSE request about to be served, if one is armed."""
        rule = self._sse_fault
        if rule is None:
            return None
        rule.consume()
        if rule.spent:
            self._sse_fault = None
        return rule

    def silence_sse(self) -> None:
        """Open and future SSE streams send nothing (not even keep-alives) until `clear`."""
        self._silenced = True

    @property
    def sse_silenced(self) -> bool:
        """Whether SSE streams must currently stay quiet."""
        return self._silenced

    def clear(self) -> None:
        """Remove every request and stream fault; sessions already ended stay ended."""
        self._failures.clear()
        self._delays.clear()
        self._refusal = None
        self._sse_fault = None
        self._silenced = False
        self._repeats = 0
        for stream in self._registry.streams():
            stream.wake.set()
