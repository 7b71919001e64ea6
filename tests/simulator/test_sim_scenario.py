"""The lively scenario (seeded, deterministic) and the command-line entry points."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
from typing import Any

import aiohttp
import pytest

from bridge.simulator import Simulator, SimulatorConfig
from bridge.simulator.cli import add_arguments, config_from_args, run
from bridge.simulator.scenario import LivelyScenario, run_lively
from bridge.simulator.world import World

from .support import login, types

USERS = ["agent.one", "agent.two"]
TIME_FIELDS = {"initiationTime", "terminationTime", "timeAdded"}


def timeless(value: Any) -> Any:
    """`value` with every timestamp blanked, so two runs can be compared."""
    if isinstance(value, dict):
        return {k: "T" if k in TIME_FIELDS else timeless(v) for k, v in value.items()}
    if isinstance(value, list):
        return [timeless(item) for item in value]
    return value


def story(seed: int, steps: int = 300) -> tuple[list[str], Any]:
    """What a fresh world goes through in `steps` scenario steps, and where it ends up."""
    world = World(SimulatorConfig())
    scenario = LivelyScenario(world, USERS, seed)
    return [scenario.step() for _ in range(steps)], timeless(world.truth())


class TestDeterminism:
    """A seed fixes the scenario's story."""

    def test_same_seed_same_story(self) -> None:
        """A seed replays exactly the same actions and ends in the same truth."""
        assert story(7) == story(7)

    def test_different_seed_different_story(self) -> None:
        """Different seeds tell different stories."""
        assert story(7)[0] != story(8)[0]

    def test_story_is_varied(self) -> None:
        """A few hundred steps exercise alerting, history, statuses and assistance."""
        actions, truth = story(3)
        text = "\n".join(actions)
        for phrase in ("starts alerting", "ends", "notes on", "status", "asks for help"):
            assert phrase in text
        assert truth["history"]
        assert truth["assistance"]


class TestRunLively:
    """run_lively against a running simulator."""

    async def test_drives_subscribed_sessions(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Running the scenario on a simulator pushes deltas of every kind to a session."""
        icws = await login(http, sim)
        for name in (
            "interaction-alerting",
            "interaction-history",
            "status/status-messages",
            "interactions/agent-assistance",
        ):
            await icws.subscribe(name)
        await run_lively(sim, ["agent.one"], rate_per_second=10_000, seed=3, max_steps=200)
        seen = set(types(await icws.poll()))
        assert {
            "interactionAlertingMessage",
            "historyMessage",
            "statusMessagesMessage",
            "assistanceRequestListMessage",
        } <= seen

    async def test_stops_on_event(self, sim: Simulator) -> None:
        """A set stop event ends the run."""
        stop = asyncio.Event()
        task = asyncio.create_task(run_lively(sim, USERS, 1000, seed=1, stop=stop))
        await sim.wait_for(
            lambda: bool(sim.world.alerting("agent.one") or sim.world.alerting("agent.two"))
        )
        stop.set()
        await asyncio.wait_for(task, 5)

    async def test_stops_after_duration(self, sim: Simulator) -> None:
        """A duration bounds the run."""
        await asyncio.wait_for(run_lively(sim, USERS, 1000, seed=1, duration=0.05), 5)
        assert sim.world.status_messages

    async def test_rejects_a_non_positive_rate(self, sim: Simulator) -> None:
        """A rate of zero would never act; it is refused."""
        with pytest.raises(ValueError, match="rate"):
            await run_lively(sim, USERS, 0, seed=1)


class TestCli:
    """add_arguments, config_from_args and run."""

    def parse(self, *argv: str) -> argparse.Namespace:
        """Parse argv with the simulator's options."""
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return parser.parse_args(argv)

    def test_defaults(self) -> None:
        """Defaults: port 8018, agent.one:secret, messaging 2, lively on."""
        args = self.parse()
        config = config_from_args(args)
        assert (args.port, args.lively, args.host) == (8018, True, "127.0.0.1")
        assert config.users == {"agent.one": "secret"}
        assert config.features["messaging"] == 2
        assert config.sse_keepalive_seconds == 15.0

    def test_options(self) -> None:
        """Users, messaging version, idle timeout and keep-alive flow into the config."""
        args = self.parse(
            "--user", "a:1", "--user", "b:2", "--messaging-version", "1",
            "--idle-timeout", "30", "--sse-keepalive", "0", "--no-lively",
        )  # fmt: skip
        config = config_from_args(args)
        assert config.users == {"a": "1", "b": "2"}
        assert config.features["messaging"] == 1
        assert (config.idle_timeout_seconds, config.sse_keepalive_seconds) == (30, None)
        assert args.lively is False

    def test_realism_options(self) -> None:
        """Recycling, retry, login body, proxy names, heartbeat and opaque ids reach the config."""
        args = self.parse(
            "--sse-recycle", "10", "--sse-retry", "2000", "--bad-credentials", "error-code-only",
            "--proxy-name", "ic1", "--proxy-name", "ic2", "--heartbeat-status", "410",
            "--opaque-assistance-ids",
        )  # fmt: skip
        config = config_from_args(args)
        assert (config.sse_recycle_seconds, config.sse_retry_ms) == (10, 2000)
        assert config.bad_credentials_body == "error-code-only"
        assert (config.proxy_names, config.primary_proxy_name) == (["ic1", "ic2"], "ic1")
        assert (config.heartbeat_status, config.opaque_assistance_ids) == (410, True)

    def test_realism_defaults_change_nothing(self) -> None:
        """Without the realism flags the config equals the plain default config."""
        config = config_from_args(self.parse())
        assert config == SimulatorConfig(sse_keepalive_seconds=15.0)

    def test_bad_user_is_rejected(self) -> None:
        """A --user without a colon is a usage error."""
        with pytest.raises(SystemExit):
            self.parse("--user", "nopassword")

    async def test_run_serves_until_stopped(
        self, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
    ) -> None:
        """run() serves the simulator (with lively activity) until the stop event is set."""
        caplog.set_level(logging.INFO, logger="bridge.simulator.cli")
        stop = asyncio.Event()
        args = self.parse("--port", "0", "--rate", "1000", "--user", "agent.one:pw")
        task = asyncio.create_task(run(args, stop))
        url = await self.announced_url(caplog)
        reply = await http.get(f"{url}/_sim/state")
        assert (await reply.json())["statusMessages"]
        stop.set()
        await asyncio.wait_for(task, 5)

    async def announced_url(self, caplog: pytest.LogCaptureFixture) -> str:
        """The URL the CLI logged once it was listening."""
        async with asyncio.timeout(5):
            while True:
                for record in caplog.records:
                    match = re.search(r"http://\S+", record.getMessage())
                    if match:
                        return match.group(0)
                await asyncio.sleep(0.005)
