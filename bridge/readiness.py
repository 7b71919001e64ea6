"""Readiness as values: each part of the bridge says, by name, whether it is ready and why not."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Check:
    """One named readiness check: ok, and a short detail for people."""

    ok: bool
    detail: str = ""
