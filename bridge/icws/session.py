"""The ICWS session that never gives up: log in, subscribe, read, and start over when lost.

One :class:`Session` holds at most one ICWS session at a time and at most one reader of its
message queue (ICWS drains the queue on read, so two readers would split the messages). Its
``run`` loop: log in (:class:`~bridge.icws.login.Hosts`), let the core judge the server's features
(:func:`~bridge.core.session_rules.after_login`), create the subscriptions, then read with a
:class:`~bridge.icws.transports.MessageReader` and hand each batch to the sink until the session
is lost (401, a Down message, a failed connection check) or the bridge
stops. The sink awaiting is the back-pressure: while it waits, nothing more is read.

Reader first, as real clients do: the reader reaches ICWS before the subscription PUTs; what it
reads waits, in order, until the session is announced up. An ended stream is not a lost session:
:class:`~bridge.icws.streams.StreamKeeper` checks the session and reopens the stream on it or
falls back to polling; ``keepalive.py`` checks the session on a timer and sends the heartbeat.

Each raw message is parsed once, here: the parsed batch goes to the sink (which builds records
from it) and to :func:`~bridge.core.session_rules.after_batch` (which says what the session must
do next). Parsing here rather than asking the sink for the steps keeps the sink a pure consumer
and the session's decisions independent of the event pipeline.

Sessions that die soon after login are paced by stamina (no login storm); the pace resets after
a stable session. ``session_id`` and ``host`` are bound as structlog context variables for the
life of each session, inside the session task.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, assert_never

import structlog

from bridge import errors, retries
from bridge.core import icws_api, messages, session_rules
from bridge.core.accounts import Account
from bridge.core.icws_api import Answer, Call, Login
from bridge.core.session_rules import EndSession, Follow, Proceed, Unfollow, Unsupported
from bridge.icws import keepalive, transports
from bridge.icws.client import Client, IcwsClient
from bridge.icws.login import Hosts, LoginGate, as_account, backoff_of, reason_of
from bridge.icws.sink import Health, SessionInfo, Sink
from bridge.icws.streams import StreamKeeper
from bridge.icws.subscriptions import (
    Live,
    close,
    logout_quietly,
    resubscribe,
    subscribe_all,
    subscription_bodies,
)
from bridge.icws.transports import ReaderFactory, Reading, readers, send_in_session
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.settings import IcwsSettings, SubscriptionSettings

__all__ = ["Health", "Session", "SessionInfo", "Sink"]


class _Ended(Exception):
    """A session ended in a way that calls for a pause before the next (stamina retries it)."""

    def __init__(self, wait: float | None) -> None:
        super().__init__(f"pause {'backoff' if wait is None else f'{wait:g}s'}")
        self.wait = wait  # None: stamina's backoff


class Session:
    """Holds the ICWS session for as long as the bridge runs."""

    def __init__(
        self,
        settings: IcwsSettings,
        subscriptions: SubscriptionSettings,
        metrics: Metrics,
        sink: Sink,
        client: Client | None = None,
        reader_for: ReaderFactory | None = None,
        *,
        account: Account | None = None,
        login_gate: LoginGate | None = None,
    ) -> None:
        self._settings = settings = as_account(settings, account)
        self._backoff = backoff_of(settings)
        self._bodies = subscription_bodies(subscriptions)
        self._metrics = metrics
        self._sink = sink
        self._http = client if client is not None else IcwsClient(settings, metrics)
        self._reader_for = reader_for or readers(settings)
        self._log = get_logger("bridge.session")
        self._hosts = Hosts(settings, self._http, metrics, self._set_state, login_gate)
        self._login: Login | None = None
        self._up = asyncio.Event()
        self._interrupt = asyncio.Event()
        self._opened = asyncio.Event()  # the reader reached ICWS (new in each _begin)
        self._announced = asyncio.Event()  # the session is up: the sink may get deliveries
        self._ended: EndSession | None = None
        self._lost_reason = ""
        self._interrupt_reason_text = ""
        self._stop = asyncio.Event()
        self._pacing = retries.Pacing()
        self.health = Health()
        self.last_message = time.time()

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Hold a session until :meth:`stop`; then unsubscribe and log out."""
        async with self._http:
            while not self._stopping:
                # stamina gives up only in its test mode (capped attempts): start over.
                with contextlib.suppress(_Ended):
                    await retries.run_paced(self._sessions(), self._pacing, self._stop.wait)
        self._set_state("down", "stopped")

    async def _sessions(self) -> None:
        """Sessions one after another, paced while they fail; returns after a stable one."""
        async for attempt in retries.forever(self._pause_after, self._backoff):
            with attempt:
                self._pacing.attempt_starts()
                await self._judged_session(first=attempt.num == 1)

    def _pause_after(self, exc: Exception) -> bool | float:
        if not isinstance(exc, _Ended):
            return False
        self._pacing.pauses()
        return True if exc.wait is None else exc.wait

    async def _judged_session(self, *, first: bool) -> None:
        """One session, then how long to pause: raises _Ended unless stable or stopped."""
        started = time.monotonic()
        reason = await self._one_session()
        if self._stopping:
            return
        if reason == "unsupported":
            raise _Ended(self._settings.bad_credentials_retry_seconds)
        self._metrics.reconnects.labels(reason=reason).inc()
        self._log.warning("icws.session.lost", reason=reason, detail=self._lost_reason)
        if reason == "down_no_reconnect":
            # The server asked us not to reconnect (an administrator's logout): obey for a
            # while, stay not ready, then try again so the bridge heals itself.
            self._set_state("down", f"server said not to reconnect: {self._lost_reason}")
            raise _Ended(self._settings.bad_credentials_retry_seconds)
        # A session that dies soon after login (e.g. subscriptions keep failing) must not turn
        # into a login storm: back off as for failed logins (the first time at once).
        if time.monotonic() - started <= self._settings.backoff_max_seconds:
            raise _Ended(0.0 if first else None)

    def stop(self) -> None:
        """Stop reading at the next safe point; ``run`` then logs out and returns."""
        self._stop.set()
        self._interrupt.set()

    @property
    def _stopping(self) -> bool:
        return self._stop.is_set()

    def invalidate(self, reason: str, detail: str = "") -> None:
        """Declare the current session lost (e.g. a command got a 401); re-login follows."""
        if self._login is not None and not self._interrupt.is_set():
            self._lost_reason = detail or reason
            self._interrupt_with(reason)

    async def _one_session(self) -> str:
        """Log in, judge, subscribe, read until lost; return the loss reason."""
        self._set_state("connecting", "logging in")
        login = await self._hosts.login(self._stop)
        if login is None:
            return "stopped"
        self.health.host, self.health.icws_version = self._hosts.current or "", login.version
        with structlog.contextvars.bound_contextvars(
            session_id=login.session_id, host=self._hosts.current
        ):
            verdict = session_rules.after_login(
                self._settings.transport, login.features, list(self._bodies)
            )
            match verdict:
                case Unsupported(missing):
                    return await self._unsupported(login, missing)
                case Proceed():
                    return await self._held(login, verdict)
                case _:
                    assert_never(verdict)

    async def _unsupported(self, login: Login, missing: tuple[str, ...]) -> str:
        """The server cannot serve the bridge: say what it lacks, free the session, wait."""
        self.health.unavailable = {}
        self._set_state("unsupported", "ICWS server unsupported: " + "; ".join(missing))
        self._log.error(
            "icws.session.unsupported",
            missing=list(missing),
            retry_in_seconds=self._settings.bad_credentials_retry_seconds,
        )
        await logout_quietly(self._live(login))
        return "unsupported"

    async def _held(self, login: Login, plan: Proceed) -> str:
        """Reader first, then subscribe and announce; read until lost; always say it went down."""
        self._begin(login)
        reason = "stopped"
        reading = asyncio.create_task(self._read(login, plan), name="icws-reader")
        try:
            if await transports.reached_icws(
                self._opened, reading, self._settings.request_timeout_seconds
            ):
                await self._come_up(login, plan)
            reason = await reading
        except errors.IcwsError as exc:
            reason = reason_of(exc)
            self._lost_reason = str(exc)
        finally:
            await self._reader_stopped(reading)
            self._up.clear()
            self._login = None
            self._set_state("down", f"session lost: {reason}")
            self.health.subscribed = ()
            await self._sink.session_down(reason)
        if reason == "stopped":
            names = [n for n in self._bodies if n not in self.health.unavailable]
            await close(
                self._live(login), names, self._settings.shutdown_timeout_seconds, self._log
            )
        else:
            # The old session may still be alive server-side (a cut stream); free it.
            await logout_quietly(self._live(login))
        return reason

    async def _come_up(self, login: Login, plan: Proceed) -> None:
        """Create the subscriptions, then announce the session up: deliveries may flow."""
        subscribed, self.health.unavailable = await subscribe_all(
            self._live(login), self._bodies, plan, self._log
        )
        info = SessionInfo(
            login.session_id,
            self._hosts.current or "",
            login.server,
            login.version,
            plan.transport,
            tuple(subscribed),
        )
        self.health.subscribed = tuple(subscribed)
        self._up.set()
        self._set_state("up", "")
        await self._sink.session_up(info)
        self._log.info("icws.session.up", transport=plan.transport, subscribed=subscribed)
        self._announced.set()

    async def _reader_stopped(self, reading: asyncio.Task[str]) -> None:
        """A session that ends before its reader (a failed subscription) stops the reader."""
        self._interrupt.set()  # a no-op when the reader is already done
        with contextlib.suppress(errors.IcwsError):
            await reading

    def _begin(self, login: Login) -> None:
        """A fresh session: a new interrupt switch, no end decided yet."""
        self._login = login
        self._interrupt = asyncio.Event()
        self._interrupt_reason_text = ""
        self._opened = asyncio.Event()
        self._announced = asyncio.Event()
        self._ended = None
        if self._stopping:
            self._interrupt.set()

    def _live(self, login: Login) -> Live:
        return Live(self._http, self._base(), login.session_id)

    # --- reading -------------------------------------------------------------------------

    async def _read(self, login: Login, plan: Proceed) -> str:
        """Read (reopening streams) with the session checked and kept alive; the end reason."""
        reading = Reading(
            self._http,
            self._base(),
            login.session_id,
            self._interrupt,
            self._deliver,
            self._touch,
            self._opened,
        )
        keeper = StreamKeeper(
            self._settings, self._metrics, self._reader_for, self._alive, self.health
        )
        try:
            async with keepalive.kept_alive(
                self._send, login.session_id, self._settings, self._interrupt, self._lost
            ):
                await keeper.read(reading, plan.transport)
        finally:
            self.health.note = ""
        if self._ended is not None:
            self._lost_reason = self._ended.detail
            return self._ended.reason
        return self._interrupt_reason()

    async def _deliver(self, batch: list[Any]) -> bool:
        """Parse once, hand to the sink, then do what the core says; True ends the session."""
        await transports.first_of(self._announced, self._interrupt)
        if not self._announced.is_set():
            # The session ended before it came up (a subscription failed): what it read goes
            # with it; the session-down gap and the next session's snapshots cover it.
            return True
        parsed = [messages.parse(raw) for raw in batch]
        await self._sink.deliver(parsed, time.time())
        held = [n for n in self._bodies if n not in self.health.unavailable]
        for step in session_rules.after_batch(parsed, held):
            match step:
                case Follow(assistance_id):
                    await self._follow(assistance_id, subscribe=True)
                case Unfollow(assistance_id):
                    await self._follow(assistance_id, subscribe=False)
                case session_rules.Resubscribe():
                    await self._resubscribe(step)
                case EndSession():
                    self._ended = step
                    return True
                case _:
                    assert_never(step)
        return False

    async def _alive(self) -> bool:
        """After a stream ended: is the session up? 401 or no connection raise SessionLost."""
        assert self._login is not None
        return await keepalive.still_up(self._send, self._login.session_id, self._lost)

    def _lost(self, detail: str) -> None:
        self._lost_reason = detail
        self._interrupt_with("check_failed")

    async def _follow(self, assistance_id: str, *, subscribe: bool) -> None:
        """Subscribe to (or drop) one request's details; a request already gone is skipped."""
        login = self._login
        if login is None:
            return
        call = icws_api.assistance_details(login.session_id, assistance_id, subscribe=subscribe)
        failure = icws_api.interpret_ok(call, await self._send(call))
        if isinstance(failure, errors.RequestRejected | errors.ResourceGone):
            # A request that ended meanwhile answers 400/404/410: nothing to follow.
            self._log.info(
                "icws.assistance.details_skipped", assistance_id=assistance_id, error=str(failure)
            )
        elif failure is not None and subscribe:
            # Anything else (5xx, 401) would leave the request unfollowed for the whole
            # session: end it, and the next one's snapshots catch up.
            raise failure

    async def _resubscribe(self, step: session_rules.Resubscribe) -> None:
        if (login := self._login) is not None:
            await self._sink.subscription_lost(step.aggregate, step.reason)
            live, unavailable = self._live(login), self.health.unavailable
            await resubscribe(live, self._bodies, step, self._metrics, self._log, unavailable)

    # --- calls for others ----------------------------------------------------------------

    async def request(self, make: Callable[[str], Call]) -> Answer:
        """Send a call on the live session, waiting for one; a 401 starts a re-login."""
        while (login := self._login) is None or not self._up.is_set():
            await self._up.wait()
        answer = await self._http.send(self._base(), make(login.session_id))
        if answer.status == 401:
            self.invalidate("unauthorized", "a request got 401")
            raise errors.SessionLost("request: HTTP 401", status=401)
        return answer

    async def _send(self, call: Call) -> Answer:
        return await send_in_session(self._http, self._base(), call)

    # --- helpers -------------------------------------------------------------------------

    def _base(self) -> str:
        assert self._hosts.current is not None
        return self._hosts.current

    def _touch(self) -> None:
        self.last_message = time.time()

    def _interrupt_with(self, reason: str) -> None:
        self._interrupt_reason_text = reason
        self._interrupt.set()

    def _interrupt_reason(self) -> str:
        if self._stopping:
            return "stopped"
        return self._interrupt_reason_text or "unauthorized"

    def _set_state(self, state: str, problem: str) -> None:
        self.health.state = state
        self.health.problem = problem

    @property
    def up(self) -> bool:
        return self._up.is_set()
