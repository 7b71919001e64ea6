"""Runs one command record: dead-letter it, or run it against ICWS once, and publish its result.

For each record :meth:`Executor.handle` decodes (``core.commands``), and then either sends the
record to the dead-letter topic, or asks the journal what the command id has come to and acts on
the decision (see the theory of operation in ``core/journal.py``): execute, expire, repeat the
stored result, or recover after a crash. ``handle`` returns once everything the record causes is
acknowledged by Kafka, so the consumer may commit its offset.

Executing: wait for the ICWS session (never past the deadline), write ``started`` to the journal,
send the call through :class:`Caller` (the session: its cookie, CSRF token and re-login on 401),
and retry transient failures with capped, jittered backoff (stamina) while the deadline and the
attempt cap allow. A retry is first checked against the bridge's own view of ICWS, so an attempt
whose answer was lost but which took effect is not sent again.

One id is handled by one task at a time (:meth:`Executor._single_flight`): a second record with
the same id, from another partition or redelivered after a rebalance, waits and then finds the
first one's result in the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import stamina

from bridge import errors
from bridge.commands.journal import Journal
from bridge.core import commands
from bridge.core.commands import Command, DeadLetter, Position, Problem, Ref, Verdict
from bridge.core.events import Contract
from bridge.core.icws_api import Answer, Call
from bridge.core.journal_entries import (
    Baseline,
    Expire,
    Finished,
    Recover,
    Repeat,
    Started,
    baseline,
    decide,
    journal_record,
    observed,
)
from bridge.kafka import AwaitedProducer
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.settings import CommandSettings, TopicSettings

SESSION_POLL_SECONDS = 0.05
RECOVERY_POLL_SECONDS = 0.1
RECOVERY_CATCH_UP_SECONDS = 1.0


class Caller(Protocol):
    """Sends a call on the live ICWS session (waiting while there is none)."""

    @property
    def up(self) -> bool: ...

    async def request(self, make: Callable[[str], Call]) -> Answer: ...


class View(Protocol):
    """The bridge's own view of ICWS assistance requests (its reconciled state)."""

    def fresh(self) -> bool: ...

    def assistance(self, assistance_id: str) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Incoming:
    """A command record as read: where from, key, value, headers, timestamp (Unix seconds)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: float

    @property
    def position(self) -> Position:
        return Position(self.topic, self.partition, self.offset)


class Gate:
    """Whether the bridge still owns a partition; held while a ``started`` entry is written.

    Closing it (partition revoked, shutdown) waits for a start being written, so a new owner
    that then reads the journal sees it, and keeps any later command from starting.
    """

    def __init__(self) -> None:
        self.owned = True
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        self.owned = False
        async with self._lock:
            pass

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        if not self.owned:
            self._lock.release()
            raise Revoked

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


class Revoked(Exception):
    """The partition was given up before the command started: its new owner handles it."""


class _Transient(Exception):
    def __init__(self, problem: Problem | None) -> None:
        super().__init__(problem.message if problem else "transient failure")
        self.problem = problem


@dataclass
class _Attempts:
    count: int = 0
    baseline: Baseline | None = None
    last: Problem | None = None


class Executor:
    """Handles command records, one at a time per command id."""

    def __init__(
        self,
        settings: CommandSettings,
        topics: TopicSettings,
        contract: Contract,
        caller: Caller,
        view: View,
        journal: Journal,
        sender: AwaitedProducer,
        metrics: Metrics,
        user: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._topics = topics
        self._contract = contract
        self._caller = caller
        self._view = view
        self._journal = journal
        self._sender = sender
        self._metrics = metrics
        self._user = user
        self._clock = clock
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self.instance = uuid.uuid4().hex
        self._log = get_logger("bridge.commands.handler")
        # Every label pair exists from the start, so an alert sees the first failure.
        for kind in commands.KINDS:
            for outcome in commands.COUNTED_OUTCOMES:
                metrics.commands.labels(type=kind, outcome=outcome)
        for reason in commands.REASONS:
            metrics.dead_letters.labels(reason=reason)

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
        if isinstance(decoded, DeadLetter):
            await self._dead_letter(incoming, decoded)
            ref = decoded.ref
            if ref is not None:
                letter = decoded
                await self._single_flight(
                    ref.id, lambda: self._reject_invalid(ref, letter, incoming, read_at)
                )
            return
        command = decoded
        await self._single_flight(
            command.ref.id, lambda: self._run(command, incoming.position, gate, read_at)
        )

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

    # --- decisions -----------------------------------------------------------------------

    async def _run(self, command: Command, position: Position, gate: Gate, read_at: float) -> None:
        entry = self._journal.get(command.ref.id)
        decision = decide(entry, command.deadline, self._clock(), position)
        attempts: int | None = 0
        if isinstance(decision, Repeat):
            await self._repeat(command.ref, decision)
            return
        if isinstance(decision, Expire):
            verdict = Verdict("expired", Problem("the deadline passed before the command was read"))
        elif isinstance(decision, Recover):
            recovered = await self._recover(command, decision.entry, gate)
            if isinstance(recovered, Finished):
                await self._repeat(command.ref, Repeat(recovered, False))
                return
            verdict, attempts = recovered, None
        else:
            verdict, attempts = await self._execute(command, position, gate)
        await self._finish(
            command.ref,
            verdict,
            command.assistance_id,
            command.deadline,
            attempts,
            position,
            read_at,
        )

    async def _reject_invalid(
        self, ref: Ref, letter: DeadLetter, incoming: Incoming, read_at: float
    ) -> None:
        entry = self._journal.get(ref.id)
        if isinstance(entry, Finished):
            await self._repeat(ref, Repeat(entry, entry.position == incoming.position))
            return
        if entry is not None:
            # The id is in doubt from a valid record not yet finished; that record, redelivered
            # since it was never committed, settles it. This one adds nothing.
            self._metrics.commands.labels(type=ref.kind, outcome="duplicate").inc()
            return
        verdict = Verdict("rejected", Problem(f"{letter.reason}: {letter.detail}"))
        await self._finish(ref, verdict, letter.assistance_id, None, 0, incoming.position, read_at)

    # --- executing -----------------------------------------------------------------------

    async def _execute(
        self, command: Command, position: Position, gate: Gate
    ) -> tuple[Verdict, int]:
        state = _Attempts()
        retrying = stamina.retry_context(
            on=_Transient,
            attempts=self._settings.max_attempts,
            timeout=max(command.deadline - self._clock(), 0.001),
            wait_initial=self._settings.backoff_initial_seconds,
            wait_max=self._settings.backoff_max_seconds,
            wait_jitter=self._settings.backoff_initial_seconds,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(command, position, gate, state), state.count
        except _Transient as exc:
            why = exc.problem or Problem("transient failures")
            message = f"gave up after {state.count} attempt(s): {why.message}"
            return Verdict("failed", Problem(message, why.status, why.error_id)), state.count
        raise AssertionError("stamina ended without a result")  # pragma: no cover

    async def _attempt(
        self, command: Command, position: Position, gate: Gate, state: _Attempts
    ) -> Verdict:
        while True:
            # Once started, a command is seen through even if its partition moves: the new
            # owner finds it started and waits for this bridge's result.
            if not await self._until_up(command.deadline, gate if state.baseline is None else None):
                if state.count == 0:
                    return Verdict(
                        "expired", Problem("the deadline passed before ICWS was reachable")
                    )
                last = state.last.message if state.last else "no answer"
                return Verdict("failed", Problem(f"the deadline passed after {last}"))
            if state.baseline is None:
                state.baseline = baseline(command, self._request(command), self._user)
                await self._start(command, position, gate, state.baseline)
                continue  # the write took time: look at the session and the deadline again
            break
        # Nothing awaits from here to the send: the session is up and the deadline is ahead.
        if state.count and self._observed(command, state.baseline):
            return Verdict("succeeded", observed=True)
        state.count += 1
        make = commands.plan(command)
        try:
            verdict = commands.judge(make(""), await self._caller.request(make))
        except errors.IcwsError as exc:
            verdict = commands.judge_error(exc)
        # An earlier attempt whose answer was lost may have done it (a second complete is
        # refused): believe the bridge's view if it shows the effect.
        if (
            verdict.outcome == "rejected"
            and state.count > 1
            and self._observed(command, state.baseline)
        ):
            return Verdict("succeeded", observed=True)
        if verdict.outcome == "retry":
            state.last = verdict.problem
            self._log.info(
                "command.retrying",
                command_id=command.ref.id,
                attempt=state.count,
                error=verdict.problem.message if verdict.problem else "",
            )
            raise _Transient(verdict.problem)
        return verdict

    async def _until_up(self, deadline: float, gate: Gate | None) -> bool:
        """Wait for the session; False once the deadline has passed; Revoked if ``gate`` closes."""
        while True:
            if gate is not None and not gate.owned:
                raise Revoked
            if self._clock() >= deadline:
                return False
            if self._caller.up:
                return True
            await asyncio.sleep(SESSION_POLL_SECONDS)

    async def _start(
        self, command: Command, position: Position, gate: Gate, base: Baseline
    ) -> None:
        entry = Started(command.ref.id, position, self._clock(), base, self.instance)
        async with gate:
            await self._sender.send(journal_record(self._journal.topic, entry))
        self._journal.remember(entry)

    def _request(self, command: Command) -> Mapping[str, Any] | None:
        return self._view.assistance(command.assistance_id)

    def _observed(self, command: Command, base: Baseline) -> bool:
        return self._view.fresh() and observed(command, base, self._request(command), self._user)

    # --- recovering ----------------------------------------------------------------------

    async def _recover(self, command: Command, started: Started, gate: Gate) -> Verdict | Finished:
        """After a crash mid-command: its result, its observed effect, or unknown.

        The bridge that started it may still be alive (a rebalance handed the partition over
        mid-command) and may still publish its result, so ``unknown`` is only said once nobody
        can be running it any more: ``recovery_seconds`` after both its deadline and the moment
        this bridge's view of ICWS was fresh. Observed evidence settles it at once, since the
        other bridge can then only report the same success.
        """
        self._log.warning(
            "command.recovering",
            command_id=command.ref.id,
            started_by=started.instance,
            assistance_id=command.assistance_id,
        )
        first = self._clock()
        fresh_since: float | None = None
        next_read = first
        while True:
            if not gate.owned:
                raise Revoked
            now = self._clock()
            if now >= next_read:  # the other bridge may finish it meanwhile
                next_read = now + RECOVERY_CATCH_UP_SECONDS
                # Unreadable now: try again at the next read; the wait is bounded anyway.
                with contextlib.suppress(errors.KafkaError):
                    await self._journal.catch_up()
            entry = self._journal.get(command.ref.id)
            if isinstance(entry, Finished):
                return entry
            if self._view.fresh():
                if observed(command, started.baseline, self._request(command), self._user):
                    return Verdict("succeeded", observed=True)
                fresh_since = now if fresh_since is None else fresh_since
            since = first if fresh_since is None else fresh_since
            if now >= max(command.deadline, since) + self._settings.recovery_seconds:
                break
            await asyncio.sleep(RECOVERY_POLL_SECONDS)
        return Verdict(
            "unknown",
            Problem(
                "a bridge stopped between sending the command to ICWS and recording the answer, "
                "and its effect is not visible in ICWS; it was not sent again"
            ),
        )

    # --- publishing ----------------------------------------------------------------------

    async def _finish(
        self,
        ref: Ref,
        verdict: Verdict,
        assistance_id: str | None,
        deadline: float | None,
        attempts: int | None,
        position: Position,
        read_at: float,
    ) -> None:
        """Journal the result, then publish it: a crash between the two repeats the same one."""
        event = commands.result_event(
            self._contract,
            ref,
            verdict,
            assistance_id=assistance_id,
            deadline=deadline,
            attempts=attempts,
            finished=self._clock(),
        )
        assert verdict.outcome != "retry"
        entry = Finished(ref.id, position, verdict.outcome, event)
        await self._sender.send(journal_record(self._journal.topic, entry))
        self._journal.remember(entry)
        await self._sender.send(
            commands.result_record(self._contract, self._topics.command_results, event)
        )
        duration = max(self._clock() - read_at, 0.0)
        self._metrics.commands.labels(type=ref.kind, outcome=verdict.outcome).inc()
        self._metrics.command_latency.observe(duration)
        log = self._log.info if verdict.outcome == "succeeded" else self._log.warning
        log(
            "command.finished",
            command_id=ref.id,
            type=ref.kind,
            source=ref.source,
            assistance_id=assistance_id,
            outcome=verdict.outcome,
            observed=verdict.observed,
            attempts=attempts,
            error=verdict.problem.message if verdict.problem else None,
            duration_seconds=round(duration, 3),
        )

    async def _repeat(self, ref: Ref, repeat: Repeat) -> None:
        """Publish the stored result again; nothing runs."""
        await self._sender.send(
            commands.result_record(
                self._contract, self._topics.command_results, repeat.entry.result
            )
        )
        self._metrics.commands.labels(type=ref.kind, outcome="duplicate").inc()
        self._log.info(
            "command.duplicate",
            command_id=ref.id,
            type=ref.kind,
            redelivered=repeat.same_record,
            outcome=repeat.entry.outcome,
        )

    async def _dead_letter(self, incoming: Incoming, letter: DeadLetter) -> None:
        record = commands.dead_letter_record(
            self._topics.dead_letter,
            letter,
            key=incoming.key,
            value=incoming.value,
            headers=incoming.headers,
            position=incoming.position,
        )
        await self._sender.send(record)
        self._metrics.dead_letters.labels(reason=letter.reason).inc()
        self._log.warning(
            "command.dead_lettered",
            reason=letter.reason,
            detail=letter.detail,
            command_id=letter.ref.id if letter.ref else None,
            topic=incoming.topic,
            partition=incoming.partition,
            offset=incoming.offset,
        )
