"""The ``bridge schemas`` command line: list, print one, write all, and check a copy.

Each test runs ``python -m bridge schemas`` as a process, as a user or CI would. The expected
file names are the README's contract (one schema per event and command type, and the AsyncAPI
document), written out here rather than asked of the code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = sorted(
    [
        "asyncapi.json",
        *(
            f"{name}.v1.json"
            for name in (
                "interaction.alerting.started",
                "interaction.alerting.changed",
                "interaction.alerting.stopped",
                "interaction.history.recorded",
                "interaction.history.updated",
                "status.message.added",
                "status.message.changed",
                "status.message.removed",
                "assistance.request.opened",
                "assistance.request.updated",
                "assistance.request.closed",
                "bridge.session.up",
                "bridge.session.down",
                "bridge.gap.possible",
                "bridge.resync.completed",
                "command.assistance.update",
                "command.assistance.complete",
                "command.result",
            )
        ),
    ]
)


def schemas_cli(*args: str, package_root: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``bridge schemas ARGS`` with the ``bridge`` package found under ``package_root``."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run(  # noqa: S603 - this interpreter and fixed arguments, no shell
        [sys.executable, "-m", "bridge", "schemas", *args],
        cwd=package_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def package_copy(tmp_path: Path) -> Path:
    """A private copy of the ``bridge`` package (with its committed schemas) to tamper with."""
    shutil.copytree(
        ROOT / "bridge", tmp_path / "bridge", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def test_without_arguments_it_lists_every_file() -> None:
    """With no arguments it prints each schema file name, one per line, and nothing else."""
    result = schemas_cli()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == EXPECTED


def test_a_name_prints_that_schema_as_valid_json() -> None:
    """``NAME`` prints one JSON Schema (2020-12) that titles the type it describes."""
    result = schemas_cli("status.message.added.v1.json")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "status.message.added.v1" in json.dumps(schema)
    assert (
        result.stdout == (ROOT / "bridge" / "schemas" / "status.message.added.v1.json").read_text()
    )


def test_an_unknown_name_fails_naming_the_choices() -> None:
    """An unknown NAME exits non-zero and lists the names that exist."""
    result = schemas_cli("no.such.type.v1.json")
    assert result.returncode != 0
    assert "no schema named no.such.type.v1.json" in result.stderr
    assert "asyncapi.json" in result.stderr


def test_out_writes_every_file(tmp_path: Path) -> None:
    """``--out DIR`` writes exactly the listed files, each JSON equal to the committed one."""
    out = tmp_path / "schemas"
    result = schemas_cli("--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == EXPECTED
    for name in EXPECTED:
        text = (out / name).read_text()
        json.loads(text)
        assert text == (ROOT / "bridge" / "schemas" / name).read_text(), name


def test_check_passes_on_an_untouched_copy(tmp_path: Path) -> None:
    """``--check`` exits 0 and says nothing when the copy's schemas match the code."""
    root = package_copy(tmp_path)
    result = schemas_cli("--check", package_root=root)
    assert (result.returncode, result.stderr) == (0, "")


def test_check_fails_on_a_tampered_copy_naming_each_problem(tmp_path: Path) -> None:
    """``--check`` exits 1 naming the edited, the deleted and the extra file, and how to fix it."""
    root = package_copy(tmp_path)
    schemas = root / "bridge" / "schemas"
    edited = schemas / "status.message.added.v1.json"
    edited.write_text(edited.read_text().replace('"type": "object"', '"type": "array"', 1))
    (schemas / "command.result.v1.json").unlink()
    (schemas / "made.up.v1.json").write_text("{}\n")
    result = schemas_cli("--check", package_root=root)
    assert result.returncode == 1
    assert "stale: status.message.added.v1.json" in result.stderr
    assert "missing: command.result.v1.json" in result.stderr
    assert "not generated: made.up.v1.json" in result.stderr
    assert "bridge schemas --out" in result.stderr
