"""A fleet of accounts against a real broker and the contact-centre simulator (issue #14).

One process with several accounts: each account's events carry its own user, the status
catalogue is published once, accounts come and go with their files, a bad file is skipped and
reported. Two ``bridge run`` processes in one consumer group share the accounts by the command
topic's partitions; when one is SIGKILLed the other takes its accounts over, one live session per
account, nothing lost and nothing invented. When a second replica joins, the accounts that stay
on the first keep their ICWS session (a rebalance parks and resumes them, no new login).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from bridge.embedded_broker import EmbeddedBroker, free_port
from bridge.simulator import Simulator, SimulatorConfig, users_named
from bridge.simulator.messages import STATUS_MESSAGES as STATUS
from tests.conftest import RunningBridge, bridge_process, bridge_settings
from tests.e2e.test_commands import (
    FAST_COMMANDS,
    Sender,
    calls,
    command,
    fixture_producer,  # noqa: F401 - the producer fixture
    journaled,
    result_of,
    results,
    texts,
)
from tests.truth import difference, simulator_truth, state_topic_truth, state_topics

pytestmark = pytest.mark.e2e

PASSWORD = "fleet-Pa55"
ATTRIBUTES = ["Eic_CallDirection", "Eic_RemoteName", "Eic_WorkgroupName"]
Start = Callable[[Any], RunningBridge]
ANY_COMMAND = r"^/icws/\d+/interactions/agent-assistance/[^/]+$"


@pytest.fixture(name="centre")
async def fixture_centre() -> AsyncIterator[Simulator]:
    """A simulator with six agents; a session without reads for 3 s is ended (a killed bridge)."""
    sim = Simulator(
        SimulatorConfig(
            users=users_named("agent", 6, PASSWORD),
            sse_keepalive_seconds=0.5,
            idle_timeout_seconds=3,
        )
    )
    await sim.start(host="127.0.0.1", port=0)
    try:
        yield sim
    finally:
        await sim.stop()


def write_accounts(directory: Path, users: list[str], password: str = PASSWORD) -> None:
    """One file per account, as a mounted Secret has them (with a trailing newline)."""
    directory.mkdir(exist_ok=True)
    for user in users:
        (directory / user).write_text(password + "\n")


def six_accounts(tmp_path: Path) -> tuple[list[str], Path]:
    """The centre's six agents, each with its file in ``tmp_path/accounts``."""
    users = sorted(users_named("agent", 6, PASSWORD))
    directory = tmp_path / "accounts"
    write_accounts(directory, users)
    return users, directory


def fleet_settings(broker: EmbeddedBroker, sim: Simulator, directory: Path) -> Any:
    """Settings of a fleet reading ``directory`` every 0.2 s."""
    return bridge_settings(
        broker,
        sim.url,
        icws={"accounts_dir": directory, "accounts_reload_seconds": 0.2},
    )


def live_sessions(sim: Simulator, user: str) -> int:
    return len(sim.sessions_of(user))


def key_user(record: Any) -> str:
    """The user part of a per-user record key (README: ``<quoted user>/<entity>``)."""
    return str(record.key.decode().split("/", 1)[0])


