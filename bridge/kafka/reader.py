"""Read partitions to their high-water mark: the state at start-up and the command journal.

One pass: a fresh consumer (after ``assign()`` a consumer keeps metadata only of what it
assigned, and its first fetch happens after the call, so the high-water marks it sees include
everything acknowledged before the call), every partition of the topics assigned and positioned
(at the beginning, at remembered positions, or ``last`` records before the end), then records
handed to ``visit`` until each partition's position reaches its high-water mark.

``highwater()`` is used, not ``end_offsets()``, which some brokers (Tansu) get wrong for batches
of several records. The high-water mark is known only once a fetch for the partition returned.

No fixed waits: the broker holds a fetch of a partition with nothing new for
``fetch_max_wait_ms``, which is only time lost here (the reader stops at the end, it never waits
for new records), so that is 10 ms, and each poll returns after 10 ms at most. A cold start
reads 13 empty topics in 16-32 ms instead of 209 ms per pass. Not less: Tansu answers a fetch
with ``max_wait_ms`` 0 with no partitions at all (so no high-water mark is ever learnt), and
with 1 ms it was seen to stall a start-up under load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

from bridge.kafka.clients import Message, Partition, new_consumer, translated
from bridge.settings import KafkaSettings

POLL_MS = 10
"""Longest a fetch or a poll waits for records that are not there (see the module's doc)."""
BATCH = 1000
"""Records decoded per poll: a fetch may bring megabytes (Tansu sends up to 5 MB whatever the
partition limit), and aiokafka decodes only what a poll asks for, so this bounds the records
alive at once."""


async def read_to_end(
    kafka: KafkaSettings,
    topics: Iterable[str],
    visit: Callable[[Message], None],
    *,
    what: str,
    positions: Mapping[Partition, int] | None = None,
    last: int | None = None,
) -> None:
    """Visit every record of the topics from where asked up to the high-water mark.

    Reading starts at ``positions`` (0 for a partition not in it) when given, else ``last``
    records before the end of each partition when given, else at the beginning. Errors:
    KafkaError, ``what`` first.
    """
    consumer = new_consumer(kafka, fetch_max_wait_ms=POLL_MS)
    with translated(what):
        try:
            await consumer.start()
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            if partitions:
                consumer.assign(partitions)
                await _position(consumer, partitions, positions, last)
                await _visit(consumer, partitions, visit)
        finally:
            await consumer.stop()


async def _position(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    positions: Mapping[Partition, int] | None,
    last: int | None,
) -> None:
    if positions is not None:
        for tp in partitions:
            consumer.seek(tp, positions.get(Partition(tp.topic, tp.partition), 0))
        return
    await consumer.seek_to_beginning(*partitions)
    if last is not None:
        while any(consumer.highwater(tp) is None for tp in partitions):
            await consumer.getmany(*partitions, timeout_ms=POLL_MS, max_records=1)
        for tp in partitions:
            consumer.seek(tp, max((consumer.highwater(tp) or 0) - last, 0))


async def _visit(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    visit: Callable[[Message], None],
) -> None:
    while not await _caught_up(consumer, partitions):
        batch = await consumer.getmany(*partitions, timeout_ms=POLL_MS, max_records=BATCH)
        for records in batch.values():
            for record in records:
                visit(record)


async def _caught_up(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
