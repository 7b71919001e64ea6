"""asyncapi.json passes the official AsyncAPI parser (npm @asyncapi/parser), which has teeth.

``tests/asyncapi/check.js`` parses a document with the parser pinned in
``tests/asyncapi/package-lock.json`` (``make test`` runs ``npm ci`` there) and exits non-zero,
listing them, on diagnostics of severity error. Without node or the parser these tests fail,
saying what to install; they are never skipped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bridge import schema_files

from .conftest import REPO, find_tool, missing, run_tool

CHECKER = REPO / "tests" / "asyncapi"


@pytest.fixture(name="check_asyncapi", scope="module")
def _check_asyncapi() -> list[str]:
    """The argv prefix that runs the parser check on one file."""
    node = find_tool("node", "apt-get install nodejs npm")
    if not (CHECKER / "node_modules" / "@asyncapi" / "parser" / "package.json").is_file():
        missing("npm package @asyncapi/parser", f"cd {CHECKER} && npm ci --ignore-scripts")
    return [node, str(CHECKER / "check.js")]


def schemas_copy(tmp_path: Path) -> Path:
    """The shipped schema files in a directory of their own, to break one without touching them."""
    copy = tmp_path / "schemas"
    shutil.copytree(schema_files.SCHEMA_DIR, copy)
    return copy


def test_committed_document_parses_without_errors(check_asyncapi: list[str]) -> None:
    """bridge/schemas/asyncapi.json, with every payload $ref resolved, is valid AsyncAPI 3.0.0."""
    result = run_tool([*check_asyncapi, str(schema_files.SCHEMA_DIR / schema_files.ASYNCAPI)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid AsyncAPI 3.0.0" in result.stdout
    assert "error" not in result.stderr


def test_an_invalid_document_fails_naming_the_error(
    check_asyncapi: list[str], tmp_path: Path
) -> None:
    """An operation with an action AsyncAPI 3 does not have ("publish") exits 1 naming it."""
    copy = schemas_copy(tmp_path)
    document = json.loads((copy / schema_files.ASYNCAPI).read_text())
    document["operations"]["publish_alerting"]["action"] = "publish"
    (copy / schema_files.ASYNCAPI).write_text(json.dumps(document))
    result = run_tool([*check_asyncapi, str(copy / schema_files.ASYNCAPI)])
    assert result.returncode == 1
    assert "operations/publish_alerting/action" in result.stderr


def test_a_payload_ref_to_a_missing_schema_fails(check_asyncapi: list[str], tmp_path: Path) -> None:
    """A message whose payload $ref names no file exits 1 with an invalid-ref error."""
    copy = schemas_copy(tmp_path)
    (copy / "status.message.added.v1.json").unlink()
    result = run_tool([*check_asyncapi, str(copy / schema_files.ASYNCAPI)])
    assert result.returncode == 1
    assert "status.message.added.v1" in result.stderr
    assert "[invalid-ref]" in result.stderr


def test_without_node_and_root_make_stops_naming_the_fix(tmp_path: Path) -> None:
    """Not root, promtool present, no node: `make tools` fails at once naming nodejs and npm."""
    for name, script in (("id", "echo 1000"), ("promtool", "exit 0")):
        shim = tmp_path / name
        shim.write_text(f"#!/bin/sh\n{script}\n")
        shim.chmod(0o755)
    make = shutil.which("make")
    assert make is not None
    result = run_tool([make, "-s", "tools"], cwd=REPO, env={"PATH": str(tmp_path)})
    assert result.returncode != 0
    assert "sudo apt-get install nodejs npm" in result.stderr
    assert "prometheus" not in result.stderr
