"""The simulator implements the protocol on its own: it never imports the rest of the bridge."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import bridge.simulator

PACKAGE = Path(bridge.simulator.__file__).parent


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import statement in a source file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_no_imports_from_the_rest_of_bridge() -> None:
    """No simulator module imports `bridge` absolutely or reaches above its package."""
    offenders = [
        f"{path.name}: {'.' * level}{module}"
        for path in sorted(PACKAGE.glob("*.py"))
        for level, module in imported_modules(path)
        if level > 1 or (level == 0 and module.split(".")[0] == "bridge")
    ]
    assert offenders == []


def test_runtime_dependencies_are_aiohttp_and_stdlib() -> None:
    """Besides its own modules the simulator uses only aiohttp and the standard library."""
    third_party = {
        module.split(".")[0]
        for path in PACKAGE.glob("*.py")
        for level, module in imported_modules(path)
        if level == 0 and module.split(".")[0] not in sys.stdlib_module_names
    }
    assert third_party <= {"aiohttp"}
