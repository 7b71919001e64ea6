"""A merged delta's changed fields, from the names it holds alone, are the full comparison's."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.packing import Cache, keep
from bridge.core.state import changed_fields, merge, merged_fields

from .core_strategies import json_values

names = st.sampled_from(["a", "b", "c", "attributes", "messages"])
props = st.dictionaries(names, json_values, max_size=5)


class TestMergedFields:
    """Only the names a delta holds can change when it merges, so only they are compared."""

    @settings(max_examples=400)
    @given(old=props, new=props, append=st.sampled_from([(), ("messages",)]))
    def test_they_are_the_fields_that_differ_after_the_merge(
        self, old: dict[str, Any], new: dict[str, Any], append: tuple[str, ...]
    ) -> None:
        """Every top-level name whose value differs between before and after, sorted, no other."""
        merged = merge(old, new, append)
        assert merged_fields(old, new, merged) == changed_fields(old, merged)

    def test_a_value_set_to_what_it_was_is_not_a_change(self) -> None:
        """A delta repeating a value, or naming an absent property as null, changes nothing."""
        old = {"a": 1, "b": {"x": 1}}
        new = {"a": 1, "b": {"x": 1}, "c": None}
        assert merged_fields(old, new, merge(old, new)) == ()


class TestKeepOfAnyMapping:
    """Properties that are a mapping but not a dict are kept as encoding.pack keeps them."""

    def test_a_mapping_proxy_is_kept_as_a_dict_without_json(self) -> None:
        """A mapping proxy is not JSON to json: no bytes, no shape, its properties as a dict."""
        source = {"b": 1, "a": {"x": [1, "y"]}}
        kept = keep(MappingProxyType(source), Cache().shapes)
        assert (kept.json, kept.number, kept.shape) == (None, None, None)
        assert kept.packed == source
        assert type(kept.packed) is dict
