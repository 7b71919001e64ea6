"""End to end: the Kafka adapter's batch sends against a real broker land where ``send`` would.

Records of many keys, interleaved, go through :meth:`bridge.kafka.producers.Producer.send_all`
to two topics of different partition counts. Read back with a plain consumer, each record is on
the partition aiokafka's ``DefaultPartitioner`` gives its key (what a bare ``send`` does), and
each key's records are in the order they were sent.
"""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from bridge.core.events import Record
from bridge.embedded_broker import EmbeddedBroker
from bridge.kafka import producer_options
from bridge.kafka.producers import Producer
from tests.conftest import Reader, bridge_settings

pytestmark = pytest.mark.e2e

TOPICS = {"batches-four": 4, "batches-two": 2}
KEYS = [f"user/{n:04d}" for n in range(40)]


async def create_topics(bootstrap: str) -> None:
    """The two test topics, with their partition counts."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, n, 1) for t, n in TOPICS.items()])
    finally:
        await admin.close()


def default_partition(topic: str, key: bytes) -> int:
    """Where a bare ``AIOKafkaProducer.send`` puts the key (aiokafka's default partitioner)."""
    partitions = list(range(TOPICS[topic]))
    chosen: int = DefaultPartitioner()(key, partitions, partitions)
    return chosen


async def test_batches_land_on_the_default_partition_in_order(broker: EmbeddedBroker) -> None:
    """600 records, 40 keys interleaved, two topics: default partitions, per-key order kept."""
    await create_topics(broker.bootstrap)
    settings = bridge_settings(broker, "http://127.0.0.1:1")
    # Values of ~700 bytes, as the bridge's events, so one send spans many batches.
    records = [
        Record(topic, key.encode(), f"{key}#{n:03d}".encode().ljust(700, b"."), (), "test")
        for n in range(15)
        for topic in TOPICS
        for key in KEYS[n % 2 :: 2] + KEYS[1 - n % 2 :: 2]
    ]
    producer = Producer(producer_options(settings.kafka))
    await producer.start()
    try:
        results = await producer.send_all(records)
    finally:
        await producer.stop()
    assert results == [None] * len(records)

    async with Reader(broker.bootstrap, list(TOPICS)) as reader:
        await reader.wait_for(lambda seen: len(seen) >= len(records), timeout=30)
    assert len(reader.records) == len(records)
    for read in reader.records:
        assert read.partition == default_partition(read.topic, read.key), read.key
    for topic in TOPICS:
        for key in KEYS:
            sent = [r.value for r in records if r.topic == topic and r.key == key.encode()]
            got = sorted(
                (r for r in reader.records if r.topic == topic and r.key == key.encode()),
                key=lambda r: r.offset,
            )
            assert [r.value for r in got] == sent
