"""The aiohttp application: `/icws` routes, request faults, ICWS error rendering, recording.

Every `/icws` request passes one middleware that applies injected delays and failures and turns
`IcwsError`s and router misses into ICWS error bodies. Every answered `/icws` request is recorded
when its headers go out, so an SSE stream shows up as soon as it opens; every assistance update
and complete is also logged as a `Call` (text, answer, how many times it was applied).

Every ICWS route also exists below `/api/{icserver}` for web-proxy mode. Which set answers is
the config's choice: without `proxy_names` only `/icws/...` (as a direct IC server); with them
only `/api/<name>/icws/...` for those names. Anything else gets the plain 404 of a web server
that has no such page, never an ICWS error body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler

from . import connection, interactions, messaging, subscriptions
from .context import APPLIED, CONTEXT, PROXY_NAME_MATCH, PROXY_ROOT, Context, context
from .sessions import Call
from .wire import IcwsError, error_response

ICWS_PREFIX = "/icws/"
_PROXIED = re.compile(re.escape(PROXY_ROOT) + r"/([^/]+)/icws/")
_LOGIN = re.compile(r"/icws/connection/?$")


def _is_icws(request: web.Request) -> bool:
    return request.path.startswith(ICWS_PREFIX) or _PROXIED.match(request.path) is not None


def _served(request: web.Request, ctx: Context) -> bool:
    """Whether this ICWS path exists in the current (direct or proxy) mode."""
    proxied = _PROXIED.match(request.path)
    if not ctx.config.proxy_names:
        return proxied is None
    return proxied is not None and proxied.group(1) in ctx.config.proxy_names


@web.middleware
async def icws_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply request faults and render every error under `/icws` the way ICWS does."""
    if not _is_icws(request):
        return await handler(request)
    ctx = context(request)
    if not _served(request, ctx):
        raise web.HTTPNotFound()
    if request.method == "POST" and _LOGIN.search(request.path):
        ctx.records.login_attempts += 1
    call = await _call_text(request)
    response = await _answer(request, handler, ctx)
    if call is not None:
        ctx.records.calls.append(
            Call(
                request.method,
                request.match_info["assistance_id"],
                call or None,
                response.status,
                request.get(APPLIED, 0),
            )
        )
    return response


async def _call_text(request: web.Request) -> str | None:
    """For an assistance update or complete, the text it carries ("" for none); else None."""
    if "assistance_id" not in request.match_info or request.method not in ("POST", "DELETE"):
        return None
    # aiohttp keeps the body it read, so the handler can still read it.
    with contextlib.suppress(ValueError):
        body = json.loads(await request.text())
        if isinstance(body, dict) and isinstance(body.get("text"), str):
            return str(body["text"])
    return ""


async def _answer(request: web.Request, handler: Handler, ctx: Context) -> web.StreamResponse:
    """Apply request faults, run the handler, and render ICWS errors."""
    try:
        delay = ctx.faults.take_delay(request.method, request.path)
        if delay:
            await _sleep_unless_stopping(ctx, delay)
        failure = ctx.faults.take_failure(request.method, request.path)
        if failure is not None:
            raise failure
        return await handler(request)
    except IcwsError as error:
        return error_response(error)
    except web.HTTPMethodNotAllowed as error:
        not_allowed = IcwsError.of("method_not_allowed")
        not_allowed.headers["Allow"] = ",".join(sorted(error.allowed_methods))
        return error_response(not_allowed)
    except web.HTTPNotFound:
        return error_response(
            IcwsError.of("unsupported", f"No resource matches {request.method} {request.path}.")
        )


async def _sleep_unless_stopping(ctx: Context, seconds: float) -> None:
    # A stopping simulator must not wait out an injected delay.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ctx.stopping.wait(), seconds)


async def _record(request: web.Request, response: web.StreamResponse) -> None:
    if _is_icws(request):
        context(request).records.requests.append((request.method, request.path, response.status))


def build_app(ctx: Context, extra_routes: list[web.RouteDef] | None = None) -> web.Application:
    """The simulator's application: ICWS routes, then any extra (control) routes."""
    app = web.Application(middlewares=[icws_middleware])
    app[CONTEXT] = ctx
    icws_routes = [
        *connection.routes,
        *messaging.routes,
        *subscriptions.route_table(),
        *interactions.routes,
    ]
    app.router.add_routes(icws_routes)
    app.router.add_routes(_proxied(icws_routes))
    app.router.add_routes(extra_routes or [])
    app.on_response_prepare.append(_record)
    return app


def _proxied(route_defs: Iterable[web.AbstractRouteDef]) -> list[web.RouteDef]:
    """The same routes below `/api/{icserver}`, as a web proxy exposes an IC server."""
    prefix = f"{PROXY_ROOT}/{{{PROXY_NAME_MATCH}}}"
    return [
        web.RouteDef(route.method, prefix + route.path, route.handler, route.kwargs)
        for route in route_defs
        if isinstance(route, web.RouteDef)
    ]
