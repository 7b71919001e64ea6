"""Login realism: errorCode-only 400s, other 4xx and 3xx at login, the web-proxy mode."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest

from bridge.simulator import Simulator

from .conftest import MakeSim
from .support import EVENT_STREAM, LANGUAGE, PASSWORD, Reply, login, login_body, send, stream

AUTH_FAILED = -2147221503


async def try_login(
    http: aiohttp.ClientSession, sim: Simulator, root: str = "", password: str = PASSWORD
) -> Reply:
    """POST a login below `root` and return whatever answers."""
    url = f"{sim.url}{root}/icws/connection"
    return await send(http, "POST", url, headers=LANGUAGE, json=login_body(password=password))


async def configure(http: aiohttp.ClientSession, sim: Simulator, **knobs: Any) -> Reply:
    """PATCH /_sim/config with these knobs."""
    return await send(http, "PATCH", f"{sim.url}/_sim/config", json=knobs)


class TestBadCredentials:
    """bad_credentials_body: the modern full body or the pre-4.0.6 errorCode-only body."""

    async def test_full_body_by_default(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """By default a wrong password is 400 with errorId and errorCode."""
        reply = await try_login(http, sim, password="wrong")
        assert reply.status == 400
        assert reply.body["errorId"] == "error.request.connection.authenticationFailure"
        assert reply.body["errorCode"] == AUTH_FAILED

    async def test_error_code_only(self, make_sim: MakeSim, http: aiohttp.ClientSession) -> None:
        """With error-code-only the 400 body holds errorCode and message, no errorId."""
        sim = await make_sim(bad_credentials_body="error-code-only")
        reply = await try_login(http, sim, password="wrong")
        assert reply.status == 400
        assert set(reply.body) == {"errorCode", "message"}
        assert reply.body["errorCode"] == AUTH_FAILED
        assert sim.logins == 0


class TestLoginStatus:
    """login_status: a login answered by a 4xx or 3xx whatever it carries."""

    @pytest.mark.parametrize(
        ("status", "error_id"),
        [
            (403, "error.request.connection.noLicense"),
            (404, None),
            (400, "error.request.somethingNobodyKnows"),
        ],
    )
    async def test_other_4xx(
        self, make_sim: MakeSim, http: aiohttp.ClientSession, status: int, error_id: str | None
    ) -> None:
        """The login answers the configured 4xx with an ICWS error body and no session."""
        sim = await make_sim(login_status=status, login_error_id=error_id)
        reply = await try_login(http, sim)
        assert reply.status == status
        assert reply.headers["Content-Type"].startswith("application/vnd.inin.icws+json")
        assert reply.body.get("errorId") == error_id
        assert reply.body["message"]
        assert (sim.logins, sim.counters["loginAttempts"], sim.sessions) == (0, 1, {})

    async def test_redirect_page(self, make_sim: MakeSim, http: aiohttp.ClientSession) -> None:
        """A 3xx login answer is an HTML page with a Location header, not an ICWS body."""
        sim = await make_sim(login_status=302, login_location="https://sso.example/login.html")
        async with http.post(
            f"{sim.url}/icws/connection",
            headers=LANGUAGE,
            json=login_body(),
            allow_redirects=False,
        ) as reply:
            assert reply.status == 302
            assert reply.headers["Location"] == "https://sso.example/login.html"
            assert reply.headers["Content-Type"].startswith("text/html")
        assert sim.logins == 0

    async def test_set_and_cleared_at_runtime(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """PATCH /_sim/config turns a 403 on and off again."""
        assert (await configure(http, sim, login_status=403)).status == 200
        assert (await try_login(http, sim)).status == 403
        assert (await configure(http, sim, login_status=None)).status == 200
        assert (await try_login(http, sim)).status == 201


class TestRuntimeConfigRoute:
    """GET and PATCH /_sim/config."""

    @pytest.mark.parametrize(
        "knobs",
        [
            {"login_status": 200},
            {"heartbeat_status": 500},
            {"bad_credentials_body": "terse"},
            {"proxy_primary": "nowhere"},
            {"users": {"x": "y"}},
            {"no_such_knob": 1},
        ],
    )
    async def test_invalid_change_is_400_and_changes_nothing(
        self, sim: Simulator, http: aiohttp.ClientSession, knobs: dict[str, Any]
    ) -> None:
        """Unknown, non-runtime or invalid values answer 400 and leave the config as it was."""
        before = (await send(http, "GET", f"{sim.url}/_sim/config")).body
        reply = await configure(http, sim, sse_retry_ms=5, **knobs)
        assert reply.status == 400
        assert reply.body["error"]
        assert (await send(http, "GET", f"{sim.url}/_sim/config")).body == before

    async def test_read_has_no_passwords(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """The readable config lists the knobs but never the users and their passwords."""
        body = (await send(http, "GET", f"{sim.url}/_sim/config")).body
        assert body["heartbeat_status"] == 204
        assert "users" not in body
        assert "secret" not in str(body)


PROXY = {"proxy_names": ["ic1", "ic2"]}


class TestProxyMode:
    """proxy_names: every ICWS path below /api/<icserver>/icws/, backups naming the primary."""

    async def test_login_and_session_below_the_prefix(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """A proxied session's paths, cookie and alternates all speak in <icserver> names."""
        sim = await make_sim(**PROXY)
        icws = await login(http, sim, root="/api/ic1")
        body, headers = icws.login.body, icws.login.headers
        sid = body["sessionId"]
        assert (body["icServer"], body["alternateHostList"]) == ("ic1", ["ic2"])
        assert headers["Location"] == f"/api/ic1/icws/{sid}/connection"
        morsel = SimpleCookie(headers["Set-Cookie"])[f"icws_{sid}"]
        assert morsel["path"] == f"/api/ic1/icws/{sid}"
        assert (await icws.subscribe("interaction-alerting")).status == 204
        async with stream(icws) as reader:
            assert (await reader.message())["isDelta"] is False
        assert (await icws.call("GET", "/connection")).body == {"connectionState": 1}
        assert ("POST", "/api/ic1/icws/connection", 201) in sim.requests

    async def test_session_belongs_to_its_icserver(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """A session made through ic1 is unknown under ic2, even with its cookie and token."""
        sim = await make_sim(**PROXY)
        icws = await login(http, sim, root="/api/ic1")
        cookie = {f"icws_{icws.session_id}": sim.sessions[icws.session_id].cookie_value}
        reply = await send(
            http,
            "GET",
            f"{sim.url}/api/ic2/icws/{icws.session_id}/connection",
            headers={"ININ-ICWS-CSRF-Token": icws.csrf_token},
            cookies=cookie,
        )
        assert (reply.status, reply.body["errorCode"]) == (401, -2147221499)

    async def test_backup_name_answers_503_naming_the_primary(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """A login to the backup name is 503 with alternateHostList holding just the primary."""
        sim = await make_sim(**PROXY)
        reply = await try_login(http, sim, root="/api/ic2")
        assert reply.status == 503
        assert reply.body["alternateHostList"] == ["ic1"]
        assert reply.body["errorId"] == "error.server.notAcceptingConnections"

    async def test_switchover_at_runtime(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Making ic2 the primary over HTTP: ic2 accepts logins, ic1 answers 503 naming ic2."""
        sim = await make_sim(**PROXY)
        assert (await configure(http, sim, proxy_primary="ic2")).status == 200
        refused = await try_login(http, sim, root="/api/ic1")
        assert (refused.status, refused.body["alternateHostList"]) == (503, ["ic2"])
        icws = await login(http, sim, root="/api/ic2")
        assert icws.login.body["alternateHostList"] == ["ic1"]

    async def test_refusal_fault_by_name(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """refuse_logins(on_host=<icserver>) limits the refusal to that proxied name."""
        sim = await make_sim(proxy_names=["ic1"])
        sim.faults.refuse_logins(count=1, alternates=["ic9"], on_host="ic1")
        refused = await try_login(http, sim, root="/api/ic1")
        assert (refused.status, refused.body["alternateHostList"]) == (503, ["ic9"])
        assert (await try_login(http, sim, root="/api/ic1")).status == 201

    @pytest.mark.parametrize("path", ["/icws/connection", "/api/ic3/icws/connection"])
    async def test_other_paths_are_a_plain_404(
        self, make_sim: MakeSim, http: aiohttp.ClientSession, path: str
    ) -> None:
        """Direct paths and unknown names get a web server's 404, not an ICWS error."""
        sim = await make_sim(**PROXY)
        async with http.post(f"{sim.url}{path}", headers=LANGUAGE, json=login_body()) as reply:
            assert reply.status == 404
            assert not reply.headers["Content-Type"].startswith("application/vnd.inin")

    async def test_direct_mode_has_no_proxy_paths(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Without proxy_names the /api/<name>/icws paths do not exist."""
        async with http.get(f"{sim.url}/api/ic1/icws/connection/version") as reply:
            assert reply.status == 404
            assert not reply.headers["Content-Type"].startswith("application/vnd.inin")
        icws = await login(http, sim)
        async with http.get(
            f"{sim.url}/api/ic1/icws/{icws.session_id}/messaging/messages", headers=EVENT_STREAM
        ) as reply:
            assert reply.status == 404
