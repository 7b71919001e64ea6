"""The bridge's Prometheus exposition passes `promtool check metrics`.

For now the text comes from ``bridge.metrics.create()`` with a value in every metric; a running
bridge's /metrics gets the same check elsewhere.
"""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client import generate_latest

from bridge import metrics

from .conftest import run_tool


def exposition() -> str:
    """Every metric of the bridge with at least one sample, labelled ones included."""
    m = metrics.create()
    m.accounts.labels(state="up").set(3)
    m.accounts_configured.set(4)
    m.accounts_held.set(3)
    m.account_files_skipped.set(1)
    m.reconnects.labels(reason="session_expired").inc()
    m.logins.labels(result="succeeded").inc()
    m.hosts.set_function(lambda: {("https://ic1.example.com:8019", "2024 R1"): 3})
    m.icws_requests.labels(call="messages", status="2xx").inc(3)
    m.messages_read.labels(type="urn:inin.com:interactions:interactionsMessage").inc(2)
    m.message_problems.labels(type="unrecognized").inc()
    m.last_message.set(1_700_000_000)
    m.subscriptions.labels(subscription="alerting").set(3)
    m.events.labels(type="interaction.alerting.started.v1").inc()
    m.records_published.labels(kind="event").inc()
    m.publish_errors.inc()
    m.delivery_latency.observe(0.02)
    m.buffer_depth.set(3)
    m.buffer_capacity.set(10_000)
    m.blocked_seconds.inc(0.5)
    m.last_delivery.set(1_700_000_001)
    m.commands.labels(type="assistance_update", outcome="succeeded").inc()
    m.command_latency.observe(0.2)
    m.dead_letters.labels(reason="undecodable").inc()
    return generate_latest(m.registry).decode()


def check_metrics(promtool: str, text: str) -> subprocess.CompletedProcess[str]:
    return run_tool([promtool, "check", "metrics"], stdin=text)


def test_exposition_passes_promtool_check_metrics(promtool: str) -> None:
    """Promtool's linter finds no problem (names, units, suffixes, HELP) in the exposition."""
    result = check_metrics(promtool, exposition())
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_exposition_has_a_sample_of_every_metric() -> None:
    """The checked text covers every metric family, so promtool saw each one with data."""
    text = exposition()
    families = [family.name for family in metrics.create().registry.collect()]
    assert len(families) >= 20
    for family in families:
        assert f"\n{family}" in text, family


@pytest.mark.parametrize(
    ("bad_text", "problem"),
    [
        ("# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests 1\n", "_total"),
        ("# HELP xRequests_total R.\n# TYPE xRequests_total counter\nxRequests_total 1\n", "snake"),
    ],
    ids=["counter-without-total", "camel-case"],
)
def test_promtool_check_metrics_rejects_bad_names(
    promtool: str, bad_text: str, problem: str
) -> None:
    """The check has teeth: promtool fails on the mistakes it is here to catch."""
    result = check_metrics(promtool, bad_text)
    assert result.returncode != 0
    assert problem in result.stdout + result.stderr


def test_accounts_gauge_shows_every_state_at_zero_from_the_start() -> None:
    """A fresh registry exposes icws_bridge_accounts at 0 for each of the six session states."""
    text = generate_latest(metrics.create().registry).decode()
    for state in ("down", "connecting", "up", "bad_credentials", "rejected", "unsupported"):
        assert f'icws_bridge_accounts{{state="{state}"}} 0.0' in text, state
    for gauge in ("accounts_configured", "accounts_held", "account_files_skipped"):
        assert f"\nicws_bridge_{gauge} 0.0" in text, gauge
