"""The fleet: which accounts this replica holds, and one running pipeline for each.

An account is held when it is configured (the accounts directory, or the shorthand) and its
partition (Kafka's default partitioner on the user id over the command topic's partitions) is one
the command consumer's group gave this replica (:meth:`Fleet.assigned`, :meth:`Fleet.revoked`).
Without a group (commands disabled) every configured account is held. Every change (a new
reading of the directory, an assignment) runs :meth:`Fleet._reconcile`, one at a time:
pipelines no longer wanted (or whose password or catalogue role changed) stop, then the new ones
restore their last published state in one reading of the state topics, mark their restart gap,
and start.

Rebalances are eager (a revoke takes every partition, the assignment that follows gives the new
set), so a revoke *parks* its accounts rather than stopping them: each pipeline stops publishing
and the revoke returns once Kafka acknowledged what they put — within a quarter of the
consumer's rebalance timeout (``PARK_SHARE``), plus the wait for a change in progress, whose
restore a revoke cuts short. Parked accounts are not held: the command side gets neither their
session nor their view. The next assignment resumes those it gives back (same partition count,
and the group generation right after the revoke's, so no other member held them in between):
same ICWS session, no login, no gap, no restore. It stops the others for good (unsubscribe, log
out, nothing more published) before it counts as done, and only then starts new accounts. No
assignment within ``PARK_LIMIT`` rebalance timeouts, or the fleet's stop: parked accounts stop.

Exactly one configured account, the catalogue account, subscribes the status catalogue. The
fleet is the command side's ``Sessions``: each held user's session and view. Login spreading: a
fleet-wide semaphore around each login round, and a random first-login jitter per account.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bridge import errors, retries
from bridge.core.accounts import Account
from bridge.core.events import timestamp
from bridge.events.restore import Restored, restore, states_of
from bridge.fleet import gauges
from bridge.fleet.accounts import AccountSource
from bridge.fleet.pipeline import AccountPipeline, AccountSession, AssistanceView, Parts
from bridge.fleet.readiness import fleet_checks
from bridge.kafka import partition_for
from bridge.logs import get_logger
from bridge.readiness import Check

PARK_SHARE = 0.25  # of the rebalance timeout: the most a revoke spends parking and flushing
PARK_LIMIT = 2.0  # rebalance timeouts a parked account waits for its partition to come back


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
        self._parked: dict[str, AccountPipeline] = {}  # revoked, not yet resumed or stopped
        self._parked_total = 1  # the partition count they were parked under
        # Group generations of the last revoke and assignment (None: the caller tracks none).
        self._parked_in: int | None = None
        self._assigned_in: int | None = None
        self._generation = 0  # revokes so far: an assignment older than the last one is stale
        self._restoring: asyncio.Task[Restored | None] | None = None
        self._expiry: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._failed = asyncio.Event()
        self._failure: BaseException | None = None
        self._read = False
        self._starting = 0
        self._logged_in_before: set[str] = set()  # the jitter is for an account's first login
        self._log = get_logger("bridge.fleet")
        gauges.register(parts.metrics, self._pipelines, source, parts.settings.subscriptions)
        parts.metrics.accounts.labels(state="parked").set_function(lambda: len(self._parked))

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

    async def assigned(
        self, partitions: Sequence[int], total: int, generation: int | None = None
    ) -> None:
        """Hold the accounts of these partitions (resumed, or restored and starting)."""
        if self._partitions is None:
            return
        self._partitions |= set(partitions)
        self._total = total
        self._assigned_in = generation
        generation = self._generation
        self._starting += 1  # not ready until they are held (and then until they are up)
        try:
            await self._reconcile(settles=generation)
        finally:
            self._starting -= 1

    async def revoked(self, partitions: Sequence[int], generation: int | None = None) -> None:
        """Park the accounts of these partitions; returns once their records are acknowledged."""
        if self._partitions is None:
            return
        self._let_go(partitions)
        self._parked_in = generation
        async with self._lock:
            if self._stop.is_set():
                return
            kept = self._partitions
            await self._park([p for p in self._pipelines.values() if p.partition not in kept])
            if self._parked:
                if self._expiry is not None:
                    self._expiry.cancel()  # still sleeping: each revoke gives the full limit
                self._expiry = asyncio.create_task(self._expire(), name="fleet-parked")

    async def released(self, partitions: Sequence[int]) -> None:
        """Leaving the group: stop the accounts of these partitions for good, parked ones too."""
        if self._partitions is None:
            return
        self._let_go(partitions)
        await self._reconcile(settles=self._generation)

    def _let_go(self, partitions: Sequence[int]) -> None:
        """No longer want these partitions; a restore in progress is cut short (never waited)."""
        assert self._partitions is not None
        self._partitions -= set(partitions)
        self._generation += 1
        if self._restoring is not None:
            self._restoring.cancel()

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Read the accounts now and every ``accounts_reload_seconds``; raise a pipeline's death."""
        reload = self._parts.settings.icws.accounts_reload_seconds
        while not self._stop.is_set():
            await self._source.read()
            self._read = True
            await self._reconcile()
            waits = [asyncio.create_task(e.wait()) for e in (self._stop, self._failed)]
            await asyncio.wait(waits, timeout=reload, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
            if self._failure is not None:
                raise self._failure

    async def stop(self) -> None:
        """Stop every pipeline, parked ones too (idempotent: the consumer may have done it)."""
        self._stop.set()
        if self._restoring is not None:
            self._restoring.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
        async with self._lock:
            await self._stop_all([*self._pipelines.values(), *self._parked.values()])

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

    async def _reconcile(self, settles: int | None = None) -> None:
        """Make the held pipelines the wanted ones; ``settles``: the generation assigned in."""
        async with self._lock:
            if self._stop.is_set():
                return
            if not self._read:
                await self._source.read()
                self._read = True
            configured, catalogue = self._source.last.accounts.accounts, self.catalogue_user()
            wanted = self._wanted()

            def fits(user: str, pipeline: AccountPipeline) -> bool:
                same = configured.get(user) == pipeline.account
                return same and pipeline.catalogue == (user == catalogue)

            gone = [p for u, p in self._pipelines.items() if u not in wanted or not fits(u, p)]
            same = self._total == self._parked_total and self._next_generation()
            back = [p for u, p in self._parked.items() if u in wanted and fits(u, p) and same]
            settled = settles == self._generation  # no revoke came since the assignment
            over = [
                p for u, p in self._parked.items() if p not in back and (settled or not fits(u, p))
            ]
            self._resume(back)  # first: they need nothing from the stops
            await self._stop_all([*gone, *over])
            if settled and self._expiry is not None and not self._parked:
                self._expiry.cancel()
                self._expiry = None
            new = [
                AccountPipeline(account, self._parts, self._login_gate, catalogue=u == catalogue)
                for u, account in sorted(wanted.items())
                if u not in self._pipelines and u not in self._parked
            ]
            if new:
                await self._start_all(new)

    def _next_generation(self) -> bool:
        """Whether the assignment is of the generation right after the revoke that parked.

        Only then did no other member hold the parked accounts' partitions in between (an evicted
        member's revoke names generation -1, and a rebalance it missed is a generation skipped):
        otherwise another replica may have published for them, and this state is stale.
        """
        parked, assigned = self._parked_in, self._assigned_in
        if parked is None or assigned is None:
            return parked is None and assigned is None
        return parked >= 0 and assigned == parked + 1

    async def _park(self, pipelines: list[AccountPipeline]) -> None:
        """Stop these publishing and wait (bounded) until Kafka acknowledged what they put."""
        if not pipelines:
            return
        for pipeline in pipelines:
            del self._pipelines[pipeline.user]
            self._parked[pipeline.user] = pipeline
        self._parked_total = self._total
        kafka = self._parts.settings.kafka
        bound = kafka.consumer_rebalance_timeout_ms / 1000 * PARK_SHARE
        began = time.monotonic()
        try:
            async with asyncio.timeout(bound):
                await asyncio.gather(*(p.park() for p in pipelines))
                await self._parts.publisher.flushed()
        except TimeoutError:
            self._log.error("fleet.accounts.park_unflushed", accounts=len(pipelines), seconds=bound)
        self._log.info(
            "fleet.accounts.parked",
            accounts=len(pipelines),
            users=[p.user for p in pipelines][:20],
            seconds=round(time.monotonic() - began, 3),
        )

    def _resume(self, pipelines: list[AccountPipeline]) -> None:
        if not pipelines:
            return
        for pipeline in pipelines:
            del self._parked[pipeline.user]
            self._pipelines[pipeline.user] = pipeline
            pipeline.resume()
        self._log.info(
            "fleet.accounts.resumed",
            accounts=len(pipelines),
            users=[p.user for p in pipelines][:20],
            still_parked=len(self._parked),
        )

    async def _expire(self) -> None:
        """Parked accounts whose partition did not come back within the limit stop anyway."""
        limit = self._parts.settings.kafka.consumer_rebalance_timeout_ms / 1000 * PARK_LIMIT
        await asyncio.sleep(limit)
        self._expiry = None  # from here on nobody cancels it: it may be stopping pipelines
        async with self._lock:
            if self._parked:
                self._log.warning(
                    "fleet.accounts.park_expired", accounts=len(self._parked), seconds=limit
                )
                await self._stop_all(list(self._parked.values()))

    async def _stop_all(self, pipelines: list[AccountPipeline]) -> None:
        if not pipelines:
            return
        self._log.info("fleet.accounts.stopping", users=[p.user for p in pipelines][:20])
        await asyncio.gather(*(p.stop() for p in pipelines))
        for pipeline in pipelines:
            self._pipelines.pop(pipeline.user, None)
            self._parked.pop(pipeline.user, None)

    async def _start_all(self, pipelines: list[AccountPipeline]) -> None:
        """Restore the new accounts' state in one reading, mark their gaps, start them."""
        restoring = asyncio.create_task(self._restore(pipelines), name="fleet-restore")
        self._restoring = restoring
        try:
            await asyncio.wait([restoring])  # a revoke cancels the restore, not this reconcile
        finally:
            self._restoring = None
            restoring.cancel()  # when this reconcile itself is cancelled
        restored = None if restoring.cancelled() else restoring.result()
        if restored is None:
            self._log.info("fleet.accounts.start_cut_short", accounts=len(pipelines))
            return  # stopping, or revoked meanwhile: nothing started, nothing owned
        await self._parts.publisher.put(restored.repairs, time.time())
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
            task = pipeline.start(random.uniform(0, self._spread) if first else 0.0)
            task.add_done_callback(self._watch)
        self._log.info("fleet.accounts.started", users=[p.user for p in pipelines][:20])

    async def _restore(self, pipelines: list[AccountPipeline]) -> Restored | None:
        catalogue = next((p.states for p in pipelines if p.catalogue), None)
        mine = states_of({p.user: p.states for p in pipelines}, catalogue=catalogue)
        found: list[Restored] = []
        settings = self._parts.settings

        async def attempt() -> None:
            contract, read = self._parts.contract, self._parts.read
            found.append(await restore(settings.kafka, contract, mine, read=read))

        def retry(exc: Exception) -> bool:
            if isinstance(exc, errors.KafkaError):
                self._log.error("fleet.restore.failed", error=str(exc))
                return True
            return False

        if not await retries.until_stopped(attempt, self._stop, retry, retries.RESTART):
            return None
        return found[-1]

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
        """``GET /accounts``: what is configured, skipped, held and parked (never a password)."""
        reading = self._source.last
        now = time.time()
        return {
            "configured": len(reading.accounts.accounts),
            "held": len(self._pipelines),
            "parked": len(self._parked),
            "skipped": [{"name": p.name, "reason": p.reason} for p in reading.accounts.problems],
            "accounts": [
                p.describe(now) for _, p in sorted({**self._pipelines, **self._parked}.items())
            ],
        }

    def pipelines(self) -> Mapping[str, AccountPipeline]:
        return self._pipelines
