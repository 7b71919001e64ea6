"""Chaos for a fleet (issue #14): several accounts over several replicas, then the zeros per user.

``python -m tests.chaos --accounts 3 --replicas 2 --duration 120 --seed 5``. The simulator serves
``users_named("agent", N)``; every ``bridge run`` replica reads one accounts directory and they
share the accounts by the command topic's partitions. Faults, in seeded rounds: a replica
SIGKILLed (restarted after a while), a rebalance (a third replica joins, then leaves with
SIGTERM), account churn (a file removed, the simulator shows the logout, re-added, a new login),
and the ICWS and Kafka faults that do not depend on one process (expiry, Down, 500s, a broker
pause). Each fault is recovered when every replica is ready, every account is held up by exactly
one replica and has exactly one live session in the simulator (and, for a kill, the victim's
accounts have new sessions). The checks are tests/chaos.py's, per user: state topics equal the
truth for every user, nothing lost, no phantoms, every command one result, none run twice; plus
one live session per account at the end. The catalogue account (the smallest id) is never
churned: its removal would move the catalogue to another session mid-run, which the per-user
oracle cannot follow.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp

from bridge.embedded_broker import EmbeddedBroker, free_port
from bridge.settings import Settings
from bridge.simulator import Simulator, SimulatorConfig, users_named
from tests import chaos_checks as checks
from tests.chaos import (
    entity_events,
    judged,
    read_until,
    ready_at_end,
    verdict_topics,
)
from tests.chaos_run import (
    FAULTS,
    KILL_GRACE,
    PRIMARY,
    Run,
    chaos_env,
    fault_order,
    inject_one,
)
from tests.chaos_workload import activity, commanding
from tests.conftest import Reader, bridge_settings, topic_schemas
from tests.oracle import expected_steps, missing_steps, published_steps, step_count
from tests.truth import difference, simulator_truth, state_topic_truth

PASSWORD = "fleet-Pa55"
PARTITIONS = 6  # command-topic partitions: room for the accounts to spread over the replicas
EXTRA = 100  # the index of the replica a rebalance adds (its port is kept for the next one)
SETTLE = 3.0  # seconds: the chaos group's rebalance timeout (2 s) and a margin


@dataclass
class FleetRun(Run):
    """A chaos run over replicas sharing an accounts directory; `env` is the replicas' base."""

    users: list[str] = field(default_factory=list)
    directory: Path = Path()
    replicas: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    # Session id -> user of every session seen (the simulator forgets ended sessions' users).
    owners: dict[str, str] = field(default_factory=dict)

    async def spawn_replica(self, index: int) -> None:
        """Start replica ``index`` (its own health port, kept across restarts)."""
        port = self.ports.setdefault(index, free_port())
        self.replicas[index] = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bridge", "run"),
            env={**self.env, "BRIDGE_HEALTH__PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def stop_replica(self, index: int, sig: signal.Signals) -> None:
        """Send ``sig`` to replica ``index`` and wait until it is gone (SIGKILL after 30 s)."""
        process = self.replicas.pop(index)
        process.send_signal(sig)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def ready(self, timeout: float = 60.0) -> float:
        """Seconds until the fleet is settled (see the module docstring); TimeoutError else."""
        started = time.monotonic()
        async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
            while not await self._settled(http):  # noqa: ASYNC110 - other processes: polled
                await asyncio.sleep(0.2)
        return time.monotonic() - started

    async def _settled(self, http: aiohttp.ClientSession) -> bool:
        held: list[str] = []
        for index in self.replicas:
            base = f"http://127.0.0.1:{self.ports[index]}"
            try:
                async with http.get(f"{base}/readyz") as answer:
                    if answer.status != 200:
                        return False
                async with http.get(f"{base}/accounts") as answer:
                    body = await answer.json()
            except aiohttp.ClientError:
                return False
            held += [a["user"] for a in body["accounts"] if a["state"] == "up"]
        return sorted(held) == self.users and all(self.live(u) == 1 for u in self.users)

    def live(self, user: str) -> int:
        return len(self.sim.sessions_of(user))

    async def held_by(self, index: int) -> list[str]:
        """The accounts replica ``index`` holds now (none if it does not answer)."""
        url = f"http://127.0.0.1:{self.ports[index]}/accounts"
        with contextlib.suppress(aiohttp.ClientError):
            async with aiohttp.ClientSession() as http, http.get(url) as answer:
                return [a["user"] for a in (await answer.json())["accounts"]]
        return []


async def watch_sessions(run: FleetRun, stop: asyncio.Event) -> None:
    """Note which user each live session belongs to, often (a session lives for seconds)."""
    while not stop.is_set():
        run.owners.update({sid: s.user for sid, s in run.sim.sessions.items()})
        await asyncio.sleep(0.02)


# --- fleet faults ---------------------------------------------------------------------------


async def replica_kill(run: Run) -> None:
    """SIGKILL one replica; its accounts move to the others; restart it after a while."""
    assert isinstance(run, FleetRun)
    index = run.rng.choice(sorted(run.replicas))
    victim = await run.held_by(index)
    before = {s.session_id for u in victim for s in run.sim.sessions_of(u)}
    killed_at = time.monotonic()
    await run.stop_replica(index, signal.SIGKILL)

    def taken_over() -> bool:
        return all(
            run.live(u) == 1 and run.sim.sessions_of(u)[0].session_id not in before for u in victim
        )

    await run.sim.wait_for(taken_over, 60)
    await asyncio.sleep(run.rng.uniform(0.5, 2))
    await run.spawn_replica(index)
    await run.ready()
    await asyncio.sleep(SETTLE)  # the restarted replica's join rebalances the group
    await run.ready()
    run.forgiven.append((run.sent_index_at(killed_at - KILL_GRACE), len(run.sim.sent_messages)))


async def rebalance(run: Run) -> None:
    """A third replica joins (taking accounts), then leaves with SIGTERM (handing them back)."""
    assert isinstance(run, FleetRun)
    await run.spawn_replica(EXTRA)
    await run.ready()
    await asyncio.sleep(SETTLE)
    await run.ready()
    await run.stop_replica(EXTRA, signal.SIGTERM)
    await asyncio.sleep(SETTLE)


async def account_churn(run: Run) -> None:
    """An account's file is removed (its session logs out), then re-added (a new login)."""
    assert isinstance(run, FleetRun)
    user = run.rng.choice(run.users[1:])  # never the catalogue account (module docstring)
    logouts, logins = run.sim.logouts, run.sim.logins
    path = run.directory / user
    path.unlink()
    try:
        await run.sim.wait_for(lambda: run.live(user) == 0 and run.sim.logouts > logouts, 30)
        await asyncio.sleep(run.rng.uniform(0.5, 2))
    finally:
        path.write_text(PASSWORD + "\n")
    await run.sim.wait_for(lambda: run.live(user) == 1 and run.sim.logins > logins, 30)


FLEET_ONLY: dict[str, Callable[[Run], Awaitable[None]]] = {
    "replica SIGKILL": replica_kill,
    "rebalance": rebalance,
    "account churn": account_churn,
}
# ICWS and Kafka faults that act on every session or the broker, not on one process.
FLEET_FAULTS = {
    **{k: FAULTS[k] for k in ("session expiry", "Down message", "500 burst", "broker pause")},
    **FLEET_ONLY,
}


async def inject(run: FleetRun, every: float, stop: asyncio.Event, order: Iterator[str]) -> None:
    """Inject fleet faults one at a time, at random moments, in ``order``."""
    while not stop.is_set():
        await asyncio.sleep(run.rng.expovariate(1 / every))
        if not stop.is_set():
            await inject_one(run, next(order), FLEET_FAULTS)


# --- run and verdict ------------------------------------------------------------------------


async def fleet_chaos(
    duration: float,
    seed: int,
    accounts: int = 3,
    replicas: int = 2,
    rate: float = 20,
    fault_every: float = 8,
    first: Sequence[str] = (),
) -> dict[str, Any]:
    """Run fleet chaos for ``duration`` s (the ``first`` fault kinds first); the report."""
    users = users_named("agent", accounts, PASSWORD)
    # A session without reads for 3 s is ended, as ICWS ends a SIGKILLed replica's sessions.
    config = SimulatorConfig(users=users, sse_keepalive_seconds=0.5, idle_timeout_seconds=3)
    sim = Simulator(config)
    await sim.start(host=PRIMARY, port=0)
    broker = EmbeddedBroker(schema_registry=topic_schemas())
    await broker.start()
    watching, stop = asyncio.Event(), asyncio.Event()
    started = time.monotonic()
    with TemporaryDirectory() as tmp:
        run = fleet_run(random.Random(seed), sim, broker, Path(tmp), sorted(users))
        watcher = asyncio.create_task(watch_sessions(run, watching))
        try:
            for index in range(replicas):
                await run.spawn_replica(index)
            await run.ready(90)
            async with asyncio.TaskGroup() as group:
                group.create_task(activity(run, rate, stop, run.users))
                group.create_task(commanding(run, 2.0, stop, run.users))
                group.create_task(
                    inject(run, fault_every, stop, fault_order(seed, first, FLEET_FAULTS))
                )
                await asyncio.sleep(duration)
                stop.set()
            run.sim.faults.clear()
            report = await final_verdict(run)
            seconds = round(time.monotonic() - started, 1)
            shape = {"seed": seed, "accounts": accounts, "replicas": replicas}
            return {**shape, "seconds": seconds, **report}
        finally:
            watching.set()
            await watcher
            for index in list(run.replicas):
                await run.stop_replica(index, signal.SIGTERM)
            await sim.stop()
            await broker.stop()


def fleet_run(
    rng: random.Random, sim: Simulator, broker: EmbeddedBroker, tmp: Path, users: list[str]
) -> FleetRun:
    """The run: one file per account in ``tmp/accounts``, replicas reading it every 0.5 s."""
    directory = tmp / "accounts"
    directory.mkdir()
    for user in users:
        (directory / user).write_text(PASSWORD + "\n")
    server = f"http://{PRIMARY}:{sim.port}"
    settings = bridge_settings(
        broker, server, icws={"accounts_dir": directory}, topics={"partitions": PARTITIONS}
    )
    env = chaos_env(broker, server) | {
        "BRIDGE_ICWS__ACCOUNTS_DIR": str(directory),
        "BRIDGE_ICWS__ACCOUNTS_RELOAD_SECONDS": "0.5",
        "BRIDGE_TOPICS__PARTITIONS": str(PARTITIONS),
    }
    return FleetRun(rng, sim, broker, settings, env, users=users, directory=directory)


async def final_verdict(run: FleetRun) -> dict[str, Any]:
    """Once the fleet settled: read every topic until each user's state is its truth; judge."""
    ready = await ready_at_end(run)
    settings = run.settings
    names = settings.subscriptions.alerting.attribute_names
    async with Reader(run.broker.bootstrap, verdict_topics(settings)) as kafka:
        truth = {u: simulator_truth(run.sim, u, names) for u in run.users}

        def equal(records: list[Any]) -> bool:
            return all(state_topic_truth(records, settings, u) == truth[u] for u in run.users)

        settled = await read_until(run, kafka, equal)
        live = {u: run.live(u) for u in run.users}
        return {"ready_at_end": ready, **verdict(run, kafka, truth, settled, live)}


def differences(truth: Mapping[str, Any], records: list[Any], settings: Settings) -> str:
    """Per user whose state topics differ from the truth: how."""
    return "; ".join(
        f"{user}: {difference(want, have)}"
        for user, want in truth.items()
        if want != (have := state_topic_truth(records, settings, user))
    )


def lost_steps(run: FleetRun, kafka: Reader) -> tuple[list[str], int]:
    """Per user: steps its sessions' messages imply not in its view on Kafka; steps judged."""
    names = run.settings.subscriptions.alerting.attribute_names
    events = entity_events(kafka, run.settings)
    spans = [range(start, end) for start, end in run.forgiven]
    lost, judged = [], 0
    for user in run.users:
        # Other users' messages are blanked, not dropped, so indices stay the run's (forgiveness).
        mine = [(s, m if run.owners.get(s) == user else {}) for s, m in run.sim.sent_messages]
        expected = expected_steps(mine, names)
        judged += step_count(expected)
        published = published_steps(events, user)
        missing = missing_steps(expected, published, lambda i: any(i in s for s in spans))
        lost += [f"{user}: {step}" for step in missing]
    return lost, judged


def verdict(
    run: FleetRun, kafka: Reader, truth: Mapping[str, Any], settled: bool, live: Mapping[str, int]
) -> dict[str, Any]:
    """The report: tests/chaos.py's checks per user, and one live session per account."""
    lost, steps = lost_steps(run, kafka)
    unseen = sorted({s for s, _ in run.sim.sent_messages} - run.owners.keys())
    more = {
        "sessions": checks.session_problems(live),
        "unattributed": [f"messages of session {s}, user never seen" for s in unseen],
    }
    return {
        "state_topics_equal_truth": settled,
        "state_difference": "" if settled else differences(truth, kafka.records, run.settings),
        "steps_expected": steps,
        "live_sessions": dict(live),
        **judged(run, kafka, lost, more),
    }
