"""End to end: a stopping bridge leaves its consumer group, even in the group's first generation.

Tansu numbers a new group's first generation 0, where aiokafka's own close does not send
LeaveGroup (it leaves only above 0, as Kafka starts at 1). A member that does not leave stays
the group's leader, and a restarted bridge's join waits for it. The broker's DescribeGroups says
who is still a member.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bridge.embedded_broker import EmbeddedBroker
from bridge.kafka.clients import Partition
from bridge.kafka.group import KafkaGroupConsumer
from tests.conftest import bridge_settings

pytestmark = pytest.mark.e2e

TOPIC = "leave-commands"


async def members(admin: AIOKafkaAdminClient, group: str) -> list[str]:
    """The member ids the broker lists for ``group``."""
    (response,) = await admin.describe_consumer_groups([group])
    ((_error, _group, _state, _type, _protocol, listed),) = response.groups
    return [member[0] for member in listed]


async def joined(consumer: KafkaGroupConsumer) -> None:
    """Subscribe, start and poll until the group assigned the consumer its partition."""
    assigned = asyncio.Event()

    async def on_revoked(_partitions: list[Partition]) -> None:
        return None

    async def on_assigned(partitions: list[Partition]) -> None:
        if partitions:
            assigned.set()

    consumer.subscribe(TOPIC, on_revoked, on_assigned)
    await consumer.start()
    while not assigned.is_set():
        await consumer.getmany(timeout_ms=100, max_records=10)


async def test_a_stopped_member_is_no_longer_in_the_group(broker: EmbeddedBroker) -> None:
    """Joined, then stopped: the broker lists it as a member before and no member after."""
    kafka = bridge_settings(broker, "http://127.0.0.1:1").kafka
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, 1, 1)])
        consumer = KafkaGroupConsumer(kafka)
        try:
            await joined(consumer)
            assert len(await members(admin, kafka.consumer_group)) == 1
        finally:
            await consumer.stop()
        assert await members(admin, kafka.consumer_group) == []
    finally:
        await admin.close()
