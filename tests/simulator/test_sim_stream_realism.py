"""Stream realism: recycled streams with `retry:`, keep-alive knobs, SSE faults, counters."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from bridge.simulator import Simulator

from .conftest import MakeSim
from .support import EVENT_STREAM, Icws, SseReader, login, send, stream, streaming, types

ALERTING = "interaction-alerting"


async def state(http: aiohttp.ClientSession, sim: Simulator) -> dict[str, Any]:
    """The control API's `/_sim/state` body."""
    reply = await send(http, "GET", f"{sim.url}/_sim/state")
    assert reply.status == 200
    body: dict[str, Any] = reply.body
    return body


async def read_to_eof(reader: SseReader) -> list[str]:
    """Every block a stream sends until it ends cleanly (EOF, not a broken connection)."""
    blocks: list[str] = []
    while True:
        try:
            blocks.append(await reader.block())
        except EOFError:
            return blocks


async def after_one_recycle(make_sim: MakeSim, http: aiohttp.ClientSession) -> Icws:
    """A subscribed session whose first stream delivered the snapshot and was then recycled."""
    sim = await make_sim(sse_recycle_seconds=0.1, sse_keepalive_seconds=None)
    icws = await login(http, sim)
    await icws.subscribe(ALERTING)
    async with stream(icws) as reader:
        assert (await reader.message())["isDelta"] is False
        assert await read_to_eof(reader) == []
    return icws


