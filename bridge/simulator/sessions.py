"""Sessions: credentials, subscriptions, the per-session message queue and session endings.

A session is born at login and dies in one of two ways. It *ends* (logout, idle timeout, or a
delivered Down message): it is remembered, so `GET .../connection` can still report it Down when
the config says so. Or it is *forgotten* (`expire_session`): every later request is a 401, as if
the server had never issued it. Messages wait in a FIFO queue until a poll or the SSE stream
takes them; a message counts as sent only once it has been handed to a client. The queue belongs
to the session, not to a stream: what is queued while no stream is open (between recycled
streams) waits for the next reader, stream or poll.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import SimulatorConfig
from .messages import Render, connection_state_message
from .wire import JsonObject

# The idle reaper looks at least this often (seconds); cheap, and keeps expiry prompt.
_REAP_CAP = 0.1


@dataclass(eq=False)
class SseStream:
    """Control handle of one open SSE response; the streaming loop obeys its flags."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False
    cut_mid_event: bool | None = None

    def close(self) -> None:
        """Ask the stream to finish cleanly."""
        self.closing = True
        self.wake.set()

    def cut(self, mid_event: bool) -> None:
        """Ask the stream to drop its connection abruptly (after half an event if `mid_event`)."""
        self.cut_mid_event = mid_event
        self.wake.set()


@dataclass(frozen=True)
class Ending:
    """Why a session went Down, as `GET .../connection` and the Down message report it."""

    reason: str
    should_reconnect: bool | None = None


@dataclass(frozen=True)
class EndedSession:
    """What is remembered of an ended session: enough to authenticate a status check."""

    cookie_value: str
    csrf_token: str
    ending: Ending


@dataclass(eq=False)
class Session:
    """One live ICWS session of a user."""

    session_id: str
    user: str
    csrf_token: str
    cookie_value: str
    application_name: str
    language: str
    features: dict[str, int]
    last_activity: float
    subscriptions: dict[str, JsonObject] = field(default_factory=dict)
    queue: deque[JsonObject] = field(default_factory=deque)
    stream: SseStream | None = None
    # Set once a Down message is queued: the session only lets the client drain it, then ends.
    down: Ending | None = None
    # The proxied `<icserver>` name it was created under; only that name serves it.
    icserver: str | None = None

    def feature(self, feature_id: str) -> int:
        """The version of a feature as announced at login; 0 when absent."""
        return self.features.get(feature_id, 0)

    @property
    def cookie_name(self) -> str:
        """The session cookie's name, `icws_<sessionId>`."""
        return f"icws_{self.session_id}"


@dataclass(frozen=True)
class Call:
    """One assistance update (POST) or complete (DELETE) as ICWS received and answered it.

    `applied` is how many times the world took its effect (0 when refused or failed, 2 under the
    `repeat_updates` fault), so a checker can count executions per command exactly.
    """

    method: str
    assistance_id: str
    text: str | None
    status: int
    applied: int

    def as_json(self) -> JsonObject:
        """The call as the control API shows it (camelCase)."""
        return {
            "method": self.method,
            "assistanceId": self.assistance_id,
            "text": self.text,
            "status": self.status,
            "applied": self.applied,
        }


@dataclass
class Records:
    """What the simulator did, for exact assertions in tests."""

    sent_messages: list[tuple[str, JsonObject]] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # (subscription name, body as the client sent it) for every subscription PUT, in order.
    subscription_bodies: list[tuple[str, JsonObject]] = field(default_factory=list)
    logins: int = 0
    login_attempts: int = 0
    logouts: int = 0
    dropped_messages: int = 0
    subscription_puts: int = 0
    streams_opened: int = 0
    streams_recycled: int = 0
    heartbeats: int = 0

    def counters(self) -> dict[str, int]:
        """The counters as the control API's `/_sim/state` reports them (camelCase)."""
        return {
            "logins": self.logins,
            "loginAttempts": self.login_attempts,
            "logouts": self.logouts,
            "droppedMessages": self.dropped_messages,
            "sentMessages": len(self.sent_messages),
            "requests": len(self.requests),
            "calls": len(self.calls),
            "subscriptionPuts": self.subscription_puts,
            "streamsOpened": self.streams_opened,
            "streamsRecycled": self.streams_recycled,
            "heartbeats": self.heartbeats,
        }


