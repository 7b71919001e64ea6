"""The Dockerfile: lint-clean, the runtime contract the chart relies on, a working HEALTHCHECK.

There is no Docker engine here, so the image is not built: these tests read the Dockerfile and
.dockerignore, run hadolint on it, and run its HEALTHCHECK command against a local HTTP server.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, DOCKERFILE, REPO, run_tool

HADOLINT_CONFIG = Path(__file__).with_name("hadolint.yaml")
# Tooling that stays out of the service image.
TOOLING = ("bridge/simulator/", "bridge/demo.py", "bridge/embedded_broker.py")


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    return result


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, split at FROM."""
    found: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, args))
    return found


def one(stage: list[tuple[str, str]], keyword: str) -> str:
    values = [args for key, args in stage if key == keyword]
    assert len(values) == 1, f"{keyword}: {values}"
    return values[0]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, args in stage:
        if key == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    return env


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore pattern syntax (Go filepath.Match plus **) as a regex."""
    pattern = os.path.normpath(pattern.strip("/"))
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1].replace("[!", "[^"), end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def in_build_context(path: str, ignore_text: str) -> bool:
    """Whether Docker sends `path` (relative to the repo) with the build context."""
    rules = []
    for line in ignore_text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, dockerignore_regex(line.lstrip("!"))))
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for negated, regex in rules:  # the last matching rule wins; a match on a parent counts
        if any(regex.match(candidate) for candidate in candidates):
            included = negated
    return included


def copy_sources(stage: list[tuple[str, str]]) -> list[str]:
    sources = []
    for key, args in stage:
        if key == "COPY" and "--from=" not in args:
            sources.extend(args.split()[:-1])
    return sources


@pytest.fixture(name="dockerfile")
def _dockerfile() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(name="chart_values")
def _chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


class TestHadolint:
    def test_dockerfile_has_no_findings(self, hadolint: str) -> None:
        """The linter reports nothing at all (style included), and no rule is ignored."""
        result = run_tool(
            [hadolint, "--config", str(HADOLINT_CONFIG), "--format", "json", str(DOCKERFILE)]
        )
        assert json.loads(result.stdout or "[]") == []
        assert result.returncode == 0, result.stderr
        assert "hadolint ignore" not in DOCKERFILE.read_text()

    def test_hadolint_flags_a_careless_dockerfile(self, hadolint: str, tmp_path: Path) -> None:
        """The lint has teeth: an unpinned base and an unpinned pip install are reported."""
        careless = tmp_path / "Dockerfile"
        careless.write_text("FROM python:latest\nRUN pip install requests\n")
        result = run_tool(
            [hadolint, "--config", str(HADOLINT_CONFIG), "--format", "json", str(careless)]
        )
        codes = {finding["code"] for finding in json.loads(result.stdout)}
        assert {"DL3007", "DL3013", "DL3042"} <= codes
        assert result.returncode != 0


class TestRuntimeContract:
    def test_build_is_multi_stage_from_slim_python_311(self, dockerfile: str) -> None:
        """A build stage installs; the runtime stage starts again from the same slim 3.11 base."""
        assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.MULTILINE)
        build, runtime = stages(dockerfile)
        assert one(build, "FROM") == "${PYTHON_IMAGE} AS build"
        assert one(runtime, "FROM") == "${PYTHON_IMAGE} AS runtime"
        assert one(runtime, "COPY") == "--from=build /opt/venv /opt/venv"

    def test_install_uses_the_pinned_constraints(self, dockerfile: str) -> None:
        """Every dependency version comes from the pins: `pip install -c constraints.txt .`."""
        build = stages(dockerfile)[0]
        installs = [args for key, args in build if key == "RUN" and "pip install" in args]
        assert len(installs) == 1
        assert re.search(r"pip install --no-cache-dir -c constraints\.txt \.(\s|$)", installs[0])

    def test_runs_bridge_run_as_numeric_non_root_user(
        self, dockerfile: str, chart_values: dict[str, Any]
    ) -> None:
        """Exec-form `bridge run` as UID 10001, the same UID/GID the chart runs the pod as."""
        runtime = stages(dockerfile)[-1]
        assert json.loads(one(runtime, "ENTRYPOINT")) == ["bridge"]
        assert json.loads(one(runtime, "CMD")) == ["run"]
        assert one(runtime, "STOPSIGNAL") == "SIGTERM"
        user, group = one(runtime, "USER").split(":")
        assert int(user) == chart_values["securityContext"]["runAsUser"] != 0
        assert int(group) == chart_values["securityContext"]["runAsGroup"]
        scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
        assert "bridge" in scripts

    def test_read_only_root_filesystem_settings(
        self, dockerfile: str, chart_values: dict[str, Any]
    ) -> None:
        """No .pyc writes, temp files in /tmp, the chart's config path and health port."""
        runtime = stages(dockerfile)[-1]
        env = env_of(runtime)
        assert env["PYTHONDONTWRITEBYTECODE"] == "1"
        assert env["PYTHONUNBUFFERED"] == "1"
        assert env["TMPDIR"] == "/tmp"
        assert env["BRIDGE_CONFIG_FILE"] == "/etc/icws-bridge/bridge.yaml"
        port = chart_values["health"]["port"]
        assert env["BRIDGE_HEALTH__PORT"] == str(port)
        assert one(runtime, "EXPOSE") == str(port)

    def test_oci_labels(self, dockerfile: str) -> None:
        """The runtime image carries the OCI title, version, revision and created labels."""
        labels = " ".join(args for key, args in stages(dockerfile)[-1] if key == "LABEL")
        for name in ("title", "description", "version", "revision", "created", "licenses"):
            assert f"org.opencontainers.image.{name}=" in labels


