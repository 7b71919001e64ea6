"""Fault injection: expiry, Down messages, refused/failed/delayed requests, idle timeouts."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bridge.simulator import Simulator

from .conftest import FakeClock, MakeSim
from .support import LANGUAGE, SseReader, login, login_body, send

DOWN_URN = "urn:inin.com:connection:connectionStateChangeMessage"


class TestExpireSession:
    """faults.expire_session."""

    async def test_expired_session_is_401_everywhere(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """After expiry every request, the status check included, is 401 -2147221499."""
        icws = await login(http, sim)
        other = await login(http, sim)
        sim.faults.expire_session(icws.session_id)
        for method, path in [("GET", "/connection"), ("GET", "/messaging/messages")]:
            reply = await icws.call(method, path)
            assert (reply.status, reply.body["errorCode"]) == (401, -2147221499)
            assert (
                reply.headers["WWW-Authenticate"] == 'ICWS realm="ICWS" location="/ICWS/connection"'
            )
        assert (await other.call("GET", "/connection")).status == 200

    async def test_expire_all(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Without a session id every live session expires."""
        await login(http, sim)
        await login(http, sim)
        sim.faults.expire_session()
        assert sim.sessions == {}

    async def test_unknown_session_id_is_an_error(self, sim: Simulator) -> None:
        """Naming a session that does not exist is a scripting mistake, not a silent no-op."""
        with pytest.raises(KeyError):
            sim.faults.expire_session("42")


