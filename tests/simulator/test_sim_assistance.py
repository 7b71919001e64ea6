"""Agent-assistance over HTTP: create, update and complete, with their 400s and pushes."""

from __future__ import annotations

import aiohttp
import pytest

from bridge.simulator import Simulator

from .conftest import MakeSim
from .support import Icws, login

LIST = "interactions/agent-assistance"


async def agent_with_request(sim: Simulator, http: aiohttp.ClientSession) -> tuple[Icws, str]:
    """agent.one logged in, watching its list and its one open request (snapshots drained)."""
    assistance_id = sim.world.create_assistance("agent.one", "100", "help")
    icws = await login(http, sim)
    await icws.subscribe(LIST)
    await icws.subscribe(f"{LIST}/{assistance_id}")
    await icws.poll()
    return icws, assistance_id


class TestUpdate:
    """POST .../agent-assistance/{assistanceId} adds a message."""

    @pytest.mark.parametrize("status", [200, 204])
    async def test_update_adds_message_and_pushes(
        self, make_sim: MakeSim, http: aiohttp.ClientSession, status: int
    ) -> None:
        """POST adds the user's message, answers the configured code, and pushes the delta."""
        sim = await make_sim(assistance_update_status=status)
        icws, aid = await agent_with_request(sim, http)
        reply = await icws.call(
            "POST", f"/interactions/agent-assistance/{aid}", json={"text": "hi"}
        )
        assert (reply.status, reply.body) == (status, None)
        [delta] = await icws.poll()
        assert delta["isDelta"] is True
        [message] = delta["messagesAdded"]
        assert (message["participantId"], message["text"]) == ("agent.one", "hi")
        assert sim.world.assistance[aid]["messages"][-1]["text"] == "hi"

    async def test_update_needs_text(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """A body without `text` is a missingPropertyError."""
        icws, aid = await agent_with_request(sim, http)
        reply = await icws.call("POST", f"/interactions/agent-assistance/{aid}", json={})
        assert (reply.status, reply.body["propertyName"]) == (400, "text")


class TestComplete:
    """DELETE .../agent-assistance/{assistanceId} completes a request."""

    async def test_complete_pushes_removal_and_state(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """DELETE completes: 204, requestsRemoved on the list, state 2 on the details."""
        icws, aid = await agent_with_request(sim, http)
        reply = await icws.call("DELETE", f"/interactions/agent-assistance/{aid}")
        assert reply.status == 204
        removed, details = await icws.poll()
        assert removed["requestsRemoved"] == [aid]
        assert (details["assistanceId"], details["state"]) == (aid, 2)

    async def test_completing_twice_is_400(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """A completed request cannot be completed (or updated) again."""
        icws, aid = await agent_with_request(sim, http)
        await icws.call("DELETE", f"/interactions/agent-assistance/{aid}")
        again = await icws.call("DELETE", f"/interactions/agent-assistance/{aid}")
        update = await icws.call(
            "POST", f"/interactions/agent-assistance/{aid}", json={"text": "x"}
        )
        assert again.status == update.status == 400
        assert "already completed" in again.body["message"]


class TestRejections:
    """The documented 400s, and the feature gate."""

    @pytest.mark.parametrize("method", ["POST", "DELETE"])
    async def test_unknown_request_is_400(
        self, sim: Simulator, http: aiohttp.ClientSession, method: str
    ) -> None:
        """A request id that does not exist answers 400 saying so."""
        icws = await login(http, sim)
        reply = await icws.call(method, "/interactions/agent-assistance/nope", json={"text": "x"})
        assert reply.status == 400
        assert reply.body["errorId"] == "error.request.invalidRepresentation.invalidProperty"
        assert "does not exist" in reply.body["message"]

    @pytest.mark.parametrize("method", ["POST", "DELETE"])
    async def test_someone_elses_request_is_400(
        self, sim: Simulator, http: aiohttp.ClientSession, method: str
    ) -> None:
        """Only the initiator may update or complete a request."""
        aid = sim.world.create_assistance("agent.two", "100", "help")
        icws = await login(http, sim)
        reply = await icws.call(method, f"/interactions/agent-assistance/{aid}", json={"text": "x"})
        assert reply.status == 400
        assert "not initiated by the logged in user" in reply.body["message"]
        assert sim.world.assistance[aid]["state"] == 0

    async def test_below_interactions_9_is_404(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """The assistance resources need the interactions feature at version 9."""
        sim = await make_sim(features={"interactions": 8})
        aid = sim.world.create_assistance("agent.one", "100", "help")
        icws = await login(http, sim)
        reply = await icws.call("DELETE", f"/interactions/agent-assistance/{aid}")
        assert reply.status == 404


class TestCreate:
    """POST .../interactions/{interactionId}/agent-assistance opens a request."""

    async def test_create_for_own_interaction(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """POST .../interactions/{id}/agent-assistance answers 201 with the new id and lists it."""
        iid = sim.world.start_alerting("agent.one")
        icws = await login(http, sim)
        await icws.subscribe(LIST)
        await icws.poll()
        reply = await icws.call("POST", f"/interactions/{iid}/agent-assistance", json={"text": "?"})
        assert reply.status == 201
        aid = reply.body["assistanceId"]
        assert sim.world.assistance[aid]["interactionId"] == iid
        assert (await icws.poll())[0]["requestsAdded"] == [aid]

    async def test_create_for_unknown_interaction_is_404(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """An interaction the user does not have answers 404."""
        icws = await login(http, sim)
        reply = await icws.call("POST", "/interactions/123/agent-assistance", json={"text": "?"})
        assert reply.status == 404


class TestCallLog:
    """Every assistance update and complete is logged with its text, answer and effect."""

    async def test_calls_are_logged_with_their_effect(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """An update, a refused update and a complete each leave one entry, in order."""
        icws, aid = await agent_with_request(sim, http)
        path = f"/interactions/agent-assistance/{aid}"
        await icws.call("POST", path, json={"text": "one"})
        await icws.call("POST", "/interactions/agent-assistance/nope", json={"text": "two"})
        await icws.call("DELETE", path)
        logged = [(c.method, c.assistance_id, c.text, c.status, c.applied) for c in sim.calls]
        assert logged == [
            ("POST", aid, "one", 204, 1),
            ("POST", "nope", "two", 400, 0),
            ("DELETE", aid, None, 204, 1),
        ]

    async def test_injected_failure_is_logged_as_not_applied(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """A call answered 500 by an injected failure reached ICWS but changed nothing."""
        icws, aid = await agent_with_request(sim, http)
        sim.faults.fail_requests(1, status=500, path_regex="agent-assistance/")
        await icws.call("POST", f"/interactions/agent-assistance/{aid}", json={"text": "x"})
        assert [(c.status, c.applied) for c in sim.calls] == [(500, 0)]
        assert [m["text"] for m in sim.world.assistance[aid]["messages"]] == ["help"]

    async def test_repeat_updates_applies_the_next_update_twice(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """The `repeat_updates` switch adds the message twice and logs `applied` 2, once."""
        icws, aid = await agent_with_request(sim, http)
        sim.faults.repeat_updates(1)
        path = f"/interactions/agent-assistance/{aid}"
        await icws.call("POST", path, json={"text": "a"})
        await icws.call("POST", path, json={"text": "b"})
        assert [m["text"] for m in sim.world.assistance[aid]["messages"]] == ["help", "a", "a", "b"]
        assert [c.applied for c in sim.calls] == [2, 1]

    async def test_control_state_shows_the_call_log(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """GET /_sim/state carries the calls as JSON, for users of `bridge simulate`."""
        icws, aid = await agent_with_request(sim, http)
        await icws.call("DELETE", f"/interactions/agent-assistance/{aid}")
        async with http.get(f"{sim.url}/_sim/state") as answer:
            state = await answer.json()
        assert state["calls"] == [
            {"method": "DELETE", "assistanceId": aid, "text": None, "status": 204, "applied": 1}
        ]
        assert state["counters"]["calls"] == 1
