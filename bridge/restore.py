"""Load the last-published state from the compacted state topics into the core's caches.

Read every partition from the beginning to its high-water mark and keep the last record per key
(Tansu, like a lagging Kafka, may not have compacted yet). ``highwater`` is used rather than
``end_offsets``, which some brokers get wrong for batches of several records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError as AioKafkaError

from bridge.core.events import decode_state
from bridge.core.messages import Aggregate
from bridge.core.state import AggregateState
from bridge.errors import KafkaError
from bridge.logs import get_logger
from bridge.publisher import client_options
from bridge.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class Restored:
    """What was loaded: live entities per aggregate, and the newest record's time."""

    entities: Mapping[Aggregate, int]
    last_written: float | None


async def restore(
    kafka: KafkaSettings,
    state_topics: Mapping[Aggregate, str],
    states: Mapping[Aggregate, AggregateState],
) -> Restored:
    """Fill ``states`` from the state topics."""
    consumer = AIOKafkaConsumer(
        **client_options(kafka), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    newest = 0
    try:
        await consumer.start()
        by_topic = {topic: aggregate for aggregate, topic in state_topics.items()}
        partitions = [
            TopicPartition(topic, p)
            for topic in by_topic
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if partitions:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while not await _caught_up(consumer, partitions):
                batch = await consumer.getmany(*partitions, timeout_ms=500)
                for tp, records in batch.items():
                    aggregate = by_topic[tp.topic]
                    for record in records:
                        if record.key is None:
                            continue
                        props, sequence = decode_state(aggregate, record.value)
                        states[aggregate].load(record.key.decode(), props, sequence)
                        newest = max(newest, record.timestamp)
    except (AioKafkaError, OSError, ValueError, KeyError) as exc:
        raise KafkaError(f"cannot restore state: {type(exc).__name__}: {exc}") from None
    finally:
        await consumer.stop()
    counts = {aggregate: len(state.entities) for aggregate, state in states.items()}
    get_logger("bridge.restore").info("state.restored", entities=counts)
    return Restored(counts, newest / 1000 if newest else None)


async def _caught_up(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    # The high-water mark is known once a fetch for the partition has returned.
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
