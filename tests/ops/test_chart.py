"""The Helm chart helm/icws-bridge: lint, schema, rendering and what the manifests promise.

Helm runs as a library (helm-python-sdk, Helm v4): ``helm_python.lint`` is `helm lint`, and
``Chart.render`` is `helm template` (it validates the values against values.schema.json first).
Rendered Kubernetes objects are checked with `kubernetes-validate --strict`; the two Prometheus
Operator objects, which it has no schema for, are checked against a schema of the CRD fields the
chart uses, and the PrometheusRule against the rule file it is made from.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from bridge import settings as bridge_settings
from bridge.app import contract_from

from .chart import (
    KUBE_VERSIONS,
    NAMESPACE,
    OPERATOR_KINDS,
    RELEASE,
    ci_values,
    materialise,
    merged,
)
from .conftest import CHART, DASHBOARD, RULES, run_tool


class TestLint:
    @pytest.mark.parametrize("values", ["minimal", "full", "fleet"])
    @pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
    def test_lints_clean(self, helm: ModuleType, values: str, kube_version: str) -> None:
        """`helm lint --strict` finds no error and no warning (only the "icon" hint)."""
        report = helm.lint(CHART, ci_values(values), strict=True, kube_version=f"v{kube_version}")
        assert report["errors"] == []
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert problems == []

    def test_lint_reports_a_broken_template(self, helm: ModuleType, tmp_path: Path) -> None:
        """The lint has teeth: a template with a syntax error is reported as an error."""
        broken = tmp_path / "icws-bridge"
        shutil.copytree(CHART, broken)
        (broken / "templates" / "broken.yaml").write_text("{{ if }}\n")
        report = helm.lint(broken, ci_values("minimal"), strict=True)
        assert report["errors"]


class TestSchema:
    def test_default_values_alone_are_refused_naming_what_is_missing(
        self, helm: ModuleType, render: Any
    ) -> None:
        """Without ICWS servers and Kafka servers the chart will not render."""
        with pytest.raises(helm.HelmValuesError) as raised:
            render(None)
        for path in ("/config/icws/servers", "/config/kafka/bootstrap"):
            assert path in str(raised.value)

    def test_an_account_is_required(self, helm: ModuleType, render: Any) -> None:
        """Without config.icws.username or accounts.existingSecret the render says to set one."""
        values = merged(ci_values("minimal"), {"config": {"icws": {"username": ""}}})
        with pytest.raises(helm.HelmError, match=r"set config\.icws\.username .* accounts\."):
            render(values)

    def test_credentials_are_required(self, helm: ModuleType, render: Any) -> None:
        """Without icws.password or existingSecret the render fails saying which to set."""
        values = merged(ci_values("minimal"), {"icws": {"password": ""}})
        with pytest.raises(helm.HelmError, match=r"set icws\.password, or existingSecret"):
            render(values)

    def test_password_and_existing_secret_exclude_each_other(
        self, helm: ModuleType, render: Any
    ) -> None:
        """Setting both credentials sources is refused rather than silently picking one."""
        values = merged(ci_values("minimal"), {"existingSecret": "mine"})
        with pytest.raises(helm.HelmError, match="not both"):
            render(values)

    @pytest.mark.parametrize(
        ("patch", "where"),
        [
            ({"replicaCount": -1}, "/replicaCount"),
            ({"replicaCount": "1"}, "/replicaCount"),
            ({"replicas": 1}, "replicas"),
            ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
            ({"image": {"digest": "latest"}}, "/image/digest"),
            ({"config": {"icws": {"password": "oops"}}}, "/config/icws/password"),
            ({"config": {"kafka": {"sasl_password": "oops"}}}, "/config/kafka/sasl_password"),
            ({"config": {"health": {"port": 9000}}}, "/config/health/port"),
            ({"config": {"icws": {"servers": ["ic1:8019"]}}}, "/config/icws/servers"),
            ({"config": {"icws": {"accounts_dir": "/x"}}}, "/config/icws/accounts_dir"),
            ({"config": {"icws": {"max_concurrent_logins": 0}}}, "/config/icws/max_concurrent"),
            ({"accounts": {"existingSecret": "Agents!"}}, "/accounts/existingSecret"),
            ({"config": {"metricz": {}}}, "metricz"),
            ({"health": {"port": 70000}}, "/health/port"),
            ({"metrics": {"serviceMonitor": {"enabled": "yes"}}}, "/metrics/serviceMonitor"),
            ({"networkPolicy": {"egress": []}}, "egress"),
            ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
            ({"terminationGracePeriodSeconds": 5}, "/terminationGracePeriodSeconds"),
        ],
        ids=[
            "negative-replicas",
            "replicas-as-string",
            "unknown-key",
            "bad-enum",
            "bad-digest",
            "password-in-configmap",
            "sasl-password-in-configmap",
            "health-port-in-config",
            "server-without-scheme",
            "accounts-dir-in-config",
            "no-logins-allowed",
            "bad-secret-name",
            "unknown-settings-group",
            "port-out-of-range",
            "bool-as-string",
            "unknown-nested-key",
            "root-user",
            "grace-too-short",
        ],
    )
    def test_schema_rejects_bad_values(
        self, helm: ModuleType, render: Any, patch: dict[str, Any], where: str
    ) -> None:
        """values.schema.json refuses the value, and the message points at it."""
        with pytest.raises(helm.HelmValuesError) as raised:
            render(merged(ci_values("minimal"), patch))
        assert where in str(raised.value)

    def test_schema_knows_exactly_the_bridge_settings_groups(self) -> None:
        """The config value accepts the groups of bridge.settings.Settings and nothing else."""
        schema = json.loads((CHART / "values.schema.json").read_text())
        config = schema["properties"]["config"]
        assert config["additionalProperties"] is False
        assert set(config["properties"]) == set(bridge_settings.Settings.model_fields)

    def test_schema_objects_are_closed(self) -> None:
        """Every object the chart defines forbids unknown keys; open ones are on a short list."""
        schema = json.loads((CHART / "values.schema.json").read_text())
        # Passed to the bridge, which validates them itself at start-up (extra="forbid").
        open_objects = {"/config/icws", "/config/kafka"}
        found_open = set()

        def walk(node: dict[str, Any], path: str) -> None:
            if "properties" in node:
                if node.get("additionalProperties") is not False:
                    found_open.add(path)
                for key, child in node["properties"].items():
                    if isinstance(child, dict):
                        walk(child, f"{path}/{key}")

        walk(schema, "")
        assert found_open == open_objects


class TestKubernetesValidate:
    @pytest.mark.parametrize("values", ["minimal", "full", "fleet"])
    @pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
    def test_manifests_are_valid_kubernetes_objects(
        self,
        render: Any,
        kubernetes_validate: str,
        tmp_path: Path,
        values: str,
        kube_version: str,
    ) -> None:
        """kubernetes-validate --strict accepts every object (unknown fields included)."""
        native = [o for o in render(ci_values(values)).objects if o["kind"] not in OPERATOR_KINDS]
        manifest = tmp_path / "manifest.yaml"
        manifest.write_text(yaml.safe_dump_all(native))
        result = run_tool([kubernetes_validate, "--strict", "-k", kube_version, str(manifest)])
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert output.count(" passed for resource ") == len(native), output
        assert "WARN" not in output

    def test_strict_validation_rejects_an_unknown_field(
        self, render: Any, kubernetes_validate: str, tmp_path: Path
    ) -> None:
        """The validation has teeth: a misspelt Deployment field fails it."""
        deployment = render(ci_values("minimal")).one("Deployment")
        deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
        manifest = tmp_path / "manifest.yaml"
        manifest.write_text(yaml.safe_dump(deployment))
        result = run_tool([kubernetes_validate, "--strict", "-k", KUBE_VERSIONS[-1], str(manifest)])
        assert result.returncode != 0
        assert "readinesProbe" in result.stdout + result.stderr


# The Prometheus Operator fields (monitoring.coreos.com/v1) the chart uses, closed, so that a
# misspelt field fails. kubernetes-validate has no schema for these CRDs.
_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["expr"],
    "properties": {
        "alert": {"type": "string"},
        "record": {"type": "string"},
        "expr": {"type": "string"},
        "for": {"type": "string", "pattern": "^[0-9]+[smhdwy]$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace", "labels"],
    "properties": {"labels": {"type": "object", "additionalProperties": {"type": "string"}}},
}
OPERATOR_SCHEMAS = {
    "PrometheusRule": {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "groups": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "rules"],
                            "properties": {
                                "name": {"type": "string"},
                                "interval": {"type": "string"},
                                "rules": {"type": "array", "minItems": 1, "items": _RULE},
                            },
                        },
                    }
                },
            },
        },
    },
    "ServiceMonitor": {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "endpoints"],
                "properties": {
                    "jobLabel": {"type": "string"},
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchLabels": {"type": "object"}},
                    },
                    "namespaceSelector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchNames": {"type": "array"}, "any": {"type": "boolean"}},
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                "scrapeTimeout": {
                                    "type": "string",
                                    "pattern": "^[0-9]+(ms|s|m|h)$",
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


class TestOperatorObjects:
    def test_optional_objects_are_off_by_default(self, render: Any) -> None:
        """The minimal release is Deployment, ConfigMap, Secret, Service and ServiceAccount."""
        assert render(ci_values("minimal")).kinds() == [
            "ConfigMap", "Deployment", "Secret", "Service", "ServiceAccount",
        ]  # fmt: skip

    def test_everything_enabled_renders_every_object(self, render: Any) -> None:
        """The full values add the ServiceMonitor, PrometheusRule, NetworkPolicy and dashboard."""
        assert render(ci_values("full")).kinds() == [
            "ConfigMap", "ConfigMap", "Deployment", "NetworkPolicy", "PrometheusRule",
            "Service", "ServiceAccount", "ServiceMonitor",
        ]  # fmt: skip

    @pytest.mark.parametrize("kind", sorted(OPERATOR_KINDS))
    def test_operator_objects_use_only_known_crd_fields(self, render: Any, kind: str) -> None:
        """ServiceMonitor and PrometheusRule match the CRD fields (apiVersion, kind, spec)."""
        jsonschema.validate(render(ci_values("full")).one(kind), OPERATOR_SCHEMAS[kind])

    def test_crd_schema_has_teeth(self, render: Any) -> None:
        """A misspelt ServiceMonitor field is caught by the CRD-field schema."""
        monitor = render(ci_values("full")).one("ServiceMonitor")
        monitor["spec"]["endpoints"][0]["scrapeTimout"] = "10s"
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(monitor, OPERATOR_SCHEMAS["ServiceMonitor"])

    def test_prometheus_rule_is_the_rule_file(self, render: Any) -> None:
        """Without extras, the PrometheusRule's groups equal files/alerts.yaml exactly."""
        values = merged(ci_values("minimal"), {"metrics": {"prometheusRule": {"enabled": True}}})
        rule = render(values).one("PrometheusRule")
        assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]

    def test_prometheus_rule_adds_rule_labels_and_runbook_base(self, render: Any) -> None:
        """Alerts get ruleLabels (severity kept) and runbook links get runbookBaseUrl in front."""
        settings = ci_values("full")["metrics"]["prometheusRule"]
        expected = yaml.safe_load(RULES.read_text())["groups"]
        for group in expected:
            for rule in group["rules"]:
                rule["labels"] = {**settings["ruleLabels"], **rule["labels"]}
                runbook = rule["annotations"]["runbook_url"]
                rule["annotations"]["runbook_url"] = settings["runbookBaseUrl"] + runbook
        rendered = render(ci_values("full")).one("PrometheusRule")
        assert rendered["spec"]["groups"] == expected
        assert rendered["metadata"]["labels"]["release"] == "prometheus"

    def test_service_monitor_scrapes_the_service_as_the_alerts_job(self, render: Any) -> None:
        """The ServiceMonitor selects the Service, its port, and names the job "icws-bridge"."""
        rendered = render(ci_values("full"))
        monitor, service = rendered.one("ServiceMonitor"), rendered.one("Service")
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
        assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
        assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
        job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
        assert job == "icws-bridge"
        assert 'job="icws-bridge"' in RULES.read_text()


