"""The command consumer: reads the command topic in the consumer group, one worker per partition.

The poll loop only fetches and hands records to per-partition workers; it never waits for a
command, so a slow one (a deadline spent waiting for the ICWS session) cannot push the bridge out
of its group. A worker handles its partition's records in offset order (commands about one
assistance request, keyed alike, stay in order) and commits each offset only after everything
the record caused is acknowledged by Kafka. A partition whose worker falls behind is paused.

Rebalances: when partitions are revoked, their workers stop taking records, and the rebalance
waits until no ``started`` entry is being written for them (see :class:`Gate`); a command
already sent to ICWS finishes and publishes its result, its offset left for the new owner, who
finds the result in the journal. When partitions are assigned, the journal is read up to its end
before any of their records is handled.

Accounts (:class:`Ownership`, the fleet): a replica holds the ICWS accounts the default
partitioner puts on its partitions. ``assigned`` starts them beside the poll loop; the new
workers wait for it, so owners are known before the first record. On revoke, once the gates are
closed, the rebalance waits (up to ``commands.shutdown_grace_seconds``) for commands already sent
to ICWS, then for ``revoked``, which parks those accounts (nothing more published, their records
flushed) until the next assignment resumes or stops them (both name the group generation). A
revoke never waits for a start. Leaving the group, ``released`` stops every account held.

Shutdown: stop polling; commands not yet started are left (uncommitted, so they run after the
restart); commands already started get ``commands.shutdown_grace_seconds`` to finish and commit;
what is still running then is cancelled and recovered by the next start from the journal.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bridge import errors, retries
from bridge.commands.handler import Incoming
from bridge.commands.ownership import Gate, Revoked
from bridge.kafka import GroupConsumer, GroupConsumerFactory, KafkaGroupConsumer, Message, Partition
from bridge.logs import get_logger
from bridge.readiness import Check
from bridge.settings import CommandSettings, KafkaSettings


class RecordHandler(Protocol):
    """Handles one command record; returns once all it caused is acknowledged."""

    async def handle(self, incoming: Incoming, gate: Gate) -> None: ...


class JournalReader(Protocol):
    """Reads the command journal up to its end (the journal)."""

    async def catch_up(self) -> int: ...


class Ownership(Protocol):
    """Holds the accounts of the partitions assigned (the fleet); every call is awaited."""

    async def assigned(self, partitions: Sequence[int], total: int, generation: int) -> None:
        """Start the accounts of these partitions (of ``total``), given in group ``generation``."""

    async def revoked(self, partitions: Sequence[int], generation: int) -> None:
        """These partitions, held in ``generation`` (-1: evicted), go: nothing more published."""

    async def released(self, partitions: Sequence[int]) -> None:
        """Leaving the group: stop the accounts of these partitions; return once stopped."""


@dataclass(eq=False)
class _Worker:
    tp: Partition
    consumer: GroupConsumer
    gate: Gate = field(default_factory=Gate)
    queue: deque[Message] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    paused: bool = False
    busy: bool = False  # handling a record (not waiting for the journal or the accounts)
    task: asyncio.Task[None] | None = None


class CommandConsumer:
    """Consumes the command topic until stopped; recreates its Kafka consumer after failures."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        settings: CommandSettings,
        handler: RecordHandler,
        journal: JournalReader,
        consumers: GroupConsumerFactory = KafkaGroupConsumer,
        ownership: Ownership | None = None,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._settings = settings
        self._handler = handler
        self._journal = journal
        self._consumers = consumers
        self._ownership = ownership
        self._consumer: GroupConsumer | None = None
        self._workers: dict[Partition, _Worker] = {}
        self._leftovers: set[asyncio.Task[None]] = set()
        self._journal_read: asyncio.Task[None] | None = None
        self._owning: asyncio.Task[None] | None = None  # ownership.assigned, running
        self._owned: list[int] = []  # partitions whose accounts ownership holds
        self._revokes = 0  # an assignment made before the latest revoke is stale
        self._total: int | None = None  # partitions of the command topic
        self._stop = asyncio.Event()
        self._log = get_logger("bridge.commands.consumer")
        self.assigned: int | None = None  # partitions held; None while not in the group
        self._crash: BaseException | None = None
        self.problem = "not started"

    # --- health --------------------------------------------------------------------------

    @property
    def partitions(self) -> int | None:
        """How many partitions the command topic has, once known from an assignment."""
        return self._total

    def check(self) -> Check:
        """Ready once in the group with partitions assigned (and not stopping)."""
        if self.assigned is not None and not self._stop.is_set():
            return Check(True, f"{self.assigned} partition(s) of {self._topic} assigned")
        return Check(False, self.problem if self.assigned is None else "stopping")

    # --- running -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop polling; ``run`` then lets started commands finish (bounded) and returns."""
        self._stop.set()

    async def run(self) -> None:
        """Consume until stopped, starting over with a new Kafka consumer after a failure."""
        try:
            await retries.until_stopped(self._consume, self._stop, self._failed, retries.RESTART)
        finally:
            await self._finish_leftovers()

    def _failed(self, exc: Exception) -> bool:
        """Kafka trouble or a worker's bug: say so and start over (stamina paces it)."""
        if not isinstance(exc, errors.KafkaError | WorkerFailed):
            return False
        self.problem = f"command consumer failed: {type(exc).__name__}"
        self._log.error("command.consumer.failed", error=str(exc) or type(exc).__name__)
        return True

    async def _consume(self) -> None:
        consumer = self._consumers(self._kafka)
        consumer.subscribe(self._topic, self._revoked, functools.partial(self._assigned, consumer))
        self.problem = "joining the consumer group"
        self._crash = None
        self._consumer = consumer  # set first: the group may be joined within start()
        try:
            await consumer.start()
            self._log.info("command.consumer.started", group=self._kafka.consumer_group)
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=500)
                if self._crash is not None:
                    raise WorkerFailed(f"a command worker failed: {self._crash!r}")
                self._dispatch(consumer, batch)
            await self._wind_down()
        finally:
            # From here on assignments are ignored (stop() may still complete a rebalance), and
            # whatever runs finishes as a leftover; its offsets are the next owner's.
            self._consumer = None
            for worker in self._workers.values():
                self._retire(worker)
            self._workers.clear()
            self.assigned = None
            try:
                await self._release_all()  # before leaving the group
            finally:
                await consumer.stop()
            if self._journal_read is not None:
                self._journal_read.cancel()
                await asyncio.gather(self._journal_read, return_exceptions=True)

    def _dispatch(
        self, consumer: GroupConsumer, batch: Mapping[Partition, Sequence[Message]]
    ) -> None:
        for tp, records in batch.items():
            worker = self._workers.get(tp)
            if worker is None or not worker.gate.owned:
                continue  # revoked meanwhile: the next owner reads them from the committed offset
            worker.queue.extend(records)
            worker.wake.set()
            if len(worker.queue) >= self._settings.max_queued_records and not worker.paused:
                consumer.pause(tp)
                worker.paused = True

    # --- workers -------------------------------------------------------------------------

    async def _work(self, worker: _Worker) -> None:
        for shared in (self._journal_read, self._owning):
            if shared is not None:
                await asyncio.wait([shared])  # never cancels the shared task
        while worker.gate.owned:
            if not worker.queue:
                worker.wake.clear()
                await worker.wake.wait()
                continue
            record = worker.queue.popleft()
            if worker.paused and len(worker.queue) <= self._settings.max_queued_records // 2:
                worker.consumer.resume(worker.tp)
                worker.paused = False
            worker.busy = True
            try:
                await self._handler.handle(_incoming(record, self._total), worker.gate)
            except Revoked:
                return
            except Exception as exc:
                # A bug, not a bad record (those are dead-lettered): start over with a new
                # consumer; the record comes again, and the journal keeps it from running twice.
                self._log.exception("command.worker.failed", partition=worker.tp.partition)
                self._crash = exc
                return
            worker.busy = False
            await self._commit(worker, record.offset + 1)

    async def _commit(self, worker: _Worker, offset: int) -> None:
        if not self._current(worker):
            return  # revoked or retired: committing could move the next owner's offset back
        try:
            await worker.consumer.commit(worker.tp, offset)
        except errors.KafkaError as exc:
            # Not fatal: the record comes again, and the journal makes that a repeat.
            self._log.warning(
                "command.commit_failed", partition=worker.tp.partition, error=str(exc)
            )

    def _current(self, worker: _Worker) -> bool:
        """Whether the worker still holds its partition on the consumer in use."""
        return self._workers.get(worker.tp) is worker and self._consumer is worker.consumer

    def _retire(self, worker: _Worker) -> None:
        worker.gate.owned = False
        worker.queue.clear()
        worker.wake.set()
        if worker.task is not None and not worker.task.done():
            self._leftovers.add(worker.task)
            worker.task.add_done_callback(self._leftovers.discard)

    async def _wind_down(self) -> None:
        """Stopping: no command starts any more; those started finish (bounded) and commit."""
        for worker in self._workers.values():
            worker.gate.owned = False
            worker.queue.clear()
            worker.wake.set()
        await self._finish_leftovers([w.task for w in self._workers.values() if w.task])

    async def _finish_leftovers(self, more: list[asyncio.Task[None]] | None = None) -> None:
        """At shutdown: let started commands finish within the grace period, then cancel."""
        tasks = [t for t in [*self._leftovers, *(more or [])] if not t.done()]
        if not tasks:
            return
        grace = self._settings.shutdown_grace_seconds
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if pending:
            self._log.error(
                "command.shutdown.abandoned",
                commands=len(pending),
                grace_seconds=grace,
                note="recovered from the journal at the next start",
            )

    # --- rebalances ----------------------------------------------------------------------

    async def _revoked(self, partitions: list[Partition]) -> None:
        generation = self._consumer.generation() if self._consumer is not None else -1
        self.assigned = None
        self.problem = "rebalancing"
        workers = [self._workers.pop(tp) for tp in partitions if tp in self._workers]
        for worker in workers:
            self._retire(worker)
        bound = self._kafka.consumer_rebalance_timeout_ms / 2000
        try:
            async with asyncio.timeout(bound):
                await asyncio.gather(*(worker.gate.close() for worker in workers))
        except TimeoutError:
            self._log.error("command.revoke.start_pending", partitions=len(workers))
        if self._ownership is not None:
            await self._finish_started([w.task for w in workers if w.task and w.busy])
            await self._release([tp.partition for tp in partitions], generation)

    async def _finish_started(self, tasks: list[asyncio.Task[None]]) -> None:
        """Let the revoked partitions' commands finish on their owners' sessions (bounded)."""
        running = [task for task in tasks if not task.done()]
        if not running:
            return
        grace = self._settings.shutdown_grace_seconds
        _, pending = await asyncio.wait(running, timeout=grace)
        if pending:
            # They go on as leftovers; the new owner recovers them through the journal.
            self._log.error("command.revoke.unfinished", commands=len(pending), grace_seconds=grace)

    async def _release_all(self) -> None:
        """Leaving the group: commands sent finish (bounded), then every account held stops."""
        if self._owned:
            await self._finish_started(list(self._leftovers))
            await self._release(list(self._owned))

    async def _release(self, partitions: list[int], generation: int | None = None) -> None:
        """Park the accounts of these partitions (no generation: leaving, stop them); no wait."""
        if self._ownership is None or not partitions:
            return
        self._revokes += 1  # a start still waiting for its turn will not begin
        released = set(partitions)
        self._owned = [p for p in self._owned if p not in released]
        if generation is None:
            await self._ownership.released(sorted(released))
        else:
            await self._ownership.revoked(sorted(released), generation)

    async def _assigned(self, consumer: GroupConsumer, partitions: list[Partition]) -> None:
        if self._consumer is not consumer:
            return  # this consumer is being closed
        if self._journal_read is not None:
            self._journal_read.cancel()  # its workers are retired; the new read covers it all
        self._journal_read = asyncio.create_task(self._read_journal(), name="command-journal")
        numbers = sorted(tp.partition for tp in partitions)
        self._own(consumer, numbers)
        for tp in partitions:
            worker = _Worker(tp, consumer)
            worker.task = asyncio.create_task(self._work(worker), name=f"commands-{tp.partition}")
            self._workers[tp] = worker
        self.assigned = len(partitions)
        self._log.info("command.partitions.assigned", partitions=numbers)

    def _own(self, consumer: GroupConsumer, partitions: list[int]) -> None:
        """Start the accounts of the assigned partitions beside the poll loop."""
        self._total = consumer.partition_count(self._topic) or self._total
        if self._ownership is None or not partitions:
            return
        total = self._total
        if total is None:  # cannot happen after an assignment; guessing could double an account
            self._crash = WorkerFailed(f"the partition count of {self._topic} is unknown")
            return
        self._owned = sorted({*self._owned, *partitions})
        start = functools.partial(
            self._ownership.assigned, sorted(partitions), total, consumer.generation()
        )
        self._owning = asyncio.create_task(
            self._start_accounts(start, self._owning, self._revokes), name="command-ownership"
        )

    async def _start_accounts(
        self,
        start: Callable[[], Awaitable[None]],
        previous: asyncio.Task[None] | None,
        revokes: int,
    ) -> None:
        """``start()`` once the previous start returned, unless a revoke came since ``revokes``."""
        if previous is not None:
            await asyncio.wait([previous])  # starts stay in order
        if revokes != self._revokes:
            return
        try:
            await start()
        except Exception as exc:
            # A bug in the fleet: start over with a new consumer, which releases and retakes.
            self._log.exception("command.ownership.failed")
            self._crash = exc

    async def _read_journal(self) -> None:
        """Read the journal up to its end (another bridge may have written to it)."""
        async for attempt in retries.forever(self._unreadable, retries.RESTART):
            with attempt:
                await self._journal.catch_up()

    def _unreadable(self, exc: Exception) -> bool:
        if not isinstance(exc, errors.KafkaError):
            return False
        self._log.error("command.journal.unreadable", error=str(exc))
        return True


class WorkerFailed(Exception):
    """A command worker raised something unexpected; the consumer starts over."""


def _incoming(record: Message, partitions: int | None) -> Incoming:
    millis = record.timestamp
    return Incoming(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=tuple(record.headers or ()),
        timestamp=millis / 1000 if isinstance(millis, int) and millis > 0 else time.time(),
        partitions=partitions,
    )
