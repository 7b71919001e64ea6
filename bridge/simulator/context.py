"""What every `/icws` handler shares: the simulator context, session authentication, bodies.

Authentication follows §0 and §3.1: the path-scoped cookie `icws_<sessionId>` must be present
(else 401 errorCode 1) and belong to a live session (else 401 -2147221499), and the
`ININ-ICWS-CSRF-Token` header must match (else 401 errorCode 2) on every route except
`GET .../messaging/messages`, which an EventSource has to reach with the cookie alone.

In web-proxy mode (`proxy_names`) every ICWS route is served below `/api/<icserver>`; the route's
`icserver` match names the IC server, and paths the simulator hands out carry that prefix.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from aiohttp import web

from .config import SimulatorConfig
from .faults import Faults
from .pacing import LoginGate
from .sessions import Records, Session, SessionRegistry
from .wire import CSRF_HEADER, IcwsError, JsonObject
from .world import World


@dataclass(frozen=True)
class Context:
    """The simulator's parts, as the HTTP handlers see them."""

    config: SimulatorConfig
    world: World
    registry: SessionRegistry
    faults: Faults
    records: Records
    stopping: asyncio.Event
    logins: LoginGate


CONTEXT = web.AppKey("icws_simulator_context", Context)
# Request key: how many times a handler applied an assistance call's effect (see `Call`).
APPLIED = web.RequestKey("icws_simulator_applied", int)
PROXY_ROOT = "/api"
PROXY_NAME_MATCH = "icserver"


def context(request: web.Request) -> Context:
    """The context of the application serving `request`."""
    return request.app[CONTEXT]


def proxy_name(request: web.Request) -> str | None:
    """The `<icserver>` segment of a proxied request, None for a direct one."""
    return request.match_info.get(PROXY_NAME_MATCH)


def base_path(request: web.Request) -> str:
    """What precedes `/icws/` in this request's path: `/api/<icserver>` or nothing."""
    name = proxy_name(request)
    return "" if name is None else f"{PROXY_ROOT}/{name}"


def check_credentials(
    request: web.Request, cookie_value: str, csrf_token: str, *, csrf: bool = True
) -> None:
    """Raise the 401 ICWS gives when the request's cookie or CSRF token do not match."""
    cookie = request.cookies.get(f"icws_{request.match_info['sid']}")
    if cookie is None:
        # With a wrong session id in the path the path-scoped cookie is not sent at all.
        raise IcwsError.of("missing_session_id")
    if cookie != cookie_value:
        raise IcwsError.of("invalid_session")
    if csrf and request.headers.get(CSRF_HEADER) != csrf_token:
        raise IcwsError.of("missing_csrf_token")


def require_session(
    request: web.Request, *, csrf: bool = True, allow_down: bool = False
) -> Session:
    """The live session the request authenticates as; counts as activity.

    `allow_down` admits a session whose Down message still waits to be fetched.
    """
    registry = context(request).registry
    if f"icws_{request.match_info['sid']}" not in request.cookies:
        raise IcwsError.of("missing_session_id")
    session = registry.lookup(request.match_info["sid"])
    if session is None or (session.down is not None and not allow_down):
        raise IcwsError.of("invalid_session")
    if session.icserver != proxy_name(request):
        # Another IC server behind the proxy has never heard of this session.
        raise IcwsError.of("invalid_session")
    check_credentials(request, session.cookie_value, session.csrf_token, csrf=csrf)
    registry.touch(session)
    return session


def require_feature(session: Session, feature_id: str, version: int) -> None:
    """404 `error.request.unsupported` unless the session's server has the feature version."""
    if session.feature(feature_id) < version:
        raise IcwsError.of(
            "unsupported",
            f"This resource requires the '{feature_id}' feature at version {version} or later.",
        )


async def read_json_object(request: web.Request, *, optional: bool = False) -> JsonObject:
    """The request body as a JSON object; 400 when it is not one (or absent and required)."""
    text = await request.text()
    if not text.strip():
        if optional:
            return {}
        raise IcwsError.of("invalid_representation", "A request body is required.")
    try:
        body = json.loads(text)
    except ValueError:
        raise IcwsError.of(
            "invalid_representation", "The request body is not valid JSON."
        ) from None
    if body is None and optional:
        return {}
    if not isinstance(body, dict):
        raise IcwsError.of("invalid_representation", "The request body must be a JSON object.")
    return body


def require_text(body: JsonObject, name: str) -> str:
    """A required string property of a request body (missing- or invalid-property 400s)."""
    if body.get(name) is None:
        raise IcwsError.missing_property(name)
    value = body[name]
    if not isinstance(value, str):
        raise IcwsError.invalid_property(name, f"The property '{name}' must be a string.")
    return value