class TestBuildContext:
    def test_copy_sources_exist_and_are_in_the_context(self, dockerfile: str) -> None:
        """Everything the Dockerfile copies exists and .dockerignore lets it through."""
        ignore = (REPO / ".dockerignore").read_text()
        sources = copy_sources(stages(dockerfile)[0])
        assert {"constraints.txt", "pyproject.toml", "README.md", "bridge/"} <= set(sources)
        for source in sources:
            assert (REPO / source).exists(), f"{source} is copied but does not exist"
            assert in_build_context(source.rstrip("/"), ignore), source
        for module in (REPO / "bridge").rglob("*.py"):
            relative = module.relative_to(REPO).as_posix()
            if "__pycache__" not in relative and not relative.startswith(TOOLING):
                assert in_build_context(relative, ignore), relative

    @pytest.mark.parametrize(
        "path",
        [
            ".git/HEAD",
            ".venv/bin/python",
            "tests/ops/test_dockerfile.py",
            "helm/icws-bridge/values.yaml",
            "docs/operations.md",
            "Dockerfile",
            "bridge/__pycache__/metrics.cpython-311.pyc",
            "bridge/core/__pycache__/state.cpython-311.pyc",
            "bridge/stray.pyc",
            "icws_bridge.egg-info/PKG-INFO",
            "bridge/simulator/server.py",
            "bridge/demo.py",
            "bridge/embedded_broker.py",
        ],
    )
    def test_context_leaves_out_everything_else(self, path: str) -> None:
        """The context is an allow-list: metadata, tests, caches, charts and tooling stay out."""
        assert not in_build_context(path, (REPO / ".dockerignore").read_text())


@pytest.fixture(name="image_package")
def _image_package(tmp_path: Path) -> Path:
    """The ``bridge`` package as the image gets it: only the files the build context holds."""
    ignore = (REPO / ".dockerignore").read_text()
    for module in (REPO / "bridge").rglob("*"):
        relative = module.relative_to(REPO).as_posix()
        if module.is_file() and in_build_context(relative, ignore):
            target = tmp_path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(module.read_bytes())
    return tmp_path


