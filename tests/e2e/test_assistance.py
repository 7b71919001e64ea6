"""End to end: agent-assistance requests, followed through their list and their details."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.embedded_broker import EmbeddedBroker
from bridge.simulator import Simulator
from tests.conftest import USER, bridge_settings, subscribed_sessions

pytestmark = pytest.mark.e2e


def latest(kafka: Any, topic: str, key: str) -> dict[str, Any] | None:
    events = [e for e in kafka.events(topic) if e["subject"] == key]
    return events[-1] if events else None


class TestAssistanceRequests:
    """A request's life: opened, messages and acceptance as updates, completion as closed."""

    async def test_request_life_cycle(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
    ) -> None:
        """Each step in ICWS is one event with the full request state."""
        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        await running.ready()
        topic = settings.topics.assistance
        interaction = simulator.world.start_alerting(USER)
        async with reader([topic]) as kafka:
            aid = simulator.world.create_assistance(USER, interaction, "Refund?")
            await kafka.wait_for(
                lambda _: (
                    (e := latest(kafka, topic, aid)) is not None
                    and len(e["data"]["state"]["messages"]) == 1
                )
            )
            simulator.world.accept_assistance(aid, "supervisor.sam", "Sam Supervisor")
            simulator.world.add_assistance_message(aid, "supervisor.sam", "Approved")
            simulator.world.add_assistance_message(aid, "supervisor.sam", "Approved")
            await kafka.wait_for(
                lambda _: len(latest(kafka, topic, aid)["data"]["state"]["messages"]) == 3
            )
            state = latest(kafka, topic, aid)["data"]["state"]
            assert state["state"] == "Accepted"
            assert [m["text"] for m in state["messages"]] == ["Refund?", "Approved", "Approved"]
            assert {p["userId"] for p in state["participants"]} == {USER, "supervisor.sam"}
            simulator.world.complete_assistance(aid)
            await kafka.wait_for(
                lambda _: latest(kafka, topic, aid)["type"].endswith("request.closed.v1")
            )
            await kafka.settle()
            kinds = [e["type"].rsplit(".", 2)[-2] for e in kafka.events(topic)]
            assert kinds[0] == "opened"
            assert kinds[-1] == "closed"
            assert kinds.count("closed") == 1
        await running.shutdown()

    async def test_details_subscription_failing_transiently_is_retried(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
    ) -> None:
        """A 500 on a request's details PUT ends the session; the next one follows it."""
        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        await running.ready()
        topic = settings.topics.assistance
        interaction = simulator.world.start_alerting(USER)
        simulator.faults.fail_requests(
            1, status=500, method="PUT", path_regex=r"agent-assistance/[^/]+$"
        )
        async with reader([topic]) as kafka:
            aid = simulator.world.create_assistance(USER, interaction, "Help")
            await running.until(lambda: len(subscribed_sessions(simulator)) >= 2, 20)
            simulator.world.add_assistance_message(aid, USER, "Still there?")
            await kafka.wait_for(
                lambda _: (
                    (e := latest(kafka, topic, aid)) is not None
                    and [m["text"] for m in e["data"]["state"]["messages"]]
                    == ["Help", "Still there?"]
                )
            )
        await running.shutdown()
