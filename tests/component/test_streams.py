"""Streams are not sessions: reopened on the same session, polled after failures, kept alive.

Against the recording fake client and scripted readers; each test waits on a positive marker
(a reader's start, a count of calls), never on time. The real SSE reader is fed scripted byte
streams and answers to show how it names each kind of stream end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from bridge import errors, metrics
from bridge.core.icws_api import Answer, Call
from bridge.icws.client import ByteStream
from bridge.icws.transports import Reading, SseReader, StreamEnded
from bridge.settings import IcwsSettings

from .session_fakes import (
    SUBSCRIPTIONS,
    FakeClient,
    FakeSink,
    ScriptedReader,
    make_session,
    reconnects,
    running,
    sample,
    stream_ends,
)


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
            assert session.health.transport == "poll"  # the fleet counts it per transport
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


class Chunks:
    """A byte stream: scripted chunks, then b"" (closed), an error (cut) or nothing (None)."""

    def __init__(self, chunks: list[bytes], then: bytes | errors.IcwsError | None = b"") -> None:
        self._chunks = list(chunks)
        self._then = then

    async def readany(self) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        if self._then is None:
            await asyncio.Event().wait()  # silent until the reader gives up on it
        if isinstance(self._then, errors.IcwsError):
            raise self._then
        return self._then or b""


class StreamingClient(FakeClient):
    """A fake client whose SSE request gets the given stream or answer."""

    def __init__(self, opened: ByteStream | Answer) -> None:
        super().__init__()
        self._opened = opened

    def stream(self, base: str, call: Call) -> AbstractAsyncContextManager[ByteStream | Answer]:
        @asynccontextmanager
        async def answer() -> AsyncIterator[ByteStream | Answer]:
            yield self._opened

        return answer()


async def read_once(opened: ByteStream | Answer) -> tuple[StreamEnded, list[list[Any]]]:
    """Read one SSE stream with the real reader: how it ended and the batches delivered."""
    delivered: list[list[Any]] = []

    async def deliver(batch: list[Any]) -> bool:
        delivered.append(batch)
        return False

    reading = Reading(
        StreamingClient(opened), "http://icws.test", "1", asyncio.Event(), deliver,
        lambda: None, asyncio.Event(),
    )  # fmt: skip
    with pytest.raises(StreamEnded) as ended:
        await SseReader(IcwsSettings(sse_idle_timeout_seconds=0.05)).read(reading)
    assert reading.opened.is_set()
    return ended.value, delivered


HTML = {"Content-Type": "text/html; charset=utf-8"}
JSON = {"Content-Type": "application/vnd.inin.icws+JSON; charset=utf-8"}
DATA = b'retry: 1500\n\ndata: {"__type":"x","isDelta":false}\n\n'


class TestSseReader:
    """How the real SSE reader names a stream's end: worked and ended, or failed."""

    @pytest.mark.parametrize(
        ("opened", "reason", "retry_ms"),
        [
            (Chunks([DATA]), "closed", 1500),
            (Chunks([DATA], then=errors.ServerError("stream broken")), "cut", 1500),
            (Chunks([b":ping\n\n"], then=None), "silent", None),
            (Chunks([]), "no_bytes", None),
            (Chunks([], then=errors.ServerError("stream broken")), "no_bytes", None),
            (Answer(200, HTML, None), "not_event_stream", None),
            (Answer(502, HTML, None), "refused", None),
            (Answer(404, JSON, None), "refused", None),
        ],
        ids=["closed", "cut", "silent", "empty", "reset", "html", "502", "404"],
    )
    async def test_stream_end(self, opened: Any, reason: str, retry_ms: int | None) -> None:
        """Each kind of end gets its reason, with the server's retry: when the stream worked."""
        ended, _ = await read_once(opened)
        assert (ended.reason, ended.retry_ms) == (reason, retry_ms)

    async def test_a_json_array_is_delivered_then_counts_as_failed(self) -> None:
        """A server that answers the SSE request with its JSON array: delivered, then failed."""
        ended, delivered = await read_once(Answer(200, JSON, [{"__type": "x", "isDelta": True}]))
        assert delivered == [[{"__type": "x", "isDelta": True}]]
        assert ended.reason == "not_event_stream"

    async def test_a_malformed_giant_message_is_invalid_and_the_next_one_delivered(self) -> None:
        """A broken snapshot of MBs: one "invalid" marker, none of it, then the next message."""
        entries = ",".join(f'{{"interactionId":"{n}"}}' for n in range(60_000))
        snapshot = f'{{"__type":"x","isDelta":false,"alertingInteractionDetails":[{entries}]}}'
        broken = snapshot.replace(',{"interactionId":"30000"}', ',{"interactionId":"30000"')
        raw = f"data: {broken}\n\ndata: {snapshot}\n\n".encode()
        chunks = [raw[n : n + 65_536] for n in range(0, len(raw), 65_536)]
        _, delivered = await read_once(Chunks(chunks))
        messages = [message for batch in delivered for message in batch]
        assert messages[0] == {"__type": "invalid", "reason": "SSE data is not JSON"}
        assert len(messages) == 2
        assert [e["interactionId"] for e in messages[1]["alertingInteractionDetails"]] == [
            str(n) for n in range(60_000)
        ]

    async def test_401_is_the_session_not_the_stream(self) -> None:
        """A 401 on the stream request is a lost session, not a stream to reopen."""
        reading = Reading(
            StreamingClient(Answer(401, JSON, None)), "http://icws.test", "1", asyncio.Event(),
            _never, lambda: None, asyncio.Event(),
        )  # fmt: skip
        with pytest.raises(errors.SessionLost):
            await SseReader(IcwsSettings()).read(reading)


async def _never(batch: list[Any]) -> bool:
    raise AssertionError("nothing to deliver")
