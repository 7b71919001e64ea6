"""Settings of the Kafka side: the topics' names and how to reach Kafka (part of the settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from bridge.settings_base import Group, PositiveInt, split_commas


class TopicSettings(Group):
    """Kafka topic names."""

    alerting: str = Field(
        "icws.interaction.alerting.v1", description="Event topic: interaction alerting."
    )
    history: str = Field(
        "icws.interaction.history.v1", description="Event topic: interaction history."
    )
    status_messages: str = Field(
        "icws.status.messages.v1", description="Event topic: status-message catalogue."
    )
    assistance: str = Field(
        "icws.assistance.requests.v1", description="Event topic: agent-assistance requests."
    )
    alerting_state: str = Field(
        "icws.interaction.alerting.state.v1", description="Compacted state topic: alerting."
    )
    history_state: str = Field(
        "icws.interaction.history.state.v1", description="Compacted state topic: history."
    )
    status_messages_state: str = Field(
        "icws.status.messages.state.v1", description="Compacted state topic: status messages."
    )
    assistance_state: str = Field(
        "icws.assistance.requests.state.v1", description="Compacted state topic: assistance."
    )
    lifecycle: str = Field(
        "icws.bridge.lifecycle.v1",
        description="Bridge lifecycle events: session up/down, gaps, resyncs.",
    )
    commands: str = Field("icws.commands.v1", description="Command topic the bridge consumes.")
    command_results: str = Field(
        "icws.command.results.v1", description="One result event per command."
    )
    dead_letter: str = Field(
        "icws.commands.dlq.v1", description="Undecodable command records, with the reason."
    )
    command_journal: str = Field(
        "icws.commands.journal.v1",
        description="Compacted journal of command executions (started/finished per command id).",
    )
    command_journal_retention_hours: PositiveInt = Field(
        168,
        description="How long the journal remembers a command id; keep it above "
        "commands.max_deadline_seconds.",
    )
    create: bool = Field(True, description="Create missing topics at start-up.")
    partitions: PositiveInt = Field(6, description="Partitions of topics the bridge creates.")
    replication_factor: PositiveInt = Field(1, description="Replication of created topics.")


class KafkaSettings(Group):
    """How to reach Kafka and how the producer behaves."""

    bootstrap_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["localhost:9092"],
        min_length=1,
        description="Kafka bootstrap servers, host:port, comma-separated.",
    )
    client_id: str = Field("icws-bridge", description="Kafka client id.")
    acks: Literal["all", "1", "0"] = Field(
        "all", description="Producer acks; keep all for no loss."
    )
    enable_idempotence: bool = Field(True, description="Off only for brokers without it.")
    compression_type: Literal["gzip", "snappy", "lz4", "zstd", "none"] = Field(
        "gzip", description="Producer compression."
    )
    linger_ms: Annotated[int, Field(ge=0)] = Field(
        0,
        description="Producer linger. The publisher already sends in chunks and waits for "
        "their acks, so waiting longer only adds latency.",
    )
    request_timeout_ms: PositiveInt = Field(30000, description="Kafka request timeout.")
    retry_backoff_ms: PositiveInt = Field(200, description="Kafka client retry backoff.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism."
    )
    sasl_username: str | None = Field(None, description="SASL user.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    ssl_cafile: Path | None = Field(None, description="CA bundle for the Kafka brokers.")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    ssl_keyfile: Path | None = Field(None, description="Client key (mutual TLS).")
    consumer_group: str = Field(
        "icws-bridge", description="Consumer group of the command consumer."
    )
    # Why 6 s: a stock Kafka broker refuses less (group.min.session.timeout.ms); it outlasts the
    # longest pause of the event loop with a heartbeat to spare (a 100,000-entity snapshot, 28 MB,
    # takes about 2 s from arrival to reconciled, see BENCHMARKS.md); and a first join takes 3 s
    # instead of 5 where the broker holds it for half the session timeout (Tansu; Kafka holds it
    # for group.initial.rebalance.delay.ms, 3 s by default, whatever the client asks).
    consumer_session_timeout_ms: PositiveInt = Field(
        6000,
        description="Command consumer: group session timeout (the lowest a stock Kafka broker "
        "accepts; Tansu holds a first join for half of it).",
    )
    consumer_heartbeat_interval_ms: PositiveInt = Field(
        2000, description="Command consumer: heartbeat interval (a third of the session timeout)."
    )
    consumer_rebalance_timeout_ms: PositiveInt = Field(
        30000, description="Command consumer: how long a rebalance waits for members to rejoin."
    )
    consumer_max_poll_interval_ms: PositiveInt = Field(
        300000, description="Command consumer: longest gap between polls before leaving the group."
    )

    _split = field_validator("bootstrap_servers", mode="before")(split_commas)

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_mechanism and self.sasl_username and self.sasl_password
        ):
            raise ValueError("SASL needs sasl_mechanism, sasl_username and sasl_password")
        return self
