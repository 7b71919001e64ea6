"""A contact centre's activity and load: the scenario across users, login pacing, CLI options."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.simulator import Simulator, SimulatorConfig, users_named
from bridge.simulator.cli import add_arguments, config_from_args, describe_users
from bridge.simulator.scenario import LivelyScenario, run_lively
from bridge.simulator.world import World

from .conftest import MakeSim
from .support import LANGUAGE, login, login_body, send

CENTRE = users_named("agent", 1000, "secret")
USERS = list(CENTRE)
# Actions on the shared status catalogue; every other step changes its user's truth.
SHARED_PHRASE = "status "


class TestScenarioAcrossUsers:
    """The lively scenario spreads its steps, and their changes, over the users."""

    def test_cycle_visits_every_user_once_per_round(self) -> None:
        """With spread=cycle, 1,000 steps visit each of 1,000 users exactly once."""
        world = World(SimulatorConfig(users=dict(CENTRE)))
        scenario = LivelyScenario(world, USERS, seed=5, spread="cycle")
        actions = [scenario.step() for _ in USERS]
        shared = sum(action.startswith(SHARED_PHRASE) for action in actions)
        assert set(scenario.touched.values()) == {1}
        assert len(scenario.touched) + shared == len(USERS)
        assert shared < len(USERS) // 10

    def test_touched_users_hold_the_changes(self) -> None:
        """Every touched user has calls or history; nobody untouched has any."""
        world = World(SimulatorConfig(users=dict(CENTRE)))
        scenario = LivelyScenario(world, USERS, seed=6, spread="cycle")
        for _ in range(300):
            scenario.step()
        with_truth = {user for user in USERS if world.alerting(user) or world.history(user)}
        assert with_truth == set(scenario.touched)

    def test_several_users_open_assistance_requests(self) -> None:
        """Over a few rounds, assistance requests are opened by many different users."""
        world = World(SimulatorConfig(users=dict(CENTRE)))
        scenario = LivelyScenario(world, USERS, seed=7, spread="cycle")
        for _ in range(3 * len(USERS)):
            scenario.step()
        initiators = {request["initiator"] for request in world.assistance.values()}
        assert len(initiators) > 20
        for user in initiators:
            assert user in scenario.touched

    def test_random_spread_touches_many_users(self) -> None:
        """The default random spread also reaches a large share of a centre."""
        world = World(SimulatorConfig(users=dict(CENTRE)))
        scenario = LivelyScenario(world, USERS, seed=8)
        for _ in range(500):
            scenario.step()
        assert len(scenario.touched) > 250

    def test_cycle_is_seeded(self) -> None:
        """A seed fixes the cycle's order; another seed changes it."""

        def first_actions(seed: int) -> list[str]:
            """The first 50 actions of a fresh cycling scenario."""
            scenario = LivelyScenario(World(SimulatorConfig()), USERS, seed, spread="cycle")
            return [scenario.step().split(":")[0] for _ in range(50)]

        assert first_actions(1) == first_actions(1)
        assert first_actions(1) != first_actions(2)

    def test_an_unknown_spread_is_refused(self) -> None:
        """A typo in the spread fails at once."""
        with pytest.raises(ValueError, match="spread"):
            LivelyScenario(World(SimulatorConfig()), USERS, 1, spread="roundrobin")


class TestRunOverACentre:
    """run_lively on a served centre: the rate holds and sessions see their users' changes."""

    async def test_rate_holds_at_two_hundred_a_second(self, make_sim: MakeSim) -> None:
        """At 200 steps/s for half a second, about 100 steps run (a schedule, not a drift)."""
        sim = await make_sim(users=dict(CENTRE))
        scenario = await run_lively(sim, USERS, 200, seed=1, duration=0.5, spread="cycle")
        assert 90 <= scenario.steps <= 101

    async def test_sessions_see_only_their_users_changes(
        self, make_sim: MakeSim, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
    ) -> None:
        """After a cycle over 20 users, each session heard of exactly its own user's calls."""
        caplog.set_level(logging.DEBUG, logger="bridge.simulator.scenario")
        users = USERS[:20]
        sim = await make_sim(users=dict(CENTRE))
        sessions = {user: await login(http, sim, user) for user in users}
        for icws in sessions.values():
            await icws.subscribe("interaction-alerting")
            await icws.poll()
        scenario = await run_lively(sim, users, 10_000, seed=2, max_steps=60, spread="cycle")
        assert len(scenario.touched) > 10
        started: dict[str, set[str]] = {user: set() for user in users}
        for record in caplog.records:
            found = re.fullmatch(r"lively: (\S+): (\d+) starts alerting", record.getMessage())
            if found:
                started[found.group(1)].add(found.group(2))
        assert sum(map(len, started.values())) > 10
        for user, icws in sessions.items():
            seen = {
                entry["interactionId"]
                for message in await icws.poll()
                for entry in message.get("alertingInteractionDetails", [])
            }
            assert seen == started[user]


