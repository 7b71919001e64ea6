"""The composition root: builds every part from the settings, runs them, and stops them in order.

Start-up: health server first (so probes answer at once), then Kafka (waiting, not ready, until
it answers), topics and the command journal, then the fleet of ICWS sessions: each account it
takes on (every configured one, or with commands those of the partitions the consumer group
assigns) has its last-published state restored before its session starts, so its first snapshot
is reconciled against what consumers already have. Shutdown on ``stop``: stop consuming commands
and let those already sent to ICWS finish (bounded; leaving the group stops the accounts of its
partitions), then stop every account's session (unsubscribe, log out), flush what was read
within the grace period, then close Kafka and the health server, saying what, if anything,
could not be flushed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from prometheus_client import CollectorRegistry

from bridge import errors, health, retries
from bridge.commands.consumer import CommandConsumer
from bridge.commands.handler import CommandHandler
from bridge.commands.journal import Journal
from bridge.core.commands import CommandTopics
from bridge.core.events import Contract
from bridge.core.messages import Aggregate
from bridge.events.publisher import Publisher
from bridge.fleet.accounts import AccountSource
from bridge.fleet.fleet import Fleet
from bridge.fleet.pipeline import AccountSession, Parts, real_sessions
from bridge.kafka import AwaitedProducer, diagnosed, ensure_topics
from bridge.logs import get_logger
from bridge.metrics import Metrics, create
from bridge.readiness import Check
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


class Commands:
    """The command side: journal, producer, handler and consumer, built together."""

    def __init__(self, bridge: Bridge) -> None:
        settings = bridge.settings
        self.journal = Journal(settings.kafka, settings.topics.command_journal)
        self.sender = AwaitedProducer(settings.kafka)
        self.handler = CommandHandler(
            settings.commands,
            settings.topics,
            bridge.contract,
            bridge.fleet,
            self.journal,
            self.sender,
            bridge.metrics,
        )
        self.consumer = CommandConsumer(
            settings.kafka,
            settings.topics.commands,
            settings.commands,
            self.handler,
            self.journal,
            ownership=bridge.fleet,
        )


class Bridge:
    """One running bridge: the fleet of ICWS sessions, publisher, commands and health server."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.metrics: Metrics = create(registry)
        self.contract = contract_from(settings.events, settings.topics)
        self.publisher = Publisher(settings.kafka, settings.pipeline, self.metrics)
        parts = Parts(
            settings,
            self.contract,
            self.publisher,
            self.metrics,
            real_sessions(settings, self.metrics),
        )
        # With commands, the consumer group decides which accounts this replica holds.
        grouped = settings.commands.enabled
        self.fleet = Fleet(parts, AccountSource(settings.icws), grouped=grouped)
        self.commands = Commands(self) if grouped else None
        self.health_port: int | None = None
        self._log = get_logger("bridge.app")
        self._tasks: list[asyncio.Task[None]] = []
        self.liveness = health.Liveness()

    @property
    def session(self) -> AccountSession | None:
        """The session of the one account (the shorthand's), if this replica holds it."""
        return self.fleet.caller(self.settings.icws.username)

    # --- health --------------------------------------------------------------------------

    def checks(self) -> dict[str, Check]:
        """Readiness: each part's named checks, collected."""
        checks = {**self.fleet.checks(), "kafka_producer": self.publisher.check(time.time())}
        if self.commands is not None:
            checks["command_consumer"] = self.commands.consumer.check()
        return checks

    def ready(self) -> bool:
        return all(check.ok for check in self.checks().values())

    # --- running -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down in order."""
        app = health.make_app(
            self.metrics, self.checks, self.liveness.dead, accounts=self.fleet.accounts
        )
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
        """Connect and create topics; retry until it works (True) or we stop.

        Each account's last-published state is restored when the fleet takes the account on.
        """

        async def connect() -> None:
            try:
                await self.publisher.start()
                if self.settings.topics.create:
                    await ensure_topics(self.settings.kafka, self.settings.topics)
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
        self.publisher.problem = ""
        return True

    def _kafka_down(self, exc: Exception) -> bool:
        """Kafka unavailable at start-up: not ready, said once per distinct problem, retried."""
        if not isinstance(exc, errors.KafkaError):
            return False
        if self.publisher.problem != str(exc):
            self._log.error("kafka.unavailable", error=str(exc))
        self.publisher.problem = str(exc)
        return True

    async def _run_parts(self, stop: asyncio.Event) -> None:
        sender = asyncio.create_task(self.publisher.run(), name="publisher")
        fleet = asyncio.create_task(self.fleet.run(), name="fleet")
        self._tasks = [sender, fleet]
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
            # Commands first, while the sessions are still there for those already sent.
            self.commands.consumer.stop()
            await asyncio.gather(consuming, return_exceptions=True)  # a failure is raised below
        try:
            await self.fleet.stop()  # each account stops reading, unsubscribes, logs out (bounded)
            await asyncio.gather(fleet, return_exceptions=True)  # a failure is raised below
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
