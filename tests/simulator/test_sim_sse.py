"""The SSE message stream: negotiation, framing, keep-alives, one stream per session, faults."""

from __future__ import annotations

import aiohttp
import pytest

from bridge.simulator import Simulator

from .conftest import MakeSim
from .support import EVENT_STREAM, SseReader, login, stream, streaming


async def read_until_cut(reader: SseReader) -> bytes:
    """Everything the stream sent before its connection broke mid-response."""
    received = bytearray()

    async def read_all() -> None:
        """Read until EOF or the broken connection."""
        while chunk := await reader.response.content.readany():
            received.extend(chunk)

    with pytest.raises(aiohttp.ClientPayloadError):
        await read_all()
    return bytes(received)


class TestFraming:
    """SSE negotiation, event framing and keep-alives."""

    async def test_one_message_per_data_event(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Each event is `data: <one message>` and a blank line, with SSE response headers."""
        icws = await login(http, sim)
        await icws.subscribe("interaction-alerting")
        async with stream(icws) as reader:
            assert reader.response.headers["Content-Type"] == "text/event-stream"
            assert reader.response.headers["Cache-Control"] == "no-cache"
            snapshot = await reader.message()
            iid = sim.world.start_alerting("agent.one")
            delta = await reader.message()
        assert snapshot["isDelta"] is False
        assert delta["alertingInteractionDetails"][0]["interactionId"] == iid
        assert sim.sent_messages == [(icws.session_id, snapshot), (icws.session_id, delta)]
        assert ("GET", f"/icws/{icws.session_id}/messaging/messages", 200) in sim.requests

    async def test_keepalive_comments(self, make_sim: MakeSim, http: aiohttp.ClientSession) -> None:
        """An idle stream sends `:ping` comment blocks every sse_keepalive_seconds."""
        sim = await make_sim(sse_keepalive_seconds=0.02)
        icws = await login(http, sim)
        async with stream(icws) as reader:
            assert await reader.block() == ":ping\n"
            assert await reader.block() == ":ping\n"

    async def test_no_keepalive_when_disabled(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """With sse_keepalive_seconds None an idle stream sends nothing at all."""
        sim = await make_sim(sse_keepalive_seconds=None)
        icws = await login(http, sim)
        async with stream(icws) as reader:
            with pytest.raises(TimeoutError):
                await reader.block(timeout=0.1)

    async def test_old_messaging_version_answers_json(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Below messaging 2 an SSE request gets the JSON array instead."""
        sim = await make_sim(features={"messaging": 1, "interactions": 9})
        icws = await login(http, sim)
        await icws.subscribe("interaction-alerting")
        reply = await icws.call("GET", "/messaging/messages", csrf=False, headers=EVENT_STREAM)
        assert reply.headers["Content-Type"].startswith("application/vnd.inin.icws+json")
        assert len(reply.body) == 1


class TestStreamLifetime:
    """When a stream ends."""

    async def test_second_stream_replaces_first(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Opening a second stream ends the first; messages then go to the second."""
        icws = await login(http, sim)
        async with stream(icws) as first:
            await streaming(sim, icws)
            async with stream(icws) as second:
                with pytest.raises(EOFError):
                    await first.block()
                await icws.subscribe("interaction-alerting")
                assert (await second.message())["isDelta"] is False

    async def test_expiry_closes_the_stream(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """An expired session's stream ends."""
        icws = await login(http, sim)
        async with stream(icws) as reader:
            await streaming(sim, icws)
            sim.faults.expire_session(icws.session_id)
            with pytest.raises(EOFError):
                await reader.block()

    async def test_client_hangup_detaches_the_stream(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """When the client goes away the session no longer has a stream."""
        icws = await login(http, sim)
        async with stream(icws):
            await streaming(sim, icws)
        await sim.wait_for(lambda: sim.sessions[icws.session_id].stream is None, timeout=5)

    async def test_stop_closes_streams(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Stopping the simulator ends open streams cleanly."""
        sim = await make_sim()
        icws = await login(http, sim)
        async with stream(icws) as reader:
            await streaming(sim, icws)
            await sim.stop()
            with pytest.raises(EOFError):
                await reader.block()


class TestStreamFaults:
    """faults.cut_sse and silence_sse."""

    async def test_cut_mid_event(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """A cut writes half a data line and drops the connection; the message stays queued."""
        icws = await login(http, sim)
        sim.faults.silence_sse()
        async with stream(icws) as reader:
            await streaming(sim, icws)
            await icws.subscribe("interaction-alerting")
            sim.faults.cut_sse()
            received = await read_until_cut(reader)
        assert received.startswith(b"data: {")
        assert not received.endswith(b"\n")
        assert sim.sent_messages == []
        sim.faults.clear()
        [snapshot] = await icws.poll()
        assert snapshot["isDelta"] is False

    async def test_cut_between_events(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """With mid_event=False the connection drops without a partial line."""
        icws = await login(http, sim)
        async with stream(icws) as reader:
            await streaming(sim, icws)
            sim.faults.cut_sse(mid_event=False)
            assert await read_until_cut(reader) == b""

    async def test_silence_holds_messages_until_clear(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """A silenced stream sends nothing, not even pings; clear() releases the queue."""
        sim.config.sse_keepalive_seconds = 0.02
        icws = await login(http, sim)
        sim.faults.silence_sse()
        async with stream(icws) as reader:
            await streaming(sim, icws)
            await icws.subscribe("interaction-alerting")
            with pytest.raises(TimeoutError):
                await reader.block(timeout=0.1)
            assert len(sim.sessions[icws.session_id].queue) == 1
            sim.faults.clear()
            assert (await reader.message())["isDelta"] is False
