"""How the state cache keeps one live entity: its properties packed by shape, and its sequence.

An entity's properties are kept as the compact JSON of their *values* alone (a JSON array, in
property order) next to the tuple of their *names*, which is shared by every entity of the same
shape (an alerting interaction's nine names, a history item's thirteen): the names are written
once per shape instead of once per entity, which takes an alerting interaction's packed
properties from 313 to about 190 bytes. The properties come back as ``dict(zip(names, values))``
and their compact JSON as orjson writes that dict: the very bytes :func:`encoding.pack` writes,
because only values orjson writes and reads back exactly are kept this way (str, int within 64
bits, bool, None, lists and str-keyed dicts). Anything else is kept as :func:`encoding.pack`
keeps it, without a shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson

from bridge.core.encoding import Packed, pack, unpack

Names = tuple[str, ...]

MAX_SHAPES = 1_024
"""Distinct name tuples one cache shares; beyond, an entity keeps its own (unknown properties)."""


class Shapes:
    """One cache's name tuples, each distinct tuple kept once and shared (up to a bound)."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[Names, Names] = {}

    def shared(self, names: Names) -> Names:
        """The tuple equal to ``names`` that entities already share, or ``names`` itself."""
        known = self._known.get(names)
        if known is not None:
            return known
        if len(self._known) < MAX_SHAPES:
            self._known[names] = names
        return names


class Kept(NamedTuple):
    """Properties as the cache keeps them, and as the records write them.

    ``json``: their compact JSON (what records splice in), or None when they are not JSON.
    ``packed`` and ``names``: what the entity keeps (see :class:`Entity`).
    """

    json: bytes | None
    packed: Packed
    names: Names | None


def keep(props: Mapping[str, Any], shapes: Shapes) -> Kept:
    """``props`` packed for the cache: by shape where orjson reads the values back exactly."""
    whole = pack(props)
    if type(whole) is bytes:  # orjson's bytes: plain values, read back exactly
        try:
            # An exact-size copy, as in pack(): orjson's bytes keep its 4 KB write buffer.
            values = bytes(memoryview(orjson.dumps(list(props.values()))))
        except orjson.JSONEncodeError:  # one level deeper than orjson nests
            return Kept(whole, whole, None)
        return Kept(whole, values, shapes.shared(tuple(props)))
    return Kept(whole if isinstance(whole, bytes) else None, whole, None)


class Entity:
    """One live entity: its packed properties (with their shared names, if any) and its sequence.

    With ``names``, ``packed`` is the JSON array of the property values; without, it is what
    :func:`encoding.pack` made of the properties.
    """

    __slots__ = ("names", "packed", "sequence")

    def __init__(self, kept: Kept, sequence: int) -> None:
        self.packed = kept.packed
        self.names = kept.names
        self.sequence = sequence

    def holds(self, kept: Kept) -> bool:
        """Whether ``kept`` is byte for byte what this entity holds (the same state)."""
        same_names = kept.names == self.names  # shared tuples: mostly the same object
        return same_names and isinstance(kept.packed, bytes) and kept.packed == self.packed

    def store(self, kept: Kept) -> None:
        """Hold ``kept`` from now on."""
        self.packed = kept.packed
        self.names = kept.names

    @property
    def props(self) -> dict[str, Any]:
        """The properties (unpacked anew on every read)."""
        if self.names is None:
            return unpack(self.packed)
        values = orjson.loads(self.packed)
        return dict(zip(self.names, values, strict=True))

    def unpacked(self) -> tuple[dict[str, Any], bytes | None]:
        """The properties and their compact JSON (None when they are not JSON)."""
        props = self.props
        if self.names is not None:
            return props, orjson.dumps(props)
        return props, self.packed if isinstance(self.packed, bytes) else None