# The checkout's editable install would still find the tooling modules: drop its finder, so
# the interpreter sees only the image's package, as a regular (non-editable) install does.
_AS_INSTALLED = (
    "import runpy, sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
    "sys.argv[0] = 'bridge'; runpy.run_module('bridge', run_name='__main__')"
)


def run_image_cli(package: Path, *args: str) -> Any:
    """Run ``bridge ARGS`` with only the image's package importable as ``bridge``."""
    env = {**os.environ, "PYTHONPATH": str(package)}
    return run_tool([sys.executable, "-c", _AS_INSTALLED, *args], env=env, cwd=package)


class TestServiceOnly:
    def test_image_package_offers_only_the_service_commands(self, image_package: Path) -> None:
        """Without the simulator and the demo, `bridge --help` lists run and schemas only."""
        assert not (image_package / "bridge" / "simulator").exists()
        helped = run_image_cli(image_package, "--help")
        assert helped.returncode == 0, helped.stderr
        listed = {line.split()[0] for line in helped.stdout.splitlines() if line.startswith("    ")}
        assert {"run", "schemas"} <= listed
        assert not listed & {"demo", "simulate"}

    def test_demo_is_refused_clearly_in_the_image(self, image_package: Path) -> None:
        """`bridge demo` in the image is not offered: argparse names the valid choices."""
        refused = run_image_cli(image_package, "demo")
        assert refused.returncode == 2
        assert "invalid choice: 'demo'" in refused.stderr

    def test_schema_check_runs_in_the_image(self, image_package: Path) -> None:
        """The image's own build step, `bridge schemas --check`, passes with the service alone."""
        checked = run_image_cli(image_package, "schemas", "--check")
        assert checked.returncode == 0, checked.stderr

    def test_run_imports_no_tooling(self) -> None:
        """Building the CLI for `bridge run` in a checkout loads no simulator, broker or demo."""
        probe = (
            "import sys; from bridge.__main__ import build_parser; build_parser('run'); "
            "print(' '.join(m for m in sys.modules if m.startswith('bridge')))"
        )
        loaded = run_tool([sys.executable, "-c", probe]).stdout.split()
        assert "bridge.__main__" in loaded
        tooling = ("bridge.simulator", "bridge.demo", "bridge.embedded_broker")
        assert not [m for m in loaded if m.startswith(tooling)]


class _Livez(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/livez" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture(name="livez_server")
def _livez_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Livez)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def run_healthcheck(dockerfile: str, port: int) -> int:
    """Run the HEALTHCHECK's exec-form command here, with this interpreter as `python`."""
    healthcheck = one(stages(dockerfile)[-1], "HEALTHCHECK")
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"
    env = {**os.environ, "BRIDGE_HEALTH__PORT": str(port)}
    return run_tool([sys.executable, *command[1:]], env=env).returncode


class TestHealthcheck:
    def test_healthy_when_livez_answers_200(
        self, dockerfile: str, livez_server: ThreadingHTTPServer
    ) -> None:
        """The HEALTHCHECK command exits 0 while /livez answers 200."""
        assert run_healthcheck(dockerfile, livez_server.server_address[1]) == 0

    def test_unhealthy_when_livez_answers_503(
        self,
        dockerfile: str,
        livez_server: ThreadingHTTPServer,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The HEALTHCHECK command exits non-zero when /livez answers an error."""
        monkeypatch.setattr(_Livez, "status", 503)
        assert run_healthcheck(dockerfile, livez_server.server_address[1]) != 0

    def test_unhealthy_when_nothing_listens(
        self, dockerfile: str, livez_server: ThreadingHTTPServer
    ) -> None:
        """The HEALTHCHECK command exits non-zero when the health port is closed."""
        port = livez_server.server_address[1]
        livez_server.shutdown()
        livez_server.server_close()
        assert run_healthcheck(dockerfile, port) != 0
