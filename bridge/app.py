"""The composition root: builds every part from the settings, runs them, and stops them in order.

Start-up: health server first (so probes answer at once), then Kafka (waiting, not ready, until
it answers), topics, the last-published state, and only then the ICWS session, so the first
snapshot is reconciled against what consumers already have. The command journal is read with the
state, and the command consumer runs beside the session. Shutdown on ``stop``: stop consuming
commands and let those already sent to ICWS finish (bounded), then stop reading ICWS, let the
session unsubscribe and log out, flush what was read within the grace period, then close Kafka
and the health server, saying what, if anything, could not be flushed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from bridge import errors, health, retries
from bridge.commands.consumer import CommandConsumer
from bridge.commands.handler import CommandHandler, SingleSession
from bridge.commands.journal import Journal
from bridge.core.commands import CommandTopics
from bridge.core.events import Contract, timestamp
from bridge.core.messages import Aggregate
from bridge.core.state import AggregateState, new_states
from bridge.events.publisher import Publisher
from bridge.events.pump import Pump
from bridge.events.restore import Restored, restore, states_of
from bridge.health import Check
from bridge.icws.session import Session
from bridge.kafka import AwaitedProducer, diagnosed, ensure_topics
from bridge.logs import get_logger
from bridge.metrics import Metrics, create
from bridge.settings import EventSettings, Settings, TopicSettings


def contract_from(events: EventSettings, t: TopicSettings) -> Contract:
    """The event contract's configurable parts, from the settings."""
    event_topics: Mapping[Aggregate, str] = {
        "alerting": t.alerting,
        "history": t.history,
        "status_messages": t.status_messages,
        "assistance": t.assistance,
    }
    state_topics: Mapping[Aggregate, str] = {
        "alerting": t.alerting_state,
        "history": t.history_state,
        "status_messages": t.status_messages_state,
        "assistance": t.assistance_state,
    }
    return Contract(
        type_prefix=events.type_prefix,
        source=events.source,
        schema_base=events.schema_base_url,
        event_topics=event_topics,
        state_topics=state_topics,
        lifecycle_topic=t.lifecycle,
        attribute_headers=events.attribute_headers,
    )


def command_topics(t: TopicSettings) -> CommandTopics:
    """The command side's topics, from the settings."""
    return CommandTopics(t.commands, t.command_results, t.dead_letter, t.command_journal)


class AssistanceView:
    """The command side's view of ICWS assistance requests: the pump's reconciled state."""

    def __init__(self, session: Session, pump: Pump, state: AggregateState) -> None:
        self._session = session
        self._pump = pump
        self._state = state

    def fresh(self) -> bool:
        """Session up and its assistance list reconciled: absence now means "not open"."""
        return self._session.up and "assistance" not in self._pump.resync_pending

    def assistance(self, assistance_id: str) -> Mapping[str, Any] | None:
        entity = self._state.entities.get(assistance_id)
        return None if entity is None else entity.props


class Commands:
    """The command side: journal, producer, handler and consumer, built together."""

    def __init__(self, bridge: Bridge) -> None:
        settings = bridge.settings
        self.journal = Journal(settings.kafka, settings.topics.command_journal)
        self.sender = AwaitedProducer(settings.kafka)
        view = AssistanceView(bridge.session, bridge.pump, bridge.states["assistance"])
        self.handler = CommandHandler(
            settings.commands,
            settings.topics,
            bridge.contract,
            SingleSession(settings.icws.username, bridge.session, view),
            self.journal,
            self.sender,
            bridge.metrics,
        )
        self.consumer = CommandConsumer(
            settings.kafka, settings.topics.commands, settings.commands, self.handler, self.journal
        )