class TestDeployment:
    def test_one_writer(self, render: Any) -> None:
        """One replica by default, replaced with Recreate so two bridges never share a user."""
        rendered = render(ci_values("minimal"))
        spec = rendered.one("Deployment")["spec"]
        assert spec["replicas"] == 1
        assert spec["strategy"] == {"type": "Recreate"}
        assert "PodDisruptionBudget" not in rendered.kinds()

    @pytest.mark.parametrize("values", ["minimal", "full", "fleet"])
    def test_restricted_pod_security(self, render: Any, values: str) -> None:
        """Non-root, read-only root, no escalation, no capabilities, seccomp, no API token."""
        rendered = render(ci_values(values))
        pod = rendered.one("Deployment")["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        context = rendered.container()["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert rendered.one("ServiceAccount")["automountServiceAccountToken"] is False

    def test_null_ids_leave_the_uid_to_the_platform(self, render: Any) -> None:
        """With the IDs set to null (OpenShift) the pod still must run as non-root, UID unset."""
        ids = {"runAsUser": None, "runAsGroup": None, "fsGroup": None}
        rendered = render(merged(ci_values("minimal"), {"securityContext": ids}))
        pod = rendered.one("Deployment")["spec"]["template"]["spec"]
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert "runAsUser" not in rendered.container()["securityContext"]

    @pytest.mark.parametrize("values", ["minimal", "fleet"])
    def test_tmp_is_the_only_writable_mount(self, render: Any, values: str) -> None:
        """/tmp is a size-limited emptyDir; config, secrets and accounts are mounted read-only."""
        rendered = render(ci_values(values))
        pod = rendered.one("Deployment")["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in rendered.container()["volumeMounts"]}
        assert volumes[mounts["/tmp"]["name"]]["emptyDir"] == {"sizeLimit": "64Mi"}
        writable = {path for path, mount in mounts.items() if not mount.get("readOnly")}
        assert writable == {"/tmp"}

    def test_probes_and_resources(self, render: Any) -> None:
        """Startup and liveness use /livez, readiness /readyz, on the health port; resources set."""
        container = render(ci_values("minimal")).container()
        assert container["startupProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert container["resources"]["requests"]["memory"]
        assert container["resources"]["limits"]["memory"]

    def test_runs_bridge_run_with_a_long_enough_grace_period(self, render: Any) -> None:
        """The image's entrypoint runs with `run`; SIGTERM has 40 s for flush plus logout."""
        rendered = render(ci_values("minimal"))
        assert rendered.container()["args"] == ["run"]
        assert "command" not in rendered.container()
        pod = rendered.one("Deployment")["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] == 40

    def test_health_port_moves_everything_together(self, render: Any) -> None:
        """health.port sets the container port, the env, the Service and the NetworkPolicy."""
        rendered = render(ci_values("full"))
        assert rendered.env()["BRIDGE_HEALTH__PORT"] == "9090"
        assert rendered.container()["ports"][0]["containerPort"] == 9090
        assert rendered.one("Service")["spec"]["ports"][0]["port"] == 9090
        policy = rendered.one("NetworkPolicy")["spec"]
        assert policy["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]

    def test_image_defaults_to_app_version_and_digest_wins(self, render: Any) -> None:
        """No tag means the chart's appVersion; a digest pins the image instead of a tag."""
        app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
        assert render(ci_values("minimal")).container()["image"] == f"icws-bridge:{app_version}"
        full = ci_values("full")["image"]
        assert render(ci_values("full")).container()["image"] == (
            f"{full['repository']}@{full['digest']}"
        )

    def test_config_and_secret_changes_roll_the_pod(self, render: Any) -> None:
        """The pod template's checksums change with bridge.yaml and with the chart's Secret."""

        def annotations(patch: dict[str, Any]) -> dict[str, str]:
            deployment = render(merged(ci_values("minimal"), patch)).one("Deployment")
            found: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
            return found

        base = annotations({})
        new_config = annotations({"config": {"log": {"level": "DEBUG"}}})
        new_password = annotations({"icws": {"password": "rotated"}})
        assert new_config["checksum/config"] != base["checksum/config"]
        assert new_config["checksum/secret"] == base["checksum/secret"]
        assert new_password["checksum/secret"] != base["checksum/secret"]
        assert new_password["checksum/config"] == base["checksum/config"]


class TestSettingsWiring:
    def test_secret_holds_one_file_per_secret_setting(self, render: Any) -> None:
        """The chart's Secret has icws__password, and kafka__sasl_password only when given."""
        values = merged(ci_values("minimal"), {"kafka": {"saslPassword": "k-secret"}})
        for given, keys in ((ci_values("minimal"), {"icws__password"}),
                            (values, {"icws__password", "kafka__sasl_password"})):  # fmt: skip
            secret = render(given).one("Secret")
            assert set(secret["data"]) == keys
            decoded = base64.b64decode(secret["data"]["icws__password"]).decode()
            assert decoded == given["icws"]["password"]

    def test_existing_secret_is_mounted_instead(self, render: Any) -> None:
        """With existingSecret no Secret is rendered and that Secret is mounted for the bridge."""
        rendered = render(ci_values("full"))
        assert "Secret" not in rendered.kinds()
        pod = rendered.one("Deployment")["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert volumes["secrets"]["secret"]["secretName"] == "icws-bridge-credentials"
        annotations = rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
        assert "checksum/secret" not in annotations

    @pytest.mark.parametrize("values", ["minimal", "full", "fleet"])
    def test_configmap_is_the_config_values(self, render: Any, values: str) -> None:
        """bridge.yaml in the ConfigMap is .Values.config, key for key."""
        rendered = render(ci_values(values))
        configmaps = [o for o in rendered.objects if o["kind"] == "ConfigMap"]
        config = next(c for c in configmaps if "bridge.yaml" in c["data"])
        assert yaml.safe_load(config["data"]["bridge.yaml"]) == merged(
            yaml.safe_load((CHART / "values.yaml").read_text())["config"],
            ci_values(values)["config"],
        )

    @pytest.mark.parametrize("values", ["minimal", "full"])
    def test_bridge_loads_the_rendered_config_and_env(
        self, render: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, values: str
    ) -> None:
        """The bridge's own settings loader accepts the ConfigMap and env the chart renders."""
        rendered = render(ci_values(values))
        materialise(rendered, tmp_path, {}, monkeypatch)
        monkeypatch.setenv("BRIDGE_ICWS__PASSWORD", "from-env")
        monkeypatch.setenv("BRIDGE_KAFKA__SASL_PASSWORD", "from-env")
        loaded = bridge_settings.load_settings()
        config = ci_values(values)["config"]
        assert loaded.icws.username == config["icws"]["username"]
        assert loaded.health.port == int(rendered.env()["BRIDGE_HEALTH__PORT"])
        assert len(loaded.icws.servers) == 2

    def test_a_web_proxy_base_path_is_a_server(
        self, render: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``https://proxy/api/<icserver>`` passes the schema and reaches the bridge as given."""
        proxied = {"config": {"icws": {"servers": ["https://proxy.example.com/api/ic1"]}}}
        materialise(render(merged(ci_values("minimal"), proxied)), tmp_path, {}, monkeypatch)
        monkeypatch.setenv("BRIDGE_ICWS__PASSWORD", "from-env")
        loaded = bridge_settings.load_settings()
        assert [str(url) for url in loaded.icws.servers] == ["https://proxy.example.com/api/ic1"]

    def test_bridge_reads_the_mounted_secret_files(
        self, render: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The bridge reads its passwords from the Secret's files as the chart mounts them."""
        files = {"icws__password": "icws-pw", "kafka__sasl_password": "sasl-pw"}
        materialise(render(ci_values("full")), tmp_path, files, monkeypatch)
        loaded = bridge_settings.load_settings()
        assert loaded.icws.password.get_secret_value() == "icws-pw"
        assert loaded.kafka.sasl_password is not None
        assert loaded.kafka.sasl_password.get_secret_value() == "sasl-pw"


class TestSchemaBaseUrl:
    """Events point their dataschema at the release's own Service, where /schemas/ is served."""

    @pytest.mark.parametrize(
        ("values", "expected"),
        [
            ("minimal", "http://ops-bridge-icws-bridge.contact-center.svc:8080/schemas"),
            ("full", "http://ops-bridge-icws-bridge.contact-center.svc:9090/schemas"),
        ],
    )
    def test_env_is_the_service_address(self, render: Any, values: str, expected: str) -> None:
        """BRIDGE_EVENTS__SCHEMA_BASE_URL is http://<Service>.<namespace>.svc:<port>/schemas."""
        rendered = render(ci_values(values))
        service = rendered.one("Service")
        assert rendered.env()["BRIDGE_EVENTS__SCHEMA_BASE_URL"] == expected
        assert expected.startswith(f"http://{service['metadata']['name']}.{NAMESPACE}.svc:")
        assert expected.endswith(f":{service['spec']['ports'][0]['port']}/schemas")

    def test_bridge_publishes_dataschema_on_the_service(
        self, render: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Settings loaded from the render give dataschema <Service URL>/schemas/<type>.v1.json."""
        materialise(render(ci_values("minimal")), tmp_path, {}, monkeypatch)
        monkeypatch.setenv("BRIDGE_ICWS__PASSWORD", "from-env")
        loaded = bridge_settings.load_settings()
        contract = contract_from(loaded.events, loaded.topics)
        assert contract.schema_of("status.message.added") == (
            "http://ops-bridge-icws-bridge.contact-center.svc:8080/schemas/status.message.added.v1.json"
        )

    def test_config_value_wins_over_the_service_default(
        self, render: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """config.events.schema_base_url set: no env override, the bridge uses the config value."""
        base = "https://schemas.example.com/icws"
        values = merged(ci_values("minimal"), {"config": {"events": {"schema_base_url": base}}})
        rendered = render(values)
        assert "BRIDGE_EVENTS__SCHEMA_BASE_URL" not in rendered.env()
        materialise(rendered, tmp_path, {}, monkeypatch)
        monkeypatch.setenv("BRIDGE_ICWS__PASSWORD", "from-env")
        assert bridge_settings.load_settings().events.schema_base_url == base


class TestExtras:
    def test_dashboard_configmap_carries_the_dashboard(self, render: Any) -> None:
        """The dashboard ConfigMap has the sidecar label and the dashboard file unchanged."""
        rendered = render(ci_values("full"))
        board = next(o for o in rendered.objects if o["metadata"]["name"].endswith("-dashboard"))
        assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert board["metadata"]["namespace"] == "monitoring"
        assert json.loads(board["data"]["icws-bridge.json"]) == json.loads(DASHBOARD.read_text())

    def test_network_policy_allows_only_dns_icws_and_kafka_out(self, render: Any) -> None:
        """Egress is DNS (53), ICWS (8018/8019) and Kafka ports only; ingress the health port."""
        policy = render(ci_values("full")).one("NetworkPolicy")["spec"]
        assert policy["policyTypes"] == ["Ingress", "Egress"]
        ports = [sorted(p["port"] for p in rule["ports"]) for rule in policy["egress"]]
        assert ports == [[53, 53], [8018, 8019], [9093]]
        assert all(rule.get("to") for rule in policy["egress"])
        assert len(policy["ingress"]) == 1

    def test_notes_tell_how_to_check_the_release(self, render: Any) -> None:
        """NOTES.txt names the Deployment, the readiness endpoint and the ICWS user."""
        rendered = render(ci_values("minimal"))
        assert f"deployment/{RELEASE}-icws-bridge" in rendered.notes
        assert "/readyz" in rendered.notes
        assert '"icws-bridge"' in rendered.notes

    def test_chart_metadata(self) -> None:
        """Chart.yaml is apiVersion v2 and its appVersion is the bridge's version."""
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
        assert chart["apiVersion"] == "v2"
        assert chart["type"] == "application"
        version_file = (CHART.parents[1] / "bridge" / "__init__.py").read_text()
        assert f'__version__ = "{chart["appVersion"]}"' in version_file