class TestSendDown:
    """faults.send_down."""

    @pytest.mark.parametrize("should_reconnect", [True, False, None])
    async def test_poll_gets_down_then_session_is_down(
        self, sim: Simulator, http: aiohttp.ClientSession, should_reconnect: bool | None
    ) -> None:
        """The Down message is delivered on the next poll, after which the session is over."""
        icws = await login(http, sim)
        sim.faults.send_down(should_reconnect=should_reconnect, reason="Switchover")
        assert (
            await icws.call("PUT", "/messaging/subscriptions/interaction-alerting")
        ).status == 401
        [message] = await icws.poll()
        expected = {
            "__type": DOWN_URN,
            "isDelta": False,
            "previousConnectionState": 1,
            "newConnectionState": 2,
            "reason": "Switchover",
        }
        if should_reconnect is not None:
            expected["shouldReconnect"] = should_reconnect
        assert message == expected
        assert icws.session_id not in sim.sessions
        check = await icws.call("GET", "/connection")
        assert check.status == 200
        assert check.body == {
            "connectionState": 2,
            "reason": "Switchover",
            **({} if should_reconnect is None else {"shouldReconnect": should_reconnect}),
        }

    async def test_check_before_delivery_already_says_down(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """While the Down message waits to be fetched the status check reports Down."""
        icws = await login(http, sim)
        sim.faults.send_down()
        reply = await icws.call("GET", "/connection")
        assert (reply.status, reply.body["connectionState"]) == (200, 2)

    async def test_stream_gets_down_then_ends(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """An SSE client receives the Down message, then the stream closes; 401 mode applies."""
        sim = await make_sim(check_after_logout="401")
        icws = await login(http, sim)
        async with http.get(
            f"{icws.base}/messaging/messages", headers={"Accept": "text/event-stream"}
        ) as response:
            reader = SseReader(response)
            sim.faults.send_down()
            assert (await reader.message())["__type"] == DOWN_URN
            with pytest.raises(EOFError):
                await reader.block()
        assert (await icws.call("GET", "/connection")).status == 401


class TestRefuseLogins:
    """faults.refuse_logins and accept_logins."""

    async def test_refuses_count_logins_with_alternates(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The next `count` logins get 503 with alternateHostList; then logins work again."""
        sim.faults.refuse_logins(count=2, alternates=["icserver-b"])
        url = f"{sim.url}/icws/connection"
        replies = [
            await send(http, "POST", url, headers=LANGUAGE, json=login_body()) for _ in range(3)
        ]
        assert [reply.status for reply in replies] == [503, 503, 201]
        assert replies[0].body == {
            "alternateHostList": ["icserver-b"],
            "errorId": "error.server.notAcceptingConnections",
            "message": "This Session Manager is not currently accepting connections.",
        }

    async def test_refuses_until_accept(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Without a count logins are refused until accept_logins()."""
        sim.faults.refuse_logins(error_id="error.server.unavailable")
        url = f"{sim.url}/icws/connection"
        for _ in range(3):
            reply = await send(http, "POST", url, headers=LANGUAGE, json=login_body())
            assert (reply.status, reply.body["errorId"]) == (503, "error.server.unavailable")
        sim.faults.accept_logins()
        await login(http, sim)


class TestFailAndDelay:
    """faults.fail_requests, delay_requests and clear."""

    async def test_fail_matching_requests(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Only matching requests fail, `count` times, with an ICWS 500 body."""
        icws = await login(http, sim)
        sim.faults.fail_requests(2, path_regex="subscriptions", method="PUT")
        assert (await icws.call("GET", "/connection")).status == 200
        first = await icws.subscribe("interaction-alerting")
        second = await icws.subscribe("interaction-alerting")
        third = await icws.subscribe("interaction-alerting")
        assert [first.status, second.status, third.status] == [500, 500, 204]
        assert first.body["errorCode"] == -2147467259

    async def test_gone_subscription(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """A 410 on a subscription path marks it removed from the API."""
        icws = await login(http, sim)
        sim.faults.fail_requests(1, status=410, path_regex="interaction-history$")
        reply = await icws.subscribe("interaction-history")
        assert reply.status == 410
        assert "removed" in reply.body["message"]

    async def test_login_can_fail(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Logins are requests too: a matching failure rule applies to them."""
        sim.faults.fail_requests(1, status=500, path_regex="^/icws/connection$")
        reply = await send(
            http, "POST", f"{sim.url}/icws/connection", headers=LANGUAGE, json=login_body()
        )
        assert reply.status == 500
        await login(http, sim)

    async def test_delay(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """A delayed request is answered no sooner than the delay; the next one is prompt."""
        icws = await login(http, sim)
        sim.faults.delay_requests(0.2, count=1, path_regex="/connection$")
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert (await icws.call("GET", "/connection")).status == 200
        assert loop.time() - started >= 0.2
        assert sim.faults.take_delay("GET", f"/icws/{icws.session_id}/connection") == 0.0

    async def test_clear_removes_request_faults(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """clear() drops every pending failure, delay and refusal."""
        sim.faults.fail_requests(5)
        sim.faults.delay_requests(30)
        sim.faults.refuse_logins()
        sim.faults.clear()
        icws = await login(http, sim)
        assert (await icws.call("GET", "/connection")).status == 200


class TestIdleTimeout:
    """Sessions expire after idle_timeout_seconds without activity."""

    async def test_requests_keep_a_session_alive(
        self, timed_sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
    ) -> None:
        """Any request resets the idle timer; silence past the timeout ends the session."""
        icws = await login(http, timed_sim)
        clock.now = 8
        await icws.poll()
        clock.now = 16
        assert (await icws.call("GET", "/connection")).body == {"connectionState": 1}
        clock.now = 27
        reply = await icws.call("GET", "/connection")
        assert reply.body["connectionState"] == 2
        assert "timed out" in reply.body["reason"]

    async def test_reaper_ends_idle_sessions(
        self, timed_sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
    ) -> None:
        """An idle session disappears even if nobody asks about it."""
        icws = await login(http, timed_sim)
        clock.now = 11
        await timed_sim.wait_for(lambda: icws.session_id not in timed_sim.sessions, timeout=5)

    async def test_open_stream_counts_as_activity(
        self, timed_sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
    ) -> None:
        """While an SSE stream is open the session does not idle out (by default)."""
        icws = await login(http, timed_sim)
        async with http.get(
            f"{icws.base}/messaging/messages", headers={"Accept": "text/event-stream"}
        ):
            await timed_sim.wait_for(lambda: timed_sim.sessions[icws.session_id].stream is not None)
            clock.now = 100
            assert (await icws.call("GET", "/connection")).body == {"connectionState": 1}

    async def test_stream_need_not_count_as_activity(
        self, timed_sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
    ) -> None:
        """With sse_counts_as_activity False an idle session's stream is closed."""
        timed_sim.config.sse_counts_as_activity = False
        icws = await login(http, timed_sim)
        async with http.get(
            f"{icws.base}/messaging/messages", headers={"Accept": "text/event-stream"}
        ) as response:
            await timed_sim.wait_for(lambda: timed_sim.sessions[icws.session_id].stream is not None)
            clock.now = 100
            with pytest.raises(EOFError):
                await SseReader(response).block()
        assert icws.session_id not in timed_sim.sessions


class TestWaitFor:
    """sim.wait_for."""

    async def test_timeout_names_the_condition(self, sim: Simulator) -> None:
        """wait_for raises TimeoutError saying what it waited for."""
        with pytest.raises(TimeoutError, match="two logins"):
            await sim.wait_for(lambda: sim.logins == 2, timeout=0.05, what="two logins")


class TestTwoAddresses:
    """One simulator behind two addresses plays a primary and its switchover partner."""

    async def test_refusal_on_one_address_only(self) -> None:
        """A login on the refusing address gets 503 with alternates; the other address logs in."""
        import aiohttp

        from bridge.simulator import Simulator, SimulatorConfig

        sim = Simulator(SimulatorConfig(users={"u": "p"}))
        await sim.start(host="127.0.0.1", port=0, also=["127.0.0.2"])
        try:
            sim.faults.refuse_logins(alternates=["127.0.0.2"], on_host="127.0.0.1")
            body = {
                "__type": "urn:inin.com:connection:icAuthConnectionRequestSettings",
                "applicationName": "t",
                "userID": "u",
                "password": "p",
            }
            headers = {"Accept-Language": "en-us"}
            async with aiohttp.ClientSession() as http:
                primary = f"http://127.0.0.1:{sim.port}/icws/connection"
                backup = f"http://127.0.0.2:{sim.port}/icws/connection"
                async with http.post(primary, json=body, headers=headers) as refused:
                    assert refused.status == 503
                    assert (await refused.json())["alternateHostList"] == ["127.0.0.2"]
                async with http.post(backup, json=body, headers=headers) as accepted:
                    assert accepted.status == 201
        finally:
            await sim.stop()
