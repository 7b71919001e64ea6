"""Every Prometheus metric of the bridge, created against an injected registry.

One prefix (``icws_bridge_``), base units (seconds, bytes), ``_total`` counters, and labels with
small fixed value sets only: never an interaction, user, session or command id. What a session
knows of itself (its state, transport, subscriptions, host, last message) is not written here by
each session, which with many accounts would show whichever wrote last: the fleet counts or
compares its accounts at each scrape (``set_function``, :class:`Tally`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge import __version__
from bridge.core.messages import AGGREGATES
from bridge.core.session_rules import STREAM_END_REASONS

PREFIX = "icws_bridge"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SESSION_STATES = ("down", "connecting", "up", "bad_credentials", "rejected", "unsupported")
TRANSPORTS = ("sse", "poll")
# Label values known up front are created at 0, so rate() and increase() see the first event.
RECONNECT_REASONS = (
    "session_lost",
    "unauthorized",
    "down_message",
    "down_no_reconnect",
    "check_failed",
    "unavailable",
    "server_error",
    "gone",
    "rejected",
    "bad_credentials",
    "error",
)


class Tally(Collector):
    """A gauge of counts by label values not known up front, counted by a function per scrape."""

    def __init__(
        self, name: str, documentation: str, labels: tuple[str, ...], registry: CollectorRegistry
    ) -> None:
        self._family = (name, documentation, list(labels))
        self._count: Callable[[], Mapping[tuple[str, ...], int]] = dict
        registry.register(self)

    def set_function(self, count: Callable[[], Mapping[tuple[str, ...], int]]) -> None:
        """Count with ``count``: label values (in the labels' order) to how many."""
        self._count = count

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(*self._family[:2], labels=self._family[2])]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(*self._family[:2], labels=self._family[2])
        for values, count in sorted(self._count().items()):
            family.add_metric(list(values), count)
        return [family]


@dataclass(frozen=True, slots=True)
class Metrics:
    """The metrics, as attributes; build with :func:`create`."""

    registry: CollectorRegistry
    info: Info
    accounts: Gauge
    accounts_configured: Gauge
    accounts_held: Gauge
    account_files_skipped: Gauge
    reconnects: Counter
    stream_reconnects: Counter
    transport: Gauge
    logins: Counter
    hosts: Tally
    icws_requests: Counter
    messages_read: Counter
    message_problems: Counter
    last_message: Gauge
    message_age: Gauge
    subscriptions: Gauge
    resubscriptions: Counter
    events: Counter
    records_published: Counter
    publish_errors: Counter
    delivery_latency: Histogram
    buffer_depth: Gauge
    buffer_capacity: Gauge
    blocked_seconds: Counter
    last_delivery: Gauge
    commands: Counter
    command_latency: Histogram
    dead_letters: Counter


