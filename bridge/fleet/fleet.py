"""The fleet: which accounts this replica holds, and one running pipeline for each.

An account is held when it is configured (the accounts directory, or the shorthand) and its
partition (Kafka's default partitioner on the user id over the command topic's partitions) is one
the command consumer's group gave this replica (:meth:`Fleet.assigned`, :meth:`Fleet.revoked`).
Without a group (commands disabled) every configured account is held. Every change (a new
reading of the directory, an assignment, a revocation) runs :meth:`Fleet._reconcile`, one at a
time: pipelines no longer wanted (or whose password or catalogue role changed) stop, then the
new ones restore their last published state in one reading of the state topics, mark their
restart gap, and start. Exactly one configured account, the catalogue account, subscribes the
status catalogue. The fleet is the command side's ``Sessions``: each held user's session and
view. Login spreading: a fleet-wide semaphore around each login round, and, when more accounts
start at once than it lets through, a random first-login jitter per account.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge import errors, retries
from bridge.core.accounts import Account
from bridge.core.events import timestamp
from bridge.core.state import States
from bridge.events.restore import Restored, Restoring, restore, states_of
from bridge.fleet import gauges
from bridge.fleet.accounts import AccountSource
from bridge.fleet.pipeline import AccountPipeline, AccountSession, AssistanceView, Parts
from bridge.fleet.readiness import fleet_checks
from bridge.kafka import partition_for
from bridge.logs import get_logger
from bridge.readiness import Check


@dataclass(frozen=True, slots=True)
class _Early:
    """The first assignment's restore, begun while the group's first join is under way.

    A group's first join takes seconds (the broker waits for more members), and reading the
    state topics takes seconds with many entities: so the checkpoints of every configured
    account are read meanwhile; the assignment then keeps its accounts' states, reads what was
    written since (a previous owner may still have been publishing) and the tails.
    """

    users: dict[str, States]
    catalogue_user: str | None
    restoring: Restoring
    task: asyncio.Task[None]


class Fleet:
    """Holds the pipelines of the accounts this replica owns."""

    def __init__(self, parts: Parts, source: AccountSource, *, grouped: bool) -> None:
        self._parts = parts
        self._source = source
        icws = parts.settings.icws
        self._gate = asyncio.Semaphore(icws.max_concurrent_logins)
        self._spread = icws.login_spread_seconds
        # None: no consumer group, every configured account is held.
        self._partitions: set[int] | None = set() if grouped else None
        self._total = 1
        self._pipelines: dict[str, AccountPipeline] = {}
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._failed = asyncio.Event()
        self._failure: BaseException | None = None
        self._read = False
        self._starting = 0
        self._logged_in_before: set[str] = set()  # the jitter is for an account's first login
        self._early: _Early | None = None
        self._assigning = False  # an assignment came: no early restore begins any more
        self._log = get_logger("bridge.fleet")
        gauges.register(parts.metrics, self._pipelines, source, parts.settings.subscriptions)

    # --- Sessions (the command side) ----------------------------------------------------

    def held(self) -> Sequence[str]:
        return tuple(self._pipelines)

    def caller(self, user: str) -> AccountSession | None:
        pipeline = self._pipelines.get(user)
        return None if pipeline is None else pipeline.session

    def view(self, user: str) -> AssistanceView | None:
        pipeline = self._pipelines.get(user)
        return None if pipeline is None else pipeline.view

    # --- Ownership (the command consumer's group) -----------------------------------------

    async def assigned(self, partitions: Sequence[int], total: int) -> None:
        """Hold the accounts of these partitions (restored and starting) before returning."""
        if self._partitions is None:
            return
        self._assigning = True
        self._partitions |= set(partitions)
        self._total = total
        self._starting += 1  # not ready until they are held (and then until they are up)
        try:
            await self._reconcile()
        finally:
            self._starting -= 1
            await self._drop_early()  # for the first assignment only

    async def revoked(self, partitions: Sequence[int]) -> None:
        """Stop the accounts of these partitions; returns once they stopped and flushed."""
        if self._partitions is None:
            return
        self._partitions -= set(partitions)
        await self._reconcile()

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Read the accounts now and every ``accounts_reload_seconds``; raise a pipeline's death."""
        reload = self._parts.settings.icws.accounts_reload_seconds
        while not self._stop.is_set():
            await self._source.read()
            self._read = True
            if self._partitions is not None and not self._assigning and self._early is None:
                self._early = self._begin_early()
            await self._reconcile()
            waits = [asyncio.create_task(e.wait()) for e in (self._stop, self._failed)]
            await asyncio.wait(waits, timeout=reload, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
            if self._failure is not None:
                raise self._failure

    async def stop(self) -> None:
        """Stop every pipeline (idempotent: the consumer may have stopped them already)."""
        self._stop.set()
        await self._drop_early()
        async with self._lock:
            await self._stop_all(list(self._pipelines.values()))

    # --- what is wanted --------------------------------------------------------------------

    def catalogue_user(self) -> str | None:
        """The account that publishes the status catalogue: the setting, or the smallest id."""
        configured = self._source.last.accounts.accounts
        chosen = self._parts.settings.icws.catalogue_account
        return chosen if chosen is not None else min(configured, default=None)

    def partition_of(self, user: str) -> int:
        return partition_for(user.encode("utf-8"), self._total)

    def _wanted(self) -> dict[str, Account]:
        configured = self._source.last.accounts.accounts
        if self._partitions is None:
            return dict(configured)
        return {u: a for u, a in configured.items() if self.partition_of(u) in self._partitions}

    async def _reconcile(self) -> None:
        async with self._lock:
            if self._stop.is_set():
                return
            if not self._read:
                await self._source.read()
                self._read = True
            wanted, catalogue = self._wanted(), self.catalogue_user()
            gone = [
                p
                for u, p in self._pipelines.items()
                if u not in wanted or wanted[u] != p.account or p.catalogue != (u == catalogue)
            ]
            await self._stop_all(gone)
            users = [u for u in sorted(wanted) if u not in self._pipelines]
            early = await self._take_early(users, catalogue) if users else None
            if self._stop.is_set():
                return  # stopped while the early reading ran: start nothing
            new = [
                AccountPipeline(
                    wanted[u],
                    self._parts,
                    self._login_gate,
                    catalogue=u == catalogue,
                    states=early.users[u] if early else None,
                )
                for u in users
            ]
            if new:
                await self._start_all(new, early)

    async def _stop_all(self, pipelines: list[AccountPipeline]) -> None:
        if not pipelines:
            return
        self._log.info("fleet.accounts.stopping", users=[p.user for p in pipelines][:20])
        await asyncio.gather(*(p.stop() for p in pipelines))
        for pipeline in pipelines:
            self._pipelines.pop(pipeline.user, None)

    async def _start_all(self, pipelines: list[AccountPipeline], early: _Early | None) -> None:
        """Restore the new accounts' state in one reading, mark their gaps, start them."""
        restored = await self._restore(pipelines, early)
        if restored is None or self._stop.is_set():
            return  # stopping: log nobody in
        await self._parts.publisher.put(restored.repairs, time.time())
        # Spreading first logins is for a herd: no more than the gate lets through at once
        # (one account, a few) log in now, not a random part of the spread later.
        first_logins = sum(1 for p in pipelines if p.user not in self._logged_in_before)
        spread = (
            self._spread if first_logins > self._parts.settings.icws.max_concurrent_logins else 0
        )
        for pipeline in pipelines:
            last = restored.users.get(pipeline.user)
            if last is not None:
                # The account ran before: whatever ICWS said since its last record may be lost.
                await pipeline.pump.gap("restart", timestamp(datetime.fromtimestamp(last, UTC)))
            if self._partitions is not None:
                pipeline.partition = self.partition_of(pipeline.user)
            self._pipelines[pipeline.user] = pipeline
            first = pipeline.user not in self._logged_in_before
            self._logged_in_before.add(pipeline.user)
            task = pipeline.start(random.uniform(0, spread) if first else 0.0)
            task.add_done_callback(self._watch)
        self._log.info("fleet.accounts.started", users=[p.user for p in pipelines][:20])

    async def _restore(
        self, pipelines: list[AccountPipeline], early: _Early | None
    ) -> Restored | None:
        catalogue = next((p.states for p in pipelines if p.catalogue), None)
        mine = states_of({p.user: p.states for p in pipelines}, catalogue=catalogue)
        found: list[Restored] = []
        settings = self._parts.settings

        async def attempt() -> None:
            contract, read = self._parts.contract, self._parts.read
            if early is None:
                found.append(await restore(settings.kafka, contract, mine, read=read))
                return
            await early.restoring.checkpoints(settings.kafka, read)  # what came since
            found.append(await early.restoring.finish(settings.kafka, read))

        def retry(exc: Exception) -> bool:
            if isinstance(exc, errors.KafkaError):
                self._log.error("fleet.restore.failed", error=str(exc))
                return True
            return False

        if not await retries.until_stopped(attempt, self._stop, retry, retries.RESTART):
            return None
        return found[-1]

    def _begin_early(self) -> _Early | None:
        """Read every configured account's checkpoints now, before an assignment names some."""
        configured = self._source.last.accounts.accounts
        if not configured:
            return None
        users = {user: self._parts.new_states() for user in configured}
        catalogue_user = self.catalogue_user()
        catalogue = users.get(catalogue_user) if catalogue_user is not None else None
        restoring = Restoring(self._parts.contract, states_of(users, catalogue))
        task = asyncio.create_task(self._read_early(restoring), name="fleet-early-restore")
        task.add_done_callback(self._early_failed)
        return _Early(users, catalogue_user, restoring, task)

    async def _read_early(self, restoring: Restoring) -> None:
        """Every configured account's checkpoints, then the event tails."""
        await restoring.checkpoints(self._parts.settings.kafka, self._parts.read)
        await restoring.tails(self._parts.settings.kafka, self._parts.read)

    async def _take_early(self, users: list[str], catalogue: str | None) -> _Early | None:
        """The early restore narrowed to ``users``, if it read them all; else None.

        Waits for its reading, unless the fleet stops first; cancelled meanwhile (the consumer
        stopping), it leaves the reading to :meth:`stop`, which cancels and awaits it.
        """
        early = self._early
        if early is None:
            return None
        if early.catalogue_user != catalogue or any(u not in early.users for u in users):
            await self._drop_early()  # the accounts changed meanwhile: read afresh
            return None
        stopping = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait([early.task, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not early.task.done() or early.task.cancelled() or early.task.exception():
            await self._drop_early()  # stopping, or it failed: the usual restore reads afresh
            return None
        self._early = None
        shown = early.users.get(catalogue) if catalogue in users else None
        early.restoring.narrow({u: early.users[u] for u in users}, shown)
        return early

    async def _drop_early(self) -> None:
        """Cancel the early reading, if any, and wait until its consumer has closed."""
        early, self._early = self._early, None
        if early is not None:
            early.task.cancel()
            await asyncio.gather(early.task, return_exceptions=True)

    def _early_failed(self, task: asyncio.Task[None]) -> None:
        """Log an early reading's failure (the usual restore, with its retries, follows)."""
        if not task.cancelled() and (failure := task.exception()) is not None:
            self._log.warning("fleet.restore.early_failed", error=str(failure))

    def _login_gate(self) -> asyncio.Semaphore:
        return self._gate

    def _watch(self, task: asyncio.Task[None]) -> None:
        """A pipeline's task that raised takes the fleet down (the bridge restarts it)."""
        if task.cancelled() or (failure := task.exception()) is None or self._failure is not None:
            return
        self._failure = failure
        self._failed.set()

    # --- operating ---------------------------------------------------------------------------

    def checks(self) -> dict[str, Check]:
        """``icws_sessions``, ``icws_subscriptions``, ``icws_snapshots`` and ``accounts``."""
        checks = fleet_checks(self._pipelines, self._source.last, self._source.directory)
        if self._starting:
            checks["icws_sessions"] = Check(False, "taking on the accounts of new partitions")
        return checks

    def accounts(self) -> dict[str, Any]:
        """``GET /accounts``: what is configured, skipped and held (never a password)."""
        reading = self._source.last
        now = time.time()
        return {
            "configured": len(reading.accounts.accounts),
            "held": len(self._pipelines),
            "skipped": [{"name": p.name, "reason": p.reason} for p in reading.accounts.problems],
            "accounts": [p.describe(now) for _, p in sorted(self._pipelines.items())],
        }

    def pipelines(self) -> Mapping[str, AccountPipeline]:
        return self._pipelines
