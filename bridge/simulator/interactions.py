"""Agent-assistance resources (§4.4): create, add a message to, and complete a request.

Only the initiator may update or complete a request; anything else is the documented 400.
"""

from __future__ import annotations

from aiohttp import web

from .context import (
    APPLIED,
    context,
    read_json_object,
    require_feature,
    require_session,
    require_text,
)
from .sessions import Session
from .wire import AssistanceState, IcwsError, JsonObject, empty_response, json_response
from .world import World

routes = web.RouteTableDef()

ASSISTANCE_VERSION = 9
# Ids are opaque: any characters but a raw `/` (aiohttp decodes an encoded `%2F` into the match).
_REQUEST = r"/icws/{sid:\d+}/interactions/agent-assistance/{assistance_id:[^/]+}"


@routes.post(r"/icws/{sid:\d+}/interactions/{interaction_id:\d+}/agent-assistance")
async def create_request(request: web.Request) -> web.Response:
    """Create a request about one of the user's interactions: 201 `{"assistanceId"}`."""
    ctx = context(request)
    session = _session(request)
    text = require_text(await read_json_object(request), "text")
    interaction_id = request.match_info["interaction_id"]
    if not ctx.world.has_interaction(session.user, interaction_id):
        raise IcwsError.of("not_found", f"The interaction {interaction_id} was not found.")
    assistance_id = ctx.world.create_assistance(session.user, interaction_id, text)
    return json_response({"assistanceId": assistance_id}, 201)


@routes.post(_REQUEST)
async def update_request(request: web.Request) -> web.Response:
    """Add the user's message to their request; success code by config (§8.6)."""
    ctx = context(request)
    session = _session(request)
    text = require_text(await read_json_object(request), "text")
    assistance_id = _own_open_request(ctx.world, session, request)
    times = 2 if ctx.faults.take_repeat() else 1
    for _ in range(times):
        ctx.world.add_assistance_message(assistance_id, session.user, text)
    request[APPLIED] = times
    return empty_response(ctx.config.assistance_update_status)


@routes.delete(_REQUEST)
async def complete_request(request: web.Request) -> web.Response:
    """Complete the user's request: 204."""
    ctx = context(request)
    session = _session(request)
    ctx.world.complete_assistance(_own_open_request(ctx.world, session, request))
    request[APPLIED] = 1
    return web.Response(status=204)


def _session(request: web.Request) -> Session:
    session = require_session(request)
    require_feature(session, "interactions", ASSISTANCE_VERSION)
    return session


def _own_open_request(world: World, session: Session, request: web.Request) -> str:
    """The id in the path, if it names an open request this session's user initiated."""
    assistance_id = request.match_info["assistance_id"]
    try:
        found: JsonObject = world.assistance_request(assistance_id)
    except KeyError:
        raise _invalid(f"The assistance request {assistance_id} does not exist.") from None
    if found["initiator"] != session.user:
        raise _invalid(
            f"The assistance request {assistance_id} was not initiated by the logged in user."
        )
    if found["state"] == AssistanceState.COMPLETED:
        raise _invalid(f"The assistance request {assistance_id} is already completed.")
    return assistance_id


def _invalid(message: str) -> IcwsError:
    return IcwsError.invalid_property("assistanceId", message)
