"""End to end: the subscription settings reach ICWS in the PUT bodies, and take effect.

A real ``bridge run`` process subscribes; the simulator's control API (``GET /_sim/state``,
``subscriptionBodies``) shows each PUT body as received, and the events on Kafka show what
ICWS sent back for it. Expected bodies come from the README's settings table and the ICWS
subscription pages (docs/icws-protocol.md §4): ``attributeNames`` and ``numberOfHistoryMessages``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bridge.embedded_broker import EmbeddedBroker
from bridge.simulator import Simulator
from tests.conftest import USER, Reader, bridge_cli, bridge_env

pytestmark = pytest.mark.e2e

ALERTING_TOPIC = "icws.interaction.alerting.v1"
HISTORY_TOPIC = "icws.interaction.history.v1"
LIFECYCLE_TOPIC = "icws.bridge.lifecycle.v1"
ALERTING_PUT = "interaction-alerting"
HISTORY_PUT = "interaction-history"
ATTRIBUTES = {
    "Eic_RemoteName": "Ann Example",
    "Eic_RemoteAddress": "tel:+3210000001",
    "Eic_CallDirection": "I",
    "Custom_Tier": "gold",
}


def seed(sim: Simulator) -> list[str]:
    """One alerting interaction with known attributes and four history items (ids, in order)."""
    sim.world.start_alerting(USER, "9001", attributes=dict(ATTRIBUTES))
    return [sim.world.add_history(USER, str(9100 + n)) for n in range(4)]


async def put_bodies(sim: Simulator) -> dict[str, list[Any]]:
    """The body of every subscription PUT so far, by subscription name, from the control API."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sim.url}/_sim/state") as answer,
    ):
        state = await answer.json()
    bodies: dict[str, list[Any]] = {}
    for put in state["subscriptionBodies"]:
        bodies.setdefault(put["subscription"], []).append(put["body"])
    return bodies


def resyncs(kafka: Reader) -> dict[str, dict[str, Any]]:
    """The data of each ``resync.completed`` event read so far, by aggregate."""
    return {
        e["data"]["aggregate"]: e["data"]
        for e in kafka.events(LIFECYCLE_TOPIC)
        if e["type"].endswith("resync.completed.v1")
    }


def snapshot_published(kafka: Reader) -> bool:
    """Alerting and history resynced, and every entity their resyncs added is read back."""
    done = resyncs(kafka)
    return (
        {"alerting", "history"} <= done.keys()
        and len(kafka.events(ALERTING_TOPIC)) >= done["alerting"]["added"]
        and len(kafka.events(HISTORY_TOPIC)) >= done["history"]["added"]
    )


@dataclass
class Observed:
    """What one bridge run showed: the PUT bodies ICWS received and the events on Kafka."""

    bodies: dict[str, list[Any]]
    alerts: list[dict[str, Any]]
    recorded: list[dict[str, Any]]


async def observe(broker: EmbeddedBroker, sim: Simulator, reader: Any, **env: str) -> Observed:
    """Run ``bridge run`` until the alerting and history snapshots are on Kafka; what it showed."""
    async with reader([ALERTING_TOPIC, HISTORY_TOPIC, LIFECYCLE_TOPIC]) as kafka:
        environment = bridge_env(broker, sim.url, BRIDGE_COMMANDS__ENABLED="false", **env)
        async with bridge_cli("run", env=environment):
            await kafka.wait_for(lambda _: snapshot_published(kafka), 45)
        bodies = await put_bodies(sim)
        return Observed(bodies, kafka.events(ALERTING_TOPIC), kafka.events(HISTORY_TOPIC))


class TestSubscriptionBodies:
    """BRIDGE_SUBSCRIPTIONS__* become the bodies ICWS receives, and ICWS answers accordingly."""

    async def test_configured_attribute_names_and_history_count(
        self, broker: EmbeddedBroker, simulator: Simulator, reader: Any
    ) -> None:
        """Two asked attributes and a history count of 2: the bodies say so, Kafka shows it."""
        history = seed(simulator)
        seen = await observe(
            broker,
            simulator,
            reader,
            BRIDGE_SUBSCRIPTIONS__ALERTING__ATTRIBUTE_NAMES="Eic_RemoteAddress,Custom_Tier",
            BRIDGE_SUBSCRIPTIONS__HISTORY__NUMBER_OF_MESSAGES="2",
        )
        assert seen.bodies[ALERTING_PUT] == [
            {"attributeNames": ["Eic_RemoteAddress", "Custom_Tier"]}
        ]
        assert seen.bodies[HISTORY_PUT] == [{"numberOfHistoryMessages": 2}]
        assert [e["data"]["state"]["attributes"] for e in seen.alerts] == [
            {"Eic_RemoteAddress": "tel:+3210000001", "Custom_Tier": "gold"}
        ]
        assert sorted(e["subject"] for e in seen.recorded) == history[-2:]

    async def test_default_bodies(
        self, broker: EmbeddedBroker, simulator: Simulator, reader: Any
    ) -> None:
        """Unset: the three default attributes are asked for, and no history count (all items)."""
        history = seed(simulator)
        seen = await observe(broker, simulator, reader)
        (alerting_body,) = seen.bodies[ALERTING_PUT]
        assert alerting_body == {
            "attributeNames": ["Eic_CallDirection", "Eic_RemoteName", "Eic_WorkgroupName"]
        }
        (history_body,) = seen.bodies[HISTORY_PUT]
        assert "numberOfHistoryMessages" not in history_body
        assert [e["data"]["state"]["attributes"] for e in seen.alerts] == [
            {"Eic_CallDirection": "I", "Eic_RemoteName": "Ann Example"}
        ]
        assert sorted(e["subject"] for e in seen.recorded) == history
