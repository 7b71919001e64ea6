"""Record keys name whose view of which entity: ``<user>/<entity>``, and split back exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.core import events
from bridge.core.events import Scope

# Text UTF-8 can hold (no lone surrogates), weighted towards what keys must quote.
TEXT = st.text(st.characters(exclude_categories=["Cs"]) | st.sampled_from("/% .~"))


class TestKeys:
    """README: per-user keys are ``<user>/<entity>``, the user percent-encoded; else the entity."""

    @pytest.mark.parametrize(
        ("user", "aggregate", "entity", "key"),
        [
            ("agent.one", "alerting", "1001", b"agent.one/1001"),
            ("agent.one", "history", "1001", b"agent.one/1001"),
            ("agent.one", "assistance", "a1", b"agent.one/a1"),
            ("a/b", "alerting", "1001", b"a%2Fb/1001"),
            ("50%", "alerting", "1001", b"50%25/1001"),
            ("J Smith", "alerting", "1001", b"J%20Smith/1001"),
            ("Zoë", "alerting", "1001", b"Zo%C3%AB/1001"),
            ("agent.one", "alerting", "x/y", b"agent.one/x/y"),
            ("agent.one", "session", "session", b"agent.one/session"),
            ("agent.one", "status_messages", "available", b"available"),
            ("agent.one", "status_messages", "a/b", b"a/b"),
            (None, "alerting", "1001", b"1001"),
        ],
    )
    def test_the_key_table(
        self, user: str | None, aggregate: Scope, entity: str, key: bytes
    ) -> None:
        """Each key as the README writes it, and split_key gives back user and entity."""
        assert events.entity_key(user, aggregate, entity) == key
        owner = user if aggregate != "status_messages" else None
        assert events.split_key(aggregate, key) == (owner, entity)

    @given(user=TEXT.filter(bool), entity=TEXT)
    def test_any_user_and_entity_round_trip(self, user: str, entity: str) -> None:
        """Whatever the user id holds (``/``, ``%``, spaces), the key splits back exactly."""
        key = events.entity_key(user, "assistance", entity)
        assert events.split_key("assistance", key) == (user, entity)

    def test_a_key_without_a_user_is_from_before_users(self) -> None:
        """A per-user aggregate's key with no ``/`` (written before #14) names no user."""
        assert events.split_key("alerting", b"1001") == (None, "1001")
