"""Rendering the chart for the ops tests: the CI values files, merging values, rendered objects.

Shared by test_chart.py (the chart as a whole) and test_chart_fleet.py (replicas and accounts);
the ``chart`` and ``render`` fixtures live in conftest.py.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "icws-bridge"

RELEASE = "ops-bridge"
NAMESPACE = "contact-center"
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest that
# kubernetes-validate 1.37 bundles schemas for.
KUBE_VERSIONS = ["1.27.0", "1.37.0"]


def ci_values(name: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "ci" / f"{name}-values.yaml").read_text())
    return values


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of base with patch merged in (patch wins)."""
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


class Rendered:
    """The objects a render produced, by kind."""

    def __init__(self, files: dict[str, str]) -> None:
        self.notes = next((text for name, text in files.items() if name.endswith("NOTES.txt")), "")
        self.objects: list[dict[str, Any]] = [
            document
            for name, text in sorted(files.items())
            if name.endswith((".yaml", ".yml"))
            for document in yaml.safe_load_all(text)
            if document
        ]

    def kinds(self) -> list[str]:
        return sorted(obj["kind"] for obj in self.objects)

    def one(self, kind: str) -> dict[str, Any]:
        found = [obj for obj in self.objects if obj["kind"] == kind]
        assert len(found) == 1, f"{len(found)} objects of kind {kind}"
        return found[0]

    def container(self) -> dict[str, Any]:
        containers = self.one("Deployment")["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        container: dict[str, Any] = containers[0]
        return container

    def env(self) -> dict[str, str]:
        return {item["name"]: item["value"] for item in self.container()["env"]}


def materialise(
    rendered: Rendered,
    tmp_path: Path,
    secret_files: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lay out the pod's mounts under tmp_path and set the container's env, pointed at them."""
    configmap = next(o for o in rendered.objects if o["kind"] == "ConfigMap")
    config_dir, secrets_dir = tmp_path / "etc", tmp_path / "secrets"
    config_dir.mkdir()
    secrets_dir.mkdir()
    (config_dir / "bridge.yaml").write_text(configmap["data"]["bridge.yaml"])
    for name, value in secret_files.items():
        (secrets_dir / name).write_text(value)
    env = rendered.env()
    mounts = {m["name"]: m["mountPath"] for m in rendered.container()["volumeMounts"]}
    assert Path(env["BRIDGE_CONFIG_FILE"]).parent == Path(mounts["config"])
    assert env["BRIDGE_SECRETS_DIR"] == mounts["secrets"]
    env["BRIDGE_CONFIG_FILE"] = str(config_dir / "bridge.yaml")
    env["BRIDGE_SECRETS_DIR"] = str(secrets_dir)
    for name in [name for name in os.environ if name.startswith("BRIDGE_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
