"""Create the bridge's Kafka topics when they are missing, with the configs each kind needs."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError as AioKafkaError

from bridge.errors import KafkaError
from bridge.logs import get_logger
from bridge.publisher import client_options
from bridge.settings import KafkaSettings, TopicSettings

COMPACTED = {"cleanup.policy": "compact"}


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
            get_logger("bridge.topics").info("kafka.topics.created", topics=sorted(missing))
        return sorted(missing)
    except (AioKafkaError, OSError) as exc:
        raise KafkaError(f"cannot create topics: {type(exc).__name__}: {exc}") from None
    finally:
        await admin.close()
