"""The Grafana dashboard helm/icws-bridge/dashboards/icws-bridge.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DASHBOARD, run_tool
from .promql import metric_names, series_names

# What Grafana substitutes into queries, for checking them outside Grafana.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": ".*",
    "$pod": ".*",
}


def dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return board


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def substituted(expr: str) -> str:
    for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
    return expr


def test_dashboard_is_a_grafana_dashboard() -> None:
    """Valid JSON with a fixed uid, a datasource variable, unique panel ids and queries."""
    board = dashboard()
    assert board["uid"] == "icws-bridge"
    assert board["title"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_panels_do_not_overlap() -> None:
    """No two panels claim the same cell of Grafana's 24-column grid."""
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken.get((x, y))}"
                taken[(x, y)] = panel["title"]


@pytest.mark.parametrize("expr", expressions())
def test_queries_use_only_metrics_the_bridge_exposes(expr: str) -> None:
    """Each query selects bridge metrics that exist in bridge/metrics.py, and nothing else."""
    names = metric_names(substituted(expr))
    assert names, expr
    assert names <= series_names(), names - series_names()


def test_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Prometheus' own parser (promtool check rules) accepts every query."""
    rules = [
        {"record": f"dashboard:query_{n}", "expr": substituted(expr)}
        for n, expr in enumerate(expressions())
    ]
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_tool([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promql_check_has_teeth(promtool: str, tmp_path: Path) -> None:
    """A malformed query fails the same promtool check."""
    path = tmp_path / "broken.yaml"
    rule = {"record": "dashboard:broken", "expr": "sum by (le (rate(x[5m]))"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [rule]}]}))
    result = run_tool([promtool, "check", "rules", str(path)])
    assert result.returncode != 0


@pytest.mark.parametrize(
    ("series", "grouping"),
    [
        ("icws_bridge_accounts", "state"),
        ("icws_bridge_accounts_held", "pod"),
        ("icws_bridge_accounts_configured", None),
        ("icws_bridge_account_files_skipped", None),
        ("icws_bridge_reconnects_total", "reason"),
        ("icws_bridge_icws_messages_total", "type"),
        ("icws_bridge_events_total", "type"),
        ("icws_bridge_buffer_records", None),
        ("icws_bridge_commands_total", "outcome"),
        ("icws_bridge_dead_letters_total", "reason"),
    ],
)
def test_key_series_are_on_the_dashboard(series: str, grouping: str | None) -> None:
    """Accounts, reconnects, messages, events, buffer, commands, dead letters are shown."""
    matching = [expr for expr in expressions() if series in metric_names(expr)]
    assert matching, series
    if grouping:
        assert any(re.search(rf"by \({grouping}\)", expr) for expr in matching), matching


@pytest.mark.parametrize("histogram", ["delivery_latency_seconds", "command_duration_seconds"])
def test_latency_panels_show_p50_and_p99(histogram: str) -> None:
    """Delivery and command latency are shown as the 50th and 99th percentiles."""
    bucket = f"icws_bridge_{histogram}_bucket"
    quantiles = {
        float(match)
        for expr in expressions()
        if bucket in expr
        for match in re.findall(r"histogram_quantile\(\s*([0-9.]+)", expr)
    }
    assert quantiles == {0.5, 0.99}
