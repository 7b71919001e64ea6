"""The Kafka adapter: client options, producers, topic creation; aiokafka's errors stop here."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.helpers import create_ssl_context

from bridge import errors
from bridge.core.events import Record
from bridge.errors import KafkaError
from bridge.logs import get_logger
from bridge.settings import KafkaSettings, TopicSettings

COMPACTED = {"cleanup.policy": "compact"}


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security options shared by every Kafka client of the bridge."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
        "retry_backoff_ms": settings.retry_backoff_ms,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None,
            certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
            keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        )
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


def wanted_topics(topics: TopicSettings) -> dict[str, dict[str, str]]:
    """Every topic the bridge uses, with its configs (state topics are compacted)."""
    plain = [
        topics.alerting,
        topics.history,
        topics.status_messages,
        topics.assistance,
        topics.lifecycle,
        topics.commands,
        topics.command_results,
        topics.dead_letter,
    ]
    compacted = [
        topics.alerting_state,
        topics.history_state,
        topics.status_messages_state,
        topics.assistance_state,
    ]
    # The command journal is compacted (the last entry per command id stands) and forgets ids
    # after its retention: a command can never run after its deadline, and deadlines are capped
    # well below the retention, so a forgotten id can never run twice.
    journal = {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(topics.command_journal_retention_hours * 3600 * 1000),
    }
    return (
        {name: {} for name in plain}
        | {name: dict(COMPACTED) for name in compacted}
        | {topics.command_journal: journal}
    )


async def ensure_topics(kafka: KafkaSettings, topics: TopicSettings) -> list[str]:
    """Create the missing topics; return the names created."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = {n: c for n, c in wanted_topics(topics).items() if n not in existing}
        if missing:
            await admin.create_topics(
                [
                    NewTopic(name, topics.partitions, topics.replication_factor, topic_configs=cfg)
                    for name, cfg in missing.items()
                ]
            )
            get_logger("bridge.kafka").info("kafka.topics.created", topics=sorted(missing))
        return sorted(missing)
    except (AioKafkaError, OSError) as exc:
        raise KafkaError(f"cannot create topics: {type(exc).__name__}: {exc}") from None
    finally:
        await admin.close()


class AwaitedProducer:
    """An acks=all producer whose sends are awaited and retried until Kafka takes them."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._producer: AIOKafkaProducer | None = None
        self._failing = False
        self._log = get_logger("bridge.commands.handler")

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            **client_options(self._kafka),
            acks="all",  # the journal must survive a broker loss, whatever events use
            enable_idempotence=self._kafka.enable_idempotence,
            compression_type=None
            if self._kafka.compression_type == "none"
            else self._kafka.compression_type,
        )
        try:
            await producer.start()
        except (AioKafkaError, OSError) as exc:
            await producer.stop()
            raise errors.KafkaError(
                f"command producer cannot start: {type(exc).__name__}"
            ) from None
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, record: Record) -> None:
        """Send and wait for the acknowledgement, retrying for as long as it takes."""
        assert self._producer is not None, "start() the producer first"
        delay = 0.2
        while True:
            try:
                await self._producer.send_and_wait(
                    record.topic, record.value, key=record.key, headers=list(record.headers)
                )
            except AioKafkaError as exc:
                if not self._failing:
                    self._failing = True
                    self._log.error("command.kafka.failing", error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self._failing:
                self._failing = False
                self._log.info("command.kafka.recovered")
            return
