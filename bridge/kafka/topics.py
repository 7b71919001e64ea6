"""The bridge's topics and their configs, and their creation when missing."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bridge.kafka.clients import client_options, translated
from bridge.logs import get_logger
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
        with translated("cannot create topics"):
            await admin.start()
            existing = set(await admin.list_topics())
            missing = {n: c for n, c in wanted_topics(topics).items() if n not in existing}
            if missing:
                await admin.create_topics(
                    [
                        NewTopic(
                            name, topics.partitions, topics.replication_factor, topic_configs=cfg
                        )
                        for name, cfg in missing.items()
                    ]
                )
    finally:
        await admin.close()
    if missing:
        get_logger("bridge.kafka").info("kafka.topics.created", topics=sorted(missing))
    return sorted(missing)
