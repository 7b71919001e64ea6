"""The /_sim/ control API: every route drives the same world, faults and knobs as Python."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bridge.simulator import Simulator

from .support import LANGUAGE, Reply, login, login_body, send


async def control(
    http: aiohttp.ClientSession, sim: Simulator, method: str, path: str, body: Any = None
) -> Reply:
    """Call a control route with an optional JSON body."""
    kwargs = {} if body is None else {"json": body}
    return await send(http, method, f"{sim.url}/_sim{path}", **kwargs)


class TestWorldRoutes:
    """Control routes that change the world."""

    async def test_status_messages(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Status messages can be seeded, added, changed and removed over HTTP."""
        seeded = await control(http, sim, "POST", "/status-messages/default-catalogue")
        added = await control(
            http, sim, "POST", "/status-messages", {"statusId": "Gym", "groupTag": "Break"}
        )
        changed = await control(http, sim, "PATCH", "/status-messages/gym", {"messageText": "Gym!"})
        removed = await control(http, sim, "DELETE", "/status-messages/Gym")
        assert (seeded.status, len(seeded.body)) == (200, 6)
        assert (added.status, added.body["groupTag"]) == (201, "Break")
        assert (changed.status, changed.body["messageText"]) == (200, "Gym!")
        assert removed.status == 204
        assert "Gym" not in sim.world.status_messages

    async def test_alerting_and_history(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Alerting can be started, changed, stopped or ended into history over HTTP."""
        user = "/users/agent.one"
        started = await control(http, sim, "POST", f"{user}/alerting", {"name": "Ann"})
        iid = started.body["interactionId"]
        changed = await control(http, sim, "PATCH", f"{user}/alerting/{iid}", {"autoAnswer": True})
        ended = await control(http, sim, "POST", f"{user}/calls/{iid}/end")
        other = await control(http, sim, "POST", f"{user}/alerting", {"interactionId": "7"})
        stopped = await control(http, sim, "DELETE", f"{user}/alerting/7")
        history = await control(http, sim, "POST", f"{user}/history", {"remoteName": "Bo"})
        noted = await control(
            http, sim, "PATCH", f"{user}/history/{history.body['interactionId']}", {"notes": "n"}
        )
        assert started.status == 201
        assert changed.body["autoAnswer"] is True
        assert (ended.status, ended.body["remoteName"]) == (200, "Ann")
        assert (other.body, stopped.body["alertAction"]) == ({"interactionId": "7"}, 2)
        assert noted.body["notes"] == "n"
        assert list(sim.world.history("agent.one")) == [iid, history.body["interactionId"]]

    async def test_assistance(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Assistance requests can be created, accepted, messaged and completed over HTTP."""
        created = await control(
            http,
            sim,
            "POST",
            "/assistance",
            {"user": "agent.one", "interactionId": "1", "text": "?"},
        )
        aid = created.body["assistanceId"]
        accept = {"supervisorUserId": "sup", "displayName": "Sup"}
        replies = [
            await control(http, sim, "POST", f"/assistance/{aid}/accept", accept),
            await control(
                http,
                sim,
                "POST",
                f"/assistance/{aid}/messages",
                {"participantId": "sup", "text": "!"},
            ),
            await control(http, sim, "POST", f"/assistance/{aid}/complete"),
        ]
        assert [reply.status for reply in replies] == [204, 204, 204]
        request = sim.world.assistance[aid]
        assert (request["state"], len(request["messages"])) == (2, 2)


class TestKnobsAndFaults:
    """Control routes for passwords, features and faults."""

    async def test_password_and_features(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Passwords and features can be changed over HTTP."""
        await control(http, sim, "PUT", "/users/agent.two/password", {"password": "pw"})
        await control(http, sim, "PUT", "/features", {"messaging": 1})
        icws = await login(http, sim, user="agent.two", password="pw")
        assert icws.login.body["features"] == [{"featureId": "messaging", "version": 1}]

    async def test_fault_and_clear(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """POST /_sim/faults/{name} takes the Python keyword arguments; DELETE clears."""
        reply = await control(http, sim, "POST", "/faults/refuse_logins", {"alternates": ["b"]})
        assert reply.status == 204
        url = f"{sim.url}/icws/connection"
        refused = await send(http, "POST", url, headers=LANGUAGE, json=login_body())
        assert refused.body["alternateHostList"] == ["b"]
        assert (await control(http, sim, "DELETE", "/faults")).status == 204
        await login(http, sim)

    async def test_session_faults(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Session faults reach the named session."""
        icws = await login(http, sim)
        reply = await control(
            http, sim, "POST", "/faults/send_down", {"session_id": icws.session_id}
        )
        assert reply.status == 204
        assert (await icws.poll())[0]["newConnectionState"] == 2


class TestStateAndErrors:
    """The state route and error answers."""

    async def test_state(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """GET /_sim/state shows the truth, the sessions and the counters."""
        sim.world.start_alerting("agent.one", "5")
        icws = await login(http, sim)
        await icws.subscribe("interaction-alerting")
        state = (await control(http, sim, "GET", "/state")).body
        assert list(state["alerting"]["agent.one"]) == ["5"]
        assert state["sessions"][icws.session_id] == {
            "user": "agent.one",
            "subscriptions": {"interaction-alerting": {}},
            "queued": 1,
            "streaming": False,
        }
        assert state["counters"]["logins"] == 1
        assert {"statusMessages", "history", "assistance"} <= set(state)

    @pytest.mark.parametrize(
        ("method", "path", "body", "status"),
        [
            ("PATCH", "/status-messages/none", {"messageText": "x"}, 404),
            ("POST", "/status-messages", {"groupTag": "x"}, 400),
            ("POST", "/status-messages", {"statusId": "X", "colour": "red"}, 400),
            ("POST", "/faults/format_disk", {}, 404),
            ("POST", "/faults/fail_requests", {"bogus": 1}, 400),
            ("POST", "/assistance/none/complete", None, 404),
        ],
    )
    async def test_errors(
        self,
        sim: Simulator,
        http: aiohttp.ClientSession,
        method: str,
        path: str,
        body: Any,
        status: int,
    ) -> None:
        """Unknown entities are 404, unusable input 400, each with an error message."""
        reply = await control(http, sim, method, path, body)
        assert reply.status == status
        assert reply.body["error"]

    async def test_control_requests_are_not_recorded(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """sim.requests holds ICWS traffic only."""
        await control(http, sim, "GET", "/state")
        assert sim.requests == []
