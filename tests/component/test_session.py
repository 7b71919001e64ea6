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
from bridge.icws.transports import MessageReader, PollReader, Reading, StreamEnded
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
        # The first poll's batch waits for session up, so the 401 comes after it.
        client.poll_answers = [Answer(200, {}, [UP]), Answer(401, {}, None)]
        poller = PollReader(IcwsSettings(poll_interval_seconds=0.01))  # the real one
        registry = CollectorRegistry()
        session = make_session(client, sink, poller, registry, transport="poll")
        async with running(session):
            await sink.until(
                ("up", "1"),
                ("batch", [ConnectionChange(True, "", None)]),
                ("down", "session_lost"),
                ("up", "2"),
            )
        assert reconnects(registry, "session_lost") == 1
        assert client.calls[:1] == ["login"]

    async def test_lost_session_on_the_reader_logs_in_again(self, no_waits: None) -> None:
        """A reader that finds the session lost (a 401) ends it; the next session reads again."""
        client, sink, reader = FakeClient(), FakeSink(), ScriptedReader()
        reader.script = [errors.SessionLost("messages.sse: HTTP 401", status=401)]
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


def stream_ends(reason: Any, retry_ms: int | None = None) -> StreamEnded:
    return StreamEnded(reason, f"stream ended: {reason}", retry_ms)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0


class TestReaderFirst:
    """The reader reaches ICWS before the subscriptions are created, and delivers after up."""

    async def test_reader_starts_before_the_subscription_puts(self) -> None:
        """Only the login precedes the reader; what it reads reaches the sink after session up."""
        client, sink = FakeClient(), FakeSink()
        reader = ScriptedReader(client)
        reader.script = [[UP]]
        session = make_session(client, sink, reader)
        async with running(session):
            await sink.until(("up", "1"), ("batch", [ConnectionChange(True, "", None)]))
        assert reader.calls_before == [["login"]]
        assert [c for c in client.calls if c.startswith("subscribe.")] == [
            f"subscribe.{name}" for name in SUBSCRIPTIONS
        ]


