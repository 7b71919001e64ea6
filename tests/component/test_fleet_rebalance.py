"""A rebalance keeps the sessions of accounts that stay (issue #14, eager rebalances).

Expected behaviour from the task: a revoke parks its accounts (nothing more published, what they
put acknowledged before it returns, no logout); an assignment that gives an account back resumes
it on the same session (no login, no gap, no restore) and its held messages follow in order;
accounts not given back are logged out once each, concurrently, publishing nothing more; parked
accounts stop after a bound without an assignment; a revoke cuts a slow restore short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from bridge.core.accounts import Account
from bridge.core.events import Record
from bridge.core.messages import Message
from bridge.icws.login import LoginGate
from bridge.icws.session import SessionInfo

from .test_fleet import FakeSession, Logins, World, partition_of, until
from .test_pump import READ_AT, alerting

USERS = sorted(f"agent.{n}" for n in range(12))
KEPT = [u for u in USERS if partition_of(u, 3) == 0]
MOVED = [u for u in USERS if partition_of(u, 3) != 0]


class FeedingSession(FakeSession):
    """Logs in once per run, says it is up, then hands each fed batch to the pipeline's sink."""

    def __init__(
        self, account: Account, sink: Any, catalogue: bool, gate: LoginGate, logins: Logins
    ) -> None:
        super().__init__(account, catalogue, gate, logins)
        self.sink = sink
        self.batches: asyncio.Queue[list[Message] | None] = asyncio.Queue()
        self.delivered = 0
        self.logouts = 0

    async def run(self) -> None:
        async with self._gate():
            self._logins.done += 1
        self.health.state, self.health.problem = "up", ""
        await self.sink.session_up(SessionInfo("s1", "h", "srv", "v", "sse", ()))
        while (batch := await self.batches.get()) is not None:
            await self.sink.deliver(batch, READ_AT)
            self.delivered += 1
        await self.sink.session_down("stopped")
        await self.logout_allowed.wait()
        self.logouts += 1
        self.logged_out = True
        self.health.state = "down"

    def stop(self) -> None:
        self.stopped.set()
        self.batches.put_nowait(None)


class AckingPublisher:
    """Keeps every record put; acknowledges them at once, or only on ``ack()`` when held."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.acknowledged = 0
        self.hold = False
        self._changed = asyncio.Condition()

    async def put(self, records: Iterable[Record], read_at: float) -> None:
        self.records += records
        if not self.hold:
            await self.ack()

    async def ack(self) -> None:
        async with self._changed:
            self.acknowledged = len(self.records)
            self._changed.notify_all()

    async def flushed(self) -> None:
        mark = len(self.records)
        async with self._changed:
            await self._changed.wait_for(lambda: self.acknowledged >= mark)

    def of(self, user: str) -> list[Record]:
        """The records keyed by ``user`` (``<user>/...``), in the order put."""
        return [r for r in self.records if (r.key or b"").startswith(f"{user}/".encode())]


class FeedingWorld(World):
    """A grouped fleet whose sessions deliver through their sinks to an acking publisher."""

    def _session(self, account: Account, sink: Any, catalogue: bool, gate: LoginGate) -> Any:
        session = FeedingSession(account, sink, catalogue, gate, self.logins)
        self.sessions.append(session)
        return session

    def session_of(self, user: str) -> FeedingSession:
        """The newest session made for ``user``."""
        return next(s for s in reversed(self.sessions) if s.account.user_id == user)

    def made(self, user: str) -> int:
        return sum(s.account.user_id == user for s in self.sessions)


class SlowRead:
    """Restore's topic reader: the first reading hangs until cancelled, later ones find nothing."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cancelled = False
        self.calls = 0

    async def __call__(self, *_args: Any, **_kwargs: Any) -> None:
        self.calls += 1
        if self.calls > 1:
            return
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


@pytest.fixture(name="fleet")
async def fixture_fleet(tmp_path: Path) -> Any:
    """Makes grouped fleets of the twelve USERS over tmp_path; each is stopped at the end."""
    worlds: list[FeedingWorld] = []

    def make(**options: Any) -> FeedingWorld:
        world = FeedingWorld(tmp_path, grouped=True, publisher=AckingPublisher(), **options)
        world.write(**dict.fromkeys(USERS, "p"))
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        await world.fleet.stop()


