"""End to end: a subscription the simulator suspends or faults is re-created on the same session.

The simulator's ``fail_subscription`` sends the subscription-state message and then drops the
subscription until a new PUT. The bridge must PUT it again, publish a ``gap.possible`` and a
``resync.completed`` for that aggregate on the lifecycle topic, never log in again, and deliver
what changed while the subscription was gone, and after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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


def resubscriptions(running: RunningBridge, aggregate: str) -> float | None:
    registry = running.bridge.metrics.registry
    return registry.get_sample_value(
        "icws_bridge_icws_resubscriptions_total", {"aggregate": aggregate}
    )


@pytest.fixture(name="live")
async def fixture_live(
    broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
) -> AsyncIterator[tuple[Settings, RunningBridge, Reader]]:
    """A ready bridge with every first snapshot reconciled, and a reader of its topics."""
    settings = bridge_settings(broker, simulator.url)
    running = start_bridge(settings)
    await running.ready()
    topics = settings.topics
    async with reader([topics.alerting, topics.assistance, topics.lifecycle]) as kafka:
        await kafka.wait_for(
            lambda _: all(lifecycle(kafka, settings, "resync.completed", a) for a in ALL)
        )
        yield settings, running, kafka
    await running.shutdown()


async def regained(kafka: Reader, settings: Settings, aggregate: str, reason: str) -> None:
    """One gap for ``aggregate`` alone (with ``reason``), then its second resync; no other gap."""
    await kafka.wait_for(
        lambda _: len(lifecycle(kafka, settings, "resync.completed", aggregate)) == 2
    )
    [gap] = lifecycle(kafka, settings, "gap.possible", aggregate)
    assert gap < lifecycle(kafka, settings, "resync.completed", aggregate)[1]
    assert kafka.events(settings.topics.lifecycle)[gap]["data"]["reason"] == reason
    for other in ("session", *(a for a in ALL if a != aggregate)):
        assert not lifecycle(kafka, settings, "gap.possible", other)


class TestLostSubscriptions:
    """Suspended or Faulted: re-created, a gap and a resync for that aggregate, no re-login."""

    async def test_faulted_alerting_is_re_created(self, simulator: Simulator, live: Any) -> None:
        """fail_subscription(alerting, 3): a new PUT, gap then resync for alerting, same login."""
        settings, running, kafka = live
        topic = settings.topics.alerting
        logins, alerting_puts = simulator.logins, puts(simulator, "interaction-alerting")
        simulator.faults.fail_subscription("interaction-alerting", state=3)
        missed = simulator.world.start_alerting(USER)
        await regained(kafka, settings, "alerting", "subscription_faulted")
        await kafka.wait_for(lambda _: keyed(kafka, topic, missed, "started"))
        after = simulator.world.start_alerting(USER)
        await kafka.wait_for(lambda _: keyed(kafka, topic, after, "started"))
        assert puts(simulator, "interaction-alerting") == alerting_puts + 1
        assert simulator.logins == logins
        assert resubscriptions(running, "alerting") == 1

    async def test_suspended_assistance_list_is_re_created(
        self, simulator: Simulator, live: Any
    ) -> None:
        """fail_subscription(list, 2): re-created; a request opened meanwhile is then followed."""
        settings, running, kafka = live
        topic = settings.topics.assistance
        interaction = simulator.world.start_alerting(USER)
        logins = simulator.logins
        simulator.faults.fail_subscription("interactions/agent-assistance", state=2)
        missed = simulator.world.create_assistance(USER, interaction, "Anyone?")
        await regained(kafka, settings, "assistance", "subscription_suspended")
        await kafka.wait_for(lambda _: keyed(kafka, topic, missed, "opened"))
        simulator.world.add_assistance_message(missed, "supervisor.sam", "Here")
        await kafka.wait_for(lambda _: keyed(kafka, topic, missed, "updated"))
        after = simulator.world.create_assistance(USER, interaction, "And now?")
        await kafka.wait_for(lambda _: keyed(kafka, topic, after, "opened"))
        assert simulator.logins == logins
        assert resubscriptions(running, "assistance") == 1
