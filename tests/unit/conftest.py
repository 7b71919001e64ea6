"""Fixtures shared by the pure-core unit tests: the event contract and a fixed clock reading."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.core.events import Contract
from bridge.core.messages import AGGREGATES


@pytest.fixture(name="contract")
def _contract() -> Contract:
    """A contract with recognisable, non-default names, so nothing passes by coincidence."""
    return Contract(
        type_prefix="com.example.icws",
        source="/tests/icws-bridge",
        schema_base="https://schemas.example.com/events",
        event_topics={a: f"test.{a}.events" for a in AGGREGATES},
        state_topics={a: f"test.{a}.state" for a in AGGREGATES},
        lifecycle_topic="test.lifecycle",
    )


@pytest.fixture(name="recorded")
def _recorded() -> datetime:
    """When the bridge saw the message: a fixed, timezone-aware moment."""
    return datetime(2024, 1, 5, 14, 30, 0, 123456, tzinfo=UTC)
