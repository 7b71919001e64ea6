"""Protocol realism: opaque assistance ids, subscription-state messages, the heartbeat."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from bridge.simulator import Simulator

from .conftest import FakeClock, MakeSim
from .support import Icws, login, send, types

LIST = "interactions/agent-assistance"
STATE_URN = "urn:inin.com:messaging:subscriptionStateMessage"
ASSISTANCE_STATE_URN = (
    "urn:inin.com:interactions.assistance:assistanceRequestSubscriptionStateMessage"
)
RESERVED = set("{}|: /")


def encoded(assistance_id: str) -> str:
    """The id as encodeURIComponent writes it into a path (every reserved character escaped)."""
    return quote(assistance_id, safe="")


class TestOpaqueAssistanceIds:
    """opaque_assistance_ids: ids full of reserved characters, percent-encoded in paths."""

    async def test_new_ids_hold_reserved_characters(self, make_sim: MakeSim) -> None:
        """Every new id holds braces, `|`, `:`, a space and a slash, and ids stay unique."""
        sim = await make_sim(opaque_assistance_ids=True)
        ids = [sim.world.create_assistance("agent.one", "100", "help") for _ in range(3)]
        assert all(set(assistance_id) >= RESERVED for assistance_id in ids)
        assert len(set(ids)) == 3

    async def test_subscribe_update_and_complete_through_encoded_paths(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Details PUT, update POST and complete DELETE all reach the request by its encoded id."""
        sim = await make_sim(opaque_assistance_ids=True)
        sim.world.start_alerting("agent.one", "100")
        aid = sim.world.create_assistance("agent.one", "100", "help")
        icws = await login(http, sim)
        path = f"/messaging/subscriptions/{LIST}/{encoded(aid)}"
        assert "%2F" in path
        assert (await icws.call("PUT", path, encoded=True)).status == 204
        [snapshot] = await icws.poll()
        assert (snapshot["assistanceId"], snapshot["isDelta"]) == (aid, False)
        request_path = f"/interactions/agent-assistance/{encoded(aid)}"
        update = await icws.call("POST", request_path, encoded=True, json={"text": "more"})
        assert update.status == 204
        [delta] = await icws.poll()
        assert (delta["assistanceId"], delta["messagesAdded"][0]["text"]) == (aid, "more")
        assert (await icws.call("DELETE", request_path, encoded=True)).status == 204
        assert sim.world.assistance_request(aid)["state"] == 2

    async def test_create_answers_the_opaque_id(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """POST .../{interactionId}/agent-assistance answers the new opaque id in its body."""
        sim = await make_sim(opaque_assistance_ids=True)
        sim.world.start_alerting("agent.one", "100")
        icws = await login(http, sim)
        reply = await icws.call("POST", "/interactions/100/agent-assistance", json={"text": "?"})
        assert reply.status == 201
        assert set(reply.body["assistanceId"]) >= RESERVED

    async def test_control_api_takes_encoded_ids(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """The /_sim/assistance/{aid}/... routes accept the id percent-encoded."""
        sim = await make_sim(opaque_assistance_ids=True)
        aid = sim.world.create_assistance("agent.one", "100", "help")
        url = f"{sim.url}/_sim/assistance/{encoded(aid)}/accept"
        body = {"supervisorUserId": "sup", "displayName": "Sup"}
        reply = await send(http, "POST", URL(url, encoded=True), json=body)
        assert reply.status == 204
        assert sim.world.assistance_request(aid)["state"] == 1

    async def test_guid_ids_by_default(self, sim: Simulator) -> None:
        """Without the option ids stay GUID-like, with no reserved characters."""
        aid = sim.world.create_assistance("agent.one", "100", "help")
        assert not RESERVED & set(aid)


async def subscribed(sim: Simulator, http: aiohttp.ClientSession, name: str) -> Icws:
    """agent.one logged in with one subscription, its snapshot drained."""
    icws = await login(http, sim)
    assert (await icws.subscribe(name)).status in (200, 204)
    assert len(await icws.poll()) == 1
    return icws


class TestSubscriptionState:
    """faults.fail_subscription: Suspended or Faulted, then silence until a new PUT."""

    @pytest.mark.parametrize("state", [2, 3])
    @pytest.mark.parametrize(
        "name", ["interaction-alerting", "interaction-history", "status/status-messages"]
    )
    async def test_state_message_then_no_deltas(
        self, sim: Simulator, http: aiohttp.ClientSession, name: str, state: int
    ) -> None:
        """The state message names the subscription; later changes send it nothing."""
        icws = await subscribed(sim, http, name)
        sim.faults.fail_subscription(name, state=state, message="Server busy")
        [message] = await icws.poll()
        assert message["__type"] == STATE_URN
        assert (message["subscriptionId"], message["state"]) == (name, state)
        assert message["error"]["message"] == "Server busy"
        assert message["error"]["errorId"]
        sim.world.start_alerting("agent.one")
        sim.world.add_history("agent.one")
        sim.world.add_status_message("Gym")
        assert await icws.poll() == []

    async def test_new_put_sends_a_snapshot_and_deltas_again(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Re-creating the subscription brings a full snapshot, then deltas as usual."""
        icws = await subscribed(sim, http, "interaction-alerting")
        sim.faults.fail_subscription("interaction-alerting", state=3)
        missed = sim.world.start_alerting("agent.one")
        await icws.poll()
        await icws.subscribe("interaction-alerting")
        [snapshot] = await icws.poll()
        assert snapshot["isDelta"] is False
        assert [d["interactionId"] for d in snapshot["alertingInteractionDetails"]] == [missed]
        sim.world.start_alerting("agent.one")
        assert types(await icws.poll()) == ["interactionAlertingMessage"]

    async def test_assistance_subscriptions_use_their_own_type(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The list and details subscriptions get assistanceRequestSubscriptionStateMessage."""
        aid = sim.world.create_assistance("agent.one", "100", "help")
        icws = await subscribed(sim, http, LIST)
        await icws.subscribe(f"{LIST}/{aid}")
        await icws.poll()
        sim.faults.fail_subscription(LIST)
        sim.faults.fail_subscription(f"{LIST}/{aid}", state=3)
        listed, details = await icws.poll()
        assert {listed["__type"], details["__type"]} == {ASSISTANCE_STATE_URN}
        assert (listed["state"], details["subscriptionId"]) == (2, f"{LIST}/{aid}")
        sim.world.add_assistance_message(aid, "agent.one", "still there?")
        assert await icws.poll() == []

    async def test_only_the_named_session(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """With session_id only that session's subscription is suspended."""
        first = await subscribed(sim, http, "interaction-alerting")
        second = await subscribed(sim, http, "interaction-alerting")
        sim.faults.fail_subscription("interaction-alerting", session_id=first.session_id)
        sim.world.start_alerting("agent.one")
        assert types(await first.poll()) == ["subscriptionStateMessage"]
        assert types(await second.poll()) == ["interactionAlertingMessage"]

    @pytest.mark.parametrize(
        ("body", "status"),
        [
            ({"subscription": "interaction-alerting", "state": 3}, 204),
            ({"subscription": "interaction-alerting", "state": 1}, 400),
            ({"subscription": "interaction-history"}, 404),
        ],
    )
    async def test_over_http(
        self, sim: Simulator, http: aiohttp.ClientSession, body: dict[str, object], status: int
    ) -> None:
        """The control API arms it; a state other than 2/3 is 400, an absent subscription 404."""
        icws = await subscribed(sim, http, "interaction-alerting")
        url = f"{sim.url}/_sim/faults/fail_subscription"
        assert (await send(http, "POST", url, json=body)).status == status
        expected = ["subscriptionStateMessage"] if status == 204 else []
        assert types(await icws.poll()) == expected


class TestHeartbeat:
    """POST .../messaging/heartbeat and heartbeat_status."""

    @pytest.mark.parametrize("status", [200, 204])
    async def test_success_codes(
        self, make_sim: MakeSim, http: aiohttp.ClientSession, status: int
    ) -> None:
        """The heartbeat answers the configured 2xx with no JSON body."""
        sim = await make_sim(heartbeat_status=status)
        icws = await login(http, sim)
        reply = await icws.call("POST", "/messaging/heartbeat")
        assert (reply.status, reply.body) == (status, None)

    async def test_needs_the_csrf_token(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Like every call but the message read, the heartbeat needs the CSRF header."""
        icws = await login(http, sim)
        reply = await icws.call("POST", "/messaging/heartbeat", csrf=False)
        assert (reply.status, reply.body["errorCode"]) == (401, 2)

    @pytest.mark.parametrize(
        ("status", "error_id"), [(404, "error.request.unsupported"), (410, "error.request.gone")]
    )
    async def test_unsupported(
        self, sim: Simulator, http: aiohttp.ClientSession, status: int, error_id: str
    ) -> None:
        """Set at runtime to 404 or 410, the heartbeat answers an ICWS error as if absent."""
        icws = await login(http, sim)
        url = f"{sim.url}/_sim/config"
        assert (await send(http, "PATCH", url, json={"heartbeat_status": status})).status == 200
        reply = await icws.call("POST", "/messaging/heartbeat")
        assert (reply.status, reply.body["errorId"]) == (status, error_id)
        assert sim.counters["heartbeats"] == 1

    async def test_counts_as_activity(
        self, timed_sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
    ) -> None:
        """Heartbeats alone keep a session alive past the idle timeout."""
        icws = await login(http, timed_sim)
        for now in (8, 16, 24):
            clock.now = now
            assert (await icws.call("POST", "/messaging/heartbeat")).status == 204
        clock.now = 32
        assert (await icws.call("GET", "/connection")).body == {"connectionState": 1}

    async def test_unsupported_heartbeat_is_no_activity(
        self, timed_sim: Simulator, http: aiohttp.ClientSession, clock: FakeClock
    ) -> None:
        """A heartbeat answered 404 does not hold off the idle timeout."""
        timed_sim.configure(heartbeat_status=404)
        icws = await login(http, timed_sim)
        clock.now = 8
        assert (await icws.call("POST", "/messaging/heartbeat")).status == 404
        clock.now = 12
        assert (await icws.call("GET", "/connection")).body["connectionState"] == 2
