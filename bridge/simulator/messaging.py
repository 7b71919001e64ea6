"""The message channel (§2.1 to §2.3): short polls, the SSE stream on the same URL, heartbeat.

A poll drains the queue into a JSON array. With `Accept: text/event-stream` and messaging ≥ 2
the same URL becomes an SSE stream: one message per `data:` event, `:ping` comments while idle
(every `sse_keepalive_seconds`, or never), one stream per session. A message leaves the queue
only when it was written; if a write fails it goes back to the front, so a dying connection never
swallows a message silently.

Realism (docs/icws-protocol.md §10): with `sse_retry_ms` a stream starts with a `retry: <ms>` field;
with `sse_recycle_seconds` the server ends a healthy stream cleanly after that long (the session
and its queue live on). The `hang_sse` and `html_sse` faults make an SSE request hang or answer a
proxy's HTML page. The heartbeat answers `heartbeat_status` (404/410: "unsupported", before any
session check) and, when it succeeds, counts as activity for the idle timeout.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from .context import Context, context, require_session
from .faults import SseFault
from .sessions import Session, SseStream
from .wire import IcwsError, JsonObject, Urn, empty_response, encode, json_response

routes = web.RouteTableDef()

SSE_MIN_MESSAGING_VERSION = 2
_PING = b":ping\n\n"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_HEARTBEAT_UNSUPPORTED = {404: "unsupported", 410: "gone"}
# What a web proxy shows when it cannot (or will not) pass the stream on.
_PROXY_PAGE = (
    "<!DOCTYPE html><html><head><title>{status} Proxy Error</title></head>"
    "<body><h1>Proxy Error</h1><p>The proxy server could not handle the request.</p></body></html>"
)
# What a cut stream tears in half when nothing is queued: a plausible start of a message.
_FILLER: JsonObject = {"__type": Urn.CONNECTION_STATE_CHANGE, "isDelta": False}


def _event(message: JsonObject) -> bytes:
    return b"data: " + encode(message) + b"\n\n"


@routes.get(r"/icws/{sid:\d+}/messaging/messages", allow_head=False)
async def get_messages(request: web.Request) -> web.StreamResponse:
    """Poll (JSON array, drained) or, when asked and supported, the SSE stream."""
    ctx = context(request)
    session = require_session(request, csrf=False, allow_down=True)
    wants_stream = "text/event-stream" in request.headers.get("Accept", "")
    if wants_stream and session.feature("messaging") >= SSE_MIN_MESSAGING_VERSION:
        fault = ctx.faults.take_sse_fault()
        if fault is not None:
            return await _misbehave(request, ctx, fault)
        return await _stream(request, ctx, session)
    # Below messaging 2 there is no SSE: the server answers the JSON array regardless.
    return json_response(ctx.registry.drain(session))


@routes.post(r"/icws/{sid:\d+}/messaging/heartbeat")
async def heartbeat(request: web.Request) -> web.Response:
    """`POST .../messaging/heartbeat`: keeps the session alive (semantics UNCONFIRMED, §2.3)."""
    ctx = context(request)
    ctx.records.heartbeats += 1
    status = ctx.config.heartbeat_status
    if status in _HEARTBEAT_UNSUPPORTED:
        raise IcwsError.of(_HEARTBEAT_UNSUPPORTED[status])
    require_session(request)
    return empty_response(status)


async def _misbehave(request: web.Request, ctx: Context, fault: SseFault) -> web.StreamResponse:
    """Answer an SSE request as a misbehaving proxy would: an HTML page, or nothing at all."""
    if fault.html:
        page = _PROXY_PAGE.format(status=fault.status)
        return web.Response(status=fault.status, text=page, content_type="text/html")
    response = web.StreamResponse(headers=_SSE_HEADERS)
    if fault.send_headers:
        await response.prepare(request)
    # Until the client hangs up (which cancels this handler) or the simulator stops.
    await ctx.stopping.wait()
    return response


async def _stream(request: web.Request, ctx: Context, session: Session) -> web.StreamResponse:
    stream = ctx.registry.attach_stream(session)
    response = web.StreamResponse(headers=_SSE_HEADERS)
    await response.prepare(request)
    try:
        if ctx.config.sse_retry_ms is not None:
            await response.write(b"retry: %d\n\n" % ctx.config.sse_retry_ms)
        cut = await _pump(response, ctx, session, stream)
        if cut is not None:
            await _tear(request, response, session, mid_event=cut)
        else:
            await response.write_eof()
    except ConnectionError:
        pass  # The client went away; there is nobody left to finish the response for.
    finally:
        ctx.registry.detach_stream(session, stream)
    return response


async def _pump(
    response: web.StreamResponse, ctx: Context, session: Session, stream: SseStream
) -> bool | None:
    """Write events until the stream is closed (returns None) or cut (returns `mid_event`)."""
    loop = asyncio.get_running_loop()
    recycle = ctx.config.sse_recycle_seconds
    recycle_at = None if recycle is None else loop.time() + recycle
    while True:
        # Clear before looking, so a wake-up that arrives while we look is not lost.
        stream.wake.clear()
        if stream.cut_mid_event is not None:
            return stream.cut_mid_event
        if stream.closing:
            return None
        if recycle_at is not None and loop.time() >= recycle_at:
            ctx.registry.recycled()
            return None
        message = None if ctx.faults.sse_silenced else ctx.registry.take(session)
        if message is not None:
            await _write(response, ctx, session, message)
            continue
        await _idle(response, ctx, stream, recycle_at)


async def _idle(
    response: web.StreamResponse, ctx: Context, stream: SseStream, recycle_at: float | None
) -> None:
    """Wait for news, the recycle time, or the keep-alive time (then write a `:ping`)."""
    keepalive = None if ctx.faults.sse_silenced else ctx.config.sse_keepalive_seconds
    waits = [
        wait
        for wait in (keepalive, None if recycle_at is None else recycle_at - _loop_time())
        if wait is not None
    ]
    timeout = min(waits) if waits else None
    try:
        await asyncio.wait_for(stream.wake.wait(), timeout)
    except TimeoutError:
        if timeout == keepalive:
            await response.write(_PING)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


async def _write(
    response: web.StreamResponse, ctx: Context, session: Session, message: JsonObject
) -> None:
    try:
        await response.write(_event(message))
    except BaseException:
        ctx.registry.give_back(session, message)
        raise
    ctx.registry.delivered(session, message)


async def _tear(
    request: web.Request, response: web.StreamResponse, session: Session, *, mid_event: bool
) -> None:
    """Drop the connection without ending the HTTP response, optionally mid-`data:` line.

    The torn message stays queued: it was never delivered whole, so the next read gets it.
    """
    if mid_event:
        line = _event(session.queue[0] if session.queue else _FILLER).rstrip(b"\n")
        await response.write(line[: len(line) // 2])
    if request.transport is not None:
        # close() flushes the half line first; the terminating chunk is never sent.
        request.transport.close()