class TestRecycling:
    """sse_recycle_seconds and sse_retry_ms: the server ends healthy streams on purpose."""

    async def test_stream_starts_with_retry_and_ends_cleanly(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """A recycled stream opens with `retry: <ms>` and later ends with a clean EOF."""
        sim = await make_sim(sse_recycle_seconds=0.2, sse_retry_ms=1500, sse_keepalive_seconds=None)
        icws = await login(http, sim)
        async with stream(icws) as reader:
            assert await reader.block() == "retry: 1500\n"
            assert await read_to_eof(reader) == []
        counters = (await state(http, sim))["counters"]
        assert (counters["streamsOpened"], counters["streamsRecycled"]) == (1, 1)
        assert (await icws.call("GET", "/connection")).body == {"connectionState": 1}

    async def test_pings_continue_until_the_recycle(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Keep-alives still flow on a stream that will be recycled; no `retry:` by default."""
        sim = await make_sim(sse_recycle_seconds=0.3, sse_keepalive_seconds=0.05)
        icws = await login(http, sim)
        async with stream(icws) as reader:
            blocks = await read_to_eof(reader)
        assert blocks
        assert set(blocks) == {":ping\n"}

    async def test_queued_messages_reach_the_next_stream_once(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """What is queued between streams is delivered, in order and once, to the next stream."""
        icws = await after_one_recycle(make_sim, http)
        sim = icws.sim
        ids = [sim.world.start_alerting("agent.one") for _ in range(3)]
        async with stream(icws) as reader:
            deltas = [await reader.message() for _ in ids]
        assert [d["alertingInteractionDetails"][0]["interactionId"] for d in deltas] == ids
        assert await icws.poll() == []
        assert len(sim.sent_messages) == 4
        assert sim.logins == 1

    async def test_queued_messages_reach_a_poll(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """A poll after a recycled stream gets what was queued meanwhile."""
        icws = await after_one_recycle(make_sim, http)
        iid = icws.sim.world.start_alerting("agent.one")
        [delta] = await icws.poll()
        assert delta["alertingInteractionDetails"][0]["interactionId"] == iid

    async def test_session_survives_many_recycles(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Three recycled streams in a row: one login, one session, three recycles counted."""
        sim = await make_sim(sse_recycle_seconds=0.05, sse_keepalive_seconds=None)
        icws = await login(http, sim)
        for _ in range(3):
            async with stream(icws) as reader:
                await read_to_eof(reader)
        counters = (await state(http, sim))["counters"]
        assert (counters["logins"], counters["streamsRecycled"]) == (1, 3)
        assert list(sim.sessions) == [icws.session_id]

    async def test_default_streams_are_not_recycled(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """By default a stream is never ended on purpose: it only pings."""
        sim = await make_sim(sse_keepalive_seconds=0.02)
        icws = await login(http, sim)
        async with stream(icws) as reader:
            blocks = [await reader.block() for _ in range(5)]
        assert set(blocks) == {":ping\n"}
        assert (await state(http, sim))["counters"]["streamsRecycled"] == 0


class TestRuntimeKnobs:
    """The stream options can change at runtime through PATCH /_sim/config."""

    async def test_keepalive_and_recycle_over_http(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """Setting keep-alive, retry and recycle over HTTP shapes the next stream."""
        sim = await make_sim(sse_keepalive_seconds=None)
        knobs = {"sse_keepalive_seconds": 0.02, "sse_retry_ms": 250, "sse_recycle_seconds": 0.2}
        reply = await send(http, "PATCH", f"{sim.url}/_sim/config", json=knobs)
        assert reply.status == 200
        assert {name: reply.body[name] for name in knobs} == knobs
        icws = await login(http, sim)
        async with stream(icws) as reader:
            blocks = await read_to_eof(reader)
        assert blocks[0] == "retry: 250\n"
        assert set(blocks[1:]) == {":ping\n"}

    async def test_keepalive_can_be_switched_off(
        self, make_sim: MakeSim, http: aiohttp.ClientSession
    ) -> None:
        """With the keep-alive set to null over HTTP an idle stream sends nothing."""
        sim = await make_sim(sse_keepalive_seconds=0.02)
        reply = await send(
            http, "PATCH", f"{sim.url}/_sim/config", json={"sse_keepalive_seconds": None}
        )
        assert reply.status == 200
        icws = await login(http, sim)
        async with stream(icws) as reader:
            with pytest.raises(TimeoutError):
                await reader.block(timeout=0.15)


class TestSseFaults:
    """faults.hang_sse and html_sse: a proxy that buffers the stream or answers a page."""

    async def test_hang_after_headers(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """The stream answers 200 with SSE headers, then sends nothing; polls still work."""
        icws = await login(http, sim)
        await icws.subscribe(ALERTING)
        sim.faults.hang_sse()
        async with stream(icws) as reader:
            assert reader.response.headers["Content-Type"] == "text/event-stream"
            with pytest.raises(TimeoutError):
                await reader.block(timeout=0.2)
            assert sim.sessions[icws.session_id].stream is None
            assert types(await icws.poll()) == ["interactionAlertingMessage"]

    async def test_hang_before_headers(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Without headers the client never even sees a status line."""
        icws = await login(http, sim)
        sim.faults.hang_sse(send_headers=False)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await http.get(f"{icws.base}/messaging/messages", headers=EVENT_STREAM)

    async def test_counted_hang_then_a_real_stream(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """With count=1 only the next SSE request hangs; the one after streams normally."""
        icws = await login(http, sim)
        sim.faults.hang_sse(count=1)
        async with stream(icws) as reader:
            with pytest.raises(TimeoutError):
                await reader.block(timeout=0.1)
        await icws.subscribe(ALERTING)
        async with stream(icws) as reader:
            assert (await reader.message())["isDelta"] is False

    @pytest.mark.parametrize("status", [200, 502])
    async def test_html_page(
        self, sim: Simulator, http: aiohttp.ClientSession, status: int
    ) -> None:
        """The SSE request gets a text/html page; a poll on the same URL still gets JSON."""
        icws = await login(http, sim)
        sim.faults.html_sse(status=status)
        async with http.get(f"{icws.base}/messaging/messages", headers=EVENT_STREAM) as reply:
            assert reply.status == status
            assert reply.headers["Content-Type"].startswith("text/html")
            assert "<html" in (await reply.text()).lower()
        assert await icws.poll() == []
        sim.faults.clear()
        async with stream(icws) as reader:
            await streaming(sim, icws)
            assert reader.response.status == 200

    async def test_faults_over_http(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        """Both SSE faults can be armed through POST /_sim/faults/{name}."""
        icws = await login(http, sim)
        url = f"{sim.url}/_sim/faults"
        assert (await send(http, "POST", f"{url}/html_sse", json={"count": 1})).status == 204
        async with http.get(f"{icws.base}/messaging/messages", headers=EVENT_STREAM) as page:
            assert page.status == 502
        assert (await send(http, "POST", f"{url}/hang_sse", json={"count": 1})).status == 204
        async with stream(icws) as reader:
            with pytest.raises(TimeoutError):
                await reader.block(timeout=0.1)


class TestCounters:
    """The counters of GET /_sim/state."""

    async def test_logins_puts_streams_and_heartbeats(
        self, sim: Simulator, http: aiohttp.ClientSession
    ) -> None:
        """Each login, subscription PUT, opened stream and heartbeat is counted."""
        icws: Icws = await login(http, sim)
        await icws.subscribe(ALERTING)
        await icws.subscribe("interaction-history")
        await icws.call("POST", "/messaging/heartbeat")
        async with stream(icws):
            await streaming(sim, icws)
        counters = (await state(http, sim))["counters"]
        assert counters["logins"] == 1
        assert counters["loginAttempts"] == 1
        assert counters["subscriptionPuts"] == 2
        assert counters["streamsOpened"] == 1
        assert counters["streamsRecycled"] == 0
        assert counters["heartbeats"] == 1
        assert sim.counters == counters
