"""The chart running a fleet: replicas sharing accounts, the accounts Secret as a directory.

The contract (fleet design, "Operating contract"): one replica uses Recreate; more use a rolling
update with no surge and one unavailable, and a PodDisruptionBudget of one; accounts.existingSecret
is mounted at /etc/icws-bridge/accounts with BRIDGE_ICWS__ACCOUNTS_DIR pointing at it; without it
the one-account settings work as before.
"""

from __future__ import annotations

import base64
from types import ModuleType
from typing import Any

import pytest
import yaml

from .chart import ci_values, merged

ACCOUNTS_DIR = "/etc/icws-bridge/accounts"


def pod_spec(rendered: Any) -> dict[str, Any]:
    spec: dict[str, Any] = rendered.one("Deployment")["spec"]["template"]["spec"]
    return spec


class TestReplicas:
    @pytest.mark.parametrize("replicas", [2, 3, 12])
    def test_several_replicas_roll_one_at_a_time_without_surge(
        self, render: Any, replicas: int
    ) -> None:
        """More than one pod: RollingUpdate, maxSurge 0, maxUnavailable 1, and a PDB of one."""
        rendered = render(merged(ci_values("fleet"), {"replicaCount": replicas}))
        spec = rendered.one("Deployment")["spec"]
        assert spec["replicas"] == replicas
        assert spec["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
        }
        budget = rendered.one("PodDisruptionBudget")["spec"]
        assert budget["maxUnavailable"] == 1
        assert "minAvailable" not in budget

    def test_budget_selects_exactly_the_bridge_pods(self, render: Any) -> None:
        """The PDB's selector is the Deployment's, so it guards these pods and no others."""
        rendered = render(ci_values("fleet"))
        deployment = rendered.one("Deployment")["spec"]
        budget = rendered.one("PodDisruptionBudget")
        assert budget["spec"]["selector"] == deployment["selector"]
        assert budget["metadata"]["namespace"] == "contact-center"

    @pytest.mark.parametrize("replicas", [0, 1])
    def test_one_or_no_replica_recreates_and_has_no_budget(
        self, render: Any, replicas: int
    ) -> None:
        """0 or 1 pod: Recreate (logged out before the next logs in), no PodDisruptionBudget."""
        rendered = render(merged(ci_values("fleet"), {"replicaCount": replicas}))
        assert rendered.one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}
        assert "PodDisruptionBudget" not in rendered.kinds()

    def test_several_replicas_need_the_command_consumer_group(
        self, helm: ModuleType, render: Any
    ) -> None:
        """With commands disabled there is no group to share accounts: more than one is refused."""
        off = {"config": {"commands": {"enabled": False}}}
        render(merged(ci_values("fleet"), {**off, "replicaCount": 1}))
        with pytest.raises(helm.HelmError, match=r"replicaCount above 1 needs config\.commands"):
            render(merged(ci_values("fleet"), off))


class TestAccountsSecret:
    def test_accounts_secret_is_a_read_only_directory_named_by_the_env(self, render: Any) -> None:
        """The whole Secret (every key a file) is mounted read-only where the env points."""
        rendered = render(ci_values("fleet"))
        volumes = {volume["name"]: volume for volume in pod_spec(rendered)["volumes"]}
        mounts = [m for m in rendered.container()["volumeMounts"] if m["name"] == "accounts"]
        assert mounts == [{"name": "accounts", "mountPath": ACCOUNTS_DIR, "readOnly": True}]
        assert volumes["accounts"]["secret"]["secretName"] == "icws-bridge-agents"
        # Items or a subPath would freeze the key list: accounts added later would never appear.
        assert "items" not in volumes["accounts"]["secret"]
        assert rendered.env()["BRIDGE_ICWS__ACCOUNTS_DIR"] == ACCOUNTS_DIR

    def test_without_it_the_one_account_settings_are_unchanged(self, render: Any) -> None:
        """No accounts Secret: no accounts volume or env; the chart's Secret has the password."""
        rendered = render(ci_values("minimal"))
        assert "accounts" not in {volume["name"] for volume in pod_spec(rendered)["volumes"]}
        assert "BRIDGE_ICWS__ACCOUNTS_DIR" not in rendered.env()
        secret = rendered.one("Secret")["data"]
        assert base64.b64decode(secret["icws__password"]).decode() == "not-a-real-password"

    @pytest.mark.parametrize(
        ("sasl", "keys"), [("", set()), ("k-secret", {"kafka__sasl_password"})]
    )
    def test_a_fleet_keeps_no_icws_password_in_the_chart_secret(
        self, render: Any, sasl: str, keys: set[str]
    ) -> None:
        """With accounts the chart's Secret holds only the SASL password, when there is one."""
        rendered = render(merged(ci_values("fleet"), {"kafka": {"saslPassword": sasl}}))
        assert set(rendered.one("Secret")["data"] or {}) == keys

    @pytest.mark.parametrize(
        "patch",
        [{"config": {"icws": {"username": "agent.one"}}}, {"icws": {"password": "pw"}}],
        ids=["username", "password"],
    )
    def test_a_fleet_refuses_the_one_account_settings_beside_it(
        self, helm: ModuleType, render: Any, patch: dict[str, Any]
    ) -> None:
        """Accounts and the one-account user or password together are refused, not guessed."""
        with pytest.raises(
            helm.HelmError, match=r"leave config\.icws\.username and icws\.password"
        ):
            render(merged(ci_values("fleet"), patch))

    def test_schema_closes_the_accounts_value(self, helm: ModuleType, render: Any) -> None:
        """A misspelt key under accounts (e.g. a chart-made secret) is refused by the schema."""
        with pytest.raises(helm.HelmValuesError) as raised:
            render(merged(ci_values("fleet"), {"accounts": {"secretName": "agents"}}))
        assert "secretName" in str(raised.value)

    def test_fleet_settings_reach_bridge_yaml(self, render: Any) -> None:
        """The fleet's settings in config.icws land in bridge.yaml as the bridge reads them."""
        configmap = render(ci_values("fleet")).one("ConfigMap")["data"]["bridge.yaml"]
        icws = yaml.safe_load(configmap)["icws"]
        assert (icws["accounts_reload_seconds"], icws["max_concurrent_logins"]) == (15, 4)
        assert "accounts_dir" not in icws  # the env names the mounted directory
        assert icws["username"] == ""  # empty: the one-account shorthand stays off


class TestNotes:
    def test_fleet_notes_name_the_accounts_secret_and_endpoint(self, render: Any) -> None:
        """NOTES.txt says which Secret holds the users, that pods share them, and /accounts."""
        notes = render(ci_values("fleet")).notes
        assert "every user of the Secret icws-bridge-agents" in notes
        assert ACCOUNTS_DIR in notes
        assert "3 pods share the accounts" in notes
        assert "/accounts" in notes