async def log_in_at_once(
    http: aiohttp.ClientSession, sim: Simulator, users: list[str]
) -> list[int]:
    """Send one login per user, all at once; the statuses in order."""
    replies = await asyncio.gather(
        *(
            send(http, "POST", f"{sim.url}/icws/connection", headers=LANGUAGE, json=login_body(u))
            for u in users
        )
    )
    return [reply.status for reply in replies]


async def counters(http: aiohttp.ClientSession, sim: Simulator) -> dict[str, Any]:
    """The control API's counters."""
    return dict((await send(http, "GET", f"{sim.url}/_sim/state")).body["counters"])


class TestLoginPacing:
    """Optional login latency and a cap on concurrent logins model a server under a storm."""

    async def test_the_cap_makes_a_storm_wait_its_turn(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Six logins against a cap of 2 and 0.1 s each take three rounds, two at a time."""
        sim = await make_sim(users=dict(CENTRE), max_concurrent_logins=2, login_latency_seconds=0.1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await log_in_at_once(http, sim, USERS[:6]) == [201] * 6
        assert loop.time() - started >= 0.3
        seen = await counters(http, sim)
        assert (seen["loginsInFlightPeak"], seen["loginsHandledPeak"], seen["logins"]) == (6, 2, 6)

    async def test_without_a_cap_logins_are_handled_together(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """With only a latency, a storm is handled all at once (the peak is the storm)."""
        sim = await make_sim(users=dict(CENTRE), login_latency_seconds=0.1)
        assert await log_in_at_once(http, sim, USERS[:6]) == [201] * 6
        assert (await counters(http, sim))["loginsHandledPeak"] == 6

    async def test_pacing_is_off_by_default(self, sim: Simulator) -> None:
        """The default config neither delays nor caps logins."""
        assert (sim.config.login_latency_seconds, sim.config.max_concurrent_logins) == (None, None)

    async def test_pacing_changes_at_runtime(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """PATCH /_sim/config sets the pacing knobs and refuses a cap of zero."""
        url = f"{sim.url}/_sim/config"
        ok = await send(http, "PATCH", url, json={"max_concurrent_logins": 3})
        assert (ok.status, ok.body["max_concurrent_logins"]) == (200, 3)
        bad = await send(http, "PATCH", url, json={"max_concurrent_logins": 0})
        assert bad.status == 400
        assert sim.config.max_concurrent_logins == 3


class TestCentreCli:
    """`bridge simulate --users N --password-file F` and the centre's other options."""

    def parse(self, *argv: str) -> argparse.Namespace:
        """Parse argv with the simulator's options."""
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return parser.parse_args(argv)

    def test_users_and_password_file(self, tmp_path: Path) -> None:
        """--users 1000 serves agent.0001 ... agent.1000 with the file's password."""
        password_file = tmp_path / "password"
        password_file.write_text("s3cret\n")
        config = config_from_args(
            self.parse("--users", "1000", "--password-file", str(password_file))
        )
        assert config.users == users_named("agent", 1000, "s3cret")

    def test_generated_users_join_named_ones(self) -> None:
        """--user entries stay beside the generated users; the prefix is configurable."""
        config = config_from_args(
            self.parse("--user", "boss:x", "--users", "2", "--user-prefix", "a")
        )
        assert config.users == {"boss": "x", "a.0001": "secret", "a.0002": "secret"}

    @pytest.mark.parametrize("content", [None, ""], ids=["missing", "empty"])
    def test_an_unusable_password_file_is_a_usage_error(
        self, tmp_path: Path, content: str | None
    ) -> None:
        """A missing or empty password file stops the parse with a usage error."""
        path = tmp_path / "password"
        if content is not None:
            path.write_text(content)
        with pytest.raises(SystemExit):
            self.parse("--users", "3", "--password-file", str(path))

    def test_a_password_file_needs_users(self, tmp_path: Path) -> None:
        """A password file without --users is a mistake, not silently ignored."""
        (tmp_path / "p").write_text("x")
        with pytest.raises(ValueError, match="--users"):
            config_from_args(self.parse("--password-file", str(tmp_path / "p")))

    def test_pacing_and_scope_options(self) -> None:
        """Login latency, the login cap, the assistance scopes and the spread reach their places."""
        args = self.parse(
            "--login-latency", "0.5", "--max-concurrent-logins", "20", "--spread", "cycle",
            "--assistance-update-by", "participants", "--assistance-watch-by", "initiator",
        )  # fmt: skip
        config = config_from_args(args)
        assert (config.login_latency_seconds, config.max_concurrent_logins) == (0.5, 20)
        assert (config.assistance_update_by, config.assistance_watch_by) == (
            "participants",
            "initiator",
        )
        assert args.spread == "cycle"

    def test_defaults_stay_one_agent(self) -> None:
        """Without the centre options the simulator serves agent.one as before."""
        args = self.parse()
        assert config_from_args(args) == SimulatorConfig(sse_keepalive_seconds=15.0)
        assert args.spread == "random"

    def test_a_centre_is_summarised_in_the_log(self) -> None:
        """A few users are listed by name; a thousand by count and range."""
        assert describe_users(["a", "b"]) == "a, b"
        assert describe_users(USERS) == "1000 users, agent.0001 ... agent.1000"
