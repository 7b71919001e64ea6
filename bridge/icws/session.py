"""The ICWS session that never gives up: log in, subscribe, read, and start over when lost.

One :class:`Session` holds at most one ICWS session at a time and at most one reader of its
message queue (ICWS drains the queue on read, so two readers would split the messages). Its
``run`` loop: log in (rotating over configured and announced hosts, with capped, jittered
backoff), check features, create the subscriptions, then read by SSE or short-poll and hand each
batch to the sink until the session is lost (401, a Down message, a dead or silent stream, a
failed connection check) or the bridge stops. The sink awaiting is the back-pressure: while it
waits, nothing more is read, and ICWS keeps queuing server-side.

Reading is interrupted only where nothing has been taken from ICWS yet (before a poll is sent,
while an SSE chunk is awaited), so a stop or a re-login never loses a message already drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge import __version__, errors
from bridge.core import icws_api, messages
from bridge.core.icws_api import Answer, Call, Login
from bridge.core.sse import SseDecoder
from bridge.icws.client import IcwsClient
from bridge.icws.login import Hosts, backoff, reason_of
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.settings import IcwsSettings, SubscriptionSettings

CONNECTION_STATE = "urn:inin.com:connection:connectionStateChangeMessage"


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
    """Where the session delivers; ``deliver`` may wait (back-pressure)."""

    async def session_up(self, info: SessionInfo) -> None: ...

    async def session_down(self, reason: str) -> None: ...

    async def deliver(self, batch: list[Any], read_at: float) -> None: ...


@dataclass
class Health:
    """The session's part of readiness: its state and, when not up, why."""

    state: str = "down"
    problem: str = "not logged in yet"
    unavailable: dict[str, str] = field(default_factory=dict)


def subscription_bodies(subs: SubscriptionSettings) -> dict[str, dict[str, Any] | None]:
    """The enabled subscriptions and the body each PUT sends."""
    bodies: dict[str, dict[str, Any] | None] = {}
    if subs.alerting.enabled:
        bodies["alerting"] = (
            {"attributeNames": list(subs.alerting.attribute_names)}
            if subs.alerting.attribute_names
            else {}
        )
    if subs.history.enabled:
        count = subs.history.number_of_messages
        bodies["history"] = {"numberOfHistoryMessages": count} if count else {}
    if subs.status_messages.enabled:
        bodies["status_messages"] = None
    if subs.assistance.enabled:
        bodies["assistance"] = None
    return bodies


