"""Finding a host that lets the bridge in (:class:`~bridge.icws.login.Hosts`), on virtual time.

Each scenario runs on an event loop whose clock jumps to the next timer whenever nothing is
ready, so minutes of stamina backoff and probing pass in milliseconds and every wait is exact:
the counts below are what the pacing rules allow, not what a loaded machine happened to do.
A scripted fake client plays the hosts. The redirect test talks HTTP to a local aiohttp server.
"""

from __future__ import annotations

import asyncio
import io
import json
import selectors
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import stamina
from aiohttp import web
from prometheus_client import CollectorRegistry

from bridge import errors, metrics
from bridge.core import icws_api
from bridge.core.icws_api import Answer, Call, Login
from bridge.icws.client import IcwsClient
from bridge.icws.login import BAD_CREDENTIALS, Hosts
from bridge.settings import IcwsSettings

T = TypeVar("T")
PROXY_IC1 = "https://proxy/api/ic1"
PROXY_IC2 = "https://proxy/api/ic2"
NOT_ACCEPTING = {
    "alternateHostList": ["ic2"],
    "errorId": "error.server.notAcceptingConnections",
    "message": "This Session Manager is not currently accepting connections.",
}
LICENCE = {"errorId": "error.request.accessDenied.license", "message": "No licence"}
REDIRECT_PAGE = '<html><body><a href="/login.html">Sign in</a></body></html>'


class _TimeTravel(selectors.DefaultSelector):
    """A selector that, when nothing is ready, moves the clock to the next timer instead."""

    now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if not ready:
            if timeout is None:
                raise RuntimeError("virtual time: nothing scheduled and nothing ready")
            self.now += timeout
        return ready


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: ``time()`` only moves when every task waits."""

    def __init__(self) -> None:
        self._travel = _TimeTravel()
        super().__init__(self._travel)

    def time(self) -> float:
        return self._travel.now


def on_virtual_time(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``scenario`` to its end on a fresh virtual-time loop, stamina pacing for real."""
    stamina.set_testing(False)
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(scenario())
    finally:
        loop.close()


Script = Callable[[float], Answer | None]  # virtual time -> the answer, None: unreachable


def refuses(body: Any, status: int = 503) -> Script:
    """A host that always answers ``status`` with ``body``."""
    return lambda _now: Answer(status, {}, body)


def unreachable() -> Script:
    """A host that never answers (connection refused, timeout)."""
    return lambda _now: None


def accepts(session_id: str = "1") -> Answer:
    """A 201 login answer with a session and a token."""
    return Answer(201, {}, {"sessionId": session_id, "csrfToken": "t0k3n", "features": []})


def from_time(when: float, before: Script, after: Script) -> Script:
    """A host that behaves like ``before`` until virtual time ``when``, then like ``after``."""
    return lambda now: (before if now < when else after)(now)


@dataclass
class ScriptedHosts:
    """A fake login client: each base URL answers from its script; every call is recorded."""

    scripts: dict[str, Script]
    calls: list[tuple[float, str, str]] = field(default_factory=list)
    csrf_token: str | None = None

    def new_session(self, token: str | None) -> None:
        self.csrf_token = token

    async def send(self, base: str, call: Call) -> Answer:
        now = asyncio.get_running_loop().time()
        self.calls.append((now, base, call.name))
        answer = self.scripts.get(base, unreachable())(now)
        if answer is None:
            raise errors.ServerUnavailable(f"{call.name}: {base} unreachable (fake)")
        if call.name == "features":
            return Answer(200, {}, [])
        return answer

    def count(self, name: str, base: str | None = None) -> int:
        """How many ``name`` calls were sent (to ``base``, or to any host)."""
        return sum(1 for _, b, n in self.calls if n == name and base in (None, b))


@dataclass
class Outcome:
    """How a login went: the session (or None at the stop), when, and the states reported."""

    login: Login | None
    at: float
    states: list[tuple[str, str]]


def settings(*servers: str, **values: Any) -> IcwsSettings:
    """ICWS settings with the production pacing defaults unless ``values`` say otherwise."""
    return IcwsSettings(servers=list(servers), username="agent.one", password="pw", **values)


