"""The aiohttp application: `/icws` routes, request faults, ICWS error rendering, recording.

Every `/icws` request passes one middleware that applies injected delays and failures and turns
`IcwsError`s and router misses into ICWS error bodies. Every answered `/icws` request is recorded
when its headers go out, so an SSE stream shows up as soon as it opens.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web
from aiohttp.typedefs import Handler

from . import connection, interactions, messaging, subscriptions
from .context import CONTEXT, Context, context
from .wire import IcwsError, error_response

ICWS_PREFIX = "/icws/"


@web.middleware
async def icws_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply request faults and render every error under `/icws` the way ICWS does."""
    if not request.path.startswith(ICWS_PREFIX):
        return await handler(request)
    ctx = context(request)
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
    if request.path.startswith(ICWS_PREFIX):
        context(request).records.requests.append((request.method, request.path, response.status))


def build_app(ctx: Context, extra_routes: list[web.RouteDef] | None = None) -> web.Application:
    """The simulator's application: ICWS routes, then any extra (control) routes."""
    app = web.Application(middlewares=[icws_middleware])
    app[CONTEXT] = ctx
    app.router.add_routes(connection.routes)
    app.router.add_routes(messaging.routes)
    app.router.add_routes(subscriptions.route_table())
    app.router.add_routes(interactions.routes)
    app.router.add_routes(extra_routes or [])
    app.on_response_prepare.append(_record)
    return app
