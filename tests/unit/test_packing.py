"""The state cache holds each entity compactly and gives back exactly the properties it got."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core import packing
from bridge.core.packing import Cache, keep

from .test_encoding import plain, wide_values

ALERT = {
    "interactionId": "100123456780170101",
    "interactionType": "Call",
    "name": "John Smith",
    "address": "+13175550100",
    "alertType": "AcdUser",
    "alertAction": "StartAlerting",
    "autoAnswer": False,
    "monitoredQueue": {"queueType": "Workgroup", "queueName": "Support"},
    "attributes": {"Eic_CallDirection": "I", "Eic_RemoteName": "John Smith"},
}
props_of_any_kind = st.dictionaries(st.text(max_size=8), wide_values, max_size=6)


def held(props: dict[str, Any], sequence: int = 1) -> packing.Entity:
    """``props`` put in a fresh cache at ``sequence`` and read back."""
    cache = Cache()
    cache.put("k", keep(props, cache.shapes), sequence)
    entity = cache.find("k")
    assert entity is not None
    return entity


class TestRoundTrip:
    """What goes in comes back: the properties as json reads them, and their record bytes."""

    @settings(max_examples=400)
    @given(props=props_of_any_kind)
    def test_the_json_is_the_plain_encoding(self, props: dict[str, Any]) -> None:
        """The bytes a change splices into records are json's, whatever the values."""
        try:
            expected: bytes | None = plain(props)
        except (TypeError, ValueError):
            expected = None  # not JSON (e.g. a lone surrogate): no bytes, the dict is kept
        kept = keep(props, Cache().shapes)
        assert kept.json == expected
        assert held(props).unpacked()[1] == expected

    @settings(max_examples=400)
    @given(props=props_of_any_kind, sequence=st.integers(0, 2**70))
    def test_properties_and_sequence_come_back(self, props: dict[str, Any], sequence: int) -> None:
        """Read back, the properties are what json reads from their bytes, at the same sequence."""
        entity = held(props, sequence)
        assert entity.sequence == sequence
        try:
            expected = json.loads(plain(props))
        except (TypeError, ValueError):
            expected = props
        # repr tells 1 from 1.0, True from 1, and key order, which == does not.
        assert repr(entity.props) == repr(expected)

    @settings(max_examples=300)
    @given(first=props_of_any_kind, second=props_of_any_kind)
    def test_an_entity_holds_exactly_the_same_json(
        self, first: dict[str, Any], second: dict[str, Any]
    ) -> None:
        """An unchanged entry is recognised by its bytes: held iff the JSON is the same."""
        try:
            same = plain(first) == plain(second)
        except (TypeError, ValueError):
            return  # not JSON: never recognised as unchanged, as before
        cache = Cache()
        cache.put("k", keep(first, cache.shapes), 1)
        entity = cache.find("k")
        assert entity is not None
        assert entity.holds(keep(second, cache.shapes)) is same


class TestCompactness:
    """Property names are written once per shape, not once per entity."""

    def test_entities_of_one_shape_share_its_names(self) -> None:
        """Two alerts share one shape object, and an alert's held bytes name no property."""
        cache = Cache()
        for key in ("a", "b"):
            cache.put(key, keep({**ALERT, "interactionId": key}, cache.shapes), 1)
        first, second = cache["a"], cache["b"]
        assert first.shape is second.shape
        assert b"interactionType" not in first.packed
        assert b"queueName" not in first.packed

    def test_an_alert_takes_less_than_its_json(self) -> None:
        """1,000 alerts held take under 240 bytes each, their JSON alone 313 (keys not counted)."""
        assert len(plain(ALERT)) == 313
        alerts = [{**ALERT, "interactionId": f"1001234567801{i:05}"} for i in range(1000)]
        keys = [alert["interactionId"] for alert in alerts]
        cache = Cache()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for key, alert in zip(keys, alerts, strict=True):
                cache.put(key, keep(alert, cache.shapes), 1)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(cache) == 1000
        assert grown < 1000 * 240

    def test_shapes_beyond_the_bound_are_held_whole(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Once a cache has numbered its shapes, entities of a new shape still come back right."""
        monkeypatch.setattr(packing, "MAX_SHAPES", 2)
        cache = Cache()
        shapes = [{"a": 1}, {"b": [1, {"c": 2}]}, {"d": {"e": None}}, {"f": "x"}]
        for i, props in enumerate(shapes):
            cache.put(str(i), keep(props, cache.shapes), i)
        assert {key: (e.props, e.sequence) for key, e in cache.items()} == {
            str(i): (props, i) for i, props in enumerate(shapes)
        }
        # The first two shapes got numbers; the next ones none, their entities held whole.
        assert len(cache.shapes._numbered) == 2
        assert [type(cache._held[key]) for key in "0123"] == [bytes, bytes] + [packing.Entity] * 2


class TestMapping:
    """The cache reads like the dict of entities it replaces."""

    def test_it_compares_keys_and_entities_like_a_dict(self) -> None:
        """Empty, it equals {}; entities are found, counted, iterated and removed by key."""
        cache = Cache()
        assert cache == {}
        cache.put("x", keep(ALERT, cache.shapes), 3)
        assert "x" in cache
        assert list(cache) == ["x"]
        assert cache.find("y") is None
        assert cache.get("y") is None
        assert cache == {"x": held(ALERT, 3)}
        popped = cache.pop("x")
        assert popped is not None
        assert (popped.props, popped.sequence) == (ALERT, 3)
        assert cache.pop("x") is None
        assert cache == {}
