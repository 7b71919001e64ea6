"""Subscription resources (§2.5, §4): PUT creates or replaces and queues a snapshot, DELETE cancels.

One table row per subscription says which feature version it needs, its success code, how its
parameters are read and where its `isDelta:false` snapshot comes from. A subscription the
server suspended or faulted (`faults.fail_subscription`) is gone until the next PUT re-creates it.
Who may watch one assistance request's details is `assistance_watch_by` (anyone by default).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from .context import Context, context, read_json_object, require_feature, require_session
from .messages import (
    ALERTING,
    ASSISTANCE_LIST,
    HISTORY,
    STATUS_MESSAGES,
    assistance_details,
)
from .sessions import Session
from .wire import IcwsError, JsonObject, empty_response, json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PREFIX = r"/icws/{sid:\d+}/messaging/subscriptions/"


def _no_params(_body: JsonObject) -> JsonObject:
    return {}


def _alerting_params(body: JsonObject) -> JsonObject:
    attribute_names = body.get("attributeNames")
    if attribute_names is None:
        return {}
    # Optional, but "List [1,*]: String" when present (seed page for interaction-alerting).
    if (
        not isinstance(attribute_names, list)
        or not attribute_names
        or not all(isinstance(name, str) for name in attribute_names)
    ):
        raise IcwsError.invalid_property(
            "attributeNames", "attributeNames must be a non-empty list of strings."
        )
    return {"attributeNames": list(attribute_names)}


def _history_params(body: JsonObject) -> JsonObject:
    limit = body.get("numberOfHistoryMessages")
    if limit is None:
        return {}
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise IcwsError.invalid_property(
            "numberOfHistoryMessages", "numberOfHistoryMessages must be a non-negative integer."
        )
    return {"numberOfHistoryMessages": limit}


def _details_snapshot(ctx: Context, session: Session, name: str) -> JsonObject:
    # The id may itself hold `/`: everything after the list's path is the id.
    assistance_id = name.removeprefix(ASSISTANCE_LIST + "/")
    scope = ctx.config.assistance_watch_by
    try:
        allowed = ctx.world.assistance_allows(session.user, assistance_id, scope)
        snapshot = ctx.world.assistance_details_snapshot(assistance_id)
    except KeyError:
        allowed = False
    if not allowed:
        # Outside `assistance_watch_by` a request is as good as absent (scoping UNCONFIRMED).
        raise IcwsError.invalid_property(
            "assistanceId", f"The assistance request {assistance_id} does not exist."
        )
    return snapshot


@dataclass(frozen=True)
class SubscriptionKind:
    """How one subscription resource behaves."""

    feature: str
    version: int
    put_status: int
    params: Callable[[JsonObject], JsonObject]
    snapshot: Callable[[Context, Session, JsonObject, str], JsonObject]
    # The alerting page documents 404 for deleting a missing subscription; the others do not.
    missing_delete_status: int = 204


KINDS: dict[str, SubscriptionKind] = {
    ALERTING: SubscriptionKind(
        "interactions",
        6,
        204,
        _alerting_params,
        lambda ctx, session, params, _name: ctx.world.alerting_snapshot(session.user, params),
        missing_delete_status=404,
    ),
    HISTORY: SubscriptionKind(
        "interactions",
        4,
        204,
        _history_params,
        lambda ctx, session, params, _name: ctx.world.history_snapshot(session.user, params),
    ),
    STATUS_MESSAGES: SubscriptionKind(
        "status",
        1,
        200,
        _no_params,
        lambda ctx, _session, _params, _name: ctx.world.status_snapshot(),
    ),
    ASSISTANCE_LIST: SubscriptionKind(
        "interactions",
        9,
        204,
        _no_params,
        lambda ctx, session, _params, _name: ctx.world.assistance_list_snapshot(session.user),
    ),
}
_DETAILS = SubscriptionKind(
    "interactions",
    9,
    204,
    _no_params,
    lambda ctx, session, _params, name: _details_snapshot(ctx, session, name),
)


def _subscription_name(request: web.Request, kind_name: str) -> str:
    assistance_id = request.match_info.get("assistance_id")
    return kind_name if assistance_id is None else assistance_details(assistance_id)


def _put(kind_name: str, kind: SubscriptionKind) -> Handler:
    async def put_subscription(request: web.Request) -> web.StreamResponse:
        """Create or replace the subscription and queue its snapshot."""
        ctx = context(request)
        session = require_session(request)
        require_feature(session, kind.feature, kind.version)
        name = _subscription_name(request, kind_name)
        body = await read_json_object(request, optional=True)
        ctx.records.subscription_bodies.append((name, copy.deepcopy(body)))
        params = kind.params(body)
        snapshot = kind.snapshot(ctx, session, params, name)
        session.subscriptions[name] = params
        ctx.registry.enqueue(session, snapshot)
        ctx.records.subscription_puts += 1
        return empty_response(kind.put_status)

    return put_subscription


def _delete(kind_name: str, kind: SubscriptionKind) -> Handler:
    async def delete_subscription(request: web.Request) -> web.StreamResponse:
        """Cancel the subscription."""
        session = require_session(request)
        require_feature(session, kind.feature, kind.version)
        name = _subscription_name(request, kind_name)
        if session.subscriptions.pop(name, None) is None and kind.missing_delete_status == 404:
            raise IcwsError.of("not_found", f"There is no {name} subscription to delete.")
        return web.Response(status=204)

    return delete_subscription


def route_table() -> list[web.RouteDef]:
    """PUT and DELETE routes for every subscription in `KINDS`, plus assistance details."""
    rows = [(_PREFIX + name, name, kind) for name, kind in KINDS.items()]
    # Opaque ids (§10): any characters but a raw `/`; an encoded `%2F` arrives decoded.
    rows.append((_PREFIX + ASSISTANCE_LIST + "/{assistance_id:[^/]+}", "details", _DETAILS))
    table: list[web.RouteDef] = []
    for path, name, kind in rows:
        table += [web.put(path, _put(name, kind)), web.delete(path, _delete(name, kind))]
    table.append(
        web.get(r"/icws/{sid:\d+}/status/status-messages", get_status_messages, allow_head=False)
    )
    return table


async def get_status_messages(request: web.Request) -> web.Response:
    """`GET .../status/status-messages`: the catalogue as `statusMessageList` (§4.3)."""
    ctx = context(request)
    session = require_session(request)
    require_feature(session, "status", 1)
    return json_response({"statusMessageList": list(ctx.world.status_messages.values())})
