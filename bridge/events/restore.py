"""Load the last-published state at start-up: the state topics, then the event topics' tails.

The state topics are the checkpoint: read every partition to its high-water mark and keep the
last record per key (Tansu, like a lagging Kafka, may not have compacted yet), through the Kafka
adapter's :func:`~bridge.kafka.read_to_end`.

The publisher writes a chunk's state records only after all its events are acknowledged, so a
crash can leave events on Kafka whose checkpoint was never written: at most one chunk per
partition. Reading that much of each event partition's end and taking any event newer than the
checkpoint closes the gap: the restarted bridge continues those entities' sequences instead of
reusing them, republishes nothing it already published, and re-writes the missing checkpoints
(the *repairs*).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.core.events import Contract, Record, decode_event, decode_state, state_record
from bridge.core.messages import Aggregate
from bridge.core.state import AggregateState
from bridge.errors import KafkaError
from bridge.events.publisher import CHUNK
from bridge.kafka import Message, read_to_end
from bridge.logs import get_logger
from bridge.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class Restored:
    """What was loaded: live entities per aggregate, the newest record's time, and repairs."""

    entities: Mapping[Aggregate, int]
    last_written: float | None
    repairs: list[Record] = field(default_factory=list)


async def restore(
    kafka: KafkaSettings, contract: Contract, states: Mapping[Aggregate, AggregateState]
) -> Restored:
    """Fill ``states`` from the state topics and the event topics' tails."""
    newest = 0
    checkpoints: dict[tuple[Aggregate, str], int] = {}
    tails: dict[tuple[Aggregate, str], tuple[dict[str, Any] | None, int, str]] = {}

    state_topics = {t: a for a, t in contract.state_topics.items()}
    event_topics = {t: a for a, t in contract.event_topics.items()}

    def checkpoint(record: Message) -> None:
        nonlocal newest
        if record.key is None:
            return
        aggregate = state_topics[record.topic]
        props, sequence = decode_state(aggregate, record.value)
        key = record.key.decode()
        states[aggregate].load(key, props, sequence)
        checkpoints[(aggregate, key)] = sequence
        newest = max(newest, record.timestamp)

    def tail(record: Message) -> None:
        if record.key is None or record.value is None:  # a tombstone carries no event
            return
        aggregate = event_topics[record.topic]
        decoded = decode_event(aggregate, record.value)
        slot = (aggregate, record.key.decode())
        if decoded[1] > tails.get(slot, (None, 0, ""))[1]:
            tails[slot] = decoded

    try:
        await read_to_end(kafka, state_topics, checkpoint, what="cannot restore state")
        await read_to_end(kafka, event_topics, tail, what="cannot restore state", last=CHUNK)
    except (ValueError, KeyError) as exc:
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