class TestStreamEnds:
    """An ended stream is checked and reopened on the same session, unless the session is gone."""

    @pytest.mark.parametrize("reason", ["closed", "cut", "silent"])
    async def test_stream_end_reopens_on_the_same_session(self, reason: str) -> None:
        """Stream ended, check says Up: a new stream on session 1; no login, PUT, logout or gap."""
        client, sink = FakeClient(), FakeSink()
        reader = ScriptedReader(client)
        reader.script = [stream_ends(reason, retry_ms=0)]
        registry = CollectorRegistry()
        session = make_session(client, sink, reader, registry)
        async with running(session):
            await client.until(lambda: reader.sessions == ["1", "1"])
            assert sink.events == [("up", "1")]
            assert session.health.state == "up"
        assert client.logins == 1
        assert reader.calls_before[1].count("check") == 1
        assert "logout" not in reader.calls_before[1]
        assert sum(c.startswith("subscribe.") for c in client.calls) == len(SUBSCRIPTIONS)
        stream_reconnects = "icws_bridge_stream_reconnects_total"
        assert sample(registry, stream_reconnects, reason=reason) == 1
        assert sum(reconnects(registry, r) for r in metrics.RECONNECT_REASONS) == 0

    @pytest.mark.parametrize(
        ("check", "reason"),
        [
            (Answer(200, {}, {"connectionState": 2, "reason": "gone"}), "check_failed"),
            (Answer(401, {}, None), "session_lost"),
        ],
        ids=["down", "401"],
    )
    async def test_session_gone_after_the_stream_logs_in_again(
        self, no_waits: None, check: Answer, reason: str
    ) -> None:
        """Stream ended and the check says Down or 401: the session is lost and replaced."""
        client, sink, reader = FakeClient(), FakeSink(), ScriptedReader()
        client.check_answers = [check]
        reader.script = [stream_ends("closed")]
        registry = CollectorRegistry()
        session = make_session(client, sink, reader, registry)
        async with running(session):
            await sink.until(("up", "1"), ("down", reason), ("up", "2"))
        assert reconnects(registry, reason) == 1
        assert reader.sessions == ["1", "2"]

    async def test_failed_streams_fall_back_to_polling_on_the_same_session(
        self, no_waits: None
    ) -> None:
        """Three streams that never worked: short polling on session 1, shown and counted."""
        client, sink = FakeClient(), FakeSink()
        sse, poller = ScriptedReader(client), ScriptedReader(client)
        sse.script = [stream_ends("no_bytes") for _ in range(3)]
        registry = CollectorRegistry()
        session = make_session(client, sink, sse, registry, poller=poller)
        async with running(session):
            await client.until(lambda: poller.sessions == ["1"])
            assert session.health.note == "polling: SSE failed 3 times: stream ended: no_bytes"
            assert sample(registry, "icws_bridge_transport", transport="poll") == 1
            assert sample(registry, "icws_bridge_transport", transport="sse") == 0
        assert sse.sessions == ["1", "1", "1"]
        assert client.logins == 1
        assert sample(registry, "icws_bridge_stream_reconnects_total", reason="no_bytes") == 3

    async def test_sse_is_tried_again_after_polling(self, no_waits: None) -> None:
        """After sse_retry_after_seconds of polling, SSE is tried again on the same session."""
        client, sink = FakeClient(), FakeSink()
        sse, poller = ScriptedReader(client), ScriptedReader(client)
        sse.script = [stream_ends("refused") for _ in range(3)]
        session = make_session(client, sink, sse, poller=poller, sse_retry_after_seconds=0.01)
        async with running(session):
            await client.until(lambda: len(sse.sessions) == 4)
            assert poller.sessions == ["1"]
            # Not one byte from the new stream yet: readiness still says polling.
            assert session.health.note.startswith("polling: SSE failed 3 times")
        assert client.logins == 1

    async def test_forced_sse_never_falls_back(self, no_waits: None) -> None:
        """With transport=sse failed streams are retried as streams, never polled."""
        client, sink = FakeClient(), FakeSink()
        sse, poller = ScriptedReader(client), ScriptedReader(client)
        sse.script = [stream_ends("no_bytes") for _ in range(5)]
        session = make_session(client, sink, sse, poller=poller, transport="sse")
        async with running(session):
            await client.until(lambda: len(sse.sessions) == 6)
        assert poller.sessions == []
        assert client.logins == 1


class TestHeartbeat:
    """The heartbeat keeps the session alive; a server without one has it turned off."""

    @pytest.mark.parametrize("status", [404, 410])
    async def test_heartbeat_unsupported_is_turned_off(self, status: int) -> None:
        """A 404/410 heartbeat is sent once and never again; the session lives on."""
        client, sink = FakeClient(), FakeSink()
        client.heartbeat_status = status
        reader = ScriptedReader(client)
        session = make_session(
            client, sink, reader, heartbeat_seconds=0.01, connection_check_seconds=0.01
        )
        async with running(session):
            await client.until(lambda: client.calls.count("check") >= 5)
            assert session.up
        assert client.calls.count("heartbeat") == 1
        assert client.logins == 1

    @pytest.mark.parametrize("status", [204, 500])
    async def test_heartbeat_keeps_going(self, status: int) -> None:
        """Heartbeats go out on the interval; a failing one (500) does not end the session."""
        client, sink = FakeClient(), FakeSink()
        client.heartbeat_status = status
        session = make_session(client, sink, ScriptedReader(), heartbeat_seconds=0.01)
        async with running(session):
            await client.until(lambda: client.calls.count("heartbeat") >= 3)
            assert session.up
        assert client.logins == 1
        assert sink.events[:1] == [("up", "1")]

    async def test_zero_turns_the_heartbeat_off(self) -> None:
        """heartbeat_seconds=0: no heartbeat at all, while the connection check runs."""
        client, sink = FakeClient(), FakeSink()
        session = make_session(
            client, sink, ScriptedReader(), heartbeat_seconds=0, connection_check_seconds=0.01
        )
        async with running(session):
            await client.until(lambda: client.calls.count("check") >= 5)
        assert "heartbeat" not in client.calls
