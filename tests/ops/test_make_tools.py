"""`make test`'s tool step: a machine without promtool gets it installed, or one clear command."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import REPO, run_tool


def test_without_promtool_and_root_make_stops_naming_the_fix(tmp_path: Path) -> None:
    """Not root, no promtool, no apt-get: `make tools` fails at once with the one command to run."""
    shim = tmp_path / "id"
    shim.write_text("#!/bin/sh\necho 1000\n")
    shim.chmod(0o755)
    make = shutil.which("make")
    assert make is not None
    result = run_tool([make, "-s", "tools"], cwd=REPO, env={"PATH": str(tmp_path)})
    assert result.returncode != 0
    assert "sudo apt-get install prometheus" in result.stderr


def test_with_promtool_make_tools_does_nothing() -> None:
    """Where promtool is on the PATH, the tool step installs nothing and succeeds silently."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "make test installs promtool before the tests run"
    make = shutil.which("make")
    assert make is not None
    result = run_tool([make, "-s", "tools"], cwd=REPO)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