class Bridge:
    """One running bridge: ICWS session, pump, publisher, command consumer and health server."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.metrics: Metrics = create(registry)
        self.contract = contract_from(settings.events, settings.topics)
        self.states = new_states(max_history=settings.pipeline.history_cache_entities)
        self.publisher = Publisher(settings.kafka, settings.pipeline, self.metrics)
        # The one-account shorthand: its user's pump, which also publishes the catalogue.
        self.pump = Pump(
            self.contract,
            self.states,
            self.publisher,
            self.metrics,
            user=settings.icws.username,
            catalogue=True,
        )
        self.session = Session(settings.icws, settings.subscriptions, self.metrics, self.pump)
        self.metrics.message_age.set_function(lambda: time.time() - self.session.last_message)
        self.commands = Commands(self) if settings.commands.enabled else None
        self.health_port: int | None = None
        self._log = get_logger("bridge.app")
        self._tasks: list[asyncio.Task[None]] = []
        self._kafka_problem = "not connected yet"
        self.liveness = health.Liveness()

    # --- health --------------------------------------------------------------------------

    def checks(self) -> dict[str, Check]:
        """Readiness, one named check per dependency."""
        session = self.session.health
        delivering = self.publisher.delivering(time.time())
        kafka_detail = (
            self._kafka_problem if not delivering else f"{self.publisher.depth} records buffered"
        )
        # Up with a note: how it reads, e.g. "up (polling: SSE failed 3 times: ...)".
        state = f"{session.state} ({session.note})" if session.note else session.state
        # Subscriptions in place are not enough: until each one's first snapshot (after any
        # (re)subscription) is reconciled, the bridge has told consumers nothing current.
        awaited = sorted(self.pump.resync_pending)
        checks = {
            "icws_session": Check(session.state == "up", session.problem or state),
            "icws_subscriptions": Check(
                not session.unavailable,
                "; ".join(session.unavailable.values()) or "all in place",
            ),
            "icws_snapshots": Check(
                not awaited,
                f"awaiting the first snapshot of {', '.join(awaited)}" if awaited else "received",
            ),
            "kafka_producer": Check(delivering, kafka_detail),
        }
        if self.commands is not None:
            consumer = self.commands.consumer
            checks["command_consumer"] = Check(consumer.ready, consumer.detail)
        return checks

    def ready(self) -> bool:
        return all(check.ok for check in self.checks().values())

    # --- running -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down in order."""
        app = health.make_app(self.metrics, self.checks, self.liveness.dead)
        runner, self.health_port = await health.serve(
            app, self.settings.health.host, self.settings.health.port
        )
        try:
            if await self._start_kafka(stop):
                await self._run_parts(stop)
        finally:
            if self.commands is not None:
                await self.commands.sender.stop()
            await self.publisher.stop()
            await runner.cleanup()
            self._log.info("bridge.stopped")

    async def _start_kafka(self, stop: asyncio.Event) -> bool:
        """Connect, create topics, restore state; retry until it works (True) or we stop."""
        restored: list[Restored] = []

        async def connect() -> None:
            try:
                await self.publisher.start()
                if self.settings.topics.create:
                    await ensure_topics(self.settings.kafka, self.settings.topics)
                mine = states_of({self.pump.user: self.states}, catalogue=self.states)
                restored.append(await restore(self.settings.kafka, self.contract, mine))
                if self.commands is not None:
                    await self.commands.journal.catch_up()
                    await self.commands.sender.start()
            except errors.KafkaError as exc:
                await self.publisher.stop()
                if self.commands is not None:
                    await self.commands.sender.stop()
                raise await diagnosed(exc, self.settings.kafka) from None

        if not await retries.until_stopped(connect, stop, self._kafka_down, retries.RESTART):
            return False
        self._kafka_problem = ""
        loaded = restored[-1]
        await self.publisher.put(loaded.repairs, time.time())
        if any(loaded.entities.values()):
            # The bridge ran before: whatever ICWS said since its last record may be missed.
            last = loaded.last_written
            since = timestamp(datetime.fromtimestamp(last, UTC)) if last else None
            await self.pump.gap("restart", since)
        return True

    def _kafka_down(self, exc: Exception) -> bool:
        """Kafka unavailable at start-up: not ready, said once per distinct problem, retried."""
        if not isinstance(exc, errors.KafkaError):
            return False
        if self._kafka_problem != str(exc):
            self._log.error("kafka.unavailable", error=str(exc))
        self._kafka_problem = str(exc)
        return True

    async def _run_parts(self, stop: asyncio.Event) -> None:
        sender = asyncio.create_task(self.publisher.run(), name="publisher")
        reader = asyncio.create_task(self.session.run(), name="session")
        self._tasks = [sender, reader]
        consuming = None
        if self.commands is not None:
            consuming = asyncio.create_task(self.commands.consumer.run(), name="commands")
            self._tasks.append(consuming)
        self.liveness.watch(self._tasks)
        self._log.info("bridge.started", health_port=self.health_port)
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([stopper, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        if not stopper.done():
            self._log.error("bridge.part.died", parts=self.liveness.dead())
        self.liveness.stopping()
        stopper.cancel()
        if self.commands is not None and consuming is not None:
            # Commands first, while the session is still there for those already sent.
            self.commands.consumer.stop()
            await asyncio.gather(consuming, return_exceptions=True)  # a failure is raised below
        self.session.stop()
        try:
            await reader  # stops reading, unsubscribes and logs out (bounded)
            await self._flush()
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        for task in self._tasks:
            failure = task.exception() if task.done() and not task.cancelled() else None
            if failure is not None:
                raise failure

    async def _flush(self) -> None:
        grace = self.settings.pipeline.flush_timeout_seconds
        try:
            async with asyncio.timeout(grace):
                await self.publisher.drained()
            self._log.info("bridge.flushed")
        except TimeoutError:
            self._log.error(
                "bridge.flush.incomplete", records_lost=self.publisher.depth, grace_seconds=grace
            )