class SessionRegistry:
    """Every live and ended session; also the world's `Publisher`."""

    def __init__(
        self,
        config: SimulatorConfig,
        records: Records,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._config = config
        self._records = records
        self._clock = clock
        self.live: dict[str, Session] = {}
        self.ended: dict[str, EndedSession] = {}
        # Live sessions by user, so a per-user change costs that user's sessions, not all.
        self._by_user: dict[str, dict[str, Session]] = {}

    # ---- lifecycle ----------------------------------------------------------------------------

    def open(
        self, user: str, application_name: str, language: str, icserver: str | None = None
    ) -> Session:
        """Create a session with fresh id, CSRF token and cookie value."""
        session_id = self._new_session_id()
        session = Session(
            session_id=session_id,
            user=user,
            csrf_token=base64.b64encode(secrets.token_bytes(30)).decode(),
            cookie_value=str(uuid.uuid4()),
            application_name=application_name,
            language=language,
            features=dict(self._config.features),
            last_activity=self._clock(),
            icserver=icserver,
        )
        self.live[session_id] = session
        self._by_user.setdefault(user, {})[session_id] = session
        self._records.logins += 1
        return session

    def lookup(self, session_id: str) -> Session | None:
        """The live session with that id, ending it first if it has idled out."""
        session = self.live.get(session_id)
        if session is not None and self._is_idle(session):
            self.end(session, session.down or Ending("The session has timed out."))
            return None
        return session

    def touch(self, session: Session) -> None:
        """Note client activity, which holds off the idle timeout."""
        session.last_activity = self._clock()

    def end(self, session: Session, ending: Ending) -> None:
        """End a session but remember it, so a status check can still report it Down."""
        self._remove(session)
        self.ended[session.session_id] = EndedSession(
            session.cookie_value, session.csrf_token, ending
        )

    def forget(self, session: Session) -> None:
        """Drop a session without a trace: every later request for it is a 401."""
        self._remove(session)

    def go_down(self, session: Session, ending: Ending) -> None:
        """Queue a Down `connectionStateChangeMessage`; the session ends once it is delivered."""
        if session.down is not None:
            return
        self.enqueue(session, connection_state_message(ending.reason, ending.should_reconnect))
        session.down = ending

    def expire_idle(self) -> None:
        """End every session idle for longer than the configured timeout."""
        if self._config.idle_timeout_seconds is None:
            return
        for session in list(self.live.values()):
            self.lookup(session.session_id)

    def reap_interval(self) -> float:
        """How often the idle reaper should look, given the current timeout."""
        timeout = self._config.idle_timeout_seconds
        return _REAP_CAP if timeout is None else min(timeout / 4, _REAP_CAP)

    def of_user(self, user: str) -> list[Session]:
        """The live sessions of `user`."""
        return list(self._by_user.get(user, {}).values())

    def _remove(self, session: Session) -> None:
        self.live.pop(session.session_id, None)
        mine = self._by_user.get(session.user, {})
        mine.pop(session.session_id, None)
        if not mine:
            self._by_user.pop(session.user, None)
        if session.stream is not None:
            session.stream.close()
            session.stream = None

    def _is_idle(self, session: Session) -> bool:
        timeout = self._config.idle_timeout_seconds
        if timeout is None:
            return False
        if session.stream is not None and self._config.sse_counts_as_activity:
            return False
        return self._clock() - session.last_activity > timeout

    def _new_session_id(self) -> str:
        # Numeric like a real server's (clients match `/icws/(\d+)`), never reused.
        while True:
            session_id = str(1_000_000_000 + secrets.randbelow(9_000_000_000))
            if session_id not in self.live and session_id not in self.ended:
                return session_id

    # ---- messages -----------------------------------------------------------------------------

    def publish(self, subscription: str, render: Render, *, user: str | None = None) -> None:
        """Queue `render(params)` to every live session subscribed to `subscription`.

        With `user`, only that user's sessions (ICWS scopes alerting, history and the
        assistance list to the session's user).
        """
        sessions = self.live.values() if user is None else self._by_user.get(user, {}).values()
        for session in list(sessions):
            params = session.subscriptions.get(subscription)
            if params is None or session.down is not None:
                continue
            message = render(params)
            if message is not None:
                self.enqueue(session, message)

    def end_subscription(self, session: Session, name: str, message: JsonObject) -> None:
        """Drop a subscription (no more deltas until a new PUT) and queue its state message."""
        del session.subscriptions[name]
        self.enqueue(session, message)

    def enqueue(self, session: Session, message: JsonObject) -> None:
        """Append to the session's queue, dropping the oldest message beyond the cap."""
        cap = self._config.max_queued_messages
        if cap is not None and len(session.queue) >= cap:
            session.queue.popleft()
            self._records.dropped_messages += 1
        session.queue.append(message)
        if session.stream is not None:
            session.stream.wake.set()

    def drain(self, session: Session) -> list[JsonObject]:
        """Hand every queued message to a poll; they will not be delivered again."""
        messages = list(session.queue)
        session.queue.clear()
        for message in messages:
            self.delivered(session, message)
        self._finish_down(session)
        return messages

    def take(self, session: Session) -> JsonObject | None:
        """Take the oldest queued message for the SSE stream, or None."""
        return session.queue.popleft() if session.queue else None

    def give_back(self, session: Session, message: JsonObject) -> None:
        """Return a message the stream could not write; it is first in line again."""
        session.queue.appendleft(message)

    def delivered(self, session: Session, message: JsonObject) -> None:
        """Record a message as handed to the client; ends a Down session once it is drained."""
        self._records.sent_messages.append((session.session_id, message))
        self._finish_down(session)

    def _finish_down(self, session: Session) -> None:
        if session.down is not None and not session.queue and session.session_id in self.live:
            self.end(session, session.down)

    # ---- SSE streams --------------------------------------------------------------------------

    def attach_stream(self, session: Session) -> SseStream:
        """Open a stream for the session; a previous one is closed (one stream per session)."""
        if session.stream is not None:
            session.stream.close()
        session.stream = SseStream()
        self._records.streams_opened += 1
        return session.stream

    def detach_stream(self, session: Session, stream: SseStream) -> None:
        """Forget a finished stream; idle time counts from now."""
        if session.stream is stream:
            session.stream = None
        self.touch(session)

    def recycled(self) -> None:
        """Count a stream the server ended on purpose (`sse_recycle_seconds`)."""
        self._records.streams_recycled += 1

    def streams(self) -> list[SseStream]:
        """Every open SSE stream."""
        return [session.stream for session in self.live.values() if session.stream is not None]
