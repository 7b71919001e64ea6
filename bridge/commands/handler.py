"""Handles one command record: dead-letter it, repeat its result, expire, recover, or run it.

For each record :meth:`CommandHandler.handle` decodes (``core/commands.py``), and then either
sends the record to the dead-letter topic, or asks the journal what the command id has come to
and acts on the decision (see the theory of operation in ``core/journal_entries.py``): execute
(``runner.py``: as the command's owner, resolved from the record key by ``core/ownership.py``,
or rejected when it has none here), expire, repeat the stored result, or recover after a crash
(in the owner's view). What it comes to is
journaled and published by ``results.py``. ``handle`` returns once everything the record causes
is acknowledged by Kafka, so the consumer may commit its offset.

One id is handled by one task at a time (:meth:`CommandHandler._single_flight`): a second record
with the same id, from another partition or redelivered after a rebalance, waits and then finds
the first one's result in the journal. While a record is handled, ``command_id`` and
``command_type`` are bound in the structlog context, so every line it causes names them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import assert_never

from structlog.contextvars import bound_contextvars

from bridge.commands.ownership import Gate, Revoked
from bridge.commands.results import JournalStore, Producer, Results
from bridge.commands.runner import Runner
from bridge.commands.sessions import Caller, Sessions, View
from bridge.core import commands
from bridge.core.command_rules import EXPIRED_UNREAD, Problem, Verdict
from bridge.core.commands import Command, DeadLetter, Position, Ref
from bridge.core.events import Contract
from bridge.core.journal_entries import Execute, Expire, Finished, Recover, Repeat, decide
from bridge.core.ownership import Routing, RunAs
from bridge.kafka import partition_for
from bridge.metrics import Metrics
from bridge.settings import CommandSettings, TopicSettings

__all__ = [
    "Caller",
    "CommandHandler",
    "Gate",
    "Incoming",
    "Revoked",
    "Sessions",
    "View",
]


@dataclass(frozen=True, slots=True)
class Incoming:
    """A command record as read: where from, key, value, headers, timestamp (Unix seconds).

    ``partitions`` is how many partitions its topic has, when known.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: float
    partitions: int | None = None

    @property
    def position(self) -> Position:
        return Position(self.topic, self.partition, self.offset)

    @property
    def owner_key(self) -> str | None:
        """The key as text: the owning user id, when the sender keys by it."""
        return None if self.key is None else self.key.decode(errors="replace")

    @property
    def routing(self) -> Routing:
        """Where the record came and where the default partitioner puts its key."""
        if self.key is None or not self.partitions:
            return Routing(self.partition)
        return Routing(self.partition, partition_for(self.key, self.partitions))


@contextlib.contextmanager
def _bound(ref: Ref | None) -> Iterator[None]:
    """Name the command in every log line while its record is handled."""
    if ref is None:
        yield
        return
    with bound_contextvars(command_id=ref.id, command_type=ref.kind):
        yield


class CommandHandler:
    """Handles command records, one at a time per command id."""

    def __init__(
        self,
        settings: CommandSettings,
        topics: TopicSettings,
        contract: Contract,
        sessions: Sessions,
        journal: JournalStore,
        producer: Producer,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._contract = contract
        self._journal = journal
        self._clock = clock
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self.instance = uuid.uuid4().hex
        self._results = Results(topics, contract, journal, producer, metrics, clock)
        self._runner = Runner(settings, sessions, journal, producer, self.instance, clock)

    async def handle(self, incoming: Incoming, gate: Gate) -> None:
        """Everything one record causes, acknowledged by Kafka; Revoked if it must be left."""
        read_at = self._clock()
        decoded = commands.decode(
            incoming.value,
            contract=self._contract,
            written_at=incoming.timestamp,
            default_deadline=self._settings.default_deadline_seconds,
            max_deadline=self._settings.max_deadline_seconds,
            max_bytes=self._settings.max_record_bytes,
        )
        match decoded:
            case DeadLetter(ref=ref):
                with _bound(ref):
                    await self._results.dead_letter(
                        decoded, incoming.key, incoming.value, incoming.headers, incoming.position
                    )
                    if ref is not None:
                        await self._single_flight(
                            ref.id,
                            functools.partial(
                                self._reject_invalid, ref, decoded, incoming, read_at
                            ),
                        )
            case Command(ref=ref):
                with _bound(ref):
                    await self._single_flight(
                        ref.id,
                        functools.partial(self._run, decoded, incoming, gate, read_at),
                    )
            case unexpected:
                assert_never(unexpected)

    async def _single_flight(self, command_id: str, work: Callable[[], Awaitable[None]]) -> None:
        while (running := self._inflight.get(command_id)) is not None:
            await asyncio.wait([running])  # not cancelled with this task; the owner resolves it
        done = asyncio.get_running_loop().create_future()
        self._inflight[command_id] = done
        try:
            await work()
        finally:
            del self._inflight[command_id]
            done.set_result(None)

    async def _run(self, command: Command, incoming: Incoming, gate: Gate, read_at: float) -> None:
        position = incoming.position
        decision = decide(
            self._journal.get(command.ref.id), command.deadline, self._clock(), position
        )
        attempts: int | None
        user: str | None = None
        match decision:
            case Repeat():
                await self._results.repeat(command.ref, decision)
                return
            case Expire():
                verdict, attempts = EXPIRED_UNREAD, 0
            case Recover(entry=started):
                recovered = await self._runner.recover(command, started, gate)
                match recovered:
                    case Finished():
                        await self._results.repeat(command.ref, Repeat(recovered, False))
                        return
                    case Verdict():
                        verdict, attempts = recovered, None
                        user = self._runner.started_by(started)
                    case unexpected:
                        assert_never(unexpected)
            case Execute():
                verdict, attempts, user = await self._execute(command, incoming, gate)
            case unexpected:
                assert_never(unexpected)
        await self._results.finish(
            command.ref,
            verdict,
            command.assistance_id,
            user,
            command.deadline,
            attempts,
            position,
            read_at,
        )

    async def _execute(
        self, command: Command, incoming: Incoming, gate: Gate
    ) -> tuple[Verdict, int, str | None]:
        """Run as the owner: its verdict, ICWS calls made, and the owner (None if none)."""
        owner = await self._runner.owner(command, incoming.owner_key, incoming.routing, gate)
        match owner:
            case RunAs(user=user):
                with bound_contextvars(user=user):
                    verdict, attempts = await self._runner.execute(
                        command, incoming.position, gate, user
                    )
                return verdict, attempts, user
            case Verdict():
                return owner, 0, None
            case unexpected:
                assert_never(unexpected)

    async def _reject_invalid(
        self, ref: Ref, letter: DeadLetter, incoming: Incoming, read_at: float
    ) -> None:
        entry = self._journal.get(ref.id)
        if isinstance(entry, Finished):
            await self._results.repeat(ref, Repeat(entry, entry.position == incoming.position))
            return
        if entry is not None:
            # The id is in doubt from a valid record not yet finished; that record, redelivered
            # since it was never committed, settles it. This one adds nothing.
            self._results.count_duplicate(ref.kind)
            return
        verdict = Verdict("rejected", Problem(f"{letter.reason}: {letter.detail}"))
        await self._results.finish(
            ref, verdict, letter.assistance_id, None, None, 0, incoming.position, read_at
        )
