"""End to end: status-message catalogue changes in ICWS arrive on Kafka as exact CloudEvents."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.embedded_broker import EmbeddedBroker
from bridge.simulator import Simulator
from tests.conftest import PASSWORD, bridge_settings

pytestmark = pytest.mark.e2e


def _only(event: dict[str, Any]) -> tuple[str, str, int, list[str]]:
    return (
        event["type"],
        event["subject"],
        event["sequence"],
        event["data"]["changedFields"],
    )


class TestStatusCatalogue:
    """The status-message subscription, from ICWS to Kafka and back through a real consumer."""

    async def test_add_change_remove_arrive_as_exact_events(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        log_lines: Any,
    ) -> None:
        """Snapshot, add, change and remove each become one event with the right state."""
        simulator.world.add_status_message("Available", messageText="Available")
        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        await running.ready()
        topic = settings.topics.status_messages
        prefix = settings.events.type_prefix

        async with reader([topic, settings.topics.status_messages_state]) as kafka:
            await kafka.wait_for(lambda r: len(kafka.events(topic)) >= 1)
            simulator.world.add_status_message("Away", messageText="Away from desk")
            simulator.world.change_status_message("Available", messageText="Ready")
            simulator.world.remove_status_message("Away")
            await kafka.wait_for(lambda r: len(kafka.events(topic)) >= 4)
            await kafka.settle()

            # Kafka orders per partition, so the contract is order per key.
            assert _per_key(kafka.events(topic)) == {
                "available": [
                    (f"{prefix}.status.message.added.v1", "available", 1, _ALL_STATUS_FIELDS),
                    (f"{prefix}.status.message.changed.v1", "available", 2, ["messageText"]),
                ],
                "away": [
                    (f"{prefix}.status.message.added.v1", "away", 1, _ALL_STATUS_FIELDS),
                    (f"{prefix}.status.message.removed.v1", "away", 2, []),
                ],
            }
            first = next(e for e in kafka.events(topic) if e["subject"] == "available")
            assert first["data"]["state"]["statusId"] == "Available"
            assert first["data"]["state"]["isSelectableStatus"] is True
            assert first["specversion"] == "1.0"
            assert first["dataschema"].endswith("status.message.added.v1.json")
            changed = [e for e in kafka.events(topic) if e["subject"] == "available"][1]
            assert changed["data"]["state"]["messageText"] == "Ready"

            states = [r for r in kafka.records if r.topic == settings.topics.status_messages_state]
            last = {r.key: r.value for r in states}
            assert last[b"away"] is None  # a tombstone: the entity ended
            assert b'"messageText":"Ready"' in last[b"available"]

            record = next(r for r in kafka.records if r.topic == topic and r.key == b"available")
            headers = dict(record.headers)
            assert record.key == b"available"
            assert headers["content-type"] == b"application/cloudevents+json"
            assert headers["ce_type"] == first["type"].encode()
            assert headers["ce_id"] == first["id"].encode()

        await running.shutdown()
        assert PASSWORD not in log_lines.getvalue()


def _per_key(events: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, int, list[str]]]]:
    grouped: dict[str, list[tuple[str, str, int, list[str]]]] = {}
    for event in events:
        grouped.setdefault(event["subject"], []).append(_only(event))
    return grouped


_ALL_STATUS_FIELDS = sorted(
    [
        "statusId",
        "messageText",
        "iconUri",
        "groupTag",
        "canHaveDate",
        "canHaveTime",
        "isDoNotDisturbStatus",
        "isSelectableStatus",
        "isPersistentStatus",
        "isForwardStatus",
        "isAfterCallWorkStatus",
        "isAcdStatus",
        "isAllowFollowUpStatus",
        "systemId",
    ]
)


class TestContract:
    """Every emitted event validates against its schema and decodes with the CloudEvents SDK."""

    async def test_events_of_a_lively_scenario_honour_the_contract(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
    ) -> None:
        """Events of all four families and the lifecycle pass schema and SDK decoding."""
        from bridge.simulator.scenario import run_lively
        from tests.contract import check_record

        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        await running.ready()
        t = settings.topics
        topics = [t.alerting, t.history, t.status_messages, t.assistance, t.lifecycle]
        await run_lively(simulator, ["agent.one"], rate_per_second=200, seed=3, duration=1.5)
        async with reader(topics) as kafka:
            await kafka.wait_for(lambda r: {r.topic for r in r} >= set(topics), 20)
            await kafka.settle()
            for record in kafka.records:
                check_record(record)
            kinds = {e["type"].split(".")[-3] for e in kafka.events()}
            assert {"alerting", "history", "message", "request"} <= kinds
        await running.shutdown()