class TestOneProcess:
    """Several accounts in one bridge."""

    async def test_each_account_publishes_its_own_events_and_the_catalogue_once(
        self,
        broker: EmbeddedBroker,
        centre: Simulator,
        start_bridge: Start,
        reader: Any,
        tmp_path: Path,
    ) -> None:
        """Three agents: their alerts carry their userId and key; one catalogue event per change."""
        users = ["agent.0001", "agent.0002", "agent.0003"]
        write_accounts(tmp_path / "accounts", users)
        settings = fleet_settings(broker, centre, tmp_path / "accounts")
        running = start_bridge(settings)
        await running.ready(30)
        assert sorted(running.bridge.fleet.held()) == users
        calls = {user: centre.world.start_alerting(user) for user in users}
        centre.world.add_status_message("Lunch", messageText="At lunch")
        topics = [settings.topics.alerting, settings.topics.status_messages]
        async with reader(topics) as kafka:
            await kafka.wait_for(
                lambda _: len(kafka.events(settings.topics.alerting)) >= len(users), 20
            )
            await kafka.wait_for(
                lambda _: any(
                    e["subject"] == "lunch" for e in kafka.events(settings.topics.status_messages)
                ),
                20,
            )
            await kafka.settle()
            alerts = [r for r in kafka.records if r.topic == settings.topics.alerting]
            seen = {
                (key_user(r), kafka.event(r)["data"]["userId"], kafka.event(r)["subject"])
                for r in alerts
            }
            assert seen == {(quote(u, safe=""), u, calls[u]) for u in users}
            lunch = [
                e for e in kafka.events(settings.topics.status_messages) if e["subject"] == "lunch"
            ]
            assert len(lunch) == 1
            assert "userId" not in lunch[0]["data"]
        # Only the catalogue account (the smallest id) subscribed the catalogue.
        subscribers = {s.user for s in centre.sessions.values() if STATUS in s.subscriptions}
        assert subscribers == {"agent.0001"}

    async def test_accounts_follow_their_files(
        self, broker: EmbeddedBroker, centre: Simulator, start_bridge: Start, tmp_path: Path
    ) -> None:
        """A new file logs its user in; a removed file logs it out; a bad file is only reported."""
        directory = tmp_path / "accounts"
        write_accounts(directory, ["agent.0001", "agent.0002"])
        (directory / "agent.0006").write_text("")  # empty: skipped, reported
        running = start_bridge(fleet_settings(broker, centre, directory))
        await running.ready(30)
        page = running.bridge.fleet.accounts()
        assert page["skipped"] == [{"name": "agent.0006", "reason": "empty password"}]
        assert {a["user"] for a in page["accounts"]} == {"agent.0001", "agent.0002"}
        assert live_sessions(centre, "agent.0006") == 0

        write_accounts(directory, ["agent.0003"])
        await running.until(lambda: live_sessions(centre, "agent.0003") == 1, 20)
        logouts = centre.logouts
        (directory / "agent.0002").unlink()
        await running.until(lambda: live_sessions(centre, "agent.0002") == 0, 20)
        assert centre.logouts > logouts  # logged out, not abandoned
        assert live_sessions(centre, "agent.0001") == 1
        await running.ready(30)
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{running.bridge.health_port}/accounts"
            async with http.get(url) as response:
                body = await response.json()
        assert sorted(a["user"] for a in body["accounts"]) == ["agent.0001", "agent.0003"]
        assert all(a["state"] == "up" for a in body["accounts"])
        assert PASSWORD not in json.dumps(body)


