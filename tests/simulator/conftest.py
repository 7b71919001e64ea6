"""Fixtures: simulators on loopback port 0 and an HTTP client with a permissive cookie jar."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from bridge.simulator import Simulator, SimulatorConfig

MakeSim = Callable[..., Awaitable[Simulator]]


@pytest.fixture(name="make_sim")
async def fixture_make_sim() -> AsyncIterator[MakeSim]:
    """Start simulators with config overrides; all are stopped after the test."""
    started: list[Simulator] = []

    async def make(**overrides: Any) -> Simulator:
        """Start one simulator with these config overrides."""
        sim = Simulator(SimulatorConfig(**overrides))
        await sim.start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        await sim.stop()


@pytest.fixture(name="sim")
async def fixture_sim(make_sim: MakeSim) -> Simulator:
    """A simulator with the default configuration."""
    return await make_sim()


@pytest.fixture(name="http")
async def fixture_http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client whose cookie jar accepts cookies from 127.0.0.1."""
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=10)
    ) as http:
        yield http


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(name="clock")
def fixture_clock() -> FakeClock:
    """A hand-driven clock for idle timeouts."""
    return FakeClock()


@pytest.fixture(name="timed_sim")
async def fixture_timed_sim(clock: FakeClock) -> AsyncIterator[Simulator]:
    """A simulator whose sessions idle out after 10 fake seconds."""
    sim = Simulator(SimulatorConfig(idle_timeout_seconds=10), clock=clock)
    await sim.start()
    yield sim
    await sim.stop()
