"""Subscriptions: success codes, isDelta:false snapshots, parameters, feature gates, DELETE."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bridge.simulator import Simulator

from .conftest import MakeSim
from .support import login

ALERTING = "interaction-alerting"
HISTORY = "interaction-history"
STATUS = "status/status-messages"
ASSISTANCE = "interactions/agent-assistance"


class TestSuccessCodes:
    """PUT and DELETE answers per subscription."""

    @pytest.mark.parametrize(
        ("name", "status"), [(ALERTING, 204), (HISTORY, 204), (STATUS, 200), (ASSISTANCE, 204)]
    )
    async def test_put_answers_documented_code(
        self, sim: Simulator, http: aiohttp.ClientSession, name: str, status: int
    ) -> None:
        """Each subscription PUT answers its documented code, status-messages being 200."""
        icws = await login(http, sim)
        reply = await icws.subscribe(name)
        assert (reply.status, reply.body) == (status, None)
        assert sim.sessions[icws.session_id].subscriptions == {name: {}}

    @pytest.mark.parametrize("name", [ALERTING, HISTORY, STATUS, ASSISTANCE])
    async def test_delete_cancels(
        self, sim: Simulator, http: aiohttp.ClientSession, name: str
    ) -> None:
        """DELETE answers 204, cancels the subscription and stops its deltas."""
        icws = await login(http, sim)
        await icws.subscribe(name)
        reply = await icws.call("DELETE", f"/messaging/subscriptions/{name}")
        assert reply.status == 204
        assert sim.sessions[icws.session_id].subscriptions == {}

    async def test_deleting_missing_alerting_subscription_is_404(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The alerting page documents 404 when no subscription exists."""
        icws = await login(http, sim)
        reply = await icws.call("DELETE", f"/messaging/subscriptions/{ALERTING}")
        assert reply.status == 404


