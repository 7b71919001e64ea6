"""World mutations: the delta each one pushes, who receives it, and queue/drain semantics."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import aiohttp
import pytest

from bridge.simulator import Simulator, SimulatorConfig
from bridge.simulator.world import World

from .conftest import MakeSim
from .support import Icws, login

COMPACT = re.compile(r"^\d{8}T\d{6}Z$")
ALERTING_URN = "urn:inin.com:interactions:interactionAlertingMessage"
LIST_URN = "urn:inin.com:interactions.assistance:assistanceRequestListMessage"
DETAILS_URN = "urn:inin.com:interactions.assistance:assistanceRequestDetailsMessage"


async def subscribed(http: aiohttp.ClientSession, sim: Simulator, *names: str) -> Icws:
    """A logged-in agent.one subscribed to `names`, with the snapshots already drained."""
    icws = await login(http, sim)
    for name in names:
        await icws.subscribe(name)
    await icws.poll()
    return icws


class TestStatusDeltas:
    """Status catalogue changes."""

    async def test_add_change_remove(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Added and changed carry the full status, removed only its id; ids ignore case."""
        icws = await subscribed(http, sim, "status/status-messages")
        added = sim.world.add_status_message("Lunch", groupTag="Break")
        changed = sim.world.change_status_message("lunch", messageText="Out for lunch")
        sim.world.remove_status_message("LUNCH")
        add, change, remove = await icws.poll()
        assert (add["isDelta"], add["statusMessagesAdded"]) == (True, [added])
        assert change["statusMessagesChanged"] == [changed]
        assert changed["messageText"] == "Out for lunch"
        assert remove["statusMessagesRemoved"] == ["Lunch"]
        assert remove["statusMessagesAdded"] == [] == remove["statusMessagesChanged"]

    async def test_status_deltas_reach_every_user(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The status catalogue is global: every subscribed session hears of a change."""
        sim.set_password("agent.two", "pw")
        one = await subscribed(http, sim, "status/status-messages")
        two = await login(http, sim, user="agent.two", password="pw")
        await two.subscribe("status/status-messages")
        await two.poll()
        sim.world.add_status_message("Training")
        assert len(await one.poll()) == len(await two.poll()) == 1


class TestAlertingDeltas:
    """Alerting changes."""

    async def test_start_change_stop(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Start sends the full entry, change the required set plus news, stop alertAction 2."""
        icws = await login(http, sim)
        await icws.subscribe("interaction-alerting", {"attributeNames": ["Eic_State"]})
        await icws.poll()
        iid = sim.world.start_alerting("agent.one", attributes={"Eic_State": "A", "X": "1"})
        sim.world.change_alerting("agent.one", iid, attributes={"Eic_State": "O"})
        sim.world.change_alerting("agent.one", iid, attributes={"X": "2"})
        sim.world.change_alerting("agent.one", iid, name="Bob")
        sim.world.stop_alerting("agent.one", iid)
        start, attribute, rename, stop = await icws.poll()
        assert all(m["__type"] == ALERTING_URN and m["isDelta"] for m in (start, rename, stop))
        [entry] = start["alertingInteractionDetails"]
        assert entry["attributes"] == {"Eic_State": "A"}
        assert entry["monitoredQueue"] == {"queueType": 1, "queueName": "agent.one"}
        assert attribute["alertingInteractionDetails"][0]["attributes"] == {"Eic_State": "O"}
        [renamed] = rename["alertingInteractionDetails"]
        assert renamed["name"] == "Bob"
        assert "attributes" not in renamed
        assert "monitoredQueue" not in renamed
        [stopped] = stop["alertingInteractionDetails"]
        assert stopped == {
            "interactionId": iid,
            "interactionType": "Call",
            "name": "Bob",
            "address": "+13175550100",
            "alertType": 5,
            "alertAction": 2,
            "autoAnswer": False,
        }
        assert sim.world.alerting("agent.one") == {}

    async def test_alerting_is_scoped_to_the_user(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Another user's alerting never reaches this session."""
        icws = await subscribed(http, sim, "interaction-alerting")
        sim.world.start_alerting("agent.two")
        assert await icws.poll() == []

    async def test_end_call_stops_alerting_and_adds_history(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Ending an alerting call sends StopAlerting, then a history item for it."""
        icws = await subscribed(http, sim, "interaction-alerting", "interaction-history")
        iid = sim.world.start_alerting("agent.one", name="Ann", address="+1555")
        sim.world.end_call("agent.one", iid)
        _start, stop, history = await icws.poll()
        assert stop["alertingInteractionDetails"][0]["alertAction"] == 2
        [item] = history["interactionHistory"]
        assert (item["interactionId"], item["remoteName"], item["remoteAddress"]) == (
            iid,
            "Ann",
            "+1555",
        )
        assert COMPACT.match(item["initiationTime"])
        assert COMPACT.match(item["terminationTime"])
        assert (item["direction"], item["interactionHistoryStatus"]) == (1, 1)


class TestHistoryDeltas:
    """History changes."""

    async def test_add_and_change(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """A new item is sent whole; a change sends the id and the changed properties."""
        icws = await subscribed(http, sim, "interaction-history")
        start = datetime(2024, 1, 5, 14, 15, 2, tzinfo=UTC)
        iid = sim.world.add_history("agent.one", initiationTime=start, remoteName="Ann")
        sim.world.change_history("agent.one", iid, notes="called back")
        added, changed = await icws.poll()
        [item] = added["interactionHistory"]
        assert item["initiationTime"] == "20240105T141502Z"
        assert item["remoteName"] == "Ann"
        assert changed["interactionHistory"] == [{"interactionId": iid, "notes": "called back"}]
        assert list(sim.world.history("agent.one")) == [iid]


class TestAssistanceDeltas:
    """Assistance changes."""

    async def test_lifecycle(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Create lists the id, accept/message/complete update details, complete delists it."""
        icws = await subscribed(http, sim, "interactions/agent-assistance")
        aid = sim.world.create_assistance("agent.one", "100", "help")
        await icws.subscribe(f"interactions/agent-assistance/{aid}")
        created, _snapshot = await icws.poll()
        assert created == {
            "__type": LIST_URN,
            "isDelta": True,
            "requestsAdded": [aid],
            "requestsRemoved": [],
        }
        sim.world.accept_assistance(aid, "sup.one", "Sup One")
        sim.world.add_assistance_message(aid, "sup.one", "on my way")
        sim.world.complete_assistance(aid)
        accepted, message, delisted, completed = await icws.poll()
        assert accepted["__type"] == DETAILS_URN
        assert accepted["isDelta"] is True
        assert accepted["state"] == 1
        assert accepted["participantsAdded"] == [
            {"userId": "sup.one", "displayName": "Sup One", "action": 3}
        ]
        assert "state" not in message
        [added] = message["messagesAdded"]
        assert (added["participantId"], added["text"]) == ("sup.one", "on my way")
        assert COMPACT.match(added["timeAdded"])
        assert delisted["requestsRemoved"] == [aid]
        assert delisted["requestsAdded"] == []
        assert (completed["assistanceId"], completed["state"]) == (aid, 2)

    async def test_list_is_scoped_to_the_initiator(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Another user's request does not appear in this user's list."""
        icws = await subscribed(http, sim, "interactions/agent-assistance")
        sim.world.create_assistance("agent.two", "100", "help")
        assert await icws.poll() == []


class TestQueue:
    """Drain semantics and the queue cap."""

    async def test_messages_are_delivered_once(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """A poll drains the queue: the next poll is empty, and sent_messages records it."""
        icws = await login(http, sim)
        await icws.subscribe("interaction-alerting")
        first = await icws.poll()
        assert len(first) == 1
        assert await icws.poll() == []
        assert sim.sent_messages == [(icws.session_id, first[0])]

    async def test_queue_cap_drops_oldest(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Beyond max_queued_messages the oldest message is dropped and counted."""
        sim = await make_sim(max_queued_messages=2)
        icws = await subscribed(http, sim, "interaction-history")
        ids = [sim.world.add_history("agent.one") for _ in range(3)]
        messages = await icws.poll()
        assert [m["interactionHistory"][0]["interactionId"] for m in messages] == ids[1:]
        assert sim.dropped_messages == 1


class TestWorldValidation:
    """The world refuses impossible changes."""

    @pytest.mark.parametrize(
        ("call", "error"),
        [
            (lambda w: w.add_status_message("S", colour="red"), TypeError),
            (lambda w: w.change_status_message("missing", messageText="x"), KeyError),
            (lambda w: w.start_alerting("u", "1") and w.start_alerting("u", "1"), ValueError),
            (lambda w: w.stop_alerting("u", "1"), KeyError),
            (lambda w: w.change_history("u", "1", notes="x"), KeyError),
            (lambda w: w.complete_assistance("nope"), KeyError),
        ],
    )
    def test_bad_mutations_raise(self, call: object, error: type[Exception]) -> None:
        """Unknown properties, unknown ids and duplicates raise instead of corrupting truth."""
        world = World(SimulatorConfig())
        with pytest.raises(error):
            call(world)  # type: ignore[operator]

    def test_completing_twice_is_refused(self) -> None:
        """A completed request cannot be completed again."""
        world = World(SimulatorConfig())
        aid = world.create_assistance("u", "1", "help")
        world.complete_assistance(aid)
        with pytest.raises(ValueError, match="already completed"):
            world.complete_assistance(aid)

    def test_default_catalogue_is_idempotent(self) -> None:
        """Seeding twice keeps one copy of each default status."""
        world = World(SimulatorConfig())
        world.seed_default_catalogue()
        world.seed_default_catalogue()
        assert len(world.status_messages) == 6
        assert "Do Not Disturb" in world.status_messages
