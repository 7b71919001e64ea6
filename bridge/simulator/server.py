"""`Simulator`: one simulated IC server on a real socket, its world, faults and records."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import ssl
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from .app import build_app
from .config import NOT_RUNTIME_FIELDS, SimulatorConfig
from .context import Context
from .control import control_routes
from .faults import Faults
from .pacing import LoginGate
from .sessions import Call, Records, Session, SessionRegistry
from .wire import JsonObject
from .world import World

_WAIT_POLL_SECONDS = 0.005


class Simulator:
    """An ICWS server simulator: start it, script its world and faults, assert on its records."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        """`clock` measures idle time; tests pass a fake one to expire sessions without waiting."""
        self.config: SimulatorConfig = config or SimulatorConfig()
        self._records = Records()
        self._registry = SessionRegistry(self.config, self._records, clock)
        self.world: World = World(self.config, self._registry)
        self.faults: Faults = Faults(self._registry)
        self._runner: web.AppRunner | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._logins = LoginGate(self.config, self._stopping)
        self._port: int | None = None
        self._host = "127.0.0.1"
        self._scheme = "http"

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        also: Sequence[str] = (),
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Bind and serve; with port 0 the OS picks a free port (see `port` and `url`).

        `also` names more addresses to listen on, at the same port: one world behind two hosts,
        as a primary IC server and its switchover partner share their state. With `tls` (a
        server context holding the certificate) every address serves HTTPS instead of HTTP.
        """
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping.clear()
        ctx = Context(
            self.config,
            self.world,
            self._registry,
            self.faults,
            self._records,
            self._stopping,
            self._logins,
        )
        app = build_app(ctx, control_routes(self))
        # handler_cancellation: a client that hangs up mid-request (delay, SSE) ends its handler.
        runner = web.AppRunner(
            app,
            handle_signals=False,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=tls)
        await site.start()
        self._runner = runner
        self._host = host
        self._scheme = "http" if tls is None else "https"
        self._port = _bound_port(runner)
        for extra in also:
            await web.TCPSite(runner, extra, self._port, ssl_context=tls).start()
        self._reaper = asyncio.create_task(self._reap_idle_sessions(), name="icws-sim-reaper")

    async def stop(self) -> None:
        """Close SSE streams cleanly, then the server; safe to call twice."""
        if self._runner is None:
            return
        self._stopping.set()
        for stream in self._registry.streams():
            stream.close()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _reap_idle_sessions(self) -> None:
        # Requests end idle sessions lazily; this also ends those nobody asks about.
        while True:
            await asyncio.sleep(self._registry.reap_interval())
            self._registry.expire_idle()

    # ---- where it listens ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._port is None:
            raise RuntimeError("the simulator has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:8018` (`https://` when serving TLS)."""
        return f"{self._scheme}://{self._host}:{self.port}"

    # ---- runtime knobs ------------------------------------------------------------------------

    def set_password(self, user: str, password: str) -> None:
        """Set (or add) a user's password; affects the next logins."""
        self.config.users[user] = password

    def set_features(self, features: dict[str, int]) -> None:
        """Replace the feature list; affects the next logins and `GET .../features`."""
        self.config.features = dict(features)

    def configure(self, **changes: Any) -> JsonObject:
        """Change runtime knobs of the config by field name; all or nothing, validated.

        Returns the resulting knobs. Unknown names, `users`, `features` and invalid values are
        refused (TypeError or ValueError) without changing anything.
        """
        refused = sorted(set(changes) - _runtime_fields())
        if refused:
            raise TypeError(f"not runtime config fields: {', '.join(refused)}")
        checked = dataclasses.replace(self.config, **changes)
        for name in changes:
            # The config object is shared by every part, so it is changed in place.
            setattr(self.config, name, copy.deepcopy(getattr(checked, name)))
        return self.runtime_config()

    def runtime_config(self) -> JsonObject:
        """The current runtime knobs, by field name (no users, so no passwords)."""
        return {name: copy.deepcopy(getattr(self.config, name)) for name in _runtime_fields()}

    # ---- records ------------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        """What the control API reports: logins, subscription PUTs, streams, heartbeats, ...

        `loginsInFlightPeak` is the most logins ever in flight at once (arrived, not answered),
        `loginsHandledPeak` the most handled at once (at most `max_concurrent_logins`).
        """
        return {
            **self._records.counters(),
            "loginsInFlightPeak": self._logins.peak_in_flight,
            "loginsHandledPeak": self._logins.peak_handling,
        }

    @property
    def sessions(self) -> dict[str, Session]:
        """The live sessions by session id."""
        return self._registry.live

    def sessions_of(self, user: str) -> list[Session]:
        """The live sessions of `user`."""
        return self._registry.of_user(user)

    @property
    def sent_messages(self) -> list[tuple[str, JsonObject]]:
        """(session id, message) for every message handed to a client, in order."""
        return self._records.sent_messages

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every answered `/icws` request, in order."""
        return self._records.requests

    @property
    def calls(self) -> list[Call]:
        """Every assistance update and complete ICWS answered, in order, with its effect."""
        return self._records.calls

    @property
    def subscription_bodies(self) -> list[tuple[str, JsonObject]]:
        """(subscription name, JSON body as received) of every subscription PUT, in order."""
        return self._records.subscription_bodies

    @property
    def logins(self) -> int:
        """How many logins succeeded."""
        return self._records.logins

    @property
    def logouts(self) -> int:
        """How many sessions logged out."""
        return self._records.logouts

    @property
    def dropped_messages(self) -> int:
        """How many queued messages the queue cap discarded."""
        return self._records.dropped_messages

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - the documented API, mirroring asyncio.wait_for
        what: str | None = None,
    ) -> None:
        """Wait until `predicate()` holds; TimeoutError naming the condition otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() >= deadline:
                name = what or getattr(predicate, "__qualname__", repr(predicate))
                raise TimeoutError(f"simulator condition not met within {timeout}s: {name}")
            await asyncio.sleep(_WAIT_POLL_SECONDS)


def _runtime_fields() -> set[str]:
    return {item.name for item in dataclasses.fields(SimulatorConfig)} - NOT_RUNTIME_FIELDS


def _bound_port(runner: web.AppRunner) -> int:
    address = runner.addresses[0]
    return int(address[1])
