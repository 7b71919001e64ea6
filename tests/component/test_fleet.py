"""The fleet with fake sessions: accounts held, started and stopped; logins spread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import murmur2

from bridge.core.accounts import Account
from bridge.core.icws_api import Answer
from bridge.fleet.accounts import AccountSource
from bridge.fleet.fleet import Fleet
from bridge.fleet.pipeline import Parts
from bridge.icws.login import LoginGate
from bridge.icws.sink import Health
from bridge.kafka import Partition
from bridge.metrics import create
from bridge.settings import Settings

from .test_pump import CONTRACT
from .test_restore import ALERT, FakeTopics, change, published


class Logins:
    """Counts logins in flight across every fake session, remembering the most at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.done = 0
        self.release = asyncio.Event()
        self.release.set()


class FakeSession:
    """Logs in through the gate (held until ``logins.release``), is up, logs out on stop."""

    def __init__(self, account: Account, catalogue: bool, gate: LoginGate, logins: Logins):
        self.account = account
        self.catalogue = catalogue
        self.health = Health()
        self.last_message = 0.0
        self.stopped = asyncio.Event()
        self.logged_out = False
        self.logout_allowed = asyncio.Event()
        self.logout_allowed.set()
        self._gate = gate
        self._logins = logins

    @property
    def up(self) -> bool:
        return self.health.state == "up"

    async def run(self) -> None:
        async with self._gate():
            self._logins.now += 1
            self._logins.most = max(self._logins.most, self._logins.now)
            try:
                await self._logins.release.wait()
            finally:
                self._logins.now -= 1
        self._logins.done += 1
        self.health.state, self.health.problem = "up", ""
        await self.stopped.wait()
        await self.logout_allowed.wait()
        self.logged_out = True
        self.health.state = "down"

    def stop(self) -> None:
        self.stopped.set()

    async def request(self, make: Any) -> Answer:
        raise AssertionError("no call expected")


class FakePublisher:
    """Takes every record at once, as if Kafka acknowledged it."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    async def put(self, records: Iterable[Any], read_at: float) -> None:
        self.records += records

    async def flushed(self) -> None:
        return


async def read_nothing(*_args: Any, **_kwargs: Any) -> None:
    """Restore reads empty topics: nothing was published before."""


class World:
    """A fleet over an accounts directory, with the fake sessions it made."""

    def __init__(
        self, directory: Path, *, grouped: bool = False, read: Any = read_nothing, **icws: Any
    ) -> None:
        self.directory = directory
        self.running: asyncio.Task[None] | None = None  # fleet.run(), when a test started it
        self.logins = Logins()
        self.sessions: list[FakeSession] = []
        self.settings = Settings(
            icws={"accounts_dir": directory, "login_spread_seconds": 0, **icws},
            commands={"enabled": grouped},
        )
        self.metrics = create()
        parts = Parts(
            self.settings,
            CONTRACT,
            FakePublisher(),  # type: ignore[arg-type]
            self.metrics,
            self._session,
            read=read,
        )
        self.fleet = Fleet(parts, AccountSource(self.settings.icws), grouped=grouped)

    def _session(self, account: Account, _sink: Any, catalogue: bool, gate: LoginGate) -> Any:
        session = FakeSession(account, catalogue, gate, self.logins)
        self.sessions.append(session)
        return session

    def write(self, **passwords: str) -> None:
        for user, password in passwords.items():
            (self.directory / user).write_text(password + "\n")

    def live(self, user: str) -> FakeSession:
        session = self.fleet.caller(user)
        assert isinstance(session, FakeSession)
        return session

    async def reload(self) -> None:
        await self.fleet._source.read()
        await self.fleet._reconcile()

    def gauge(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(f"icws_bridge_{name}", labels)


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for a condition the fleet's tasks make true (bounded)."""
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110 - yields to the fleet's tasks; no timed wait
            await asyncio.sleep(0)


def partition_of(user: str, total: int) -> int:
    """Kafka's default partitioner, written from its definition (murmur2, positive, modulo)."""
    return (murmur2(user.encode()) & 0x7FFFFFFF) % total


