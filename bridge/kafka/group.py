"""The group consumer behind the command consumer: subscribe, fetch, pause, resume, commit.

aiokafka calls the rebalance listener from inside ``getmany`` (or ``start``); the listener here
hands the partitions, as :class:`Partition` values, to the owner's async callbacks, and a revoke
is complete only when its callback returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.protocol.group import LeaveGroupRequest

from bridge.kafka.clients import TRANSLATED, Message, Partition, new_consumer, translated
from bridge.settings import KafkaSettings

Rebalanced = Callable[[list[Partition]], Awaitable[None]]


class GroupConsumer(Protocol):
    """What the command consumer needs of a group member; component tests hand in a fake."""

    def subscribe(self, topic: str, revoked: Rebalanced, assigned: Rebalanced) -> None: ...

    async def start(self) -> None: ...

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> Mapping[Partition, Sequence[Message]]: ...

    def pause(self, partition: Partition) -> None: ...

    def resume(self, partition: Partition) -> None: ...

    async def commit(self, partition: Partition, offset: int) -> None: ...

    def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has, as last known; None before its metadata came."""
        ...

    async def stop(self) -> None: ...


GroupConsumerFactory = Callable[[KafkaSettings], GroupConsumer]


class KafkaGroupConsumer:
    """A member of the bridge's consumer group, built from the Kafka settings."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._group = kafka.consumer_group
        self._client = new_consumer(
            kafka,
            group_id=kafka.consumer_group,
            session_timeout_ms=kafka.consumer_session_timeout_ms,
            heartbeat_interval_ms=kafka.consumer_heartbeat_interval_ms,
            rebalance_timeout_ms=kafka.consumer_rebalance_timeout_ms,
            max_poll_interval_ms=kafka.consumer_max_poll_interval_ms,
        )

    def subscribe(self, topic: str, revoked: Rebalanced, assigned: Rebalanced) -> None:
        self._client.subscribe([topic], listener=_Listener(revoked, assigned))

    async def start(self) -> None:
        """Join the group (assignments may already arrive within this call)."""
        with translated(f"cannot join consumer group {self._group}"):
            await self._client.start()

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> Mapping[Partition, Sequence[Message]]:
        with translated("cannot fetch commands"):
            batch = await self._client.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return {Partition(tp.topic, tp.partition): records for tp, records in batch.items()}

    def pause(self, partition: Partition) -> None:
        self._client.pause(TopicPartition(partition.topic, partition.partition))

    def resume(self, partition: Partition) -> None:
        self._client.resume(TopicPartition(partition.topic, partition.partition))

    async def commit(self, partition: Partition, offset: int) -> None:
        with translated("commit failed"):
            await self._client.commit(
                {TopicPartition(partition.topic, partition.partition): offset}
            )

    def partition_count(self, topic: str) -> int | None:
        # Known inside the assignment callback: the group's assignment was made from it.
        partitions = self._client.partitions_for_topic(topic)
        return len(partitions) if partitions else None

    async def stop(self) -> None:
        """Leave the group (after the revoke callback ran) and close the consumer."""
        leave_at_every_generation(self._client)
        await self._client.stop()


def leave_at_every_generation(consumer: AIOKafkaConsumer) -> None:
    """Have the consumer's close send LeaveGroup in generation 0 too.

    aiokafka leaves only when its generation is above 0, because Kafka numbers a group's first
    generation 1; Tansu numbers it 0. A member stopping in it then stays the group's leader until
    its session times out, and the next member's join waits for that leader's SyncGroup before it
    rebalances again: a restarted bridge took 11 s instead of 3 to be assigned. The leave still
    comes where aiokafka sends it, after the revoke callback has stopped the accounts.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    leave = getattr(coordinator, "_maybe_leave_group", None)
    if coordinator is None or leave is None:
        return  # never started, or an aiokafka without this hook: its own leave stands

    async def leave_in_any_generation() -> None:
        if coordinator.generation == 0 and coordinator.member_id:
            await _send_leave(coordinator)
        await leave()  # resets the generation (and leaves itself in later generations)

    coordinator._maybe_leave_group = leave_in_any_generation


async def _send_leave(coordinator: Any) -> None:
    """LeaveGroup for the coordinator's member, best effort; a static member never leaves."""
    # As in aiokafka's own rule: a static member (group.instance.id) keeps its place.
    if getattr(coordinator, "_group_instance_id", None) is not None:
        return
    with contextlib.suppress(*TRANSLATED):  # best effort, as aiokafka's own leave
        await coordinator._send_req(LeaveGroupRequest(coordinator.group_id, coordinator.member_id))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, revoked: Rebalanced, assigned: Rebalanced) -> None:
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._revoked([Partition(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._assigned([Partition(tp.topic, tp.partition) for tp in assigned])
