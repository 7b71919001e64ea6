"""The session's reconnect decisions, against a recording fake client and reader; no sleeps.

Each test waits on a positive marker (a login counted, a sink call, a wait stamina scheduled)
rather than on time. stamina's test mode removes the waits where a test needs retries quickly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Self

import pytest
import stamina
from prometheus_client import CollectorRegistry

from bridge import errors, metrics
from bridge.core.icws_api import Answer, Call, Transport
from bridge.core.messages import ConnectionChange, Message
from bridge.icws.client import ByteStream
from bridge.icws.session import Session, SessionInfo
from bridge.icws.transports import MessageReader, PollReader, Reading
from bridge.settings import IcwsSettings, SubscriptionSettings

FULL = [
    {"featureId": "connection", "version": 11},
    {"featureId": "messaging", "version": 2},
    {"featureId": "interactions", "version": 9},
    {"featureId": "status", "version": 1},
]
CONNECTION = "urn:inin.com:connection:connectionStateChangeMessage"
SUBSCRIPTIONS = ["alerting", "history", "status_messages", "assistance"]


class FakeClient:
    """Answers ICWS calls from a script and records every call's name."""

    def __init__(self, features: list[dict[str, Any]] = FULL) -> None:
        self.csrf_token: str | None = None
        self.calls: list[str] = []
        self.logins = 0
        self.login_status = 201
        self.features = features
        self.poll_answers: list[Answer] = []
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
            return Answer(200, {}, {"connectionState": 1})
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
    """A recording reader: per session, delivers scripted batches or raises, then waits."""

    def __init__(self) -> None:
        self.script: list[list[Any] | errors.IcwsError] = []
        self.sessions: list[str] = []

    async def read(self, reading: Reading) -> None:
        self.sessions.append(reading.session_id)
        while self.script:
            step = self.script.pop(0)
            if isinstance(step, errors.IcwsError):
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


def make_session(
    client: FakeClient,
    sink: FakeSink,
    reader: MessageReader,
    registry: CollectorRegistry | None = None,
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

    def reader_for(_transport: Transport) -> MessageReader:
        return reader

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


class TestReconnectDecisions:
    """What ends a session, and what the session does next."""

    async def test_down_without_reconnect_waits_and_stays_not_ready(
        self, scheduled: asyncio.Queue[float]
    ) -> None:
        """Down with shouldReconnect false: not ready, a bad-credentials-long wait, no login."""
        client, sink, reader = FakeClient(), FakeSink(), ScriptedReader()
        reader.script = [[down(should_reconnect=False)]]
        registry = CollectorRegistry()
        session = make_session(client, sink, reader, registry)
        async with running(session):
            assert await scheduled.get() == 300
            assert session.health.state == "down"
            assert "not to reconnect" in session.health.problem
            assert not session.up
            assert client.logins == 1
            assert reconnects(registry, "down_no_reconnect") == 1
        assert client.logins == 1  # the stop ended the wait: no second login

    async def test_down_message_batch_reaches_the_sink_parsed_once(self, no_waits: None) -> None:
        """The batch goes to the sink parsed, then the Down ends the session and re-logs in."""
        client, sink, reader = FakeClient(), FakeSink(), ScriptedReader()
        reader.script = [[down(should_reconnect=True)]]
        registry = CollectorRegistry()
        session = make_session(client, sink, reader, registry)
        async with running(session):
            await sink.until(
                ("up", "1"),
                ("batch", [ConnectionChange(False, "An administrator logged you out.", True)]),
                ("down", "down_message"),
                ("up", "2"),
            )
        assert reconnects(registry, "down_message") == 1

    async def test_401_on_read_logs_in_again(self, no_waits: None) -> None:
        """A poll answered 401 ends the session as lost, and a new login follows."""
        client, sink = FakeClient(), FakeSink()
        client.poll_answers = [Answer(401, {}, None)]
        poller = PollReader(IcwsSettings(poll_interval_seconds=0.01))  # the real one
        registry = CollectorRegistry()
        session = make_session(client, sink, poller, registry, transport="poll")
        async with running(session):
            await sink.until(("up", "1"), ("down", "session_lost"), ("up", "2"))
        assert reconnects(registry, "session_lost") == 1
        assert client.calls[:1] == ["login"]

    async def test_dead_stream_logs_in_again(self, no_waits: None) -> None:
        """A stream that closes ends the session as lost; the next session reads again."""
        client, sink, reader = FakeClient(), FakeSink(), ScriptedReader()
        reader.script = [errors.SessionLost("SSE stream closed")]
        session = make_session(client, sink, reader)
        async with running(session):
            await sink.until(("up", "1"), ("down", "session_lost"), ("up", "2"))
            await client.until(lambda: reader.sessions == ["1", "2"])
        assert "logout" in client.calls  # the cut session is freed server-side

    async def test_stop_unsubscribes_and_logs_out(self) -> None:
        """A stop while reading: every subscription deleted, then the session logged out."""
        client, sink, reader = FakeClient(), FakeSink(), ScriptedReader()
        session = make_session(client, sink, reader)
        async with running(session):
            await sink.until(("up", "1"))
        assert client.calls[-5:] == [*(f"unsubscribe.{n}" for n in SUBSCRIPTIONS), "logout"]
        assert sink.events[-1] == ("down", "stopped")
        assert (session.health.state, session.health.problem) == ("down", "stopped")


class TestWaits:
    """Waits stamina schedules end at once on a stop; unsupported servers are retried slowly."""

    async def test_stop_ends_the_wait_after_rejected_credentials(
        self, scheduled: asyncio.Queue[float]
    ) -> None:
        """Rejected credentials: a 300 s wait is scheduled, and a stop ends it at once."""
        client, sink, reader = FakeClient(), FakeSink(), ScriptedReader()
        client.login_status = 400
        session = make_session(client, sink, reader)
        async with running(session):
            assert await scheduled.get() == 300
            assert session.health.state == "bad_credentials"
        assert client.calls == ["login"]

    async def test_unsupported_server_is_retried_slowly(
        self, scheduled: asyncio.Queue[float]
    ) -> None:
        """No messaging and no interactions: state unsupported, logged out, slow retry."""
        client = FakeClient(features=[{"featureId": "interactions", "version": 3}])
        sink, reader = FakeSink(), ScriptedReader()
        session = make_session(client, sink, reader)
        async with running(session):
            assert await scheduled.get() == 300
            assert session.health.state == "unsupported"
            assert "no ICWS feature messaging" in session.health.problem
            assert "interactions >= 6" in session.health.problem
            assert not session.up
        assert client.calls == ["login", "logout"]
        assert sink.events == []
