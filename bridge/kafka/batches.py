"""Records packed into producer batches per (topic, partition), in order, for one send.

Sending a list of records one ``send`` at a time costs aiokafka a future, a metadata lookup and a
partitioner call per record, as much as the bridge's own work per event (BENCHMARKS.md, issue
#15). Here the records are grouped by the partition the default partitioner would give their
key (:func:`bridge.kafka.partition_for`), so one key's records stay on one partition and, in
their order, in one batch or in consecutive batches of that partition; each batch has one
future. A batch fails or succeeds as a whole, so every record of it gets the batch's outcome.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, Protocol

from bridge.core.events import Record
from bridge.kafka.partitioner import partition_for


class Builder(Protocol):
    """What is used of aiokafka's ``BatchBuilder``: append until it says it is full."""

    def append(
        self, *, timestamp: float | None, key: bytes | None, value: bytes | None, headers: Any
    ) -> Any:
        """A metadata object once added; None when the batch is full (never when empty)."""
        ...

    def close(self) -> None:
        """No more records: the batch goes without lingering for more."""
        ...


@dataclass(slots=True)
class Batch:
    """Records of one partition, in send order, in one builder; ``indices`` into the send."""

    topic: str
    partition: int
    builder: Builder
    indices: list[int] = field(default_factory=list)


def pack(
    records: Sequence[Record],
    partitions: Mapping[str, Sequence[int]],
    new_builder: Callable[[], Builder],
    partition_of: Callable[[bytes, int], int] = partition_for,
) -> list[Batch]:
    """Group ``records`` into batches per partition, keeping the order within each partition.

    ``partitions`` gives each topic's partition ids, sorted (a topic missing here is an error
    of the caller). Records without a key go, as with the default partitioner, to a random
    partition: one per topic per call, so they too keep their order. ``partition_of`` is
    :func:`~bridge.kafka.partition_for` or a memo of it. Every batch is closed:
    nothing more will be added, so none waits out the producer's linger.
    """
    batches: list[Batch] = []
    open_batches: dict[tuple[str, int], Batch] = {}
    keyless: dict[str, int] = {}
    for index, record in enumerate(records):
        ids = partitions[record.topic]
        if record.key is None:
            partition = keyless.setdefault(record.topic, random.choice(ids))
        else:
            partition = ids[partition_of(record.key, len(ids))]
        slot = (record.topic, partition)
        batch = open_batches.get(slot)
        if batch is None or not _append(batch, record, index):
            # Full (or none yet): the next batch of this partition continues where it stopped.
            batch = Batch(record.topic, partition, new_builder())
            open_batches[slot] = batch
            batches.append(batch)
            # An empty batch takes any record (aiokafka's builder), however large: the broker
            # judges its size, as for a record sent alone.
            _append(batch, record, index)
    for batch in batches:
        batch.builder.close()
    return batches


def _append(batch: Batch, record: Record, index: int) -> bool:
    added = batch.builder.append(
        timestamp=None, key=record.key, value=record.value, headers=list(record.headers)
    )
    if added is None:
        return False
    batch.indices.append(index)
    return True


def interleaved(batches: Sequence[Batch]) -> Iterator[Batch]:
    """Each partition's first batch, then each one's second, and so on.

    aiokafka holds a partition's next batch until the one before it is taken by its sender, so
    submitting one partition's batches back to back would wait where another partition's batch
    could already go; the order within a partition is kept.
    """
    by_partition: dict[tuple[str, int], list[Batch]] = {}
    for batch in batches:
        by_partition.setdefault((batch.topic, batch.partition), []).append(batch)
    for row in zip_longest(*by_partition.values()):
        yield from (batch for batch in row if batch is not None)
