"""End to end: assistance ids full of reserved characters, followed and commanded correctly.

With ``opaque_assistance_ids`` the simulator makes ids like ``{a1|b:2 c/3}``; its routes take
an id as one path segment, so a raw ``/`` (or any id not percent-encoded) would miss it. The
events keep the raw id as key and subject; the commands reach the request.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge.embedded_broker import EmbeddedBroker
from bridge.simulator import Simulator
from tests.conftest import USER, Reader
from tests.e2e.test_commands import Sender, command, result_of, settings_for, texts
from tests.e2e.test_commands import fixture_producer as fixture_producer  # the producer fixture

pytestmark = pytest.mark.e2e

RESERVED = set("{}|: /")


def of(kafka: Reader, topic: str, assistance_id: str) -> list[Any]:
    """The records about one request on ``topic``, in order."""
    return [r for r in kafka.records if r.topic == topic and r.key == assistance_id.encode()]


def kinds(kafka: Reader, topic: str, assistance_id: str) -> list[str]:
    return [Reader.event(r)["type"].rsplit(".", 2)[-2] for r in of(kafka, topic, assistance_id)]


class TestOpaqueAssistanceIds:
    """Requests whose ids hold braces, ``|``, ``:``, spaces and slashes."""

    async def test_followed_and_commanded(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """Opened, updated and closed as events keyed by the raw id; update and complete work."""
        simulator.configure(opaque_assistance_ids=True)
        settings = settings_for(broker, simulator)
        running = start_bridge(settings)
        await running.ready()
        topic = settings.topics.assistance
        interaction = simulator.world.start_alerting(USER)
        async with reader([topic, settings.topics.command_results]) as kafka:
            aid = simulator.world.create_assistance(USER, interaction, "Refund?")
            assert set(aid) >= RESERVED
            await kafka.wait_for(lambda _: kinds(kafka, topic, aid)[:1] == ["opened"])
            await kafka.wait_for(
                lambda _: any(
                    Reader.event(r)["data"]["state"].get("messages") for r in of(kafka, topic, aid)
                )
            )
            sender = Sender(producer, settings.topics.commands)
            update = command("update", aid, "More details, please")
            await sender.send(update)
            assert (await result_of(kafka, settings, update["id"]))["data"]["outcome"] == (
                "succeeded"
            )
            assert texts(simulator, aid) == ["Refund?", "More details, please"]
            await kafka.wait_for(
                lambda _: any(
                    [m["text"] for m in Reader.event(r)["data"]["state"].get("messages", [])]
                    == ["Refund?", "More details, please"]
                    for r in of(kafka, topic, aid)
                )
            )
            complete = command("complete", aid)
            await sender.send(complete)
            assert (await result_of(kafka, settings, complete["id"]))["data"]["outcome"] == (
                "succeeded"
            )
            assert simulator.world.assistance[aid]["state"] == 2
            await kafka.wait_for(lambda _: kinds(kafka, topic, aid)[-1:] == ["closed"])
            assert "updated" in kinds(kafka, topic, aid)
            assert {Reader.event(r)["subject"] for r in of(kafka, topic, aid)} == {aid}
        await running.shutdown()
