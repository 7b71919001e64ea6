"""A contact centre over real HTTP: a thousand users, each session sees only its own user's world.

ICWS scopes alerting, history and the assistance list to the session's user, only the initiator
may complete an assistance request ("was not initiated by the logged in user", seed 000), and
the status catalogue is the same for everyone (docs/icws-protocol.md §4.4, issue #14).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from bridge.simulator import Simulator, users_named

from .conftest import MakeSim
from .support import Icws, login, send, types

ALERTING = "interaction-alerting"
HISTORY = "interaction-history"
STATUS = "status/status-messages"
ASSISTANCE = "interactions/agent-assistance"
CENTRE = users_named("agent", 1000, "secret")
# Spread over the numbering: first, middle, last and two in between.
SEVERAL = ["agent.0001", "agent.0250", "agent.0500", "agent.0777", "agent.1000"]


async def centre_sim(make_sim: MakeSim, **overrides: Any) -> Simulator:
    """A simulator serving the 1,000-user centre."""
    return await make_sim(users=dict(CENTRE), **overrides)


async def log_in_all(
    http: aiohttp.ClientSession, sim: Simulator, users: list[str], *subscriptions: str
) -> dict[str, Icws]:
    """Log every user in at once and subscribe each session; the polled snapshots are dropped."""
    sessions = await asyncio.gather(*(login(http, sim, user) for user in users))
    for icws in sessions:
        for name in subscriptions:
            assert (await icws.subscribe(name)).status in (200, 204)
        await icws.poll()
    return dict(zip(users, sessions, strict=True))


def alerting_ids(messages: list[dict[str, Any]]) -> set[str]:
    """The interaction ids the alerting messages speak of."""
    return {
        entry["interactionId"]
        for message in messages
        if message["__type"].endswith("interactionAlertingMessage")
        for entry in message["alertingInteractionDetails"]
    }


def listed_requests(messages: list[dict[str, Any]]) -> set[str]:
    """The assistance ids added in the assistance list messages."""
    return {
        assistance_id
        for message in messages
        if message["__type"].endswith("assistanceRequestListMessage")
        for assistance_id in message.get("requestsAdded", [])
    }


class TestUsersNamed:
    """`users_named` builds a centre's users in one call."""

    def test_names_are_numbered_and_padded(self) -> None:
        """1,000 users run agent.0001 ... agent.1000, all with the given password."""
        assert len(CENTRE) == 1000
        assert list(CENTRE)[:2] == ["agent.0001", "agent.0002"]
        assert list(CENTRE)[-1] == "agent.1000"
        assert set(CENTRE.values()) == {"secret"}

    def test_wide_counts_widen_the_number(self) -> None:
        """Beyond 9,999 users the numbers grow a digit, so names still sort by number."""
        names = list(users_named("a", 10_000, "p"))
        assert (names[0], names[-1]) == ("a.00001", "a.10000")
        assert names == sorted(names)

    def test_a_count_must_be_positive(self) -> None:
        """Zero users is refused."""
        with pytest.raises(ValueError, match="positive"):
            users_named("agent", 0, "p")