async def accounts_of(port: int) -> list[str]:
    """The users a ``bridge run`` process holds with a live session (none if it is gone)."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/accounts") as response,
        ):
            body = await response.json()
    except aiohttp.ClientError:
        return []
    return sorted(a["user"] for a in body["accounts"] if a["state"] == "up")


async def until(predicate: Callable[[], Any], timeout: float) -> None:
    """Wait for an async condition on other processes (polled: they share no event loop)."""
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 - another process: nothing to await on
            await asyncio.sleep(0.2)


class TestTwoProcesses:
    """Six accounts over two processes in one consumer group; one is SIGKILLed."""

    async def test_a_killed_replicas_accounts_are_taken_over_and_nothing_is_lost(
        self, broker: EmbeddedBroker, centre: Simulator, reader: Any, tmp_path: Path
    ) -> None:
        """After the kill every account has exactly one live session and its state is the truth."""
        users, directory = six_accounts(tmp_path)
        for user in users:
            centre.world.start_alerting(user)
        ports = [free_port(), free_port()]
        extra = {
            "BRIDGE_ICWS__ACCOUNTS_DIR": str(directory),
            "BRIDGE_ICWS__ACCOUNTS_RELOAD_SECONDS": "0.5",
            "BRIDGE_ICWS__BACKOFF_MAX_SECONDS": "0.5",
            "BRIDGE_ICWS__POLL_INTERVAL_SECONDS": "0.05",
            "BRIDGE_TOPICS__PARTITIONS": "6",
        }
        settings = fleet_settings(broker, centre, directory)
        async with (
            bridge_process(broker, centre.url, **extra, BRIDGE_HEALTH__PORT=str(ports[0])) as one,
            bridge_process(broker, centre.url, **extra, BRIDGE_HEALTH__PORT=str(ports[1])) as two,
        ):

            async def shared() -> bool:
                held = [await accounts_of(p) for p in ports]
                return bool(held[0]) and bool(held[1]) and sorted(held[0] + held[1]) == users

            await until(shared, 60)
            victim = await accounts_of(ports[0])
            for user in users:
                centre.world.start_alerting(user)
            os.kill(one.pid, signal.SIGKILL)
            await one.wait()

            async def taken_over() -> bool:
                return await accounts_of(ports[1]) == users and all(
                    live_sessions(centre, u) == 1 for u in users
                )

            await until(taken_over, 60)
            assert two.returncode is None
            for user in victim:
                centre.world.start_alerting(user)  # what happens after the take-over is seen
            async with reader([*state_topics(settings), settings.topics.alerting]) as kafka:
                await states_are_truth(kafka, centre, settings, users)
                await kafka.settle()
                assert_no_phantoms(kafka, centre, settings, users)


async def states_are_truth(kafka: Any, sim: Simulator, settings: Any, users: list[str]) -> None:
    """Read until every user's view in the state topics equals the simulator's."""
    for user in users:
        truth = simulator_truth(sim, user, ATTRIBUTES)

        def same(records: list[Any], user: str = user, truth: Any = truth) -> bool:
            return state_topic_truth(records, settings, user) == truth

        def why(records: list[Any], user: str = user, truth: Any = truth) -> str:
            return difference(truth, state_topic_truth(records, settings, user))

        await kafka.wait_for(same, 30, why)


def assert_no_phantoms(kafka: Any, sim: Simulator, settings: Any, users: list[str]) -> None:
    """One started event per interaction the simulator has, none for anything else."""
    started = [
        e
        for e in kafka.events(settings.topics.alerting)
        if e["type"].endswith("alerting.started.v1")
    ]
    subjects = [(e["data"]["userId"], e["subject"]) for e in started]
    assert len(subjects) == len(set(subjects))
    assert set(subjects) == {(u, i) for u in users for i in sim.world.alerting(u)}


class TestRebalanceKeepsSessions:
    """A second replica joins: the accounts that stay on the first keep their ICWS session."""

    async def test_kept_accounts_do_not_log_in_again_and_moved_ones_log_in_once(
        self, broker: EmbeddedBroker, centre: Simulator, start_bridge: Start, tmp_path: Path
    ) -> None:
        """Same session ids for the stayers; each mover: old session gone, one new login."""
        users, directory = six_accounts(tmp_path)
        settings = bridge_settings(
            broker, centre.url, icws={"accounts_dir": directory}, topics={"partitions": 6}
        )
        first = start_bridge(settings)
        await first.ready(30)
        before = {u: [s.session_id for s in centre.sessions_of(u)] for u in users}
        assert all(len(ids) == 1 for ids in before.values())
        logins, logouts = centre.logins, centre.logouts
        second = start_bridge(settings)

        def settled() -> bool:
            held = [set(b.bridge.fleet.held()) for b in (first, second)]
            return (
                bool(held[0] and held[1])
                and held[0] | held[1] == set(users)
                and all(not b.bridge.fleet.accounts().get("parked") for b in (first, second))
                and all(live_sessions(centre, u) == 1 for u in users)
            )

        await second.until(settled, 30)
        await second.ready(30)
        stayed, moved = sorted(first.bridge.fleet.held()), sorted(second.bridge.fleet.held())
        assert not set(stayed) & set(moved)
        after = {u: [s.session_id for s in centre.sessions_of(u)] for u in users}
        assert {u: after[u] for u in stayed} == {u: before[u] for u in stayed}
        assert all(after[u] != before[u] for u in moved)
        assert centre.logins == logins + len(moved), "a kept account logged in again"
        assert centre.logouts == logouts + len(moved), "a moved account was not logged out"


class TestRebalanceWithCommands:
    """Commands in flight while a second replica joins and takes half the accounts."""

    async def test_each_command_has_one_result_and_one_call(
        self,
        broker: EmbeddedBroker,
        centre: Simulator,
        start_bridge: Start,
        reader: Any,
        producer: Any,
        tmp_path: Path,
    ) -> None:
        """Six accounts, one slow command each; a rebalance mid-way: one call, one result each."""
        users, directory = six_accounts(tmp_path)
        settings = bridge_settings(
            broker,
            centre.url,
            icws={"accounts_dir": directory, "request_timeout_seconds": 10},
            topics={"partitions": 6},
            commands=FAST_COMMANDS,
        )
        first = start_bridge(settings)
        await first.ready(30)
        requests = {
            u: centre.world.create_assistance(u, "100123456780170101", "help") for u in users
        }
        centre.faults.delay_requests(2.0, count=len(users), path_regex=ANY_COMMAND)
        sent = {u: command("update", requests[u], f"from {u}") for u in users}
        topics = [settings.topics.command_results, settings.topics.command_journal]
        async with reader(topics) as kafka:
            for user in users:
                await Sender(producer, settings.topics.commands).send(sent[user], user.encode())
            await kafka.wait_for(
                lambda r: all(journaled(r, settings, c["id"], "started") for c in sent.values()),
                30,
            )
            second = start_bridge(settings)
            await second.ready(30)
            await first.ready(30)
            for cmd in sent.values():
                await result_of(kafka, settings, cmd["id"])
            await kafka.settle()
            published = {u: results(kafka, settings, sent[u]["id"]) for u in users}
        held = [set(b.bridge.fleet.held()) for b in (first, second)]
        assert held[0]
        assert held[1]
        assert held[0] | held[1] == set(users)
        assert not held[0] & held[1]
        for user in users:
            ran_once(centre, user, requests[user], published[user])


def ran_once(sim: Simulator, user: str, request: str, published: list[dict[str, Any]]) -> None:
    """One result as ``user`` (a re-read after the move may repeat it, same id), one call."""
    assert len({e["id"] for e in published}) == 1, user
    assert {e["data"]["outcome"] for e in published} == {"succeeded"}, user
    assert published[0]["data"]["userId"] == user
    assert calls(sim, request) == [("POST", 204)], user
    assert texts(sim, request).count(f"from {user}") == 1
