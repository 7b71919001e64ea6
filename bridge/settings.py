"""All settings of the bridge: one pydantic-settings object, read once at start-up and passed down.

Sources, highest priority first: keyword arguments (tests), environment variables (prefix
``BRIDGE_``, nesting with ``__``: ``BRIDGE_ICWS__PASSWORD``), secret files (a directory of files
named like ``icws__password``, for Kubernetes secrets; ``BRIDGE_SECRETS_DIR``), then the YAML file
(``BRIDGE_CONFIG_FILE``, default ``config/bridge.yaml``), then the defaults written here.
Nothing reads the environment at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from bridge.errors import ConfigError
from bridge.settings_base import Group as _Group
from bridge.settings_base import (
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    describe_validation_error,
    split_commas,
)
from bridge.settings_base import env_name as env_name
from bridge.settings_kafka import KafkaSettings as KafkaSettings
from bridge.settings_kafka import TopicSettings as TopicSettings

DEFAULT_CONFIG_FILE = Path("config/bridge.yaml")


class IcwsSettings(_Group):
    """How to reach and hold the ICWS session."""

    servers: Annotated[list[AnyHttpUrl], NoDecode] = Field(
        default_factory=lambda: [AnyHttpUrl("https://icserver:8019")],
        min_length=1,
        description="ICWS base URLs, tried in order: scheme, host, port, and behind a web "
        "proxy its base path ending in the IC server's name (https://proxy/api/<icserver>); "
        "ICWS paths (/icws/...) are appended.",
    )
    username: str = Field("", description="ICWS user ID the bridge logs in as.")
    password: SecretStr = Field(SecretStr(""), description="Password of that user (secret).")
    application_name: str = Field("icws-bridge", description="Shown in supervisory views.")
    language: str = Field("en-us", description="Accept-Language of the session.")
    transport: Literal["auto", "sse", "poll"] = Field(
        "auto", description="Message transport: SSE when messaging >= 2 (auto), or forced."
    )
    poll_interval_seconds: PositiveFloat = Field(1.0, description="Short-poll interval.")
    sse_idle_timeout_seconds: PositiveFloat = Field(
        45.0,
        description="An SSE stream silent (no data, no keep-alive) this long is ended; the "
        "session is then checked and, if up, a new stream opened on it.",
    )
    sse_failures_before_polling: PositiveInt = Field(
        3,
        description="With transport auto: failed SSE streams in a row (no byte within the idle "
        "limit, not an event stream, refused) before switching to short polling.",
    )
    sse_retry_after_seconds: PositiveFloat = Field(
        300.0, description="After falling back to short polling, how long before SSE is retried."
    )
    connection_check_seconds: PositiveFloat = Field(
        30.0, description="How often GET /connection checks the session while streaming."
    )
    heartbeat_seconds: NonNegativeFloat = Field(
        30.0,
        description="How often POST /messaging/heartbeat keeps the session alive (0: never); "
        "a server answering 404/410 has none, and it stops for that session.",
    )
    request_timeout_seconds: PositiveFloat = Field(15.0, description="Per ICWS request.")
    verify_tls: bool = Field(True, description="Verify the server certificate. Keep it on.")
    ca_file: Path | None = Field(None, description="Extra CA bundle for the ICWS server.")
    backoff_initial_seconds: PositiveFloat = Field(0.5, description="First reconnect delay.")
    backoff_max_seconds: PositiveFloat = Field(30.0, description="Reconnect delay cap.")
    bad_credentials_retry_seconds: PositiveFloat = Field(
        300.0, description="Delay between logins after ICWS rejected the credentials."
    )
    probe_interval_seconds: PositiveFloat = Field(
        0.5,
        description="While no ICWS host can be reached, how often to check (sessionless) "
        "whether one answers again, so the login follows at once.",
    )
    max_redirects: PositiveInt = Field(
        8, description="Hosts tried in one login round before backing off."
    )
    shutdown_timeout_seconds: PositiveFloat = Field(
        5.0, description="Bound on unsubscribe + logout at shutdown."
    )
    accounts_dir: Path | None = Field(
        None,
        description="A fleet: a directory with one file per ICWS user (name: user id, content: "
        "password); when set, username and password are not used.",
    )
    accounts_reload_seconds: PositiveFloat = Field(30.0, description="Re-read accounts_dir.")
    catalogue_account: str | None = Field(
        None, description="The account publishing the status catalogue (default: smallest id)."
    )
    max_concurrent_logins: PositiveInt = Field(8, description="Fleet-wide logins at once.")
    login_spread_seconds: Annotated[float, Field(ge=0)] = Field(
        5.0,
        description="When more accounts start at once than max_concurrent_logins, each one's"
        " first login waits a random part of this.",
    )

    _split = field_validator("servers", mode="before")(split_commas)

    @field_validator("servers")
    @classmethod
    def _base_urls(cls, servers: list[AnyHttpUrl]) -> list[AnyHttpUrl]:
        """A base URL to append ICWS paths to: no query, no fragment, not ``.../icws`` itself."""
        for url in servers:
            if url.query or url.fragment:
                raise ValueError("an ICWS server URL takes no query or fragment")
            if (url.path or "").rstrip("/").rsplit("/", 1)[-1].lower() == "icws":
                raise ValueError("give the base URL without /icws (ICWS paths are appended)")
        return servers


class AlertingSubscription(_Group):
    enabled: bool = Field(True, description="Subscribe to interaction alerting.")
    attribute_names: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["Eic_CallDirection", "Eic_RemoteName", "Eic_WorkgroupName"],
        description="Interaction attributes to receive with each alert.",
    )
    _split = field_validator("attribute_names", mode="before")(split_commas)


class HistorySubscription(_Group):
    enabled: bool = Field(True, description="Subscribe to interaction history.")
    number_of_messages: PositiveInt | None = Field(
        None, description="History items in the first snapshot (all when unset)."
    )


class ToggleSubscription(_Group):
    enabled: bool = Field(True, description="Subscribe to it.")


class SubscriptionSettings(_Group):
    """Which ICWS subscriptions the bridge keeps."""

    alerting: AlertingSubscription = AlertingSubscription()
    history: HistorySubscription = HistorySubscription()
    status_messages: ToggleSubscription = ToggleSubscription()
    assistance: ToggleSubscription = ToggleSubscription()


class EventSettings(_Group):
    """The event contract's configurable parts."""

    type_prefix: str = Field("com.pureconnect.icws", description="Reverse-DNS type prefix.")
    source: str = Field("/icws-bridge", description="CloudEvents source of every event.")
    attribute_headers: bool = Field(
        True,
        description="Copy CloudEvents attributes into ce_* headers (off for consumers whose SDK "
        "guesses binary mode from them).",
    )
    schema_base_url: str = Field(
        "http://localhost:8080/schemas",
        description="dataschema = <base>/<type>.json; the bridge serves them at "
        "/schemas/<type>.json on the health port (the chart sets the base to its Service).",
    )


