"""The command journal, read side: what every command id has come to, loaded from Kafka.

Entries are written by the executor (``started`` before the first ICWS call, ``finished`` before
the result is published) and remembered here at once. :meth:`Journal.catch_up` reads what is new
on the journal topic since the last read, up to its high-water mark: all of it at start-up (like
``restore.py``), and again whenever partitions of the command topic are assigned, so that
entries another bridge wrote before giving a partition up are known before any of its records
is handled. Each catch-up uses a fresh consumer: its first fetch happens after the call, so the
high-water marks it sees include everything acknowledged before the call.

The topic is compacted but may not be compacted yet (Tansu never is): the last record per key
wins, and :func:`bridge.core.journal_entries.merge` keeps ``finished`` over ``started`` whatever the
reading order. ``highwater`` is used, not ``end_offsets``, which some brokers get wrong.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError as AioKafkaError

from bridge.core.journal_entries import Entry, merge, read_entry
from bridge.errors import KafkaError
from bridge.kafka import client_options
from bridge.logs import get_logger
from bridge.settings import KafkaSettings


class Journal:
    """Every known command id's entry, and where reading the journal topic got to."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self._kafka = kafka
        self.topic = topic
        self._entries: dict[str, Entry] = {}
        self._positions: dict[int, int] = {}
        self._reading = asyncio.Lock()
        self._log = get_logger("bridge.journal")

    def get(self, command_id: str) -> Entry | None:
        return self._entries.get(command_id)

    def remember(self, entry: Entry) -> None:
        """Take an entry this bridge has just written (and Kafka acknowledged)."""
        self._entries[entry.command_id] = merge(self._entries.get(entry.command_id), entry)

    def __len__(self) -> int:
        return len(self._entries)

    async def catch_up(self) -> int:
        """Read the journal from where the last read ended to its end; the records read."""
        async with self._reading:  # one reader at a time; a second caller waits and re-reads
            consumer = AIOKafkaConsumer(
                **client_options(self._kafka),
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=50,  # an empty partition answers at once, not after 500 ms
            )
            read = 0
            try:
                await consumer.start()
                partitions = [
                    TopicPartition(self.topic, p)
                    for p in sorted(consumer.partitions_for_topic(self.topic) or ())
                ]
                if partitions:
                    consumer.assign(partitions)
                    for tp in partitions:
                        consumer.seek(tp, self._positions.get(tp.partition, 0))
                    read = await self._read(consumer, partitions)
            except (AioKafkaError, OSError) as exc:
                raise KafkaError(f"cannot read the command journal: {type(exc).__name__}") from None
            finally:
                await consumer.stop()
        if read:
            self._log.debug("journal.caught_up", records=read, commands=len(self._entries))
        return read

    async def _read(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> int:
        read = 0
        while not await _caught_up(consumer, partitions):
            batch = await consumer.getmany(*partitions, timeout_ms=50)
            for tp, records in batch.items():
                for record in records:
                    entry = read_entry(record.value)
                    if entry is not None:
                        self._entries[entry.command_id] = merge(
                            self._entries.get(entry.command_id), entry
                        )
                    read += 1
                    self._positions[tp.partition] = record.offset + 1
        return read


async def _caught_up(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    # The high-water mark is known once a fetch for the partition has returned.
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
