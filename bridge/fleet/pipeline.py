"""One account's pipeline: its ICWS session, its pump and its states, started and stopped as one.

The fleet makes one :class:`AccountPipeline` per account it holds. Its states are restored by
the fleet (one reading of the state topics for every account taken on at once) before
:meth:`AccountPipeline.start`; the session then runs in its own task, with ``user`` bound in
structlog's context variables so every log line of the account names it. The account's first
login waits a random jitter (the fleet draws it) so a thousand accounts do not log in at once.
:meth:`AccountPipeline.stop` stops reading, lets the session unsubscribe and log out (bounded),
then waits until Kafka acknowledged what this account put (bounded); calling it again is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from bridge.core.accounts import Account
from bridge.core.events import Contract
from bridge.core.icws_api import Answer, Call
from bridge.core.messages import Aggregate, Message
from bridge.core.state import AggregateState, States, new_states
from bridge.events.publisher import Publisher
from bridge.events.pump import Pump
from bridge.events.restore import Reader
from bridge.icws.login import LoginGate
from bridge.icws.session import Session
from bridge.icws.sink import Health, SessionInfo, Sink
from bridge.kafka import read_to_end
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.settings import Settings


class AccountSession(Protocol):
    """What a pipeline needs of a session: :class:`~bridge.icws.session.Session`, or a fake."""

    health: Health
    last_message: float

    @property
    def up(self) -> bool: ...

    async def run(self) -> None: ...

    def stop(self) -> None: ...

    async def request(self, make: Callable[[str], Call]) -> Answer: ...


SessionFactory = Callable[[Account, Sink, bool, LoginGate], AccountSession]
"""Makes an account's session: (account, its sink, whether it subscribes the catalogue, gate)."""


@dataclass(frozen=True, slots=True)
class Parts:
    """What every account's pipeline shares: settings, contract, publisher, metrics, sessions."""

    settings: Settings
    contract: Contract
    publisher: Publisher
    metrics: Metrics
    new_session: SessionFactory
    read: Reader = read_to_end  # how restore reads topics (the Kafka adapter's)

    def new_states(self) -> States:
        """One account's states, empty."""
        return new_states(max_history=self.settings.pipeline.history_cache_entities)


def real_sessions(settings: Settings, metrics: Metrics) -> SessionFactory:
    """ICWS sessions, one per account, each with its own HTTP client (its own cookie jar)."""
    others = settings.subscriptions.model_copy(
        update={
            "status_messages": settings.subscriptions.status_messages.model_copy(
                update={"enabled": False}
            )
        }
    )

    def new_session(account: Account, sink: Sink, catalogue: bool, gate: LoginGate) -> Session:
        subscriptions = settings.subscriptions if catalogue else others
        return Session(
            settings.icws, subscriptions, metrics, sink, account=account, login_gate=gate
        )

    return new_session


class AssistanceView:
    """The command side's view of one account's assistance requests: its reconciled state."""

    def __init__(self, session: AccountSession, pump: Pump, state: AggregateState) -> None:
        self._session = session
        self._pump = pump
        self._state = state

    def fresh(self) -> bool:
        """Session up and its assistance list reconciled: absence now means "not open"."""
        return self._session.up and "assistance" not in self._pump.resync_pending

    def assistance(self, assistance_id: str) -> Mapping[str, Any] | None:
        entity = self._state.entities.get(assistance_id)
        return None if entity is None else entity.props


class _Watched:
    """The pump as the session's sink, remembering the live session's info for ``/accounts``."""

    def __init__(self, pump: Pump) -> None:
        self.pump = pump
        self.info: SessionInfo | None = None

    async def session_up(self, info: SessionInfo) -> None:
        self.info = info
        await self.pump.session_up(info)

    async def session_down(self, reason: str) -> None:
        self.info = None
        await self.pump.session_down(reason)

    async def deliver(self, batch: Sequence[Message], read_at: float) -> None:
        await self.pump.deliver(batch, read_at)

    async def subscription_lost(self, aggregate: Aggregate, reason: str) -> None:
        await self.pump.subscription_lost(aggregate, reason)


class AccountPipeline:
    """One held account: session, pump and states; started once, stopped once."""

    def __init__(
        self,
        account: Account,
        parts: Parts,
        gate: LoginGate,
        *,
        catalogue: bool,
        states: States | None = None,
    ):
        self.account = account
        self.user = account.user_id
        self.catalogue = catalogue
        self.partition: int | None = None
        self._parts = parts
        # Given: restored before the account was assigned here (Fleet's early restore).
        self.states = states if states is not None else parts.new_states()
        self.pump = Pump(
            parts.contract,
            self.states,
            parts.publisher,
            parts.metrics,
            user=self.user,
            catalogue=catalogue,
        )
        self._sink = _Watched(self.pump)
        self.session = parts.new_session(account, self._sink, catalogue, gate)
        self.view = AssistanceView(self.session, self.pump, self.states["assistance"])
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._log = get_logger("bridge.fleet.pipeline").bind(user=self.user)

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def start(self, jitter: float) -> asyncio.Task[None]:
        """Run the session in its own task, its first login ``jitter`` seconds from now."""
        self._task = asyncio.create_task(self._run(jitter), name=f"account-{self.user}")
        return self._task

    async def _run(self, jitter: float) -> None:
        with structlog.contextvars.bound_contextvars(user=self.user):
            if jitter > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), jitter)
            if not self._stopping.is_set():
                await self.session.run()

    async def stop(self) -> None:
        """Stop reading, unsubscribe and log out, then flush this account's records; bounded."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        self.session.stop()
        icws = self._parts.settings.icws
        if self._task is not None:
            # The session bounds its own unsubscribe and logout; the margin covers one request.
            bound = icws.shutdown_timeout_seconds + icws.request_timeout_seconds
            _, pending = await asyncio.wait([self._task], timeout=bound)
            if pending:
                self._log.error("fleet.account.stop_timeout", seconds=bound)
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        grace = self._parts.settings.pipeline.flush_timeout_seconds
        try:
            async with asyncio.timeout(grace):
                await self._parts.publisher.flushed()
        except TimeoutError:
            self._log.error("fleet.account.flush_incomplete", grace_seconds=grace)
        self._log.info("fleet.account.stopped")

    def describe(self, now: float) -> dict[str, Any]:
        """The account as ``GET /accounts`` shows it (never its password)."""
        health, info = self.session.health, self._sink.info
        return {
            "user": self.user,
            "state": health.state,
            "problem": health.problem or health.note or None,
            "host": info.host if info else None,
            "transport": info.transport if info else None,
            "secondsSinceLastMessage": round(max(now - self.session.last_message, 0.0), 3),
            "subscriptions": list(info.subscribed) if info else [],
            "partition": self.partition,
        }