def create(registry: CollectorRegistry | None = None) -> Metrics:
    """Create (and register) every metric in ``registry`` (a fresh one by default)."""
    reg = registry or CollectorRegistry()

    def name(suffix: str) -> str:
        return f"{PREFIX}_{suffix}"

    metrics = Metrics(
        registry=reg,
        info=Info(name("build"), "Bridge version.", registry=reg),
        accounts=Gauge(
            name("accounts"),
            "Accounts this replica holds, by session state.",
            ["state"],
            registry=reg,
        ),
        accounts_configured=Gauge(
            name("accounts_configured"),
            "Accounts in the accounts directory (1 for the one-account settings).",
            registry=reg,
        ),
        accounts_held=Gauge(name("accounts_held"), "Accounts this replica holds.", registry=reg),
        account_files_skipped=Gauge(
            name("account_files_skipped"),
            "Bad files skipped in the last reading of the accounts directory.",
            registry=reg,
        ),
        reconnects=Counter(
            name("reconnects_total"),
            "ICWS session re-logins, by reason.",
            ["reason"],
            registry=reg,
        ),
        stream_reconnects=Counter(
            name("stream_reconnects_total"),
            "SSE streams that ended on a live session and were read again (reopened, or "
            "polled after a fallback), by why they ended.",
            ["reason"],
            registry=reg,
        ),
        transport=Gauge(
            name("transport"),
            "Accounts reading ICWS messages now, by transport (poll also after an SSE fallback).",
            ["transport"],
            registry=reg,
        ),
        logins=Counter(
            name("logins_total"), "ICWS login attempts, by result.", ["result"], registry=reg
        ),
        hosts=Tally(
            name("icws_hosts"),
            "Accounts by the ICWS host of their last login and the version that host runs.",
            ("host", "icws_version"),
            reg,
        ),
        icws_requests=Counter(
            name("icws_requests_total"),
            "ICWS requests, by call and status class.",
            ["call", "status"],
            registry=reg,
        ),
        messages_read=Counter(
            name("icws_messages_total"),
            "ICWS messages read, by __type.",
            ["type"],
            registry=reg,
        ),
        message_problems=Counter(
            name("icws_message_problems_total"),
            "Unrecognized or malformed ICWS messages and entries, by __type.",
            ["type"],
            registry=reg,
        ),
        last_message=Gauge(
            name("icws_last_message_timestamp_seconds"),
            "Unix time of the newest ICWS message or keep-alive of any account.",
            registry=reg,
        ),
        message_age=Gauge(
            name("icws_seconds_since_last_message"),
            "Seconds since the last ICWS message or keep-alive of the account silent longest.",
            registry=reg,
        ),
        subscriptions=Gauge(
            name("icws_subscription_active"),
            "Accounts with the subscription in place.",
            ["subscription"],
            registry=reg,
        ),
        resubscriptions=Counter(
            name("icws_resubscriptions_total"),
            "Subscriptions re-created after ICWS suspended or faulted them, by aggregate.",
            ["aggregate"],
            registry=reg,
        ),
        events=Counter(
            name("events_total"),
            "Entity and lifecycle events built, by type.",
            ["type"],
            registry=reg,
        ),
        records_published=Counter(
            name("records_published_total"),
            "Kafka records acknowledged, by topic kind.",
            ["kind"],
            registry=reg,
        ),
        publish_errors=Counter(
            name("publish_errors_total"),
            "Kafka sends that failed and will be retried.",
            registry=reg,
        ),
        delivery_latency=Histogram(
            name("delivery_latency_seconds"),
            "From reading the ICWS message to Kafka acknowledging its records.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ),
        buffer_depth=Gauge(
            name("buffer_records"),
            "Records read from ICWS, not yet acknowledged by Kafka.",
            registry=reg,
        ),
        buffer_capacity=Gauge(name("buffer_capacity_records"), "Buffer size.", registry=reg),
        blocked_seconds=Counter(
            name("pump_blocked_seconds_total"),
            "Time the pump waited for buffer space.",
            registry=reg,
        ),
        last_delivery=Gauge(
            name("last_delivery_timestamp_seconds"),
            "Unix time of the last Kafka ack.",
            registry=reg,
        ),
        commands=Counter(
            name("commands_total"),
            "Commands, by type and outcome.",
            ["type", "outcome"],
            registry=reg,
        ),
        command_latency=Histogram(
            name("command_duration_seconds"),
            "From reading a command to its result.",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ),
        dead_letters=Counter(
            name("dead_letters_total"),
            "Command records sent to the dead-letter topic.",
            ["reason"],
            registry=reg,
        ),
    )
    for state in SESSION_STATES:
        metrics.accounts.labels(state=state)
    for reason in RECONNECT_REASONS:
        metrics.reconnects.labels(reason=reason)
    for reason in STREAM_END_REASONS:
        metrics.stream_reconnects.labels(reason=reason)
    metrics.info.info({"version": __version__})
    for transport in TRANSPORTS:
        metrics.transport.labels(transport=transport)
    for aggregate in AGGREGATES:
        metrics.resubscriptions.labels(aggregate=aggregate)
    for kind in ("event", "state"):
        metrics.records_published.labels(kind=kind)
    return metrics
