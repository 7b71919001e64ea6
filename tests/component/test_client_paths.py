"""The ICWS client sends a call's percent-encoded path as the core wrote it, byte for byte."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge import metrics
from bridge.core import icws_api
from bridge.icws.client import IcwsClient
from bridge.settings import IcwsSettings

# encodeURIComponent("{a1|b:2 c/3}"), written by hand from its definition.
ENCODED = "%7Ba1%7Cb%3A2%20c%2F3%7D"


@pytest.fixture(name="server")
async def fixture_server() -> AsyncIterator[tuple[TestServer, list[str]]]:
    """A loopback server that answers 204 and records each request's raw path and query."""
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server, seen
    finally:
        await server.close()


async def test_reserved_characters_stay_encoded(server: tuple[TestServer, list[str]]) -> None:
    """``%3A``, ``%7C``, ``%20`` and ``%2F`` reach the server as sent: not decoded or re-quoted."""
    test_server, seen = server
    base = str(test_server.make_url("")).rstrip("/")
    client = IcwsClient(IcwsSettings(servers=[base]), metrics.create())
    async with client:
        await client.send(base, icws_api.assistance_complete("1", "{a1|b:2 c/3}"))
        await client.send(base, icws_api.login("app", "user", "pw"))
    assert seen == [
        f"/icws/1/interactions/agent-assistance/{ENCODED}",
        "/icws/connection?include=features,version",
    ]
