"""/livez over real HTTP: 503 naming the part once one of the bridge's own tasks has died."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge import health, metrics


class Boom(Exception):
    """A bug in a part."""


async def _crash() -> None:
    raise Boom


async def _forever() -> None:
    await asyncio.Event().wait()


async def _return() -> None:
    return None


async def ended(*tasks: asyncio.Task[None]) -> None:
    """Wait until the tasks have ended, however they ended."""
    await asyncio.wait(tasks)


@pytest.fixture(name="liveness")
def _liveness() -> health.Liveness:
    return health.Liveness()


@pytest.fixture(name="client")
async def _client(liveness: health.Liveness) -> AsyncIterator[TestClient]:
    app = health.make_app(metrics.create(), dict, liveness.dead)
    async with TestClient(TestServer(app)) as client:
        yield client


def task(coroutine: Callable[[], object], name: str) -> asyncio.Task[None]:
    return asyncio.create_task(coroutine(), name=name)


async def livez(client: TestClient) -> tuple[int, dict[str, object]]:
    response = await client.get("/livez")
    return response.status, await response.json()


class TestLivez:
    async def test_running_parts_are_alive(
        self, liveness: health.Liveness, client: TestClient
    ) -> None:
        """Parts still running: 200."""
        parts = [task(_forever, "session"), task(_forever, "publisher")]
        liveness.watch(parts)
        assert await livez(client) == (200, {"status": "ok"})
        for part in parts:
            part.cancel()
        await ended(*parts)

    async def test_a_part_that_raised_is_dead(
        self, liveness: health.Liveness, client: TestClient
    ) -> None:
        """A part whose task raised: 503 naming it, and still 503 while the bridge then stops."""
        crashed, running = task(_crash, "session"), task(_forever, "publisher")
        liveness.watch([crashed, running])
        await ended(crashed)
        assert await livez(client) == (503, {"status": "dead", "dead": ["session"]})
        liveness.stopping()
        running.cancel()
        await ended(running)
        assert await livez(client) == (503, {"status": "dead", "dead": ["session"]})

    async def test_a_part_that_ended_unasked_is_dead(
        self, liveness: health.Liveness, client: TestClient
    ) -> None:
        """A long-running part that returned before any stop was asked has died too."""
        returned = task(_return, "commands")
        liveness.watch([returned])
        await ended(returned)
        assert (await livez(client))[0] == 503

    async def test_parts_ending_on_stop_are_not_dead(
        self, liveness: health.Liveness, client: TestClient
    ) -> None:
        """After a stop is asked, parts that return or are cancelled end on purpose: 200."""
        returned, cancelled = task(_forever, "session"), task(_forever, "publisher")
        liveness.watch([returned, cancelled])
        liveness.stopping()
        returned.cancel()
        cancelled.cancel()
        await ended(returned, cancelled)
        assert await livez(client) == (200, {"status": "ok"})

    async def test_a_part_cancelled_unasked_is_dead(
        self, liveness: health.Liveness, client: TestClient
    ) -> None:
        """A part cancelled while nobody asked the bridge to stop has died."""
        cancelled = task(_forever, "publisher")
        liveness.watch([cancelled])
        cancelled.cancel()
        await ended(cancelled)
        assert await livez(client) == (503, {"status": "dead", "dead": ["publisher"]})


class TestAccounts:
    """``GET /accounts`` answers what the fleet describes."""

    async def test_accounts_page_is_the_fleets_description(self, liveness: health.Liveness) -> None:
        """The JSON is exactly what the accounts callback gives."""
        page = {"configured": 2, "held": 1, "skipped": [], "accounts": [{"user": "agent.a"}]}
        app = health.make_app(metrics.create(), dict, liveness.dead, accounts=lambda: page)
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/accounts")
            assert response.status == 200
            assert await response.json() == page
