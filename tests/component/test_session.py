"""The session's reconnect decisions, against a recording fake client and reader; no sleeps.

Each test waits on a positive marker (a login counted, a sink call, a wait stamina scheduled)
rather than on time. stamina's test mode removes the waits where a test needs retries quickly.
"""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from bridge import errors
from bridge.core.icws_api import Answer
from bridge.core.messages import ConnectionChange
from bridge.icws.transports import PollReader
from bridge.settings import IcwsSettings

from .session_fakes import (
    SUBSCRIPTIONS,
    UP,
    FakeClient,
    FakeSink,
    ScriptedReader,
    down,
    make_session,
    reconnects,
    running,
)


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


class TestWhatItShows:
    """The session keeps how it is in its Health, for the fleet to count into its gauges."""

    async def test_health_shows_host_transport_and_subscriptions_until_it_stops(self) -> None:
        """Up: its host, SSE and every subscription; stopped: no transport, none in place."""
        client, sink, reader = FakeClient(), FakeSink(), ScriptedReader(client=None)
        reader.script = [[UP]]
        session = make_session(client, sink, reader)
        async with running(session):
            await sink.until(("up", "1"), ("batch", [ConnectionChange(True, "", None)]))
            health = session.health
            assert (health.host, health.transport) == ("http://icws.test:8018", "sse")
            assert health.active == SUBSCRIPTIONS
        assert (health.transport, health.active) == (None, [])
        assert health.host == "http://icws.test:8018"  # the last login's, kept while down
