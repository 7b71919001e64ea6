"""What commands come to, made known: journal ``finished``, publish the result, dead letters.

A result is journaled before it is published, so a crash between the two publishes the same
result event again when the record is redelivered. Each record ends here with its metric and
one canonical log line (``command.finished``, ``command.duplicate`` or ``command.dead_lettered``);
``command_id`` and ``command_type`` come from the structlog context the handler binds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from bridge.core import command_results
from bridge.core.command_rules import Verdict
from bridge.core.commands import COUNTED_OUTCOMES, KINDS, REASONS, DeadLetter, Kind, Position, Ref
from bridge.core.events import Contract, Record
from bridge.core.journal_entries import Entry, Finished, Repeat, journal_record
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.settings import TopicSettings


class Producer(Protocol):
    """Sends a record and returns once Kafka acknowledged it (acks=all), however long it takes."""

    async def send(self, record: Record) -> None: ...


class JournalStore(Protocol):
    """What the pipeline needs of the journal: each id's entry, and reading what others wrote."""

    @property
    def topic(self) -> str: ...

    def get(self, command_id: str) -> Entry | None: ...

    def remember(self, entry: Entry) -> None: ...

    async def catch_up(self) -> int: ...


class Results:
    """Journals, publishes, counts and logs what each command record comes to."""

    def __init__(
        self,
        topics: TopicSettings,
        contract: Contract,
        journal: JournalStore,
        producer: Producer,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._topics = topics
        self._contract = contract
        self._journal = journal
        self._producer = producer
        self._metrics = metrics
        self._clock = clock
        self._log = get_logger("bridge.commands.results")
        # Every label pair exists from the start, so an alert sees the first failure.
        for kind in KINDS:
            for outcome in COUNTED_OUTCOMES:
                metrics.commands.labels(type=kind, outcome=outcome)
        for reason in REASONS:
            metrics.dead_letters.labels(reason=reason)

    async def finish(
        self,
        ref: Ref,
        verdict: Verdict,
        assistance_id: str | None,
        user: str | None,
        deadline: float | None,
        attempts: int | None,
        position: Position,
        read_at: float,
    ) -> None:
        """Journal the result, then publish it: a crash between the two repeats the same one."""
        event = command_results.result_event(
            self._contract,
            ref,
            verdict,
            assistance_id=assistance_id,
            user=user,
            deadline=deadline,
            attempts=attempts,
            finished=self._clock(),
        )
        assert verdict.outcome != "retry"
        entry = Finished(ref.id, position, verdict.outcome, event)
        await self._producer.send(journal_record(self._journal.topic, entry))
        self._journal.remember(entry)
        await self._producer.send(
            command_results.result_record(self._contract, self._topics.command_results, event)
        )
        duration = max(self._clock() - read_at, 0.0)
        self._metrics.commands.labels(type=ref.kind, outcome=verdict.outcome).inc()
        self._metrics.command_latency.observe(duration)
        log = self._log.info if verdict.outcome == "succeeded" else self._log.warning
        log(
            "command.finished",
            source=ref.source,
            assistance_id=assistance_id,
            user=user,
            outcome=verdict.outcome,
            observed=verdict.observed,
            attempts=attempts,
            error=verdict.problem.message if verdict.problem else None,
            duration_seconds=round(duration, 3),
        )

    async def repeat(self, ref: Ref, repeat: Repeat) -> None:
        """Publish the stored result again; nothing runs."""
        await self._producer.send(
            command_results.result_record(
                self._contract, self._topics.command_results, repeat.entry.result
            )
        )
        self._metrics.commands.labels(type=ref.kind, outcome="duplicate").inc()
        self._log.info(
            "command.duplicate", redelivered=repeat.same_record, outcome=repeat.entry.outcome
        )

    def count_duplicate(self, kind: Kind) -> None:
        """Count a record that adds nothing to a command already in hand."""
        self._metrics.commands.labels(type=kind, outcome="duplicate").inc()

    async def dead_letter(
        self,
        letter: DeadLetter,
        key: bytes | None,
        value: bytes | None,
        headers: tuple[tuple[str, bytes], ...],
        position: Position,
    ) -> None:
        """Send the record, bytes untouched, to the dead-letter topic with the reason."""
        record = command_results.dead_letter_record(
            self._topics.dead_letter,
            letter,
            key=key,
            value=value,
            headers=headers,
            position=position,
        )
        await self._producer.send(record)
        self._metrics.dead_letters.labels(reason=letter.reason).inc()
        self._log.warning(
            "command.dead_lettered",
            reason=letter.reason,
            detail=letter.detail,
            topic=position.topic,
            partition=position.partition,
            offset=position.offset,
        )
