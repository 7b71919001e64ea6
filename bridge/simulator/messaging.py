"""The message channel (§2.1 to §2.3): short polls, the SSE stream on the same URL, heartbeat.

A poll drains the queue into a JSON array. With `Accept: text/event-stream` and messaging ≥ 2
the same URL becomes an SSE stream: one message per `data:` event, `:ping` comments while idle,
one stream per session. A message leaves the queue only when it was written; if a write fails it
goes back to the front, so a dying connection never swallows a message silently.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from .context import Context, context, require_session
from .sessions import Session, SseStream
from .wire import JsonObject, Urn, encode, json_response

routes = web.RouteTableDef()

SSE_MIN_MESSAGING_VERSION = 2
_PING = b":ping\n\n"
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
        return await _stream(request, ctx, session)
    # Below messaging 2 there is no SSE: the server answers the JSON array regardless.
    return json_response(ctx.registry.drain(session))


@routes.post(r"/icws/{sid:\d+}/messaging/heartbeat")
async def heartbeat(request: web.Request) -> web.Response:
    """`POST .../messaging/heartbeat`: keeps the session alive (semantics UNCONFIRMED, §2.3)."""
    require_session(request)
    return web.Response(status=204)


async def _stream(request: web.Request, ctx: Context, session: Session) -> web.StreamResponse:
    stream = ctx.registry.attach_stream(session)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
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
    while True:
        # Clear before looking, so a wake-up that arrives while we look is not lost.
        stream.wake.clear()
        if stream.cut_mid_event is not None:
            return stream.cut_mid_event
        if stream.closing:
            return None
        if ctx.faults.sse_silenced:
            await stream.wake.wait()
            continue
        message = ctx.registry.take(session)
        if message is not None:
            await _write(response, ctx, session, message)
            continue
        try:
            await asyncio.wait_for(stream.wake.wait(), ctx.config.sse_keepalive_seconds)
        except TimeoutError:
            await response.write(_PING)


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
