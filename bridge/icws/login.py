"""Finding an ICWS host that lets the bridge in: host rotation, backoff, bad credentials.

Hosts are tried in order: the one that answered last, the configured servers, then every
alternate a server announced (``alternateHostList`` in a 201 or a 503), each rebuilt with the
base URL's scheme and port. One round tries at most ``max_redirects`` hosts; between failed
rounds stamina waits, growing exponentially with jitter up to a cap. Rejected credentials are
reported once and retried slowly, so the process stays up and says why it is not ready. Every
wait ends at once on a stop, and, while no host could even be reached, as soon as a sessionless
probe sees one answer (:mod:`bridge.icws.pacing`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bridge import errors
from bridge.core import icws_api
from bridge.core.icws_api import Login
from bridge.icws.client import Client
from bridge.icws.pacing import Pacing, forever, run_paced
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.settings import IcwsSettings

REASONS: dict[type[errors.IcwsError], str] = {
    errors.AuthenticationFailed: "bad_credentials",
    errors.SessionLost: "session_lost",
    errors.ServerUnavailable: "unavailable",
    errors.ServerError: "server_error",
    errors.ResourceGone: "gone",
    errors.RequestRejected: "rejected",
}


def _unreachable(exc: errors.IcwsError) -> bool:
    # No answer at all (refused, reset, timed out), as opposed to a 503 that answered.
    return isinstance(exc, errors.ServerUnavailable) and exc.status is None


def reason_of(exc: errors.IcwsError) -> str:
    """A short, fixed-vocabulary reason for metrics labels."""
    return REASONS.get(type(exc), "error")


class Hosts:
    """Logs in somewhere, remembering which hosts exist and which one answered."""

    def __init__(
        self,
        settings: IcwsSettings,
        http: Client,
        metrics: Metrics,
        on_rejected: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._http = http
        self._metrics = metrics
        self._on_rejected = on_rejected
        self._log = get_logger("bridge.icws.login")
        self._configured = [str(url).rstrip("/") for url in settings.servers]
        self._announced: list[str] = []
        self._reported_rejection = False
        self._pacing = Pacing()
        self._unreachable = False  # the last round reached no host at all: probe while waiting
        self.current: str | None = None

    async def login(self, stop: asyncio.Event) -> Login | None:
        """Log in, waiting between failed rounds; None once ``stop`` is set."""
        while not stop.is_set():
            try:
                login = await run_paced(self._rounds(), self._pacing, stop.wait, self._answering)
            except errors.IcwsError as exc:
                if not exc.retriable:
                    raise
                continue  # stamina gave up (only in its test mode, which caps attempts)
            if login is not None:
                return login
        return None

    async def _rounds(self) -> Login:
        """Rounds until one logs in, paced by stamina."""
        async for attempt in forever(self._settings, self._pause_after):
            with attempt:
                self._pacing.attempt_starts()
                self._unreachable = False
                return await self._round()
        raise AssertionError("stamina ended without a result")  # pragma: no cover

    def _pause_after(self, exc: Exception) -> bool | float:
        """How long stamina waits after a failed round: slowly after rejected credentials."""
        if isinstance(exc, errors.AuthenticationFailed):
            wait: bool | float = self._settings.bad_credentials_retry_seconds
        elif isinstance(exc, errors.IcwsError) and exc.retriable:
            wait, self._unreachable = True, _unreachable(exc)
        else:
            return False
        self._pacing.pauses()
        return wait

    async def _answering(self) -> None:
        """Return once, after a round that reached no host, a sessionless probe gets an answer."""
        while True:
            await asyncio.sleep(self._settings.probe_interval_seconds)
            if self._unreachable and self._pacing.pausing.is_set() and await self._any_answers():
                return

    async def _any_answers(self) -> bool:
        """Whether any host answers a sessionless request at all (it is up again)."""
        hosts = icws_api.rotation(self._configured, self._announced, self.current)
        for host in hosts[: self._settings.max_redirects]:
            try:
                async with asyncio.timeout(self._settings.probe_interval_seconds * 2):
                    await self._http.send(host, icws_api.features())
            except (TimeoutError, errors.ServerUnavailable):
                continue
            return True
        return False

    async def _round(self) -> Login:
        """Try each host once (bounded); raise the last failure if none accepted."""
        last: errors.IcwsError = errors.ServerUnavailable("no ICWS host configured")
        call = icws_api.login(
            self._settings.application_name,
            self._settings.username,
            self._settings.password.get_secret_value(),
        )
        hosts = icws_api.rotation(self._configured, self._announced, self.current)
        for host in hosts[: self._settings.max_redirects]:
            self._http.new_session(None)
            try:
                result = icws_api.interpret_login(await self._http.send(host, call))
            except errors.ServerUnavailable as exc:
                result = exc
            if isinstance(result, Login):
                return self._accepted(host, result)
            last = result
            self._metrics.logins.labels(result=reason_of(result)).inc()
            self._announce(host, result.alternates)
            if isinstance(result, errors.AuthenticationFailed):
                self._rejected(result)
                raise result
            self._log.warning("icws.login.failed", host=host, error=str(result))
        raise last

    def _accepted(self, host: str, login: Login) -> Login:
        self._metrics.logins.labels(result="ok").inc()
        self._metrics.current_host.info({"host": host})
        self.current = host
        self._http.csrf_token = login.csrf_token  # the jar already holds the new cookie
        self._announce(host, login.alternates)
        self._reported_rejection = False
        return login

    def _announce(self, base: str, alternates: tuple[str, ...]) -> None:
        for host in alternates:
            url = icws_api.host_url(base, host)
            if url not in self._announced and url not in self._configured:
                self._announced.append(url)

    def _rejected(self, exc: errors.AuthenticationFailed) -> None:
        self._on_rejected()
        if not self._reported_rejection:
            self._reported_rejection = True
            self._log.error(
                "icws.login.rejected",
                user=self._settings.username,
                error=str(exc),
                retry_in_seconds=self._settings.bad_credentials_retry_seconds,
            )
