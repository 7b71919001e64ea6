"""End to end: reconciliation keeps the state topics equal to ICWS through losses and restarts."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from bridge.core import events
from bridge.core.state import Change
from bridge.embedded_broker import EmbeddedBroker
from bridge.simulator import Simulator
from bridge.simulator.scenario import LivelyScenario
from tests.conftest import USER, bridge_process, bridge_settings, subscribed_sessions
from tests.truth import (
    entity_and_lifecycle_topics,
    event_topics,
    sequences_are_clean,
    simulator_truth,
    state_topic_truth,
    steps,
    wait_until_state_is_truth,
)

pytestmark = pytest.mark.e2e


def lifecycle_types(kafka: Any, topic: str) -> list[str]:
    return [e["type"].split(".", 3)[-1] for e in kafka.events(topic)]


class TestReconciliation:
    """Snapshots after a loss or a restart are diffed against what was already published."""

    async def test_session_loss_mid_scenario(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
    ) -> None:
        """After an expiry mid-scenario the state topics equal the truth, nothing duplicated."""
        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        await running.ready()
        scenario = LivelyScenario(simulator.world, [USER], seed=11)
        topics = entity_and_lifecycle_topics(settings)
        async with reader(topics) as kafka:
            await steps(scenario, 40)
            simulator.faults.expire_session()
            await steps(scenario, 20)  # some of these happen while the bridge is blind
            await running.until(lambda: len(subscribed_sessions(simulator)) >= 2, 20)
            await steps(scenario, 40)
            await wait_until_state_is_truth(kafka, simulator, settings)
            await kafka.settle()
            events = [e for t in event_topics(settings) for e in kafka.events(t)]
            assert sequences_are_clean(events) == []
            ids = [e["id"] for e in events]
            assert len(ids) == len(set(ids)), "an entity event was published twice"
            lifecycle = lifecycle_types(kafka, settings.topics.lifecycle)
            assert "bridge.gap.possible.v1" in lifecycle
            assert lifecycle.count("bridge.resync.completed.v1") == 8  # 4 aggregates x 2
        await running.shutdown()

    async def test_restart_with_nothing_changed_publishes_no_entity_events(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
    ) -> None:
        """A second bridge over unchanged ICWS state emits only lifecycle events."""
        settings = bridge_settings(broker, simulator.url)
        first = start_bridge(settings)
        await first.ready()
        scenario = LivelyScenario(simulator.world, [USER], seed=5)
        topics = entity_and_lifecycle_topics(settings)
        async with reader(topics) as kafka:
            await steps(scenario, 60)
            truth = simulator_truth(simulator, USER)
            assert any(truth[a] for a in ("alerting", "history", "status_messages"))
            await wait_until_state_is_truth(kafka, simulator, settings)
            await first.shutdown()
            await kafka.settle()
            before = sum(len(kafka.events(t)) for t in event_topics(settings))

            second = start_bridge(settings)
            await second.ready()
            await kafka.wait_for(
                lambda _: (
                    lifecycle_types(kafka, settings.topics.lifecycle).count(
                        "bridge.resync.completed.v1"
                    )
                    == 8
                )
            )
            await kafka.settle()
            after = sum(len(kafka.events(t)) for t in event_topics(settings))
            assert after == before
            assert state_topic_truth(kafka.records, settings, USER) == truth
            gaps = [
                e
                for e in kafka.events(settings.topics.lifecycle)
                if e["type"].endswith("gap.possible.v1") and e["data"]["reason"] == "restart"
            ]
            assert len(gaps) == 1
            assert gaps[0]["data"]["since"] is not None
            await second.shutdown()

    async def test_killed_bridge_restarts_and_reconciles(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
    ) -> None:
        """SIGKILL mid-scenario, changes while dead, restart: state topics equal the truth."""
        settings = bridge_settings(broker, simulator.url)
        scenario = LivelyScenario(simulator.world, [USER], seed=23)
        topics = entity_and_lifecycle_topics(settings)
        async with bridge_process(broker, simulator.url) as process, reader(topics) as kafka:
            await kafka.wait_for(
                lambda _: (
                    "resync.completed" in str(lifecycle_types(kafka, settings.topics.lifecycle))
                ),
                30,
            )
            await steps(scenario, 40)
            await kafka.wait_for(lambda _: len(kafka.events()) > 20)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            await steps(scenario, 30)  # the world moves on while the bridge is dead

            running = start_bridge(settings)
            await running.ready()
            await steps(scenario, 20)
            await wait_until_state_is_truth(kafka, simulator, settings)
            await kafka.settle()
            events = [e for t in event_topics(settings) for e in kafka.events(t)]
            assert sequences_are_clean(events) == []
            restarts = [
                e
                for e in kafka.events(settings.topics.lifecycle)
                if e["type"].endswith("gap.possible.v1") and e["data"]["reason"] == "restart"
            ]
            assert len(restarts) == 1
            await running.shutdown()


class TestCrashWindow:
    """Events acknowledged just before a crash, whose state checkpoint was never written."""

    async def test_restart_continues_sequences_past_unrecorded_events(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
    ) -> None:
        """The next bridge reads the event tail: no sequence reused, the checkpoint repaired."""
        settings = bridge_settings(broker, simulator.url)
        simulator.world.add_status_message("Available", messageText="Available")
        first = start_bridge(settings)
        await first.ready()
        topics = [settings.topics.status_messages, settings.topics.status_messages_state]
        async with reader(topics) as kafka:
            await kafka.wait_for(lambda _: len(kafka.events(topics[0])) == 1)
            catalogue = first.bridge.fleet.pipelines()[USER].states["status_messages"]
            await first.shutdown()
            # As if a bridge had published sequence 2 and died before its checkpoint.
            contract = first.bridge.contract
            state = {**catalogue.entities["available"].props}
            state["messageText"] = "Ready"
            change = Change(
                "status_messages", "available", "changed", state, ("messageText",), 2, "delta"
            )
            event, _checkpoint = events.change_records(
                contract, change, datetime.now(UTC), user=USER
            )
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
            await producer.start()
            await producer.send_and_wait(event.topic, event.value, key=event.key)
            await producer.stop()
            simulator.world.change_status_message("Available", messageText="Busy")

            second = start_bridge(settings)
            await second.ready()
            await kafka.wait_for(lambda _: len(kafka.events(topics[0])) == 3)
            await kafka.settle()
            published = [
                (e["sequence"], e["data"]["state"]["messageText"]) for e in kafka.events(topics[0])
            ]
            assert published == [(1, "Available"), (2, "Ready"), (3, "Busy")]
            checkpoints = [json.loads(r.value) for r in kafka.records if r.topic == topics[1]]
            assert [(c["sequence"], c["state"]["messageText"]) for c in checkpoints] == [
                (1, "Available"),
                (2, "Ready"),  # the repair
                (3, "Busy"),
            ]
            await second.shutdown()
