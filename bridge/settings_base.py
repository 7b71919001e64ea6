"""Building blocks of the settings: group base, bounded numbers, env names, error text."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


def split_commas(value: Any) -> Any:
    """A comma-separated string as a list: the natural way to give a list in one env var."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def env_name(dotted: str) -> str:
    """The environment variable that sets a dotted setting name."""
    return "BRIDGE_" + dotted.replace(".", "__").upper()


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the setting and its env variable, never echoing values."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        dotted = ".".join(str(part) for part in error["loc"])
        # A list item's index is part of the setting's name, not of its variable.
        named = ".".join(str(p) for p in error["loc"] if not isinstance(p, int))
        lines.append(f"{dotted} (env {env_name(named)}): {error['msg']}")
    return "invalid settings: " + "; ".join(lines)
