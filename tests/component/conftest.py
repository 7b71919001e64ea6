"""Fixtures of the component tests: stamina's scheduled waits, or no waits at all."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import stamina


@pytest.fixture(name="scheduled")
def fixture_scheduled() -> Iterator[asyncio.Queue[float]]:
    """Every wait stamina schedules, in seconds, as a queue to await."""
    waits: asyncio.Queue[float] = asyncio.Queue()
    before = stamina.instrumentation.get_on_retry_hooks()
    stamina.instrumentation.set_on_retry_hooks([lambda details: waits.put_nowait(details.wait_for)])
    yield waits
    stamina.instrumentation.set_on_retry_hooks(before)


@pytest.fixture(name="no_waits")
def fixture_no_waits() -> Iterator[None]:
    """Retries without waiting (stamina's test mode)."""
    with stamina.set_testing(True, attempts=1):
        yield
