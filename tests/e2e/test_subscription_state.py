"""End to end: a subscription the simulator suspends or faults is re-created on the same session.

The simulator's ``fail_subscription`` sends the subscription-state message and then drops the
subscription until a new PUT. The bridge must PUT it again, publish a ``gap.possible`` and a
``resync.completed`` for that aggregate on the lifecycle topic, never log in again, and deliver
what changed while the subscription was gone, and after.
"""

from __future__ import annotations

from typing import Any

import pytest

from bridge.embedded_broker import EmbeddedBroker
from bridge.settings import Settings
from bridge.simulator import Simulator
from tests.conftest import USER, Reader, RunningBridge, bridge_settings

pytestmark = pytest.mark.e2e

ALL = ("alerting", "history", "status_messages", "assistance")


def lifecycle(kafka: Reader, settings: Settings, name: str, subject: str) -> list[int]:
    """Positions of one lifecycle event kind for one subject, among all lifecycle events."""
    events = kafka.events(settings.topics.lifecycle)
    return [
        i
        for i, e in enumerate(events)
        if e["type"].endswith(f"{name}.v1") and e["subject"] == subject
    ]


def puts(sim: Simulator, suffix: str) -> int:
    """Successful PUTs of the subscription whose path ends with ``suffix``."""
    return sum(
        1
        for method, path, status in sim.requests
        if method == "PUT" and path.endswith(suffix) and status in (200, 204)
    )


def keyed(kafka: Reader, topic: str, key: str, event: str) -> bool:
    """Whether an ``event`` (e.g. ``started``) for entity ``key`` is on ``topic``."""
    return any(
        e["subject"] == key and e["type"].endswith(f".{event}.v1") for e in kafka.events(topic)
    )


async def resynced_once(kafka: Reader, settings: Settings) -> None:
    """The first session's snapshots are all in: one resync per aggregate."""
    await kafka.wait_for(
        lambda _: all(lifecycle(kafka, settings, "resync.completed", a) for a in ALL)
    )


def resubscriptions(running: RunningBridge, aggregate: str) -> float | None:
    registry = running.bridge.metrics.registry
    return registry.get_sample_value(
        "icws_bridge_icws_resubscriptions_total", {"aggregate": aggregate}
    )


class TestLostSubscriptions:
    """Suspended or Faulted: re-created, a gap and a resync for that aggregate, no re-login."""

    async def test_faulted_alerting_is_re_created(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
    ) -> None:
        """fail_subscription(alerting, 3): a new PUT, gap then resync for alerting, same login."""
        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        await running.ready()
        topic = settings.topics.alerting
        async with reader([topic, settings.topics.lifecycle]) as kafka:
            await resynced_once(kafka, settings)
            logins, alerting_puts = simulator.logins, puts(simulator, "interaction-alerting")
            simulator.faults.fail_subscription("interaction-alerting", state=3)
            missed = simulator.world.start_alerting(USER)
            await kafka.wait_for(
                lambda _: len(lifecycle(kafka, settings, "resync.completed", "alerting")) == 2
            )
            [gap] = lifecycle(kafka, settings, "gap.possible", "alerting")
            assert gap < lifecycle(kafka, settings, "resync.completed", "alerting")[1]
            data = kafka.events(settings.topics.lifecycle)[gap]["data"]
            assert data["reason"] == "subscription_faulted"
            await kafka.wait_for(lambda _: keyed(kafka, topic, missed, "started"))
            after = simulator.world.start_alerting(USER)
            await kafka.wait_for(lambda _: keyed(kafka, topic, after, "started"))
            assert puts(simulator, "interaction-alerting") == alerting_puts + 1
            assert simulator.logins == logins
            for other in ("history", "status_messages", "assistance"):
                assert not lifecycle(kafka, settings, "gap.possible", other)
            assert not lifecycle(kafka, settings, "gap.possible", "session")
        assert resubscriptions(running, "alerting") == 1
        await running.shutdown()

    async def test_suspended_assistance_list_is_re_created(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
    ) -> None:
        """fail_subscription(list, 2): re-created; a request opened meanwhile is then followed."""
        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        await running.ready()
        topic = settings.topics.assistance
        interaction = simulator.world.start_alerting(USER)
        async with reader([topic, settings.topics.lifecycle]) as kafka:
            await resynced_once(kafka, settings)
            logins = simulator.logins
            simulator.faults.fail_subscription("interactions/agent-assistance", state=2)
            missed = simulator.world.create_assistance(USER, interaction, "Anyone?")
            await kafka.wait_for(
                lambda _: len(lifecycle(kafka, settings, "resync.completed", "assistance")) == 2
            )
            [gap] = lifecycle(kafka, settings, "gap.possible", "assistance")
            data = kafka.events(settings.topics.lifecycle)[gap]["data"]
            assert data["reason"] == "subscription_suspended"
            await kafka.wait_for(lambda _: keyed(kafka, topic, missed, "opened"))
            simulator.world.add_assistance_message(missed, "supervisor.sam", "Here")
            await kafka.wait_for(lambda _: keyed(kafka, topic, missed, "updated"))
            after = simulator.world.create_assistance(USER, interaction, "And now?")
            await kafka.wait_for(lambda _: keyed(kafka, topic, after, "opened"))
            assert simulator.logins == logins
            assert not lifecycle(kafka, settings, "gap.possible", "session")
        assert resubscriptions(running, "assistance") == 1
        await running.shutdown()
