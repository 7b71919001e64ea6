"""Fakes for the session's component tests: a recording ICWS client, scripted reader and sink.

The client answers from a script and records every call; the reader delivers scripted batches
(or raises) per read; the sink records what the session tells the event pipeline. Each has a
condition to wait on, so tests wait on positive markers rather than on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Self

from prometheus_client import CollectorRegistry

from bridge import errors, metrics
from bridge.core.icws_api import Answer, Call, Transport
from bridge.core.messages import Message
from bridge.icws.client import ByteStream
from bridge.icws.session import Session, SessionInfo
from bridge.icws.transports import MessageReader, Reading, StreamEnded
from bridge.settings import IcwsSettings, SubscriptionSettings

FULL = [
    {"featureId": "connection", "version": 11},
    {"featureId": "messaging", "version": 2},
    {"featureId": "interactions", "version": 9},
    {"featureId": "status", "version": 1},
]
CONNECTION = "urn:inin.com:connection:connectionStateChangeMessage"
SUBSCRIPTIONS = ["alerting", "history", "status_messages", "assistance"]
UP = {"__type": CONNECTION, "isDelta": False, "newConnectionState": 1, "reason": ""}


class FakeClient:
    """Answers ICWS calls from a script and records every call's name."""

    def __init__(self, features: list[dict[str, Any]] = FULL) -> None:
        self.csrf_token: str | None = None
        self.calls: list[str] = []
        self.logins = 0
        self.login_status = 201
        self.features = features
        self.poll_answers: list[Answer] = []
        self.check_answers: list[Answer] = []  # then Up
        self.heartbeat_status = 204
        self.changed = asyncio.Condition()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def new_session(self, token: str | None) -> None:
        self.csrf_token = token

    async def send(self, base: str, call: Call) -> Answer:
        self.calls.append(call.name)
        async with self.changed:
            self.changed.notify_all()
        if call.name == "login":
            return self._login()
        if call.name == "messages.poll":
            return self.poll_answers.pop(0) if self.poll_answers else Answer(200, {}, [])
        if call.name == "check":
            if self.check_answers:
                return self.check_answers.pop(0)
            return Answer(200, {}, {"connectionState": 1})
        if call.name == "heartbeat":
            return Answer(self.heartbeat_status, {}, None)
        return Answer(200 if call.name.startswith("logout") else 204, {}, None)

    def _login(self) -> Answer:
        if self.login_status != 201:
            failure = {"errorId": "error.request.connection.authenticationFailure"}
            return Answer(self.login_status, {}, failure)
        self.logins += 1
        body = {"sessionId": str(self.logins), "csrfToken": "t0k3n", "features": self.features}
        return Answer(201, {}, body)

    def stream(self, base: str, call: Call) -> AbstractAsyncContextManager[ByteStream | Answer]:
        @asynccontextmanager
        async def answer() -> AsyncIterator[ByteStream | Answer]:
            yield Answer(404, {}, None)

        return answer()

    async def until(self, condition: Any) -> None:
        async with self.changed:
            await self.changed.wait_for(condition)


class ScriptedReader:
    """A recording reader: per read, delivers scripted batches or raises, then waits.

    It notes, at each start, the session and the calls the client had sent before it.
    """

    def __init__(self, client: FakeClient | None = None) -> None:
        self.script: list[list[Any] | errors.IcwsError | StreamEnded] = []
        self.sessions: list[str] = []
        self.calls_before: list[list[str]] = []
        self._client = client

    async def read(self, reading: Reading) -> None:
        self.sessions.append(reading.session_id)
        self.calls_before.append(list(self._client.calls) if self._client else [])
        if self._client is not None:
            async with self._client.changed:  # wakes tests waiting on the reader's starts
                self._client.changed.notify_all()
        reading.opened.set()
        while self.script:
            step = self.script.pop(0)
            if isinstance(step, errors.IcwsError | StreamEnded):
                raise step
            if await reading.deliver(step):
                return
        await reading.interrupt.wait()


class FakeSink:
    """Records what the session tells the event pipeline."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.changed = asyncio.Condition()

    async def _note(self, kind: str, value: Any) -> None:
        async with self.changed:
            self.events.append((kind, value))
            self.changed.notify_all()

    async def session_up(self, info: SessionInfo) -> None:
        await self._note("up", info.session_id)

    async def session_down(self, reason: str) -> None:
        await self._note("down", reason)

    async def deliver(self, batch: Sequence[Message], read_at: float) -> None:
        await self._note("batch", list(batch))

    async def until(self, *expected: tuple[str, Any]) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.events[: len(expected)] == list(expected))


def make_session(
    client: FakeClient,
    sink: FakeSink,
    reader: MessageReader,
    registry: CollectorRegistry | None = None,
    poller: MessageReader | None = None,
    **icws: Any,
) -> Session:
    settings = IcwsSettings(
        servers=["http://icws.test:8018"],
        username="agent",
        password="pw",
        bad_credentials_retry_seconds=300,
        backoff_max_seconds=60,
        **icws,
    )

    def reader_for(transport: Transport) -> MessageReader:
        return poller if poller is not None and transport == "poll" else reader

    return Session(
        settings,
        SubscriptionSettings(),
        metrics.create(registry or CollectorRegistry()),
        sink,
        client,
        reader_for,
    )


@asynccontextmanager
async def running(session: Session) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(session.run(), name="session")
    try:
        yield task
    finally:
        session.stop()
        async with asyncio.timeout(5):
            await task


def reconnects(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("icws_bridge_reconnects_total", {"reason": reason}) or 0


def down(should_reconnect: bool) -> dict[str, Any]:
    return {
        "__type": CONNECTION,
        "isDelta": False,
        "newConnectionState": 2,
        "reason": "An administrator logged you out.",
        "shouldReconnect": should_reconnect,
    }


def stream_ends(reason: Any, retry_ms: int | None = None) -> StreamEnded:
    return StreamEnded(reason, f"stream ended: {reason}", retry_ms)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0