@pytest.fixture(name="world")
async def fixture_world(tmp_path: Path) -> Any:
    """Makes fleets over tmp_path; each is stopped at the end."""
    worlds: list[World] = []

    def make(**options: Any) -> World:
        world = World(tmp_path, **options)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        await world.fleet.stop()
        if world.running is not None:
            await world.running


class TestAccountsDirectory:
    """Without a consumer group the fleet holds every configured account."""

    async def test_every_account_starts_and_only_the_smallest_id_subscribes_the_catalogue(
        self, world: Any
    ) -> None:
        """Three files: three sessions, each with its own user; the catalogue is agent.a's."""
        w = world()
        w.write(**{"agent.c": "pc", "agent.a": "pa", "agent.b": "pb"})
        await w.reload()
        assert sorted(w.fleet.held()) == ["agent.a", "agent.b", "agent.c"]
        assert {s.account.user_id: s.catalogue for s in w.sessions} == {
            "agent.a": True,
            "agent.b": False,
            "agent.c": False,
        }
        assert w.live("agent.b").account.password.reveal() == "pb"
        await until(lambda: w.gauge("accounts", state="up") == 3)
        assert w.gauge("accounts_held") == 3
        assert w.gauge("accounts_configured") == 3

    async def test_a_new_file_starts_a_session_and_a_removed_one_stops_it(self, world: Any) -> None:
        """Adding agent.d starts it; removing agent.b logs it out; the others are untouched."""
        w = world()
        w.write(**{"agent.a": "pa", "agent.b": "pb"})
        await w.reload()
        first_a, first_b = w.live("agent.a"), w.live("agent.b")
        await until(lambda: first_b.up)
        (w.directory / "agent.b").unlink()
        w.write(**{"agent.d": "pd"})
        await w.reload()
        assert sorted(w.fleet.held()) == ["agent.a", "agent.d"]
        assert first_b.logged_out
        assert w.live("agent.a") is first_a

    async def test_a_changed_password_logs_in_again_with_it(self, world: Any) -> None:
        """The old session is logged out and a new one uses the new password."""
        w = world()
        w.write(**{"agent.a": "old"})
        await w.reload()
        old = w.live("agent.a")
        w.write(**{"agent.a": "new"})
        await w.reload()
        assert old.logged_out
        assert w.live("agent.a").account.password.reveal() == "new"

    async def test_a_smaller_new_account_takes_the_catalogue_over(self, world: Any) -> None:
        """The catalogue moves to the new smallest id: exactly one session subscribes it."""
        w = world()
        w.write(**{"agent.m": "pm"})
        await w.reload()
        assert w.live("agent.m").catalogue
        w.write(**{"agent.a": "pa"})
        await w.reload()
        assert w.live("agent.a").catalogue
        assert not w.live("agent.m").catalogue
        assert [s.catalogue for s in w.sessions if not s.logged_out].count(True) == 1

    async def test_a_bad_file_is_skipped_and_reported_while_the_others_run(
        self, world: Any
    ) -> None:
        """An empty password file is named in /accounts and the metrics; no password shows."""
        w = world()
        w.write(**{"agent.a": "secret-a"})
        (w.directory / "agent.empty").write_text("")
        await w.reload()
        assert w.fleet.held() == ("agent.a",)
        page = w.fleet.accounts()
        assert page["skipped"] == [{"name": "agent.empty", "reason": "empty password"}]
        assert page["configured"] == 1
        assert "secret-a" not in repr(page)
        assert w.gauge("account_files_skipped") == 1
        assert w.fleet.checks()["accounts"].ok

    async def test_a_missing_directory_means_no_accounts_and_not_ready(
        self, tmp_path: Path
    ) -> None:
        """No directory: nothing held, and the accounts check says why."""
        w = World(tmp_path / "absent")
        await w.reload()
        assert w.fleet.held() == ()
        check = w.fleet.checks()["accounts"]
        assert not check.ok
        assert "absent" in check.detail


