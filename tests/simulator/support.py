"""A small, independent ICWS client for the simulator tests (no code from `bridge`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from bridge.simulator import Simulator

IC_AUTH = "urn:inin.com:connection:icAuthConnectionRequestSettings"
CSRF = "ININ-ICWS-CSRF-Token"
LANGUAGE = {"Accept-Language": "en-us"}
PASSWORD = "secret"


def login_body(user: str = "agent.one", password: str = PASSWORD) -> dict[str, Any]:
    """The icAuthConnectionRequestSettings body every surveyed client sends."""
    return {"__type": IC_AUTH, "applicationName": "tests", "userID": user, "password": password}


@dataclass
class Reply:
    """Status, headers and parsed body (None when empty) of one response."""

    status: int
    headers: CIMultiDictProxy[str]
    body: Any


async def send(http: aiohttp.ClientSession, method: str, url: str | URL, **kwargs: Any) -> Reply:
    """Send a request and read the whole reply."""
    async with http.request(method, url, **kwargs) as response:
        text = await response.text()
        return Reply(response.status, response.headers, json.loads(text) if text else None)


@dataclass
class Icws:
    """One logged-in session, sending its CSRF token unless told not to."""

    http: aiohttp.ClientSession
    sim: Simulator
    session_id: str
    csrf_token: str
    login: Reply
    root: str = ""

    @property
    def base(self) -> str:
        """The session's URL prefix, `...[/api/<icserver>]/icws/<sessionId>`."""
        return f"{self.sim.url}{self.root}/icws/{self.session_id}"

    async def call(
        self, method: str, path: str, *, csrf: bool = True, encoded: bool = False, **kwargs: Any
    ) -> Reply:
        """Send a request under the session's prefix; `encoded`: the path is sent verbatim."""
        headers = dict(kwargs.pop("headers", {}))
        if csrf:
            headers[CSRF] = self.csrf_token
        url = URL(self.base + path, encoded=True) if encoded else self.base + path
        return await send(self.http, method, url, headers=headers, **kwargs)

    async def subscribe(self, name: str, body: Any = None) -> Reply:
        """PUT a subscription, with an optional JSON body."""
        kwargs = {} if body is None else {"json": body}
        return await self.call("PUT", f"/messaging/subscriptions/{name}", **kwargs)

    async def poll(self) -> list[dict[str, Any]]:
        """Short-poll the message queue (cookie only, as a browser would)."""
        reply = await self.call("GET", "/messaging/messages", csrf=False)
        assert reply.status == 200, reply.body
        return list(reply.body)


async def login(
    http: aiohttp.ClientSession,
    sim: Simulator,
    user: str = "agent.one",
    password: str = PASSWORD,
    include: str = "features",
    root: str = "",
) -> Icws:
    """Log in (below `root`, e.g. `/api/ic1` behind a proxy) and return the session.

    Fails the test when the login fails.
    """
    reply = await send(
        http,
        "POST",
        f"{sim.url}{root}/icws/connection?include={include}",
        headers=LANGUAGE,
        json=login_body(user, password),
    )
    assert reply.status == 201, reply.body
    return Icws(http, sim, reply.body["sessionId"], reply.body["csrfToken"], reply, root)


class SseReader:
    """Reads raw SSE blocks (text up to a blank line) from an open stream."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response

    async def block(self, timeout: float = 5.0) -> str:
        """The next raw block, up to its blank line; EOFError when the stream ends."""
        lines: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                line = await self.response.content.readline()
                if not line:
                    raise EOFError("stream ended: " + "".join(lines))
                if line == b"\n":
                    return "".join(lines)
                lines.append(line.decode())

    async def message(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next data event's message, skipping keep-alive comments."""
        while True:
            block = await self.block(timeout)
            if block.startswith("data: "):
                # One message per event: a single `data:` line, never split across lines.
                assert block.count("\n") == 1, block
                parsed: dict[str, Any] = json.loads(block[len("data: ") :])
                return parsed


def types(messages: list[dict[str, Any]]) -> list[str]:
    """The `__type` of each message, shortened to its last segment."""
    return [message["__type"].rsplit(":", 1)[1] for message in messages]


EVENT_STREAM = {"Accept": "text/event-stream"}


@asynccontextmanager
async def stream(icws: Icws) -> AsyncIterator[SseReader]:
    """Open the SSE stream the way an EventSource does: cookie only, no CSRF header."""
    async with icws.http.get(f"{icws.base}/messaging/messages", headers=EVENT_STREAM) as response:
        assert response.status == 200
        yield SseReader(response)


async def streaming(sim: Simulator, icws: Icws) -> None:
    """Wait until the simulator has the session's stream attached."""
    await sim.wait_for(lambda: sim.sessions[icws.session_id].stream is not None, timeout=5)