class TestEachUserSeesOnlyTheirOwn:
    """Several of 1,000 users logged in at once; the world is partitioned by user."""

    async def test_alerting_and_history_reach_only_their_user(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """A call alerting for one user reaches that user's session and no other."""
        sim = await centre_sim(make_sim)
        sessions = await log_in_all(http, sim, SEVERAL, ALERTING, HISTORY)
        started = {user: sim.world.start_alerting(user, name=f"for {user}") for user in SEVERAL}
        for user in SEVERAL:
            sim.world.end_call(user, started[user])
        for user, icws in sessions.items():
            messages = await icws.poll()
            assert alerting_ids(messages) == {started[user]}
            history = [m for m in messages if m["__type"].endswith("historyMessage")]
            assert [item["interactionId"] for m in history for item in m["interactionHistory"]] == [
                started[user]
            ]

    async def test_a_snapshot_holds_only_the_users_calls(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """A new alerting subscription's snapshot lists the user's calls, not the centre's."""
        sim = await centre_sim(make_sim)
        mine = sim.world.start_alerting("agent.0500")
        sim.world.start_alerting("agent.0501")
        icws = await login(http, sim, "agent.0500")
        await icws.subscribe(ALERTING)
        assert alerting_ids(await icws.poll()) == {mine}

    async def test_two_sessions_of_one_user_both_get_its_changes(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """A user's change reaches every session of that user."""
        sim = await centre_sim(make_sim)
        first = await login(http, sim, "agent.0042")
        second = await login(http, sim, "agent.0042")
        for icws in (first, second):
            await icws.subscribe(ALERTING)
            await icws.poll()
        interaction_id = sim.world.start_alerting("agent.0042")
        assert alerting_ids(await first.poll()) == {interaction_id}
        assert alerting_ids(await second.poll()) == {interaction_id}

    async def test_the_status_catalogue_is_shared(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """One status change reaches every user's session as the same message."""
        sim = await centre_sim(make_sim)
        sim.world.add_status_message("Available")
        sessions = await log_in_all(http, sim, SEVERAL, STATUS)
        sim.world.change_status_message("Available", messageText="Ready")
        received = [await icws.poll() for icws in sessions.values()]
        assert all(types(messages) == ["statusMessagesMessage"] for messages in received)
        assert all(messages == received[0] for messages in received)
        assert received[0][0]["statusMessagesChanged"][0]["messageText"] == "Ready"


class TestAssistanceBelongsToItsInitiator:
    """Assistance requests are listed to, and completed by, the user who opened them."""

    async def open_request(self, sim: Simulator, icws: Icws, user: str) -> str:
        """`user` asks for help on a call of theirs over HTTP; returns the assistance id."""
        interaction_id = sim.world.add_history(user)
        reply = await icws.call(
            "POST", f"/interactions/{interaction_id}/agent-assistance", json={"text": "help"}
        )
        assert reply.status == 201, reply.body
        return str(reply.body["assistanceId"])

    async def test_each_list_holds_only_its_users_requests(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Requests opened by several users are listed to their initiators only."""
        sim = await centre_sim(make_sim)
        sessions = await log_in_all(http, sim, SEVERAL, ASSISTANCE)
        opened = {user: await self.open_request(sim, icws, user) for user, icws in sessions.items()}
        assert len(set(opened.values())) == len(SEVERAL)
        for user, icws in sessions.items():
            assert listed_requests(await icws.poll()) == {opened[user]}

    async def test_completing_another_users_request_is_a_400(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Completing another user's request is a 400 (not initiated by them); the owner's a 204."""
        sim = await centre_sim(make_sim)
        owner, other = await login(http, sim, "agent.0001"), await login(http, sim, "agent.1000")
        assistance_id = await self.open_request(sim, owner, "agent.0001")
        refused = await other.call("DELETE", f"/interactions/agent-assistance/{assistance_id}")
        assert refused.status == 400
        assert "was not initiated by the logged in user" in refused.body["message"]
        assert sim.world.open_assistance("agent.0001") == [assistance_id]
        done = await owner.call("DELETE", f"/interactions/agent-assistance/{assistance_id}")
        assert done.status == 204
        assert sim.world.open_assistance() == []

    @pytest.mark.parametrize(
        ("scope", "stranger", "supervisor"),
        [("initiator", 400, 400), ("participants", 400, 204), ("anyone", 204, 204)],
    )
    async def test_who_may_add_a_message_is_configurable(
        self,
        make_sim: MakeSim,
        http: aiohttp.ClientSession,
        scope: str,
        stranger: int,
        supervisor: int,
    ) -> None:
        """`assistance_update_by` admits the initiator, the participants or anyone (§8.13)."""
        sim = await centre_sim(make_sim, assistance_update_by=scope)
        owner = await login(http, sim, "agent.0001")
        assistance_id = await self.open_request(sim, owner, "agent.0001")
        sim.world.accept_assistance(assistance_id, "agent.0900", "Sam")
        path = f"/interactions/agent-assistance/{assistance_id}"
        for user, expected in (("agent.0002", stranger), ("agent.0900", supervisor)):
            reply = await (await login(http, sim, user)).call("POST", path, json={"text": "hi"})
            assert reply.status == expected, (user, reply.body)
        assert (await owner.call("POST", path, json={"text": "thanks"})).status == 204
        # Completing stays the initiator's alone, whatever the update scope.
        supervisor_session = await login(http, sim, "agent.0900")
        assert (await supervisor_session.call("DELETE", path)).status == 400

    @pytest.mark.parametrize(("scope", "stranger"), [("anyone", 204), ("initiator", 400)])
    async def test_who_may_watch_the_details_is_configurable(
        self, make_sim: MakeSim, http: aiohttp.ClientSession, scope: str, stranger: int
    ) -> None:
        """`assistance_watch_by` decides whether another user may subscribe to the details."""
        sim = await centre_sim(make_sim, assistance_watch_by=scope)
        owner, other = await login(http, sim, "agent.0001"), await login(http, sim, "agent.0002")
        assistance_id = await self.open_request(sim, owner, "agent.0001")
        assert (await owner.subscribe(f"{ASSISTANCE}/{assistance_id}")).status == 204
        assert (await other.subscribe(f"{ASSISTANCE}/{assistance_id}")).status == stranger


class TestPerUserTruth:
    """The control API and the Python accessors expose each user's truth."""

    async def test_control_api_lists_users_without_passwords(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """GET /_sim/users names all 1,000 users and carries no password."""
        sim = await centre_sim(make_sim)
        reply = await send(http, "GET", f"{sim.url}/_sim/users")
        assert reply.body == {"users": list(CENTRE)}

    async def test_control_api_shows_one_users_truth(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """GET /_sim/users/{user} holds that user's calls, requests and sessions only."""
        sim = await centre_sim(make_sim)
        icws = await login(http, sim, "agent.0777")
        alerting = sim.world.start_alerting("agent.0777")
        sim.world.start_alerting("agent.0778")
        assistance_id = sim.world.create_assistance("agent.0777", alerting, "help")
        reply = await send(http, "GET", f"{sim.url}/_sim/users/agent.0777")
        assert reply.status == 200
        assert list(reply.body["alerting"]) == [alerting]
        assert reply.body["history"] == {}
        assert list(reply.body["assistance"]) == [assistance_id]
        assert reply.body["sessions"] == [icws.session_id]
        assert sim.world.user_truth("agent.0777") == {
            name: reply.body[name] for name in ("alerting", "history", "assistance")
        }

    async def test_an_unknown_user_is_a_404(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """A user the simulator does not serve has no truth to show."""
        sim = await centre_sim(make_sim)
        reply = await send(http, "GET", f"{sim.url}/_sim/users/agent.1001")
        assert reply.status == 404
