"""The settings as documents: ``config/example.env`` and the README's table, from the model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr

from bridge.settings import Settings
from bridge.settings_base import env_name


def _walk(model: type[BaseModel], prefix: str) -> list[tuple[str, Any, str]]:
    rows: list[tuple[str, Any, str]] = []
    for name, info in model.model_fields.items():
        dotted = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _walk(annotation, f"{dotted}.")
            continue
        default = info.get_default(call_default_factory=True)
        rows.append((dotted, default, info.description or ""))
    return rows


def setting_rows() -> list[tuple[str, Any, str]]:
    """Every leaf setting as (dotted name, default, description), in declaration order."""
    return _walk(Settings, "")


def _env_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def example_env() -> str:
    """The text of ``config/example.env``: every setting with its default, commented out."""
    lines = [
        "# Every setting of icws-bridge as an environment variable, with its default.",
        "# Generated from bridge/settings.py (a test keeps it in step). Nested names join with",
        "# '__'. Secrets may instead be files in BRIDGE_SECRETS_DIR named like icws__password.",
        "# BRIDGE_CONFIG_FILE=config/bridge.yaml",
        "# BRIDGE_SECRETS_DIR=/var/run/secrets/icws-bridge",
    ]
    for dotted, default, description in setting_rows():
        if description:
            lines.append(f"# {description}")
        lines.append(f"# {env_name(dotted)}={_env_value(default)}")
    return "\n".join(lines) + "\n"


def settings_table() -> str:
    """The README's settings table (Markdown), generated so it cannot drift from the code."""
    lines = ["| Environment variable | Default | Meaning |", "|---|---|---|"]
    for dotted, default, description in setting_rows():
        shown = _env_value(default)
        lines.append(f"| `{env_name(dotted)}` | `{shown}` | {description} |".replace("``", "—"))
    return "\n".join(lines)
