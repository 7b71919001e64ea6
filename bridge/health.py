"""The HTTP face for operators: ``/livez``, ``/readyz`` with named checks, and ``/metrics``.

``/livez`` depends on nothing outside the process: it fails only when one of the bridge's own
long-running tasks has died. ``/readyz`` runs every named check and answers 503 with each
check's state when any fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.metrics import Metrics


@dataclass(frozen=True, slots=True)
class Check:
    """One named readiness check: ok, and a short detail for people."""

    ok: bool
    detail: str = ""


Checks = Callable[[], Mapping[str, Check]]
Alive = Callable[[], bool]


def make_app(metrics: Metrics, checks: Checks, alive: Alive) -> web.Application:
    """The aiohttp application serving the three endpoints."""

    async def livez(_request: web.Request) -> web.Response:
        ok = alive()
        return web.json_response({"status": "ok" if ok else "dead"}, status=200 if ok else 503)

    async def readyz(_request: web.Request) -> web.Response:
        results = checks()
        ready = all(c.ok for c in results.values())
        body = {
            "status": "ready" if ready else "not ready",
            "checks": {
                name: {"ok": c.ok, "detail": c.detail} for name, c in sorted(results.items())
            },
        }
        return web.json_response(body, status=200 if ready else 503)

    async def metrics_page(_request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; return the runner (to clean up) and the bound port."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # aiohttp exposes the bound port only here
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, int(bound)
