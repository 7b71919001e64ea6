"""Finding an ICWS host that lets the bridge in: host rotation, backoff, refused logins.

Hosts are tried in order: the one that answered last, the configured servers, then every
alternate a server announced (``alternateHostList`` in a 201 or a 503). A direct server's
alternate is rebuilt with its scheme and port; behind a web proxy (a configured server with a
base path, ``https://proxy/api/<icserver>``) it replaces the ``<icserver>`` segment
(:func:`~bridge.core.hosts.host_url`). One round tries at most ``max_redirects`` hosts;
between failed rounds stamina waits, growing exponentially with jitter up to a cap.

How a round ends decides the wait and the session state readiness shows:

- a host that answered a 503, a 3xx (never followed) or a 5xx: the normal backoff, even when
  another host could not be reached (no login storm against the host that said 503);
- rejected credentials (state ``bad_credentials``) or any other refusal (state ``rejected``:
  a licence, permission or feature 4xx, a page that is not ICWS's): one log line naming the
  answer, then a retry every ``bad_credentials_retry_seconds``; the process always stays up;
- no host answered at all: the backoff, cut short as soon as a sessionless probe sees a host
  answer again (:func:`bridge.retries.run_paced`). Every wait also ends at once on a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from pydantic import SecretStr

from bridge import errors, retries
from bridge.core import hosts, icws_api
from bridge.core.accounts import Account
from bridge.core.icws_api import Answer, Call, Login
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.settings import IcwsSettings

REASONS: dict[type[errors.IcwsError], str] = {
    errors.AuthenticationFailed: "bad_credentials",
    errors.LoginRefused: "refused",
    errors.SessionLost: "session_lost",
    errors.ServerUnavailable: "unavailable",
    errors.ServerError: "server_error",
    errors.ResourceGone: "gone",
    errors.RequestRejected: "rejected",
}
BAD_CREDENTIALS = "ICWS rejected the credentials"
# Session state and readiness detail; the state names are metrics.SESSION_STATES'.
OnRefused = Callable[[str, str], None]
# Held around each login round (a fleet bounds the logins in flight); never around the waits.
LoginGate = Callable[[], AbstractAsyncContextManager[object]]


class LoginClient(Protocol):
    """What logging in needs of a client: :class:`~bridge.icws.client.IcwsClient`, or a fake."""

    csrf_token: str | None

    def new_session(self, token: str | None) -> None: ...

    async def send(self, base: str, call: Call) -> Answer: ...


def reason_of(exc: errors.IcwsError) -> str:
    """A short, fixed-vocabulary reason for metrics labels."""
    return REASONS.get(type(exc), "error")


def as_account(settings: IcwsSettings, account: Account | None) -> IcwsSettings:
    """The settings with that account's user and password (a fleet's; None: as configured)."""
    if account is None:
        return settings
    password = SecretStr(account.password.reveal())
    return settings.model_copy(update={"username": account.user_id, "password": password})


def backoff_of(settings: IcwsSettings) -> retries.Backoff:
    """The ICWS adapter's retry schedule (logins, sessions, streams), as the settings say."""
    return retries.Backoff(settings.backoff_initial_seconds, settings.backoff_max_seconds)


def _slow(exc: Exception) -> bool:
    # Refusals a quick retry cannot change: wait as long as after rejected credentials.
    return isinstance(exc, errors.IcwsError) and (
        isinstance(exc, (errors.AuthenticationFailed, errors.LoginRefused)) or not exc.retriable
    )


