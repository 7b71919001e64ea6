"""Load the last-published state at start-up: the state topics, then the event topics' tails.

The state topics are the checkpoint: read every partition to its high-water mark and keep the
last record per key (Tansu, like a lagging Kafka, may not have compacted yet). ``highwater`` is
used rather than ``end_offsets``, which some brokers get wrong for batches of several records.

The publisher writes a chunk's state records only after all its events are acknowledged, so a
crash can leave events on Kafka whose checkpoint was never written: at most one chunk per
partition. Reading that much of each event partition's end and taking any event newer than the
checkpoint closes the gap: the restarted bridge continues those entities' sequences instead of
reusing them, republishes nothing it already published, and re-writes the missing checkpoints
(the *repairs*).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError as AioKafkaError

from bridge.core.events import Contract, Record, decode_event, decode_state, state_record
from bridge.core.messages import Aggregate
from bridge.core.state import AggregateState
from bridge.errors import KafkaError
from bridge.events.publisher import CHUNK
from bridge.kafka import client_options
from bridge.logs import get_logger
from bridge.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class Restored:
    """What was loaded: live entities per aggregate, the newest record's time, and repairs."""

    entities: Mapping[Aggregate, int]
    last_written: float | None
    repairs: list[Record] = field(default_factory=list)


Visit = Callable[[Aggregate, Any], None]


async def restore(
    kafka: KafkaSettings, contract: Contract, states: Mapping[Aggregate, AggregateState]
) -> Restored:
    """Fill ``states`` from the state topics and the event topics' tails."""
    newest = 0
    checkpoints: dict[tuple[Aggregate, str], int] = {}
    tails: dict[tuple[Aggregate, str], tuple[dict[str, Any] | None, int, str]] = {}

    def checkpoint(aggregate: Aggregate, record: Any) -> None:
        nonlocal newest
        props, sequence = decode_state(aggregate, record.value)
        key = record.key.decode()
        states[aggregate].load(key, props, sequence)
        checkpoints[(aggregate, key)] = sequence
        newest = max(newest, record.timestamp)

    def tail(aggregate: Aggregate, record: Any) -> None:
        decoded = decode_event(aggregate, record.value)
        slot = (aggregate, record.key.decode())
        if decoded[1] > tails.get(slot, (None, 0, ""))[1]:
            tails[slot] = decoded

    try:
        await _read(kafka, {t: a for a, t in contract.state_topics.items()}, checkpoint, None)
        await _read(kafka, {t: a for a, t in contract.event_topics.items()}, tail, CHUNK)
    except (AioKafkaError, OSError, ValueError, KeyError) as exc:
        raise KafkaError(f"cannot restore state: {type(exc).__name__}: {exc}") from None
    repairs = []
    for (aggregate, key), (props, sequence, event_type) in sorted(tails.items()):
        if sequence > checkpoints.get((aggregate, key), 0):
            states[aggregate].load(key, props, sequence)
            repairs.append(state_record(contract, aggregate, key, props, sequence, event_type))
    counts = {aggregate: len(state.entities) for aggregate, state in states.items()}
    get_logger("bridge.events.restore").info(
        "state.restored", entities=counts, repairs=len(repairs)
    )
    return Restored(counts, newest / 1000 if newest else None, repairs)


async def _read(
    kafka: KafkaSettings, topics: Mapping[str, Aggregate], visit: Visit, last: int | None
) -> None:
    """Visit every keyed record of the topics (only the ``last`` ones of each partition)."""
    # A fresh consumer per pass: after assign() one keeps metadata only of what it assigned.
    consumer = AIOKafkaConsumer(
        **client_options(kafka),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,  # an empty partition answers after this; start-up waits on it
    )
    await consumer.start()
    try:
        await _visit(consumer, topics, visit, last)
    finally:
        await consumer.stop()


async def _visit(
    consumer: AIOKafkaConsumer, topics: Mapping[str, Aggregate], visit: Visit, last: int | None
) -> None:
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    if not partitions:
        return
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    if last is not None:
        # The high-water mark is known only once a fetch for the partition has returned.
        while any(consumer.highwater(tp) is None for tp in partitions):
            await consumer.getmany(*partitions, timeout_ms=100, max_records=1)
        for tp in partitions:
            consumer.seek(tp, max((consumer.highwater(tp) or 0) - last, 0))
    while not await _caught_up(consumer, partitions):
        batch = await consumer.getmany(*partitions, timeout_ms=200)
        for tp, records in batch.items():
            for record in records:
                if record.key is not None:
                    visit(topics[tp.topic], record)


async def _caught_up(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
