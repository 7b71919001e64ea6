"""The alert rules in helm/icws-bridge/files/alerts.yaml: valid, unit-tested, documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import OPERATIONS_DOC, RULES, run_tool
from .promql import metric_names, series_names

UNIT_TESTS = Path(__file__).with_name("alerts_test.yaml")
EXPECTED_ALERTS = {
    "IcwsBridgeDown",
    "IcwsBridgeSessionDown",
    "IcwsBridgeAccountsDown",
    "IcwsBridgeBadCredentials",
    "IcwsBridgeAccountsRejected",
    "IcwsBridgeReconnectStorm",
    "IcwsBridgeNoIcwsMessages",
    "IcwsBridgePublishErrors",
    "IcwsBridgeBufferFilling",
    "IcwsBridgeDeliveryStalled",
    "IcwsBridgeCommandFailures",
    "IcwsBridgeDeadLetters",
}


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub/GitLab make of the headings: lower case, punctuation dropped, - for space."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
        anchors.add(text.replace(" ", "-"))
    return anchors


class TestPromtool:
    def test_rule_file_passes_promtool_check_rules(self, promtool: str) -> None:
        """`promtool check rules` accepts the rule file and finds every expected alert."""
        result = run_tool([promtool, "check", "rules", str(RULES)])
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout

    def test_alert_unit_tests_pass(self, promtool: str) -> None:
        """Every alert fires on its made-up broken series and stays quiet on the healthy ones."""
        result = run_tool([promtool, "test", "rules", UNIT_TESTS.name], cwd=UNIT_TESTS.parent)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout

    def test_unit_tests_catch_a_changed_threshold(self, promtool: str, tmp_path: Path) -> None:
        """The unit tests have teeth: a rule with a looser threshold makes them fail."""
        loosened = RULES.read_text().replace("> 0.8", "> 0.95")
        assert loosened != RULES.read_text()
        (tmp_path / "alerts.yaml").write_text(loosened)
        tests = UNIT_TESTS.read_text().replace(
            "../../helm/icws-bridge/files/alerts.yaml", "alerts.yaml"
        )
        (tmp_path / "alerts_test.yaml").write_text(tests)
        result = run_tool([promtool, "test", "rules", "alerts_test.yaml"], cwd=tmp_path)
        assert result.returncode != 0
        assert "IcwsBridgeBufferFilling" in result.stdout + result.stderr


class TestRuleFile:
    def test_the_promised_alerts_exist(self) -> None:
        """The rule file holds exactly the alerts operations rely on, each once."""
        names = [rule["alert"] for rule in alert_rules()]
        assert sorted(names) == sorted(EXPECTED_ALERTS)

    @pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
    def test_alert_carries_severity_summary_description_and_runbook(
        self, rule: dict[str, Any]
    ) -> None:
        """Each alert says how bad it is, what happened, and links its runbook section."""
        assert rule["labels"]["severity"] in {"critical", "warning"}
        annotations = rule["annotations"]
        assert annotations["summary"].strip()
        assert annotations["description"].strip()
        assert annotations["runbook_url"] == f"docs/operations.md#{rule['alert'].lower()}"

    def test_runbook_anchors_exist_in_the_operations_doc(self) -> None:
        """Every runbook_url anchor is a heading of docs/operations.md."""
        anchors = github_anchors(OPERATIONS_DOC.read_text())
        wanted = {rule["annotations"]["runbook_url"].split("#", 1)[1] for rule in alert_rules()}
        assert wanted - anchors == set()

    @pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
    def test_alert_selects_only_metrics_the_bridge_exposes(self, rule: dict[str, Any]) -> None:
        """A renamed metric cannot silently leave an alert watching nothing."""
        names = metric_names(rule["expr"])
        assert names, rule["expr"]
        assert names - {"up"} <= series_names(), names - series_names()

    def test_every_alert_is_unit_tested_firing_and_quiet(self) -> None:
        """alerts_test.yaml has, for each alert, a case where it fires and one where it does not."""
        cases = [
            case
            for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
            for case in test.get("alert_rule_test", [])
        ]
        fires = {case["alertname"] for case in cases if case["exp_alerts"]}
        quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
        assert EXPECTED_ALERTS - fires == set()
        assert EXPECTED_ALERTS - quiet == set()