async def all_up(w: FeedingWorld, users: list[str]) -> None:
    """Assign every partition and wait until each user's session said it is up."""
    await w.fleet.assigned([0, 1, 2], 3)
    await until(lambda: all(w.publisher.of(u) for u in users))


def subjects(records: list[Record]) -> list[str]:
    """The interaction ids of the alerting events among ``records``, in order."""
    return [r.key.decode().split("/", 1)[1] for r in records if r.topic == "ev.alerting" and r.key]


class TestPark:
    """A revoke parks: nothing more published, records acknowledged, no logout."""

    async def test_revoke_returns_once_the_records_put_are_acknowledged(self, fleet: Any) -> None:
        """With Kafka holding the acks, the revoke waits for them; the sessions stay logged in."""
        w = fleet()
        await all_up(w, USERS)
        w.publisher.hold = True
        w.session_of(KEPT[0]).batches.put_nowait([alerting("1001")])
        await until(lambda: w.session_of(KEPT[0]).delivered == 1)
        revoking = asyncio.create_task(w.fleet.revoked([0, 1, 2]))
        await until(lambda: w.fleet.held() == ())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not revoking.done(), "the revoke returned before Kafka acknowledged"
        await w.publisher.ack()
        await revoking
        assert not any(s.stopped.is_set() for s in w.sessions)
        assert w.logins.done == len(USERS)

    async def test_a_parked_account_is_not_handed_to_commands_and_shows_parked(
        self, fleet: Any
    ) -> None:
        """caller/view give nothing for a parked user; /accounts and the metric say parked."""
        w = fleet()
        await all_up(w, USERS)
        await w.fleet.revoked([0, 1, 2])
        assert w.fleet.caller(KEPT[0]) is None
        assert w.fleet.view(KEPT[0]) is None
        page = w.fleet.accounts()
        assert page["held"] == 0
        assert page["parked"] == len(USERS)
        assert {a["state"] for a in page["accounts"]} == {"parked"}
        assert w.gauge("accounts", state="parked") == len(USERS)
        assert w.gauge("accounts", state="up") == 0

    async def test_nothing_is_published_while_parked(self, fleet: Any) -> None:
        """A batch the session reads while parked waits at the gate; no record of it is put."""
        w = fleet()
        await all_up(w, USERS)
        await w.fleet.revoked([0, 1, 2])
        before = len(w.publisher.of(KEPT[0]))
        w.session_of(KEPT[0]).batches.put_nowait([alerting("1001")])
        for _ in range(50):
            await asyncio.sleep(0)
        session = w.session_of(KEPT[0])
        assert session.batches.empty(), "the session did not take the batch"
        assert session.delivered == 0, "the session's reader was not held"
        assert not session.stopped.is_set()
        assert len(w.publisher.of(KEPT[0])) == before


class TestResume:
    """An assignment that gives a parked account back resumes it on the same session."""

    async def test_a_kept_account_keeps_its_session_and_publishes_what_it_held_in_order(
        self, fleet: Any
    ) -> None:
        """Same session object, one login, no new lifecycle record; held batches follow in order."""
        w = fleet()
        await all_up(w, USERS)
        user = KEPT[0]
        session = w.session_of(user)
        await w.fleet.revoked([0, 1, 2])
        before = len(w.publisher.of(user))
        session.batches.put_nowait([alerting("1001")])
        session.batches.put_nowait([alerting("1001", "1002")])
        await w.fleet.assigned([0], 3)
        await until(lambda: session.delivered == 2)
        assert w.fleet.caller(user) is session
        assert w.made(user) == 1
        assert w.logins.done == len(USERS), "no account logged in again"
        after = w.publisher.of(user)[before:]
        assert subjects(after) == ["1001", "1002"]
        assert [r for r in after if r.topic == "life"] == [], "no gap, no session.up"

    async def test_accounts_not_given_back_are_logged_out_once_and_concurrently(
        self, fleet: Any
    ) -> None:
        """The assignment returns after every moved account logged out, each once, all at once."""
        w = fleet()
        await all_up(w, USERS)
        moved = [w.session_of(u) for u in MOVED]
        await w.fleet.revoked([0, 1, 2])
        published = len(w.publisher.records)
        for session in moved:
            session.logout_allowed.clear()
        assigning = asyncio.create_task(w.fleet.assigned([0], 3))
        await until(lambda: all(s.stopped.is_set() for s in moved))
        assert not assigning.done(), "the assignment did not wait for the logouts"
        for session in moved:
            session.logout_allowed.set()
        await assigning
        assert [s.logouts for s in moved] == [1] * len(moved)
        assert sorted(w.fleet.held()) == KEPT
        assert w.fleet.accounts()["parked"] == 0
        assert len(w.publisher.records) == published, "a moved account published after parking"

    async def test_a_changed_partition_count_starts_accounts_afresh(self, fleet: Any) -> None:
        """Parked under 3 partitions, assigned under 4: every parked account logs in again."""
        w = fleet()
        await all_up(w, USERS)
        old = {u: w.session_of(u) for u in USERS}
        await w.fleet.revoked([0, 1, 2])
        await w.fleet.assigned([0, 1, 2, 3], 4)
        assert all(s.logouts == 1 for s in old.values())
        assert all(w.fleet.caller(u) is not old[u] for u in USERS)
        assert sorted(w.fleet.held()) == USERS