class Hosts:
    """Logs in somewhere, remembering which hosts exist and which one answered."""

    def __init__(
        self,
        settings: IcwsSettings,
        http: LoginClient,
        metrics: Metrics,
        report: OnRefused,
        gate: LoginGate | None = None,
    ) -> None:
        self._settings = settings
        self._backoff = backoff_of(settings)
        self._gate = gate or contextlib.nullcontext
        self._http = http
        self._metrics = metrics
        self._report = report
        self._log = get_logger("bridge.icws.login")
        self._configured = [str(url).rstrip("/") for url in settings.servers]
        self._announced: list[str] = []
        self._reported: str | None = None  # the refusal last logged: a repeat is not logged
        self._pacing = retries.Pacing()
        self._silent: list[str] = []  # hosts to probe while waiting (see _judged)
        self.current: str | None = None

    async def login(self, stop: asyncio.Event) -> Login | None:
        """Log in, waiting between failed rounds; None once ``stop`` is set. Never raises."""
        while not stop.is_set():
            try:
                login = await retries.run_paced(
                    self._rounds(), self._pacing, stop.wait, self._answering
                )
            except errors.IcwsError:
                continue  # stamina gave up (only in its test mode, which caps attempts)
            if login is not None:
                return login
        return None

    async def _rounds(self) -> Login:
        """Rounds until one logs in, paced by stamina."""
        async for attempt in retries.forever(self._pause_after, self._backoff):
            with attempt:
                self._pacing.attempt_starts()
                self._silent = []
                async with self._gate():
                    return await self._round()
        raise AssertionError("stamina ended without a result")  # pragma: no cover

    def _pause_after(self, exc: Exception) -> bool | float:
        """How long stamina waits after a failed round: slowly after a refusal."""
        if not isinstance(exc, errors.IcwsError):
            return False
        self._pacing.pauses()
        return self._settings.bad_credentials_retry_seconds if _slow(exc) else True

    async def _answering(self) -> None:
        """Return once a host the last round could not reach answers a sessionless probe."""
        while True:
            await asyncio.sleep(self._settings.probe_interval_seconds)
            if self._silent and self._pacing.pausing.is_set() and await self._any_answers():
                return

    async def _any_answers(self) -> bool:
        """Whether any silent host answers a sessionless request at all (it is up again)."""
        for host in self._silent:
            try:
                async with asyncio.timeout(self._settings.probe_interval_seconds * 2):
                    await self._http.send(host, icws_api.features())
            except (TimeoutError, errors.ServerUnavailable):
                continue
            return True
        return False

    async def _round(self) -> Login:
        """Try each host once (bounded); raise what the failures mean if none accepted."""
        call = icws_api.login(
            self._settings.application_name,
            self._settings.username,
            self._settings.password.get_secret_value(),
        )
        failures: list[tuple[str, errors.IcwsError]] = []
        order = hosts.rotation(self._configured, self._announced, self.current)
        for host in order[: self._settings.max_redirects]:
            result = await self._try(host, call)
            if isinstance(result, Login):
                return self._accepted(host, result)
            failures.append((host, result))
            if isinstance(result, errors.AuthenticationFailed):
                break  # the same user everywhere: more attempts could lock the account
        raise self._judged(failures)

    async def _try(self, host: str, call: Call) -> Login | errors.IcwsError:
        self._http.new_session(None)
        try:
            result = icws_api.interpret_login(await self._http.send(host, call))
        except errors.ServerUnavailable as exc:
            result = exc
        if isinstance(result, errors.IcwsError):
            self._metrics.logins.labels(result=reason_of(result)).inc()
            self._announce(host, result.alternates)
            self._log.warning("icws.login.failed", host=host, error=str(result))
        return result

    def _judged(self, failures: list[tuple[str, errors.IcwsError]]) -> errors.IcwsError:
        """The failure that decides the wait, and the state readiness shows meanwhile.

        Rejected credentials win; then any host that answered (a 503, a 3xx, a 5xx) means the
        normal backoff; then hosts that could not be reached mean the backoff cut short by a
        probe of just those hosts; a round of refusals alone means the slow retry.
        """
        if not failures:
            return errors.ServerUnavailable("no ICWS host configured")
        host, last = failures[-1]
        silent = [(h, exc) for h, exc in failures if exc.status is None]
        answered = [exc for _, exc in failures if exc.status is not None and not _slow(exc)]
        if isinstance(last, errors.AuthenticationFailed):
            self._refused("bad_credentials", BAD_CREDENTIALS, host, last)
        elif answered or silent:
            last = answered[-1] if answered else silent[-1][1]
            self._silent = [] if answered else [h for h, _ in silent]
            self._report("connecting", f"logging in: {last}")
        else:
            self._refused("rejected", f"ICWS refused the login: {last}", host, last)
        return last

    def _accepted(self, host: str, login: Login) -> Login:
        self._metrics.logins.labels(result="ok").inc()
        self.current = host
        self._http.csrf_token = login.csrf_token  # the jar already holds the new cookie
        self._announce(host, login.alternates)
        self._reported = None
        return login

    def _announce(self, base: str, alternates: tuple[str, ...]) -> None:
        for host in alternates:
            url = hosts.host_url(base, host)
            if url not in self._announced and url not in self._configured:
                self._announced.append(url)

    def _refused(self, state: str, problem: str, host: str, exc: errors.IcwsError) -> None:
        """Say why the bridge is not ready; log each distinct refusal once, as an error."""
        self._report(state, problem)
        if self._reported == problem:
            return
        self._reported = problem
        retry = self._settings.bad_credentials_retry_seconds
        if state == "bad_credentials":
            user = self._settings.username
            self._log.error(
                "icws.login.rejected", user=user, error=str(exc), retry_in_seconds=retry
            )
        else:
            self._log.error(
                "icws.login.refused",
                host=host,
                status=exc.status,
                error_id=exc.error_id,
                error=str(exc),
                retry_in_seconds=retry,
            )