class TestSnapshots:
    """The isDelta:false message queued by each PUT."""

    async def test_status_snapshot_holds_the_catalogue(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The status snapshot lists every status message in full, with empty change arrays."""
        sim.world.seed_default_catalogue()
        icws = await login(http, sim)
        await icws.subscribe(STATUS)
        [message] = await icws.poll()
        assert message["__type"] == "urn:inin.com:status:statusMessagesMessage"
        assert message["isDelta"] is False
        assert message["statusMessagesAdded"] == list(sim.world.status_messages.values())
        assert message["statusMessagesChanged"] == []
        assert message["statusMessagesRemoved"] == []
        required = {
            "statusId", "messageText", "iconUri", "groupTag", "canHaveDate", "canHaveTime",
            "isDoNotDisturbStatus", "isSelectableStatus", "isPersistentStatus", "isForwardStatus",
            "isAfterCallWorkStatus", "isAcdStatus", "isAllowFollowUpStatus", "systemId",
        }  # fmt: skip
        assert all(set(status) == required for status in message["statusMessagesAdded"])

    async def test_status_list_get_alternative(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """GET status/status-messages answers the catalogue as statusMessageList."""
        sim.world.add_status_message("Available")
        icws = await login(http, sim)
        reply = await icws.call("GET", "/status/status-messages")
        assert reply.body == {"statusMessageList": list(sim.world.status_messages.values())}

    async def test_alerting_snapshot_is_the_users_alerting_set(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The alerting snapshot holds the user's alerting interactions, not other users'."""
        sim.set_password("agent.two", "pw")
        mine = sim.world.start_alerting("agent.one", name="Ann", address="+1555")
        sim.world.start_alerting("agent.two")
        icws = await login(http, sim)
        await icws.subscribe(ALERTING, {})
        [message] = await icws.poll()
        assert message == {
            "__type": "urn:inin.com:interactions:interactionAlertingMessage",
            "isDelta": False,
            "alertingInteractionDetails": [
                {
                    "interactionId": mine,
                    "interactionType": "Call",
                    "name": "Ann",
                    "address": "+1555",
                    "alertType": 5,
                    "alertAction": 1,
                    "autoAnswer": False,
                    "monitoredQueue": {"queueType": 1, "queueName": "agent.one"},
                }
            ],
        }

    async def test_alerting_attributes_follow_attribute_names(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Only the attributes named in attributeNames are sent."""
        sim.world.start_alerting("agent.one", attributes={"A": "1", "B": "2"})
        icws = await login(http, sim)
        await icws.subscribe(ALERTING, {"attributeNames": ["B", "Z"]})
        [message] = await icws.poll()
        assert message["alertingInteractionDetails"][0]["attributes"] == {"B": "2"}

    @pytest.mark.parametrize("body", [{"attributeNames": []}, {"attributeNames": "A"}])
    async def test_invalid_attribute_names_are_400(
        self, sim: Simulator, http: aiohttp.ClientSession, body: dict[str, Any]
    ) -> None:
        """attributeNames, when present, must be a non-empty list of strings."""
        icws = await login(http, sim)
        reply = await icws.subscribe(ALERTING, body)
        assert reply.status == 400
        assert reply.body["propertyName"] == "attributeNames"

    @pytest.mark.parametrize(("limit", "expected"), [(None, 3), (2, 2), (0, 0), (10, 3)])
    async def test_history_snapshot_holds_the_last_n(
        self, sim: Simulator, http: aiohttp.ClientSession, limit: int | None, expected: int
    ) -> None:
        """NumberOfHistoryMessages keeps the most recent N items; omitted means all."""
        ids = [sim.world.add_history("agent.one") for _ in range(3)]
        icws = await login(http, sim)
        body = {} if limit is None else {"numberOfHistoryMessages": limit}
        assert (await icws.subscribe(HISTORY, body)).status == 204
        [message] = await icws.poll()
        assert message["__type"] == "urn:inin.com:interactions:historyMessage"
        assert message["isDelta"] is False
        got = [item["interactionId"] for item in message["interactionHistory"]]
        assert got == ids[len(ids) - expected :]

    async def test_assistance_list_snapshot_holds_open_requests_of_the_user(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The list snapshot names the user's requests that are not completed."""
        open_id = sim.world.create_assistance("agent.one", "1", "help")
        done_id = sim.world.create_assistance("agent.one", "2", "help")
        sim.world.complete_assistance(done_id)
        sim.world.create_assistance("agent.two", "3", "help")
        icws = await login(http, sim)
        await icws.subscribe(ASSISTANCE)
        assert await icws.poll() == [
            {
                "__type": "urn:inin.com:interactions.assistance:assistanceRequestListMessage",
                "isDelta": False,
                "requestsAdded": [open_id],
                "requestsRemoved": [],
            }
        ]

    async def test_assistance_details_snapshot(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The details snapshot holds state, interaction, all messages and participants."""
        assistance_id = sim.world.create_assistance("agent.one", "100", "help me")
        sim.world.accept_assistance(assistance_id, "sup.one", "Sup One")
        icws = await login(http, sim)
        assert (await icws.subscribe(f"{ASSISTANCE}/{assistance_id}")).status == 204
        [message] = await icws.poll()
        assert message["__type"] == (
            "urn:inin.com:interactions.assistance:assistanceRequestDetailsMessage"
        )
        assert message["isDelta"] is False
        assert message["assistanceId"] == assistance_id
        assert (message["interactionId"], message["state"]) == ("100", 1)
        assert [m["text"] for m in message["messagesAdded"]] == ["help me"]
        assert message["messagesAdded"][0]["participantId"] == "agent.one"
        assert message["participantsAdded"] == [
            {"userId": "agent.one", "displayName": "Agent One", "action": 1},
            {"userId": "sup.one", "displayName": "Sup One", "action": 3},
        ]

    async def test_assistance_details_for_unknown_request_is_400(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Watching a request that does not exist answers 400."""
        icws = await login(http, sim)
        reply = await icws.subscribe(f"{ASSISTANCE}/nope")
        assert reply.status == 400

    async def test_put_again_replaces_and_resends_snapshot(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """A second PUT replaces the parameters and queues a fresh snapshot."""
        icws = await login(http, sim)
        await icws.subscribe(ALERTING, {"attributeNames": ["A"]})
        await icws.subscribe(ALERTING, {})
        messages = await icws.poll()
        assert [m["isDelta"] for m in messages] == [False, False]
        assert sim.sessions[icws.session_id].subscriptions == {ALERTING: {}}

    async def test_empty_arrays_can_be_omitted(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """With omit_empty_arrays optional empty arrays vanish; required ones stay."""
        sim = await make_sim(omit_empty_arrays=True)
        icws = await login(http, sim)
        for name in (STATUS, ALERTING, HISTORY, ASSISTANCE):
            await icws.subscribe(name)
        status, alerting, history, assistance = await icws.poll()
        assert set(status) == {"__type", "isDelta"}
        assert alerting["alertingInteractionDetails"] == []
        assert set(history) == {"__type", "isDelta"}
        assert set(assistance) == {"__type", "isDelta"}


class TestFeatureGates:
    """Subscriptions need their documented feature versions."""

    @pytest.mark.parametrize(
        ("name", "features"),
        [
            (ALERTING, {"interactions": 5}),
            (HISTORY, {"interactions": 3}),
            (ASSISTANCE, {"interactions": 8}),
            (STATUS, {"interactions": 9}),
        ],
    )
    async def test_subscription_below_feature_version_is_404(
        self, make_sim: MakeSim, http: aiohttp.ClientSession, name: str, features: dict[str, int]
    ) -> None:
        """A subscription whose feature version is too low answers 404 unsupported."""
        sim = await make_sim(features=features)
        icws = await login(http, sim)
        reply = await icws.subscribe(name)
        assert reply.status == 404
        assert reply.body["errorId"] == "error.request.unsupported"
        assert await icws.poll() == []

    @pytest.mark.parametrize(
        ("name", "features"),
        [
            (ALERTING, {"interactions": 6}),
            (HISTORY, {"interactions": 4}),
            (ASSISTANCE, {"interactions": 9}),
            (STATUS, {"status": 1}),
        ],
    )
    async def test_subscription_at_feature_version_works(
        self, make_sim: MakeSim, http: aiohttp.ClientSession, name: str, features: dict[str, int]
    ) -> None:
        """Exactly the documented feature version is enough."""
        sim = await make_sim(features=features)
        icws = await login(http, sim)
        assert (await icws.subscribe(name)).status in (200, 204)
