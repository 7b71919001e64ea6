"""Connection resources: login, status check, logout and the sessionless feature endpoints."""

from __future__ import annotations

import json
from http.cookies import SimpleCookie

import aiohttp
import pytest

from bridge.simulator import Simulator

from .conftest import MakeSim
from .support import IC_AUTH, LANGUAGE, login, login_body, send


class TestLogin:
    """POST /icws/connection."""

    async def test_created_body_and_headers(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """A login answers 201 with id, token, server facts and the documented headers."""
        sim = await make_sim(alternate_hosts=["icserver-b"], server_name="icserver-a")
        icws = await login(http, sim, include="features,version")
        body, headers = icws.login.body, icws.login.headers
        assert body["sessionId"].isdigit()
        assert body["csrfToken"]
        assert body["alternateHostList"] == ["icserver-b"]
        assert body["userID"] == "agent.one"
        assert body["userDisplayName"] == "Agent One"
        assert body["icServer"] == "icserver-a"
        assert {f["featureId"]: f["version"] for f in body["features"]} == sim.config.features
        assert all(isinstance(value, str) for value in body["version"].values())
        assert headers["ININ-ICWS-Session-ID"] == body["sessionId"]
        assert headers["ININ-ICWS-CSRF-Token"] == body["csrfToken"]
        assert headers["Location"] == f"/icws/{body['sessionId']}/connection"
        assert headers["Content-Type"] == "application/vnd.inin.icws+json; charset=utf-8"
        assert sim.logins == 1
        assert sim.sessions[body["sessionId"]].user == "agent.one"

    async def test_cookie_is_scoped_to_the_session_path(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The `icws_<sessionId>` cookie carries a GUID, Path=/icws/<sessionId> and HttpOnly."""
        icws = await login(http, sim)
        cookie = SimpleCookie(icws.login.headers["Set-Cookie"])
        morsel = cookie[f"icws_{icws.session_id}"]
        assert len(morsel.value) == 36
        assert morsel["path"] == f"/icws/{icws.session_id}"
        assert morsel["httponly"]

    @pytest.mark.parametrize(
        ("include", "present", "absent"),
        [
            ("", set(), {"features", "version"}),
            ("features", {"features"}, {"version"}),
            ("version", {"version"}, {"features"}),
            ("features,version,server-time", {"features", "version", "serverTimeInfo"}, set()),
        ],
    )
    async def test_include_selects_optional_fields(
        self,
        sim: Simulator,
        http: aiohttp.ClientSession,
        include: str,
        present: set[str],
        absent: set[str],
    ) -> None:
        """Only the fields named in `include` are added to the 201 body."""
        icws = await login(http, sim, include=include)
        assert present <= set(icws.login.body)
        assert not absent & set(icws.login.body)

    @pytest.mark.parametrize(
        "content_type", ["application/json", "application/vnd.inin.icws+JSON;charset=utf-8"]
    )
    async def test_accepts_both_media_types(
        self, sim: Simulator, http: aiohttp.ClientSession, content_type: str
    ) -> None:
        """Plain JSON and the ICWS vendor media type both log in."""
        reply = await send(
            http,
            "POST",
            f"{sim.url}/icws/connection",
            headers={**LANGUAGE, "Content-Type": content_type},
            data=json.dumps(login_body()),
        )
        assert reply.status == 201

    @pytest.mark.parametrize(
        ("user", "password"), [("agent.one", "wrong"), ("nobody", "secret"), ("agent.one", "")]
    )
    async def test_bad_credentials_are_400(
        self, sim: Simulator, http: aiohttp.ClientSession, user: str, password: str
    ) -> None:
        """Wrong credentials answer 400 with the verbatim authenticationFailure body, not 401."""
        reply = await send(
            http,
            "POST",
            f"{sim.url}/icws/connection",
            headers=LANGUAGE,
            json=login_body(user, password),
        )
        assert reply.status == 400
        assert reply.body == {
            "errorId": "error.request.connection.authenticationFailure",
            "errorCode": -2147221503,
            "message": "The authentication process failed.",
        }
        assert sim.logins == 0

    async def test_missing_accept_language_is_400(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Accept-Language is required on login."""
        reply = await send(http, "POST", f"{sim.url}/icws/connection", json=login_body())
        assert reply.status == 400
        assert "Accept-Language" in reply.body["message"]

    @pytest.mark.parametrize("missing", ["__type", "applicationName", "userID", "password"])
    async def test_missing_property_is_400(
        self, sim: Simulator, http: aiohttp.ClientSession, missing: str
    ) -> None:
        """A missing required settings property answers a missingPropertyError naming it."""
        body = login_body()
        del body[missing]
        reply = await send(http, "POST", f"{sim.url}/icws/connection", headers=LANGUAGE, json=body)
        assert reply.status == 400
        assert reply.body["__type"] == "urn:inin.com:common:missingPropertyError"
        assert reply.body["propertyName"] == missing

    async def test_other_settings_types_are_rejected(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Only icAuthConnectionRequestSettings is simulated; other types answer 400."""
        body = {**login_body(), "__type": IC_AUTH.replace("icAuth", "singleSignOnToken")}
        reply = await send(http, "POST", f"{sim.url}/icws/connection", headers=LANGUAGE, json=body)
        assert reply.status == 400

    async def test_password_and_features_change_for_next_logins(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """set_password and set_features take effect at the next login."""
        sim.set_password("agent.two", "pw2")
        sim.set_features({"messaging": 1})
        icws = await login(http, sim, user="agent.two", password="pw2")
        assert icws.login.body["features"] == [{"featureId": "messaging", "version": 1}]


class TestCheckAndLogout:
    """GET and DELETE /icws/{sessionId}/connection."""

    async def test_live_session_is_up(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """GET connection reports connectionState 1 for a live session."""
        icws = await login(http, sim)
        reply = await icws.call("GET", "/connection")
        assert (reply.status, reply.body) == (200, {"connectionState": 1})

    @pytest.mark.parametrize("status", [200, 204])
    async def test_logout_answers_configured_status(
        self, make_sim: MakeSim, http: aiohttp.ClientSession, status: int
    ) -> None:
        """DELETE connection ends the session with the configured success code and no body."""
        sim = await make_sim(logout_status=status)
        icws = await login(http, sim)
        reply = await icws.call("DELETE", "/connection")
        assert (reply.status, reply.body) == (status, None)
        assert sim.logouts == 1
        assert icws.session_id not in sim.sessions

    async def test_after_logout_check_says_down(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """With check_after_logout="down" a previous session reports connectionState 2."""
        icws = await login(http, sim)
        await icws.call("DELETE", "/connection")
        reply = await icws.call("GET", "/connection")
        assert reply.status == 200
        assert reply.body["connectionState"] == 2
        assert "shouldReconnect" not in reply.body
        assert (await icws.call("GET", "/messaging/messages")).status == 401

    async def test_after_logout_check_says_401(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """With check_after_logout="401" a previous session is simply unknown."""
        sim = await make_sim(check_after_logout="401")
        icws = await login(http, sim)
        await icws.call("DELETE", "/connection")
        reply = await icws.call("GET", "/connection")
        assert reply.status == 401
        assert reply.body["errorCode"] == -2147221499


class TestFeatures:
    """The sessionless feature endpoints."""

    async def test_feature_list_needs_no_session(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """GET /icws/connection/features lists every feature without a session."""
        reply = await send(http, "GET", f"{sim.url}/icws/connection/features")
        assert reply.status == 200
        assert {f["featureId"]: f["version"] for f in reply.body["featureInfoList"]} == (
            sim.config.features
        )

    async def test_single_feature_and_unknown_feature(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """One feature answers {featureId, version}; an unknown one answers 400."""
        known = await send(http, "GET", f"{sim.url}/icws/connection/features/messaging")
        unknown = await send(http, "GET", f"{sim.url}/icws/connection/features/teleport")
        assert (known.status, known.body) == (200, {"featureId": "messaging", "version": 2})
        assert unknown.status == 400

    async def test_set_features_changes_the_list(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """set_features is visible in the sessionless feature list at once."""
        sim.set_features({"messaging": 1})
        reply = await send(http, "GET", f"{sim.url}/icws/connection/features")
        assert reply.body == {"featureInfoList": [{"featureId": "messaging", "version": 1}]}
