"""docs/operations.md covers what operators need: every metric, endpoint, alert and value."""

from __future__ import annotations

import re

import pytest
import yaml

from bridge import metrics

from .conftest import CHART, OPERATIONS_DOC, RULES

# How each metric family type is named in the exposition, as people query it.
_EXPOSED_SUFFIX = {"counter": "_total", "info": "_info", "gauge": "", "histogram": ""}


def documented_metrics() -> set[str]:
    """Metric names in the first column of the doc's metrics table."""
    return set(re.findall(r"^\| `(icws_bridge_\w+)` \|", OPERATIONS_DOC.read_text(), re.MULTILINE))


def test_every_metric_is_in_the_metrics_table() -> None:
    """The table lists exactly the metrics bridge/metrics.py defines, by their exposed names."""
    exposed = {
        family.name + _EXPOSED_SUFFIX[family.type] for family in metrics.create().registry.collect()
    }
    assert documented_metrics() == exposed


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics"])
def test_endpoints_are_documented(path: str) -> None:
    """Each health endpoint has a row in the endpoints table."""
    assert f"| `GET {path}` |" in OPERATIONS_DOC.read_text()


def test_every_alert_has_a_runbook_section() -> None:
    """Each alert of the rule file has its own heading, in the rule file's order."""
    alerts = [
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    ]
    headings = re.findall(r"^### (IcwsBridge\w+)$", OPERATIONS_DOC.read_text(), re.MULTILINE)
    assert headings == alerts


@pytest.mark.parametrize(
    "value",
    ["config.icws.servers", "config.icws.username", "config.kafka.bootstrap_servers",
     "icws.password", "existingSecret", "icws__password", "kafka__sasl_password"],
)  # fmt: skip
def test_install_values_and_secret_keys_are_documented(value: str) -> None:
    """The values an install needs and the existing Secret's keys are spelled out."""
    assert f"`{value}`" in OPERATIONS_DOC.read_text()


def test_documented_required_values_are_the_schema_required_ones() -> None:
    """What the doc calls required under config is what values.schema.json requires."""
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    config = schema["properties"]["config"]
    required = {
        f"config.{group}.{key}"
        for group in config["required"]
        for key in config["properties"][group].get("required", [])
    }
    rows = re.findall(r"^\| `(config\.[\w.]+)` \| .* \| yes \|$", OPERATIONS_DOC.read_text(), re.M)
    assert set(rows) == required