class TestGenerations:
    """Kafka's group generations tell whether another member may have held a parked account."""

    async def test_the_next_generation_resumes_the_parked_account(self, fleet: Any) -> None:
        """Revoked in generation 4, assigned in 5: nobody held it between, same session."""
        w = fleet()
        await w.fleet.assigned([0, 1, 2], 3, 4)
        await until(lambda: all(w.publisher.of(u) for u in USERS))
        session = w.session_of(KEPT[0])
        await w.fleet.revoked([0, 1, 2], 4)
        await w.fleet.assigned([0], 3, 5)
        assert w.fleet.caller(KEPT[0]) is session
        assert session.logouts == 0

    @pytest.mark.parametrize(("revoked_in", "assigned_in"), [(4, 6), (-1, 5), (-1, 0)])
    async def test_a_generation_missed_or_an_eviction_starts_the_account_afresh(
        self, fleet: Any, revoked_in: int, assigned_in: int
    ) -> None:
        """A generation skipped, or a revoke after eviction: logged out, a new session restores."""
        w = fleet()
        await w.fleet.assigned([0, 1, 2], 3, 3)
        await until(lambda: all(w.publisher.of(u) for u in USERS))
        session = w.session_of(KEPT[0])
        await w.fleet.revoked([0, 1, 2], revoked_in)
        await w.fleet.assigned([0], 3, assigned_in)
        assert session.logouts == 1
        assert w.fleet.caller(KEPT[0]) is not session
        assert w.made(KEPT[0]) == 2


class TestBounds:
    """Parked accounts do not wait forever, and a revoke does not wait for a slow restore."""

    async def test_parked_accounts_stop_when_no_assignment_comes(self, fleet: Any) -> None:
        """Rebalance timeout 0.1 s: within its limit (twice that) the parked accounts log out."""
        w = fleet(kafka={"consumer_rebalance_timeout_ms": 100})
        await all_up(w, USERS)
        await w.fleet.revoked([0, 1, 2])
        assert not any(s.stopped.is_set() for s in w.sessions), "stopped at once, not parked"
        async with asyncio.timeout(5):
            await asyncio.gather(*(s.stopped.wait() for s in w.sessions))
        await until(lambda: w.fleet.accounts()["parked"] == 0)
        assert all(s.logouts == 1 for s in w.sessions)

    async def test_stop_logs_out_parked_accounts(self, fleet: Any) -> None:
        """The fleet's stop stops parked accounts too."""
        w = fleet()
        await all_up(w, USERS)
        await w.fleet.revoked([0, 1, 2])
        await w.fleet.stop()
        assert all(s.logouts == 1 for s in w.sessions)

    async def test_a_revoke_cuts_a_slow_restore_short(self, fleet: Any) -> None:
        """The restore is cancelled, no session starts, and a later assignment holds them."""
        read = SlowRead()
        w = fleet(read=read)
        assigning = asyncio.create_task(w.fleet.assigned([0, 1, 2], 3))
        await read.entered.wait()
        async with asyncio.timeout(2):
            await w.fleet.revoked([0, 1, 2])
            await assigning
        assert read.cancelled
        assert w.fleet.held() == ()
        assert w.fleet.accounts()["parked"] == 0
        assert w.logins.done == 0
        await all_up(w, USERS)
        assert sorted(w.fleet.held()) == USERS
        await until(lambda: w.logins.done == len(USERS))
        for _ in range(20):
            await asyncio.sleep(0)
        assert w.logins.done == len(USERS), "a pipeline of the cut start ran"