class PipelineSettings(_Group):
    """Buffering between ICWS and Kafka."""

    buffer_size: PositiveInt = Field(10000, description="Records held before reading stops.")
    outage_seconds: PositiveFloat = Field(
        30.0, description="Not ready after this long without a successful delivery."
    )
    history_cache_entities: PositiveInt | None = Field(
        None,
        description="Most history items kept to diff snapshots against (unbounded when unset); "
        "keep it above subscriptions.history.number_of_messages.",
    )
    flush_timeout_seconds: PositiveFloat = Field(
        20.0, description="Grace period to flush records at shutdown."
    )


class CommandSettings(_Group):
    """Commands read from the command topic and run against ICWS."""

    enabled: bool = Field(True, description="Consume and run commands.")
    default_deadline_seconds: PositiveFloat = Field(
        300.0, description="Deadline of a command without one, from the record's timestamp."
    )
    max_deadline_seconds: PositiveFloat = Field(
        86400.0, description="No command runs later than this after the record's timestamp."
    )
    max_record_bytes: PositiveInt = Field(
        65536, description="Larger command records go to the dead-letter topic."
    )
    max_attempts: PositiveInt = Field(
        10, description="ICWS calls per command at most (transient failures are retried)."
    )
    backoff_initial_seconds: PositiveFloat = Field(0.5, description="First retry delay.")
    backoff_max_seconds: PositiveFloat = Field(10.0, description="Retry delay cap.")
    recovery_seconds: PositiveFloat = Field(
        30.0,
        description="After a crash mid-command: how long to look for its effect in ICWS "
        "before the result is unknown.",
    )
    shutdown_grace_seconds: PositiveFloat = Field(
        10.0, description="At shutdown, how long commands already sent to ICWS may finish."
    )
    max_queued_records: PositiveInt = Field(
        100, description="Records read ahead per partition before it is paused."
    )


class HealthSettings(_Group):
    host: str = Field("0.0.0.0", description="Address of /livez, /readyz and /metrics.")  # noqa: S104 - a pod must expose its probes on every interface
    port: Annotated[int, Field(ge=0, le=65535)] = Field(
        8080, description="Port of /livez, /readyz and /metrics."
    )


class LogSettings(_Group):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: readable on a terminal, JSON lines otherwise."
    )


class Settings(BaseSettings):
    """Everything the bridge can be told."""

    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_",
        env_nested_delimiter="__",
        env_ignore_empty=True,  # VAR= means unset, as in config/example.env
        extra="forbid",
        frozen=True,
    )

    icws: IcwsSettings = IcwsSettings()
    subscriptions: SubscriptionSettings = SubscriptionSettings()
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    events: EventSettings = EventSettings()
    pipeline: PipelineSettings = PipelineSettings()
    commands: CommandSettings = CommandSettings()
    health: HealthSettings = HealthSettings()
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets_dir = os.environ.get("BRIDGE_SECRETS_DIR")
        if secrets_dir:
            sources.append(
                NestedSecretsSettingsSource(
                    file_secret_settings,
                    secrets_dir=secrets_dir,
                    secrets_nested_delimiter="__",
                    secrets_prefix="",
                )
            )
        config_file = Path(os.environ.get("BRIDGE_CONFIG_FILE", DEFAULT_CONFIG_FILE))
        if config_file.is_file():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, or raise ConfigError naming every bad or missing setting."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    except SettingsError as exc:
        # Raised when a whole group given as JSON (BRIDGE_ICWS='{...}') does not parse.
        field = str(exc).split('"')[1] if '"' in str(exc) else "?"
        raise ConfigError(
            f"invalid settings: {field} (env {env_name(field)}): not valid JSON"
        ) from None
    shorthand = (
        ("icws.username", settings.icws.username),
        ("icws.password", settings.icws.password.get_secret_value()),
    )
    # A fleet's accounts come from icws.accounts_dir; the shorthand's pair is then not needed.
    missing = [n for n, v in shorthand if not v] if settings.icws.accounts_dir is None else []
    if missing:
        raise ConfigError(
            "missing setting(s): " + ", ".join(f"{name} (env {env_name(name)})" for name in missing)
        )
    return settings
