"""The command journal, read side: what every command id has come to, loaded from Kafka.

Entries are written by the executor (``started`` before the first ICWS call, ``finished`` before
the result is published) and remembered here at once. :meth:`Journal.catch_up` reads what is new
on the journal topic since the last read, up to its high-water mark: all of it at start-up (like
``restore.py``), and again whenever partitions of the command topic are assigned, so that
entries another bridge wrote before giving a partition up are known before any of its records
is handled. Each catch-up is one pass of the Kafka adapter's :func:`~bridge.kafka.read_to_end`
(a fresh consumer, so everything acknowledged before the call is read).

The topic is compacted but may not be compacted yet (Tansu never is): the last record per key
wins, and :func:`bridge.core.journal_entries.merge` keeps ``finished`` over ``started`` whatever the
reading order.
"""

from __future__ import annotations

import asyncio

from bridge.core.journal_entries import Entry, merge, read_entry
from bridge.kafka import Message, Partition, read_to_end
from bridge.logs import get_logger
from bridge.settings import KafkaSettings


class Journal:
    """Every known command id's entry, and where reading the journal topic got to."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self._kafka = kafka
        self.topic = topic
        self._entries: dict[str, Entry] = {}
        self._positions: dict[Partition, int] = {}
        self._reading = asyncio.Lock()
        self._log = get_logger("bridge.journal")

    def get(self, command_id: str) -> Entry | None:
        return self._entries.get(command_id)

    def remember(self, entry: Entry) -> None:
        """Take an entry read from the topic, or one this bridge wrote (and Kafka acknowledged)."""
        self._entries[entry.command_id] = merge(self._entries.get(entry.command_id), entry)

    def __len__(self) -> int:
        return len(self._entries)

    async def catch_up(self) -> int:
        """Read the journal from where the last read ended to its end; the records read."""
        async with self._reading:  # one reader at a time; a second caller waits and re-reads
            read = 0

            def visit(record: Message) -> None:
                nonlocal read
                self._take(record)
                read += 1

            await read_to_end(
                self._kafka,
                [self.topic],
                visit,
                what="cannot read the command journal",
                positions=self._positions,
            )
        if read:
            self._log.debug("journal.caught_up", records=read, commands=len(self._entries))
        return read

    def _take(self, record: Message) -> None:
        entry = read_entry(record.value)
        if entry is not None:
            self.remember(entry)
        self._positions[Partition(record.topic, record.partition)] = record.offset + 1
