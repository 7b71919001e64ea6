"""The HTTP face: ``/livez``, ``/readyz`` with named checks, ``/metrics``, and ``/schemas/``.

``/livez`` depends on nothing outside the process: it answers 503, naming the part, once one of
the bridge's own long-running tasks has died (raised, or ended before a stop was asked), and
stays so while the bridge shuts down after it. ``/readyz`` runs every named check and answers
503 with each check's state when any fails. ``/schemas/<file>`` serves the event and command
schemas and the AsyncAPI document exactly as the package ships them (``bridge/schemas``, read once
when the app is made), so every event's ``dataschema`` (``<schema_base_url>/<file>``) can be
fetched from the bridge that published it; ``/schemas/`` lists them. ``/accounts`` describes the
ICWS accounts the replica holds (states, problems, hosts; never a password).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bridge.metrics import Metrics
from bridge.readiness import Check as Check

Checks = Callable[[], Mapping[str, Check]]
Accounts = Callable[[], Mapping[str, Any]]
Dead = Callable[[], Sequence[str]]

ASYNCAPI = "asyncapi.json"
SCHEMA_CONTENT_TYPE = "application/schema+json"


def package_schemas() -> dict[str, bytes]:
    """Every file of the package's ``bridge/schemas``, by name, as shipped."""
    directory = resources.files("bridge") / "schemas"
    return {
        entry.name: entry.read_bytes()
        for entry in directory.iterdir()
        if entry.is_file() and entry.name.endswith(".json")
    }


def schema_routes(files: Mapping[str, bytes]) -> list[web.RouteDef]:
    """``GET /schemas/`` (an index) and ``GET /schemas/<name>``; any other name is 404.

    Names are looked up in ``files`` only, never joined to a path, so nothing else is reachable.
    """
    index = {
        "asyncapi": ASYNCAPI if ASYNCAPI in files else None,
        "schemas": sorted(name for name in files if name != ASYNCAPI),
    }

    async def listing(_request: web.Request) -> web.Response:
        return web.json_response(index)

    async def one(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = files.get(name)
        if body is None:
            raise web.HTTPNotFound(text="no such schema; the list is at /schemas/\n")
        content_type = "application/json" if name == ASYNCAPI else SCHEMA_CONTENT_TYPE
        return web.Response(body=body, content_type=content_type)

    return [
        web.get("/schemas", listing),
        web.get("/schemas/", listing),
        web.get("/schemas/{name}", one),
    ]


class Liveness:
    """Which of the bridge's long-running tasks died: raised, or ended before a stop was asked."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._died_before_stop: list[asyncio.Task[None]] = []

    def watch(self, tasks: Iterable[asyncio.Task[None]]) -> None:
        self._tasks = list(tasks)

    def stopping(self) -> None:
        """The bridge is stopping (asked to, or after a death): tasks ending now end on purpose."""
        self._died_before_stop = [task for task in self._tasks if self._died(task)]
        self._stopping = True

    def dead(self) -> list[str]:
        """The names of the tasks that died."""
        died = [*self._died_before_stop, *(t for t in self._tasks if self._died(t))]
        return sorted({task.get_name() for task in died})

    def _died(self, task: asyncio.Task[None]) -> bool:
        if not task.done():
            return False
        if task.cancelled():
            return not self._stopping
        return task.exception() is not None or not self._stopping


def make_app(
    metrics: Metrics,
    checks: Checks,
    dead: Dead,
    schemas: Mapping[str, bytes] | None = None,
    accounts: Accounts | None = None,
) -> web.Application:
    """The aiohttp application; ``schemas`` defaults to the package's own files, read now."""

    async def livez(_request: web.Request) -> web.Response:
        if died := list(dead()):
            return web.json_response({"status": "dead", "dead": died}, status=503)
        return web.json_response({"status": "ok"})

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

    async def accounts_page(_request: web.Request) -> web.Response:
        return web.json_response(accounts() if accounts is not None else {"accounts": []})

    app = web.Application()
    app.router.add_get("/accounts", accounts_page)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_routes(schema_routes(package_schemas() if schemas is None else schemas))
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
