"""Session authentication: cookie and CSRF checks, and ICWS error bodies for bad routes."""

from __future__ import annotations

import aiohttp
import pytest

from bridge.simulator import Simulator

from .support import CSRF, login, send

WWW_AUTHENTICATE = 'ICWS realm="ICWS" location="/ICWS/connection"'


class TestCookieAndCsrf:
    """Which credentials each session call needs, and the 401 bodies when they are wrong."""

    async def test_missing_cookie_is_401_code_1(self, sim: Simulator) -> None:
        """Without the session cookie a request is 401 errorCode 1 with the ICWS challenge."""
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            icws = await login(http, sim)
        async with aiohttp.ClientSession() as bare:
            reply = await send(
                bare, "GET", f"{icws.base}/connection", headers={CSRF: icws.csrf_token}
            )
        assert reply.status == 401
        assert reply.body == {"errorCode": 1, "message": "This request requires a session ID!"}
        assert reply.headers["WWW-Authenticate"] == WWW_AUTHENTICATE

    async def test_wrong_session_id_in_path_is_401_code_1(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """A wrong session id means the path-scoped cookie is not sent: errorCode 1."""
        icws = await login(http, sim)
        reply = await send(
            http, "GET", f"{sim.url}/icws/123/connection", headers={CSRF: icws.csrf_token}
        )
        assert (reply.status, reply.body["errorCode"]) == (401, 1)

    async def test_wrong_cookie_value_is_invalid_session(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """A cookie that does not belong to the session is 401 -2147221499."""
        icws = await login(http, sim)
        async with aiohttp.ClientSession() as bare:
            reply = await send(
                bare,
                "GET",
                f"{icws.base}/connection",
                headers={CSRF: icws.csrf_token, "Cookie": f"icws_{icws.session_id}=forged"},
            )
        assert reply.status == 401
        assert reply.body["errorId"] == "error.request.connection.authenticationFailure"
        assert reply.body["errorCode"] == -2147221499

    @pytest.mark.parametrize("token", [None, "not-the-token"])
    async def test_missing_or_wrong_csrf_is_401_code_2(
        self, sim: Simulator, http: aiohttp.ClientSession, token: str | None
    ) -> None:
        """Every session call except the message poll needs the matching CSRF header."""
        icws = await login(http, sim)
        headers = {} if token is None else {CSRF: token}
        reply = await icws.call("GET", "/connection", csrf=False, headers=headers)
        assert reply.status == 401
        assert reply.body["errorCode"] == 2
        assert reply.headers["WWW-Authenticate"] == WWW_AUTHENTICATE

    async def test_messages_need_only_the_cookie(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The message poll works without the CSRF header and with it."""
        icws = await login(http, sim)
        without = await icws.call("GET", "/messaging/messages", csrf=False)
        with_token = await icws.call("GET", "/messaging/messages")
        assert (without.status, without.body) == (200, [])
        assert (with_token.status, with_token.body) == (200, [])

    async def test_messages_still_need_the_cookie(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The CSRF exemption does not extend to the cookie."""
        icws = await login(http, sim)
        async with aiohttp.ClientSession() as bare:
            reply = await send(bare, "GET", f"{icws.base}/messaging/messages")
        assert (reply.status, reply.body["errorCode"]) == (401, 1)


class TestRouting:
    """Unknown routes and methods answer ICWS errors; answered requests are recorded."""

    async def test_unknown_route_is_icws_404(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """An unknown /icws route answers 404 with an ICWS error body."""
        icws = await login(http, sim)
        reply = await icws.call("GET", "/no/such/thing")
        assert reply.status == 404
        assert reply.body["errorId"] == "error.request.unsupported"
        assert reply.headers["Content-Type"].startswith("application/vnd.inin.icws+json")

    async def test_wrong_method_is_405(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """A known route with the wrong method answers 405 httpMethodNotAllowed."""
        icws = await login(http, sim)
        reply = await icws.call("PATCH", "/connection")
        assert reply.status == 405
        assert reply.body["errorId"] == "error.request.accessDenied.httpMethodNotAllowed"
        assert "DELETE" in reply.headers["Allow"]

    async def test_sessionless_get_connection_does_not_exist(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """/icws/connection only takes POST."""
        reply = await send(http, "GET", f"{sim.url}/icws/connection")
        assert reply.status == 405

    async def test_requests_are_recorded(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Every answered /icws request is recorded as (method, path, status)."""
        icws = await login(http, sim)
        await icws.call("GET", "/connection", csrf=False)
        assert sim.requests == [
            ("POST", "/icws/connection", 201),
            ("GET", f"/icws/{icws.session_id}/connection", 401),
        ]