def log_in(
    client: ScriptedHosts, icws: IcwsSettings, stop_at: float
) -> Callable[[], Coroutine[Any, Any, Outcome]]:
    """A scenario: Hosts.login until it returns or the stop set at ``stop_at`` ends it."""

    async def scenario() -> Outcome:
        states: list[tuple[str, str]] = []
        hosts = Hosts(
            icws, client, metrics.create(CollectorRegistry()), lambda *s: states.append(s)
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        timer = loop.call_at(stop_at, stop.set)
        login = await hosts.login(stop)
        timer.cancel()
        return Outcome(login, loop.time(), states)

    return scenario


def most_rounds(seconds: float, initial: float, cap: float) -> int:
    """Login rounds an exponential backoff (doubling from ``initial``, capped) fits in a span.

    Jitter only lengthens stamina's waits, so the shortest waits give the upper bound.
    """
    rounds, elapsed, wait = 1, 0.0, initial
    while elapsed + min(wait, cap) <= seconds:
        elapsed += min(wait, cap)
        rounds, wait = rounds + 1, wait * 2
    return rounds


class TestNoLoginStorm:
    """A host that answers 503 is retried at the backoff's pace, whatever its alternates do."""

    def test_503_and_an_unreachable_alternate_behind_a_proxy(self) -> None:
        """ic1 says 503 naming ic2, ic2 cannot be reached: a minute holds backoff-bound logins."""
        client = ScriptedHosts({PROXY_IC1: refuses(NOT_ACCEPTING), PROXY_IC2: unreachable()})
        icws = settings(PROXY_IC1)
        outcome = on_virtual_time(log_in(client, icws, stop_at=60.0))
        bound = most_rounds(60.0, icws.backoff_initial_seconds, icws.backoff_max_seconds)
        assert outcome.login is None
        assert 4 <= client.count("login", PROXY_IC1) <= bound
        # The first round knows no alternate yet: ic1's 503 names ic2 for the next rounds.
        assert client.count("login", PROXY_IC2) == client.count("login", PROXY_IC1) - 1
        assert client.count("features") == 0
        assert {base for _, base, _ in client.calls} == {PROXY_IC1, PROXY_IC2}
        assert outcome.states[-1][0] == "connecting"
        assert "error.server.notAcceptingConnections" in outcome.states[-1][1]

    def test_a_direct_server_and_an_alternate_that_does_not_resolve(self) -> None:
        """Direct addressing: the alternate keeps the scheme and port; the same bound holds."""
        primary, backup = "http://ic-a:8018", "http://ic2:8018"
        client = ScriptedHosts({primary: refuses(NOT_ACCEPTING)})
        icws = settings(primary, backoff_initial_seconds=1.0, backoff_max_seconds=10.0)
        on_virtual_time(log_in(client, icws, stop_at=120.0))
        assert client.count("login", backup) >= 1
        assert client.count("login", primary) <= most_rounds(120.0, 1.0, 10.0)
        assert client.count("features") == 0


class TestProbes:
    """Only hosts that could not be reached are probed, and only their answer ends the wait."""

    def test_the_server_back_is_logged_into_at_once(self) -> None:
        """No host answered; a probe sees it back and the login follows within a probe."""
        host = "http://ic-a:8018"
        client = ScriptedHosts({host: from_time(10.0, unreachable(), lambda _: accepts())})
        icws = settings(
            host,
            backoff_initial_seconds=8.0,
            backoff_max_seconds=8.0,
            probe_interval_seconds=0.2,
        )
        outcome = on_virtual_time(log_in(client, icws, stop_at=100.0))
        assert outcome.login is not None
        assert 10.0 <= outcome.at <= 10.0 + 0.2 * 2

    def test_a_refusing_host_is_not_probed_and_does_not_end_the_wait(self) -> None:
        """ic-a unreachable, ic-b refuses: probes go to ic-a only; ic-b is asked at backoff pace."""
        down, refusing = "http://ic-a:8018", "http://ic-b:8018"
        client = ScriptedHosts(
            {
                down: from_time(30.0, unreachable(), lambda _: accepts()),
                refusing: refuses(LICENCE, 403),
            }
        )
        icws = settings(down, refusing, probe_interval_seconds=0.5)
        outcome = on_virtual_time(log_in(client, icws, stop_at=100.0))
        assert outcome.login is not None
        assert 30.0 <= outcome.at <= 31.0
        assert client.count("features", refusing) == 0
        assert client.count("features", down) >= 1
        assert client.count("login", refusing) <= most_rounds(30.0, 0.5, 30.0)


class TestRefusals:
    """Refused logins never end the login loop: a state, one log line, a slow retry."""

    def test_a_licence_refusal_is_retried_slowly_until_it_heals(
        self, log_lines: io.StringIO
    ) -> None:
        """403 with an errorId: state rejected naming it, logged once, retried every 300 s."""
        host = "http://ic-a:8018"
        client = ScriptedHosts({host: from_time(500.0, refuses(LICENCE, 403), lambda _: accepts())})
        outcome = on_virtual_time(log_in(client, settings(host), stop_at=2000.0))
        assert outcome.login is not None
        assert [round(t) for t, _, n in client.calls if n == "login"] == [0, 300, 600]
        detail = (
            "ICWS refused the login: login: HTTP 403 error.request.accessDenied.license: No licence"
        )
        assert outcome.states == [("rejected", detail), ("rejected", detail)]
        lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
        refused = [line for line in lines if line["event"] == "icws.login.refused"]
        assert len(refused) == 1
        assert (refused[0]["status"], refused[0]["error_id"], refused[0]["host"]) == (
            403,
            "error.request.accessDenied.license",
            host,
        )

    def test_bad_credentials_without_error_id_stop_the_round(self) -> None:
        """Only errorCode -2147221503: bad_credentials, and no second host is tried with them."""
        first, second = "http://ic-a:8018", "http://ic-b:8018"
        client = ScriptedHosts(
            {first: refuses({"errorCode": -2147221503}, 400), second: lambda _: accepts()}
        )
        outcome = on_virtual_time(log_in(client, settings(first, second), stop_at=100.0))
        assert outcome.login is None
        assert (client.count("login", first), client.count("login", second)) == (1, 0)
        assert outcome.states == [("bad_credentials", BAD_CREDENTIALS)]

    def test_a_redirect_is_a_host_that_does_not_take_the_login(self) -> None:
        """A 302 page sends the login to the next host at once, like a 503 would."""
        first, second = "http://ic-a:8018", "http://ic-b:8018"
        client = ScriptedHosts({first: refuses(REDIRECT_PAGE, 302), second: lambda _: accepts("2")})
        outcome = on_virtual_time(log_in(client, settings(first, second), stop_at=100.0))
        assert outcome.login is not None
        assert (outcome.login.session_id, outcome.at) == ("2", 0.0)

    def test_a_redirect_alone_waits_the_normal_backoff(self) -> None:
        """Only 302s until t=5: logged in soon after, not after the slow retry of refusals."""
        host = "http://ic-a:8018"
        client = ScriptedHosts(
            {host: from_time(5.0, refuses(REDIRECT_PAGE, 302), lambda _: accepts())}
        )
        icws = settings(host, backoff_initial_seconds=0.5, backoff_max_seconds=4.0)
        outcome = on_virtual_time(log_in(client, icws, stop_at=1000.0))
        assert outcome.login is not None
        assert outcome.at < 5.0 + 4.0 + 0.5  # one capped wait (plus jitter) past t=5
        assert outcome.states[0][0] == "connecting"


class TestRedirectsAreNotFollowed:
    """The aiohttp client hands a 3xx back as the answer; it never fetches the Location."""

    async def test_a_302_at_login_is_answered_not_followed(self) -> None:
        """POST /icws/connection answered 302: the Answer is the 302, the page is never fetched."""
        fetched: list[str] = []

        async def redirect(_request: web.Request) -> web.Response:
            return web.Response(
                status=302,
                text=REDIRECT_PAGE,
                content_type="text/html",
                headers={"Location": "/sso"},
            )

        async def sso(request: web.Request) -> web.Response:
            fetched.append(request.path)
            return web.Response(text="sign in here")

        app = web.Application()
        app.router.add_post("/api/ic1/icws/connection", redirect)
        app.router.add_route("*", "/sso", sso)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            base = f"http://127.0.0.1:{port}/api/ic1"
            icws = settings(base)
            async with IcwsClient(icws, metrics.create(CollectorRegistry())) as client:
                answer = await client.send(base, icws_api.login("app", "agent.one", "pw"))
        finally:
            await runner.cleanup()
        assert answer.status == 302
        assert fetched == []
        assert isinstance(icws_api.interpret_login(answer), errors.ServerUnavailable)