class TestOwnership:
    """With a consumer group, the assigned partitions decide which accounts are held."""

    USERS = [f"agent.{n}" for n in range(12)]

    async def test_assigned_partitions_start_exactly_their_accounts(self, world: Any) -> None:
        """Each account is held by the replica of its partition, and only those."""
        w = world(grouped=True)
        w.write(**dict.fromkeys(self.USERS, "p"))
        await w.fleet.assigned([0, 2], 3)
        expected = sorted(u for u in self.USERS if partition_of(u, 3) in (0, 2))
        assert expected
        assert len(expected) < len(self.USERS)
        assert sorted(w.fleet.held()) == expected
        assert {a["user"]: a["partition"] for a in w.fleet.accounts()["accounts"]} == {
            u: partition_of(u, 3) for u in expected
        }

    async def test_revoked_returns_only_after_its_accounts_logged_out(self, world: Any) -> None:
        """revoked() waits for the logout of those accounts; the others keep running."""
        w = world(grouped=True)
        w.write(**dict.fromkeys(self.USERS, "p"))
        await w.fleet.assigned([0, 1, 2], 3)
        leaving = [u for u in self.USERS if partition_of(u, 3) == 1]
        for user in leaving:
            w.live(user).logout_allowed.clear()
        sessions = [w.live(u) for u in leaving]
        revoking = asyncio.create_task(w.fleet.revoked([1]))
        await until(lambda: all(s.stopped.is_set() for s in sessions))
        assert not revoking.done()
        for session in sessions:
            session.logout_allowed.set()
        await revoking
        assert all(s.logged_out for s in sessions)
        assert sorted(w.fleet.held()) == sorted(u for u in self.USERS if u not in leaving)

    async def test_readiness_waits_while_new_partitions_are_taken_on(self, world: Any) -> None:
        """Not ready while assigned() runs; then ready once every held account is up."""
        w = world(grouped=True, max_concurrent_logins=1)
        w.write(**dict.fromkeys(self.USERS, "p"))
        assert w.fleet.checks()["icws_sessions"].ok  # none held: Kafka decides
        w.logins.release.clear()
        await w.fleet.assigned([0, 1, 2], 3)
        check = w.fleet.checks()["icws_sessions"]
        assert not check.ok
        assert f"{len(self.USERS)} down" in check.detail or "connecting" in check.detail
        w.logins.release.set()
        await until(lambda: w.fleet.checks()["icws_sessions"].ok)
        assert w.fleet.checks()["icws_sessions"].detail == f"{len(self.USERS)} up"

    async def test_stop_after_the_consumer_released_everything_is_harmless(
        self, world: Any
    ) -> None:
        """The consumer revokes all at shutdown; the fleet's own stop then has nothing to do."""
        w = world(grouped=True)
        w.write(**dict.fromkeys(self.USERS, "p"))
        await w.fleet.assigned([0, 1, 2], 3)
        await w.fleet.revoked([0, 1, 2])
        assert w.fleet.held() == ()
        await w.fleet.stop()
        assert all(s.logged_out for s in w.sessions)


class ReadingTopics(FakeTopics):
    """The restore's fake topics, remembering where each reading of a state topic started.

    A reading of the state topics from the beginning waits for ``gate`` (open unless cleared).
    """

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[dict[Partition, int] | None] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def read(self, kafka: Any, topics: Iterable[str], visit: Any, **options: Any) -> None:
        """Note where a state-topic reading starts; hold one from the beginning at the gate."""
        names = list(topics)
        if "st.alerting" in names:
            self.starts.append(options.get("positions"))
            if options.get("positions") is None:
                await self.gate.wait()
        await super().read(kafka, names, visit, **options)


class TestEarlyRestore:
    """The first assignment's accounts were restored while the group's join was under way."""

    async def test_the_assigned_account_keeps_the_early_reading_and_reads_only_what_came_since(
        self, world: Any
    ) -> None:
        """Read at start; a change written later; assigned: both loaded, the rest read no more."""
        users = ["agent.a", "agent.b"]
        assert partition_of(users[0], 2) != partition_of(users[1], 2)
        topics = ReadingTopics()
        for user in users:
            published(topics, change("alerting", "1001", ALERT, 1), user, 1_000)
        w = world(grouped=True, read=topics.read)
        w.write(**dict.fromkeys(users, "p"))
        running = asyncio.create_task(w.fleet.run())
        await until(lambda: len(topics.starts) == 1)  # the early reading, before any assignment
        assert topics.starts == [None]  # from the beginning
        published(topics, change("alerting", "1002", ALERT, 1), users[0], 2_000)
        await w.fleet.assigned([partition_of(users[0], 2)], 2)
        assert w.fleet.held() == (users[0],)
        held = w.fleet.pipelines()[users[0]].states["alerting"].entities
        assert sorted(held) == ["1001", "1002"]
        # The second reading started where the first ended (2 state records), not at 0.
        assert topics.starts[1:] == [{Partition("st.alerting", 0): 2}]
        await w.fleet.stop()
        await running


