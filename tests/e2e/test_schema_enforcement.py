"""End to end: the test broker itself refuses a record that breaks its topic's published schema.

Every e2e test runs against this broker, so a bridge that published a malformed event would see
it refused (and never delivered) instead of passing unnoticed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bridge import schema_files
from bridge.embedded_broker import EmbeddedBroker
from bridge.simulator import Simulator
from tests.conftest import bridge_settings

pytestmark = pytest.mark.e2e

SEND_TIMEOUT = 15.0


@pytest.fixture(name="producer")
async def fixture_producer(broker: EmbeddedBroker) -> AsyncIterator[AIOKafkaProducer]:
    """A plain producer on the test broker that does not retry what the broker refuses."""
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap,
        enable_idempotence=False,
        acks="all",
        request_timeout_ms=5000,
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def accepted(
    producer: AIOKafkaProducer,
    topic: str,
    value: bytes | None,
    key: bytes = b"k1",
    headers: list[tuple[str, bytes]] | None = None,
) -> bool:
    """Whether the broker acknowledged the record (False: it refused it; silence fails the test)."""
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    except KafkaError:
        return False
    return True


def topic_files() -> dict[str, dict[str, Any]]:
    """The per-topic schemas the broker fixture was started with, by topic."""
    files = schema_files.topic_files(schema_files.configured())
    return {name.removesuffix(".json"): json.loads(text) for name, text in files.items()}


class TestTheTestBrokerEnforcesTheSchemas:
    """The ``broker`` fixture validates every record against its topic's schema."""

    async def test_every_enforced_topic_refuses_malformed_values(
        self, producer: AIOKafkaProducer
    ) -> None:
        """Not JSON, an empty object and a CloudEvent without data are refused on each topic."""
        enforced = [t for t, s in topic_files().items() if "properties" in s]
        assert len(enforced) == 7  # four event topics, lifecycle, results, journal
        bad = [b"not json", b"{}", b'{"specversion":"1.0","id":"x","type":"y"}']
        for topic in enforced:
            assert [await accepted(producer, topic, value) for value in bad] == [False] * 3, topic

    async def test_unchecked_topics_take_tombstones_and_any_bytes(
        self, producer: AIOKafkaProducer
    ) -> None:
        """State topics take tombstones; command and dead-letter topics take whatever was sent."""
        topics = schema_files.configured().topics
        for topic in (topics.alerting_state, topics.assistance_state):
            assert await accepted(producer, topic, None)
        for topic in (topics.commands, topics.dead_letter):
            assert await accepted(producer, topic, b"\xff not a command")

    async def test_what_the_bridge_published_goes_in_again_but_not_when_broken(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: AIOKafkaProducer,
    ) -> None:
        """Events the bridge published are accepted again as they are, refused with a breach."""
        simulator.world.add_status_message("Available", messageText="Available")
        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        await running.ready()
        status, lifecycle = settings.topics.status_messages, settings.topics.lifecycle
        async with reader([status, lifecycle]) as kafka:
            await kafka.wait_for(lambda r: bool(kafka.events(status) and kafka.events(lifecycle)))
        await running.shutdown()
        for topic in (status, lifecycle):
            record = next(r for r in kafka.records if r.topic == topic)
            event = json.loads(record.value)
            breaches = [
                {**event, "type": event["type"] + "x"},  # a type the contract does not know
                {k: v for k, v in event.items() if k != "id"},  # a required attribute missing
                {**event, "data": {}},  # data without its contents
            ]
            headers = list(record.headers)
            assert await accepted(producer, topic, record.value, record.key, headers), topic
            for breach in breaches:
                value = json.dumps(breach).encode()
                assert not await accepted(producer, topic, value, record.key, headers), breach

    async def test_a_bridge_publishing_off_contract_events_is_refused(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any
    ) -> None:
        """Events under another type prefix break the schemas: nothing is delivered, not ready."""
        settings = bridge_settings(
            broker,
            simulator.url,
            events={"type_prefix": "com.example.off-contract"},
            pipeline={"outage_seconds": 1, "flush_timeout_seconds": 1},
        )
        running = start_bridge(settings)
        registry = running.bridge.metrics.registry

        def refused() -> bool:
            return (registry.get_sample_value("icws_bridge_publish_errors_total") or 0) > 0

        await running.until(refused, timeout=30)
        await running.until(lambda: not running.bridge.checks()["kafka_producer"].ok, timeout=30)
        published = registry.get_sample_value(
            "icws_bridge_records_published_total", {"kind": "event"}
        )
        assert not published
