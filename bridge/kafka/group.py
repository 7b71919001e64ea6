"""The group consumer behind the command consumer: subscribe, fetch, pause, resume, commit.

aiokafka calls the rebalance listener from inside ``getmany`` (or ``start``); the listener here
hands the partitions, as :class:`Partition` values, to the owner's async callbacks, and a revoke
is complete only when its callback returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition

from bridge.kafka.clients import Message, Partition, new_consumer, translated
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

    def generation(self) -> int:
        """The group generation this member is in: -1 when it is none (not joined, or evicted)."""
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

    def generation(self) -> int:
        # aiokafka keeps it on its coordinator only (no public accessor); it resets it to -1
        # when the group no longer knows this member, before the revoke callback of the rejoin.
        coordinator = getattr(self._client, "_coordinator", None)
        generation = getattr(coordinator, "generation", -1)
        return generation if isinstance(generation, int) else -1

    async def stop(self) -> None:
        await self._client.stop()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, revoked: Rebalanced, assigned: Rebalanced) -> None:
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._revoked([Partition(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._assigned([Partition(tp.topic, tp.partition) for tp in assigned])