class TestEarlyRestoreEdges:
    """Stopping, reloading and changed accounts while the early reading runs."""

    USERS = ("agent.a", "agent.b")

    async def held_early(self, world: Any, **icws: Any) -> tuple[Any, ReadingTopics]:
        """A grouped fleet running, its early reading started and held at the gate."""
        topics = ReadingTopics()
        topics.gate.clear()
        for user in self.USERS:
            published(topics, change("alerting", "1001", ALERT, 1), user, 1_000)
        w = world(grouped=True, read=topics.read, **icws)
        w.write(**dict.fromkeys(self.USERS, "p"))
        w.running = asyncio.create_task(w.fleet.run())
        await until(lambda: topics.starts == [None])
        return w, topics

    async def test_stop_during_the_early_reading_starts_no_account(self, world: Any) -> None:
        """Assigned while the early reading is held, then stopped: it ends, nobody logs in."""
        w, _topics = await self.held_early(world)
        assigning = asyncio.create_task(w.fleet.assigned([0, 1], 2))
        await until(lambda: not w.fleet.checks()["icws_sessions"].ok)  # taking them on
        await w.fleet.stop()
        await assigning
        await w.running
        assert w.fleet.held() == ()
        assert w.sessions == []

    async def test_no_second_early_reading_begins_while_an_assignment_waits(
        self, world: Any
    ) -> None:
        """Accounts re-read several times while assigned() waits: still one early reading."""
        w, topics = await self.held_early(world, accounts_reload_seconds=0.001)
        reads = 0
        source_read = w.fleet._source.read

        async def counted() -> None:
            nonlocal reads
            reads += 1
            await source_read()

        w.fleet._source.read = counted
        assigning = asyncio.create_task(w.fleet.assigned([0, 1], 2))
        await until(lambda: reads >= 1)  # the accounts re-read while the assignment waits
        topics.gate.set()
        await assigning
        await until(lambda: reads >= 3)  # and some more ticks after it
        assert [start for start in topics.starts if start is None] == [None]  # one early reading
        assert sorted(w.fleet.held()) == sorted(self.USERS)

    async def test_an_account_added_after_the_early_reading_is_restored_afresh(
        self, world: Any
    ) -> None:
        """agent.c appeared after the early reading: the assignment reads from the beginning."""
        w, topics = await self.held_early(world)
        topics.gate.set()
        await until(lambda: len(topics.starts) == 1 and w.fleet._early is not None)
        w.write(**{"agent.c": "p"})
        await w.fleet._source.read()
        await w.fleet.assigned([0, 1, 2], 3)
        assert topics.starts[-1] is None  # a full reading, not a catch-up
        assert sorted(w.fleet.held()) == ["agent.a", "agent.b", "agent.c"]


class TestLoginSpreading:
    """A fleet-wide semaphore bounds the logins in flight."""

    async def test_never_more_than_max_concurrent_logins_at_once(self, world: Any) -> None:
        """Ten accounts, a bound of three: at most three log in at a time, and all get in."""
        w = world(max_concurrent_logins=3)
        w.write(**{f"agent.{n}": "p" for n in range(10)})
        w.logins.release.clear()
        await w.reload()
        await until(lambda: w.logins.now == 3)
        for _ in range(5):
            await asyncio.sleep(0)
        assert w.logins.now == 3
        w.logins.release.set()
        await until(lambda: w.logins.done == 10)
        assert w.logins.most == 3

    async def test_no_more_accounts_than_the_gate_lets_through_log_in_without_waiting(
        self, world: Any
    ) -> None:
        """Three accounts, a gate of three, a spread of an hour: all three log in at once."""
        w = world(max_concurrent_logins=3, login_spread_seconds=3600)
        w.write(**{f"agent.{n}": "p" for n in range(3)})
        await w.reload()
        await until(lambda: w.logins.done == 3)
