"""Connection resources (§1): log in, check, log out, and the sessionless feature lists.

A login can be turned away before it is handled: a `refuse_logins` fault (limited to one listening
address, or in proxy mode to one `<icserver>` name), a proxied login to a name that is not the
primary (503 naming the primary), or the configured `login_status` (a 3xx HTML redirect page or
a 4xx error body). A login that is handled first passes the login gate (pacing.py: optional
latency, a cap on concurrent logins). Bad credentials answer the full modern body or, by config,
errorCode only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from .catalogue import display_name
from .config import SimulatorConfig
from .context import (
    Context,
    base_path,
    check_credentials,
    context,
    proxy_name,
    read_json_object,
    require_session,
    require_text,
)
from .sessions import Ending, Session
from .wire import (
    CSRF_HEADER,
    SESSION_ID_HEADER,
    ConnectionState,
    IcwsError,
    JsonObject,
    Urn,
    compact_time,
    empty_response,
    json_response,
)

routes = web.RouteTableDef()

# Made-up but well-formed: every VersionInfo field is a string (§1.5).
VERSION_INFO = {
    "majorVersion": "20",
    "minorVersion": "1",
    "su": "15",
    "build": "20.1.15.2",
    "productId": "CIC",
    "codebaseId": "20.1.15",
    "productReleaseDisplayString": "CIC 2020 R1",
    "productPatchDisplayString": "CIC 2020 R1 Patch15",
}
_UNSUPPORTED_SETTINGS = {Urn.TOKEN_SETTINGS, Urn.SSO_SETTINGS}
_REQUIRED_SETTINGS = ("applicationName", "userID", "password")


def _feature_list(features: dict[str, int]) -> list[JsonObject]:
    return [{"featureId": name, "version": version} for name, version in features.items()]


# `include` value -> (201 body property, how to produce it); unknown values are ignored (§1.1).
_INCLUDES: dict[str, tuple[str, Callable[[Session], Any]]] = {
    "features": ("features", lambda session: _feature_list(session.features)),
    "version": ("version", lambda _session: dict(VERSION_INFO)),
    "server-time": ("serverTimeInfo", lambda _session: {"serverUtcTime": compact_time()}),
    "default-workstation": ("defaultWorkstationId", lambda _session: None),
    "effective-station": ("effectiveStation", lambda _session: None),
}


@routes.post("/icws/connection")
async def log_in(request: web.Request) -> web.Response:
    """`POST /icws/connection` with `icAuthConnectionRequestSettings`: 201 and a new session."""
    ctx = context(request)
    redirect = _turn_away(request, ctx)
    if redirect is not None:
        return redirect
    async with ctx.logins.admit():
        return await _handle_login(request, ctx)


async def _handle_login(request: web.Request, ctx: Context) -> web.Response:
    """Check the login request and credentials; open the session."""
    language = request.headers.get("Accept-Language", "").strip()
    if not language:
        raise IcwsError.of(
            "invalid_representation",
            "The Accept-Language header is required.",
            errorId="error.request.missingHeader",
        )
    settings = await read_json_object(request)
    _check_settings_type(settings)
    application, user, password = (require_text(settings, name) for name in _REQUIRED_SETTINGS)
    if ctx.config.users.get(user) != password:
        raise _bad_credentials(ctx.config)
    session = ctx.registry.open(user, application, language, proxy_name(request))
    return _created(request, ctx, session)


def _turn_away(request: web.Request, ctx: Context) -> web.Response | None:
    """Raise (or, for a 3xx, return) the answer of a login the server will not handle."""
    name = proxy_name(request)
    if name is None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        here = sockname[0] if sockname else None
    else:
        here = name
    refusal = ctx.faults.take_refusal(here)
    if refusal is not None:
        raise refusal
    primary = ctx.config.primary_proxy_name
    if name is not None and name != primary:
        # The backup behind the proxy: a switchover partner names the primary by its name.
        raise IcwsError.of("not_accepting_connections", alternateHostList=[primary])
    status = ctx.config.login_status
    if status is None:
        return None
    if status < 400:
        page = f'<html><body><a href="{ctx.config.login_location}">Sign in</a></body></html>'
        return web.Response(
            status=status,
            text=page,
            content_type="text/html",
            headers={"Location": ctx.config.login_location},
        )
    body: JsonObject = {"message": f"The login was refused ({status})."}
    if ctx.config.login_error_id is not None:
        body["errorId"] = ctx.config.login_error_id
    raise IcwsError(status, body)


def _bad_credentials(config: SimulatorConfig) -> IcwsError:
    error = IcwsError.of("authentication_failed")
    if config.bad_credentials_body == "error-code-only":
        # Servers before CIC 4.0.6 send no errorId (docs/icws-protocol.md §10).
        del error.body["errorId"]
    return error


def _created(request: web.Request, ctx: Context, session: Session) -> web.Response:
    """The 201 of a successful login, its paths under the proxy prefix when proxied."""
    name = proxy_name(request)
    if name is None:
        server, alternates = ctx.config.server_name, list(ctx.config.alternate_hosts)
    else:
        # Behind a proxy an alternate is just another <icserver> name (§10).
        server, alternates = name, [other for other in ctx.config.proxy_names if other != name]
    body: JsonObject = {
        "sessionId": session.session_id,
        "csrfToken": session.csrf_token,
        "alternateHostList": alternates,
        "userID": session.user,
        "userDisplayName": display_name(session.user),
        "icServer": server,
    }
    wanted = {part.strip() for part in request.query.get("include", "").split(",")}
    for include, (property_name, produce) in _INCLUDES.items():
        if include in wanted:
            body[property_name] = produce(session)
    sid, base = session.session_id, base_path(request)
    return json_response(
        body,
        201,
        {
            SESSION_ID_HEADER: sid,
            CSRF_HEADER: session.csrf_token,
            "Location": f"{base}/icws/{sid}/connection",
            # Verbatim shape of the observed header; the path scopes it to this session (§1.1).
            "Set-Cookie": f"{session.cookie_name}={session.cookie_value}"
            f"; Path={base}/icws/{sid}; HttpOnly",
        },
    )


def _check_settings_type(settings: JsonObject) -> None:
    settings_type = settings.get("__type")
    if settings_type is None:
        # The derived settings type is chosen by `__type`; without it there is nothing to parse.
        raise IcwsError.missing_property("__type")
    if settings_type in _UNSUPPORTED_SETTINGS:
        raise IcwsError.invalid_property(
            "__type", f"The simulator only supports {Urn.IC_AUTH_SETTINGS} logins."
        )
    if settings_type != Urn.IC_AUTH_SETTINGS:
        raise IcwsError.invalid_property("__type", f"Unknown connection settings {settings_type}.")


@routes.get(r"/icws/{sid:\d+}/connection", allow_head=False)
async def check_connection(request: web.Request) -> web.Response:
    """`GET .../connection`: Up for a live session; for a previous one Down or 401 by config."""
    ctx = context(request)
    sid = request.match_info["sid"]
    live = ctx.registry.lookup(sid)
    if ctx.config.check_after_logout == "down":
        if live is not None and live.down is not None:
            check_credentials(request, live.cookie_value, live.csrf_token)
            return _down(live.down)
        ended = ctx.registry.ended.get(sid)
        if live is None and ended is not None:
            check_credentials(request, ended.cookie_value, ended.csrf_token)
            return _down(ended.ending)
    require_session(request)
    return json_response({"connectionState": int(ConnectionState.UP)})


def _down(ending: Ending) -> web.Response:
    body: JsonObject = {"connectionState": int(ConnectionState.DOWN), "reason": ending.reason}
    if ending.should_reconnect is not None:
        body["shouldReconnect"] = ending.should_reconnect
    return json_response(body)


@routes.delete(r"/icws/{sid:\d+}/connection")
async def log_out(request: web.Request) -> web.Response:
    """`DELETE .../connection`: end the session; 200 or 204 by config (§8.6)."""
    ctx = context(request)
    session = require_session(request)
    ctx.registry.end(session, Ending("The session was logged out."))
    ctx.records.logouts += 1
    return empty_response(ctx.config.logout_status)


@routes.get("/icws/connection/features", allow_head=False)
async def list_features(request: web.Request) -> web.Response:
    """`GET /icws/connection/features`: the server's features, no session needed."""
    return json_response({"featureInfoList": _feature_list(context(request).config.features)})


@routes.get("/icws/connection/features/{feature_id}", allow_head=False)
async def get_feature(request: web.Request) -> web.Response:
    """`GET /icws/connection/features/{featureId}`: one feature, 400 when it is unknown."""
    feature_id = request.match_info["feature_id"]
    version = context(request).config.features.get(feature_id)
    if version is None:
        raise IcwsError.invalid_property(
            "featureId", f"The feature '{feature_id}' is not supported."
        )
    return json_response({"featureId": feature_id, "version": version})


@routes.get("/icws/connection/version", allow_head=False)
async def get_version(request: web.Request) -> web.Response:
    """`GET /icws/connection/version`: the server's VersionInfo, no session needed."""
    return json_response(dict(VERSION_INFO))
