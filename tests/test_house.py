"""The house rules that keep the code readable: small modules and functions, checked each run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BRIDGE = Path(__file__).resolve().parents[1] / "bridge"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50
# Declarative tables written as one call (every metric; the AsyncAPI channels of the commands):
# long because they list, not because they branch.
TABLES = {("metrics.py", "create"), ("core/asyncapi.py", "command_channels")}


def modules() -> list[Path]:
    return sorted(BRIDGE.rglob("*.py"))


@pytest.mark.parametrize("module", modules(), ids=lambda p: str(p.relative_to(BRIDGE)))
def test_module_is_small(module: Path) -> None:
    """Every module of the bridge (simulator included) stays within 400 lines."""
    assert len(module.read_text().splitlines()) <= MAX_MODULE_LINES


def test_functions_are_small() -> None:
    """No function is over 50 lines, except the declarative tables named above."""
    long = []
    for module in modules():
        name = str(module.relative_to(BRIDGE))
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES and (name, node.name) not in TABLES:
                    long.append(f"{name}:{node.lineno} {node.name} ({length} lines)")
    assert long == []
