"""Agent-assistance resources (§4.4): create, add a message to, and complete a request.

Only the initiator may complete a request; anyone else gets the documented 400 ("was not
initiated by the logged in user"). Who may add a message is UNCONFIRMED (§8.13; the seed page
names only "does not exist"): `assistance_update_by` decides, the initiator by default.
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
# Why a user outside the configured scope is refused ("anyone" never is).
_OUT_OF_SCOPE = {
    "initiator": "The assistance request {} was not initiated by the logged in user.",
    "participants": "The logged in user does not take part in the assistance request {}.",
}
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
    assistance_id = _open_request(ctx.world, session, request, ctx.config.assistance_update_by)
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
    ctx.world.complete_assistance(_open_request(ctx.world, session, request, "initiator"))
    request[APPLIED] = 1
    return web.Response(status=204)


def _session(request: web.Request) -> Session:
    session = require_session(request)
    require_feature(session, "interactions", ASSISTANCE_VERSION)
    return session


def _open_request(world: World, session: Session, request: web.Request, scope: str) -> str:
    """The id in the path, if it names an open request within `scope` of the session's user."""
    assistance_id = request.match_info["assistance_id"]
    try:
        found: JsonObject = world.assistance_request(assistance_id)
    except KeyError:
        raise _invalid(f"The assistance request {assistance_id} does not exist.") from None
    if not world.assistance_allows(session.user, assistance_id, scope):
        raise _invalid(_OUT_OF_SCOPE[scope].format(assistance_id))
    if found["state"] == AssistanceState.COMPLETED:
        raise _invalid(f"The assistance request {assistance_id} is already completed.")
    return assistance_id


def _invalid(message: str) -> IcwsError:
    return IcwsError.invalid_property("assistanceId", message)
