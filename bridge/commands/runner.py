"""Drives one command to a verdict through the ICWS session, or recovers one a crash left open.

Executing: wait for the ICWS session (never past the deadline), write ``started`` to the journal,
send the planned call through :class:`Caller` (the session: its cookie, CSRF token and re-login
on 401), and retry transient failures with capped, jittered backoff (stamina) while the deadline
and the attempt cap allow. What each answer means and whether to go on is decided by
``core/command_rules.py``; a retry is first checked against the bridge's own view of ICWS, so an
attempt whose answer was lost but which took effect is not sent again.

Owner: before anything is sent, :meth:`Runner.owner` resolves the ICWS user the command runs as
(``core/ownership.py``) from the record key and the held users' views, looking again while that
is unsettled; every call then goes to that user's session only, and ``started`` records the user.

Recovering: a command found ``started`` but not finished is never sent again blindly; its
result (written meanwhile by the bridge that started it) or its observed effect in its owner's
view settles it, else ``unknown`` once nobody can be running it any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, assert_never

from bridge import errors, retries
from bridge.commands.ownership import Gate, Revoked
from bridge.commands.results import JournalStore, Producer
from bridge.commands.sessions import Caller, Sessions, View
from bridge.core import command_rules as rules
from bridge.core import commands, ownership
from bridge.core.command_rules import Problem, Retry, Send, Stop, Verdict, Wait
from bridge.core.commands import Command, Plan, Position
from bridge.core.journal_entries import (
    Baseline,
    Finished,
    Started,
    baseline,
    journal_record,
    observed,
)
from bridge.core.ownership import Reject, Routing, RunAs, Sight, Unsettled
from bridge.logs import get_logger
from bridge.settings import CommandSettings

SESSION_POLL_SECONDS = 0.05
RECOVERY_POLL_SECONDS = 0.1
RECOVERY_CATCH_UP_SECONDS = 1.0


__all__ = ["Caller", "Runner", "View"]


class _Transient(Exception):
    def __init__(self, problem: Problem | None) -> None:
        super().__init__(problem.message if problem else "transient failure")
        self.problem = problem


@dataclass
class _Attempts:
    user: str
    count: int = 0
    baseline: Baseline | None = None
    last: Problem | None = None


class Runner:
    """Runs commands against ICWS and recovers interrupted ones; one call per command at most."""

    def __init__(
        self,
        settings: CommandSettings,
        sessions: Sessions,
        journal: JournalStore,
        producer: Producer,
        instance: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._journal = journal
        self._producer = producer
        self._instance = instance
        self._clock = clock
        self._log = get_logger("bridge.commands.runner")

    # --- the owner -----------------------------------------------------------------------

    async def owner(
        self, command: Command, key: str | None, routing: Routing, gate: Gate
    ) -> RunAs | Verdict:
        """The user to run as, or the final verdict (rejected; expired while unsettled)."""
        first = self._clock()
        while True:
            if not gate.owned:
                raise Revoked
            now = self._clock()
            sights = {user: self._sight(user, command.assistance_id) for user in self._asked(key)}
            found = ownership.resolve(
                key, command.assistance_id, sights, waited=now - first, routing=routing
            )
            match found:
                case RunAs():
                    return found
                case Reject():
                    return found.verdict
                case Unsettled():
                    if now >= command.deadline:
                        return found.verdict
                    await asyncio.sleep(SESSION_POLL_SECONDS)
                case unexpected:
                    assert_never(unexpected)

    def _held(self) -> list[str]:
        return list(self._sessions.held())

    def _asked(self, key: str | None) -> list[str]:
        """Whose views to look in: the key's user alone when held (it decides), else all held."""
        held = self._held()
        return [key] if key is not None and key in held else held

    def _sight(self, user: str, assistance_id: str) -> Sight:
        view = self._sessions.view(user)
        if view is None or not view.fresh():
            return "unknown"
        return "absent" if view.assistance(assistance_id) is None else "open"

    # --- executing -----------------------------------------------------------------------

    async def execute(
        self, command: Command, position: Position, gate: Gate, user: str
    ) -> tuple[Verdict, int]:
        """The command's final verdict, run as ``user``, and how many ICWS calls it took."""
        state = _Attempts(user)
        retrying = retries.attempts(
            _Transient,
            retries.Backoff(
                self._settings.backoff_initial_seconds, self._settings.backoff_max_seconds
            ),
            limit=self._settings.max_attempts,
            within=max(command.deadline - self._clock(), 0.001),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(command, position, gate, state), state.count
        except _Transient as exc:
            return rules.gave_up(state.count, exc.problem).verdict, state.count
        raise AssertionError("stamina ended without a result")  # pragma: no cover

    async def _attempt(
        self, command: Command, position: Position, gate: Gate, state: _Attempts
    ) -> Verdict:
        """One attempt: its final verdict, or _Transient for stamina to retry."""
        if not await self._ready(command, position, gate, state):
            return rules.unreachable(state.count, state.last).verdict
        assert state.baseline is not None
        # Nothing awaits from here to the send: the session is up and the deadline is ahead.
        match rules.before_send(state.count, self._observed(command, state.baseline, state.user)):
            case Stop(verdict=verdict):
                return verdict
            case Send():
                pass
            case unexpected:
                assert_never(unexpected)
        state.count += 1
        judged = await self._send(commands.plan(command), state.user)
        seen = self._observed(command, state.baseline, state.user)
        step = rules.after_answer(
            state.count, self._settings.max_attempts, command.deadline, self._clock(), judged, seen
        )
        match step:
            case Stop(verdict=verdict):
                return verdict
            case Retry(problem=problem):
                state.last = problem
                self._log.info(
                    "command.retrying",
                    attempt=state.count,
                    error=problem.message if problem else "",
                )
                raise _Transient(problem)
            case other:
                assert_never(other)

    async def _send(self, planned: Plan, user: str) -> Verdict:
        """Send the planned call on the user's live session and judge what comes back."""
        caller = self._sessions.caller(user)
        if caller is None:  # the account was let go meanwhile: like a session that is down
            return Verdict("retry", Problem(f"the session of user {user} is gone"))
        try:
            answer = await caller.request(functools.partial(commands.call, planned))
        except errors.IcwsError as exc:
            return rules.judge_error(exc)
        return rules.judge(commands.call(planned, ""), answer)

    async def _ready(
        self, command: Command, position: Position, gate: Gate, state: _Attempts
    ) -> bool:
        """Session up and ``started`` journaled; False once the deadline has passed."""
        while True:
            # Once started, a command is seen through even if its partition moves: the new
            # owner finds it started and waits for this bridge's result.
            holding = gate if state.baseline is None else None
            if not await self._until_up(command.deadline, holding, state.user):
                return False
            if state.baseline is not None:
                return True
            state.baseline = baseline(command, self._request(command, state.user), state.user)
            await self._start(command, position, gate, state)
            # The write took time: look at the session and the deadline again.

    async def _until_up(self, deadline: float, gate: Gate | None, user: str) -> bool:
        """Wait for the user's session; False past the deadline; Revoked if ``gate`` closes."""
        while True:
            if gate is not None and not gate.owned:
                raise Revoked
            if self._clock() >= deadline:
                return False
            caller = self._sessions.caller(user)
            if caller is not None and caller.up:
                return True
            await asyncio.sleep(SESSION_POLL_SECONDS)

    async def _start(
        self, command: Command, position: Position, gate: Gate, state: _Attempts
    ) -> None:
        assert state.baseline is not None
        entry = Started(
            command.ref.id, position, self._clock(), state.baseline, self._instance, state.user
        )
        async with gate:
            await self._producer.send(journal_record(self._journal.topic, entry))
        self._journal.remember(entry)

    def _request(self, command: Command, user: str) -> Mapping[str, Any] | None:
        view = self._sessions.view(user)
        return None if view is None else view.assistance(command.assistance_id)

    def _fresh(self, user: str | None) -> bool:
        view = None if user is None else self._sessions.view(user)
        return view is not None and view.fresh()

    def _observed(self, command: Command, base: Baseline, user: str | None) -> bool:
        if user is None or not self._fresh(user):
            return False
        return observed(command, base, self._request(command, user), user)

    # --- recovering ----------------------------------------------------------------------

    async def recover(self, command: Command, started: Started, gate: Gate) -> Verdict | Finished:
        """After a crash mid-command: its result, its observed effect, or unknown.

        The bridge that started it may still be alive (a rebalance handed the partition over
        mid-command) and may still publish its result; when ``unknown`` may be said is
        :func:`bridge.core.command_rules.recovery_ends_at`.
        """
        user = self.started_by(started)
        self._log.warning(
            "command.recovering",
            started_by=started.instance,
            assistance_id=command.assistance_id,
            user=user,
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
            if fresh_since is None and self._fresh(user):
                fresh_since = now
            ends_at = rules.recovery_ends_at(
                command.deadline, first, fresh_since, self._settings.recovery_seconds
            )
            seen = self._observed(command, started.baseline, user)
            match rules.recovery_step(seen, now, ends_at):
                case Stop(verdict=verdict):
                    return verdict
                case Wait():
                    await asyncio.sleep(RECOVERY_POLL_SECONDS)
                case unexpected:
                    assert_never(unexpected)

    def started_by(self, started: Started) -> str | None:
        """The owner a started command ran as; for an entry from before owners, the one user."""
        if started.user is not None:
            return started.user
        held = self._held()
        return held[0] if len(held) == 1 else None