class Session:
    """Holds the ICWS session for as long as the bridge runs."""

    def __init__(
        self,
        settings: IcwsSettings,
        subscriptions: SubscriptionSettings,
        metrics: Metrics,
        sink: Sink,
    ) -> None:
        self._settings = settings
        self._bodies = subscription_bodies(subscriptions)
        self._metrics = metrics
        self._sink = sink
        self._http = IcwsClient(settings, metrics)
        self._log = get_logger("bridge.session")
        self._hosts = Hosts(
            settings,
            self._http,
            metrics,
            lambda: self._set_state("bad_credentials", "ICWS rejected the credentials"),
        )
        self._login: Login | None = None
        self._up = asyncio.Event()
        self._interrupt = asyncio.Event()
        self._lost_reason = ""
        self._interrupt_reason_text = ""
        self._stop = asyncio.Event()
        self.health = Health()
        self.last_message = time.time()

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Hold a session until :meth:`stop`; then unsubscribe and log out."""
        async with self._http:
            quick_failures = 0
            while not self._stopping:
                started = time.monotonic()
                reason = await self._one_session()
                if self._stopping:
                    break
                self._metrics.reconnects.labels(reason=reason).inc()
                self._log.warning("icws.session.lost", reason=reason, detail=self._lost_reason)
                # A session that dies soon after login (e.g. subscriptions keep failing) must
                # not turn into a login storm: back off as for failed logins, reset when stable.
                stable = time.monotonic() - started > self._settings.backoff_max_seconds
                quick_failures = 0 if stable else quick_failures + 1
                if quick_failures > 1:
                    await self._wait_stop(backoff(self._settings, quick_failures - 1))
                if reason == "down_no_reconnect":
                    # The server asked us not to reconnect (an administrator's logout): obey
                    # for a while, stay not ready, then try again so the bridge heals itself.
                    self._set_state("down", f"server said not to reconnect: {self._lost_reason}")
                    await self._wait_stop(self._settings.bad_credentials_retry_seconds)
        self._set_state("down", "stopped")

    def stop(self) -> None:
        """Stop reading at the next safe point; ``run`` then logs out and returns."""
        self._stop.set()
        self._interrupt.set()

    @property
    def _stopping(self) -> bool:
        return self._stop.is_set()

    async def _wait_stop(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def invalidate(self, reason: str, detail: str = "") -> None:
        """Declare the current session lost (e.g. a command got a 401); re-login follows."""
        if self._login is not None and not self._interrupt.is_set():
            self._lost_reason = detail or reason
            self._interrupt_with(reason)

    async def _one_session(self) -> str:
        """Log in, subscribe, read until lost; return the loss reason."""
        self._set_state("connecting", "logging in")
        login = await self._hosts.login(self._stop)
        if login is None:
            return "stopped"
        self._begin(login)
        reason = "stopped"
        try:
            subscribed = await self._subscribe(login)
            transport = icws_api.choose_transport(self._settings.transport, login.features)
            info = SessionInfo(
                login.session_id,
                self._hosts.current or "",
                login.server,
                login.version,
                transport,
                tuple(subscribed),
            )
            self._up.set()
            self._set_state("up", "")
            await self._sink.session_up(info)
            self._log.info(
                "icws.session.up",
                session_id=login.session_id,
                host=self._hosts.current,
                transport=transport,
                subscribed=subscribed,
            )
            reason = await self._read(login, transport)
        except errors.IcwsError as exc:
            reason = reason_of(exc)
            self._lost_reason = str(exc)
        finally:
            self._up.clear()
            self._login = None
            self._set_state("down", f"session lost: {reason}")
            for name in self._bodies:
                self._metrics.subscriptions.labels(subscription=name).set(0)
            await self._sink.session_down(reason)
        if reason == "stopped":
            await self._close(login)
        else:
            # The old session may still be alive server-side (a cut stream); free it.
            await self._logout_quietly(login)
        return reason

    def _begin(self, login: Login) -> None:
        """A fresh session: new interrupt switch, build info for operators."""
        self._login = login
        self._interrupt = asyncio.Event()
        self._interrupt_reason_text = ""
        if self._stopping:
            self._interrupt.set()
        self._metrics.info.info({"version": __version__, "icws_version": login.version})

    # --- subscriptions -------------------------------------------------------------------

    async def _subscribe(self, login: Login) -> list[str]:
        """Create every enabled subscription the server supports; return their names."""
        unsupported = icws_api.missing_features(login.features, list(self._bodies))
        self.health.unavailable = {m.subscription: m.describe() for m in unsupported}
        for missing in unsupported:
            self._log.error("icws.subscription.unsupported", detail=missing.describe())
        done = []
        for name, body in self._bodies.items():
            if name in self.health.unavailable:
                continue
            call = icws_api.subscribe(login.session_id, name, body)
            failure = icws_api.interpret_ok(call, await self._send(call))
            if isinstance(failure, errors.ResourceGone | errors.RequestRejected):
                self.health.unavailable[name] = str(failure)
                self._log.error("icws.subscription.failed", subscription=name, error=str(failure))
                continue
            if failure is not None:
                raise failure
            self._metrics.subscriptions.labels(subscription=name).set(1)
            done.append(name)
        return done

    # --- reading -------------------------------------------------------------------------

    async def _read(self, login: Login, transport: str) -> str:
        reader = self._read_sse if transport == "sse" else self._read_poll
        checker = asyncio.create_task(self._check_periodically(login))
        try:
            return await reader(login)
        finally:
            checker.cancel()
            await asyncio.gather(checker, return_exceptions=True)

    async def _read_poll(self, login: Login) -> str:
        call = icws_api.messages(login.session_id, "poll")
        while True:
            # A poll in flight is never cancelled: its answer has already been drained.
            batch = icws_api.interpret_messages(await self._send(call))
            if isinstance(batch, errors.IcwsError):
                raise batch
            self._touch()
            if batch and (reason := await self._deliver(batch)):
                return reason
            if await self._wait_interrupt(self._settings.poll_interval_seconds):
                return self._interrupt_reason()

    async def _read_sse(self, login: Login) -> str:
        call = icws_api.messages(login.session_id, "sse")
        async with self._http.stream(self._base(), call) as stream:
            if isinstance(stream, Answer):
                # The server answered a plain array (no SSE): take it, then keep polling.
                batch = icws_api.interpret_messages(stream)
                if isinstance(batch, errors.IcwsError):
                    raise batch
                if batch and (reason := await self._deliver(batch)):
                    return reason
                return await self._read_poll(login)
            decoder = SseDecoder()
            while True:
                chunk = await self._next_chunk(stream.readany())
                if chunk is None:
                    return self._interrupt_reason()
                if not chunk:
                    raise errors.SessionLost(
                        "SSE stream closed" + (" mid-event" if decoder.pending else "")
                    )
                self._touch()
                batch = [_decode(data) for data in decoder.feed(chunk)]
                if batch and (reason := await self._deliver(batch)):
                    return reason

    async def _next_chunk(self, read: Awaitable[bytes]) -> bytes | None:
        """The next bytes of the stream; None when interrupted; SessionLost when silent."""
        reading = asyncio.ensure_future(read)
        interrupted = asyncio.ensure_future(self._interrupt.wait())
        done, _ = await asyncio.wait(
            {reading, interrupted},
            timeout=self._settings.sse_idle_timeout_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        interrupted.cancel()
        if reading in done:
            return reading.result()
        reading.cancel()
        if interrupted in done:
            return None
        raise errors.SessionLost(
            f"SSE stream silent for {self._settings.sse_idle_timeout_seconds:g}s"
        )

    async def _deliver(self, batch: list[Any]) -> str | None:
        """Hand a batch to the sink; a Down message in it ends the session after delivery."""
        await self._sink.deliver(batch, time.time())
        await self._follow_assistance(batch)
        for raw in batch:
            if isinstance(raw, dict) and raw.get("__type") == CONNECTION_STATE:
                change = messages.parse(raw)
                if isinstance(change, messages.ConnectionChange) and not change.up:
                    self._lost_reason = change.reason
                    if change.should_reconnect is False:
                        return "down_no_reconnect"
                    return "down_message"
        return None

    async def _follow_assistance(self, batch: list[Any]) -> None:
        """Subscribe to the details of each request the list adds; drop those it removes."""
        added, removed = icws_api.assistance_changes(batch)
        login = self._login
        if login is None:
            return
        for ids, subscribe in ((added, True), (removed, False)):
            for assistance_id in ids:
                call = icws_api.assistance_details(
                    login.session_id, assistance_id, subscribe=subscribe
                )
                failure = icws_api.interpret_ok(call, await self._send(call))
                if isinstance(failure, errors.RequestRejected | errors.ResourceGone):
                    # A request that ended meanwhile answers 400/404/410: nothing to follow.
                    self._log.info(
                        "icws.assistance.details_skipped",
                        assistance_id=assistance_id,
                        error=str(failure),
                    )
                elif failure is not None and subscribe:
                    # Anything else (5xx, 401) would leave the request unfollowed for the
                    # whole session: end it, and the next one's snapshots catch up.
                    raise failure

    async def _check_periodically(self, login: Login) -> None:
        call = icws_api.check_connection(login.session_id)
        while not await self._wait_interrupt(self._settings.connection_check_seconds):
            try:
                state = icws_api.interpret_connection(await self._send(call))
            except errors.IcwsError as exc:
                state = exc
            if isinstance(state, errors.IcwsError) or not state.up:
                detail = str(state) if isinstance(state, errors.IcwsError) else state.reason
                self._lost_reason = f"connection check: {detail}"
                self._interrupt_with("check_failed")
                return

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
        try:
            answer = await self._http.send(self._base(), call)
        except errors.ServerUnavailable as exc:
            raise errors.SessionLost(str(exc), status=None) from None
        if answer.status == 401:
            raise errors.SessionLost(f"{call.name}: HTTP 401", status=401)
        return answer

    # --- helpers -------------------------------------------------------------------------

    def _base(self) -> str:
        assert self._hosts.current is not None
        return self._hosts.current

    def _touch(self) -> None:
        self.last_message = time.time()
        self._metrics.last_message.set(self.last_message)

    async def _wait_interrupt(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._interrupt.wait(), seconds)
        except TimeoutError:
            return False
        return True

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
        self._metrics.set_session_state(state)

    @property
    def up(self) -> bool:
        return self._up.is_set()

    async def _close(self, login: Login) -> None:
        """Unsubscribe and log out, bounded; nothing here may hang the shutdown."""
        try:
            async with asyncio.timeout(self._settings.shutdown_timeout_seconds):
                for name in self._bodies:
                    if name not in self.health.unavailable:
                        await self._http.send(
                            self._base(), icws_api.unsubscribe(login.session_id, name)
                        )
                await self._http.send(self._base(), icws_api.logout(login.session_id))
            self._log.info("icws.session.closed", session_id=login.session_id)
        except (TimeoutError, errors.IcwsError) as exc:
            self._log.warning("icws.session.close_failed", error=str(exc) or "timeout")

    async def _logout_quietly(self, login: Login) -> None:
        try:
            async with asyncio.timeout(1.0):
                await self._http.send(self._base(), icws_api.logout(login.session_id))
        except (TimeoutError, errors.IcwsError):
            pass


def _decode(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return {"__type": "invalid", "reason": "SSE data is not JSON"}
