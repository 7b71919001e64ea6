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
Shape = tuple[Names, tuple[tuple[int, Names], ...]]
"""The property names, and for each value that is an object, its position and its names."""

MAX_SHAPES = 1_024
"""Distinct name tuples one cache shares; beyond, an entity keeps its own (unknown properties)."""


class Shapes:
    """One cache's shapes, each distinct one kept once and shared (up to a bound)."""

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: dict[Shape, Shape] = {}

    def shared(self, shape: Shape) -> Shape:
        """The shape equal to ``shape`` that entities already share, or ``shape`` itself."""
        known = self._known.get(shape)
        if known is not None:
            return known
        if len(self._known) < MAX_SHAPES:
            self._known[shape] = shape
        return shape


class Kept(NamedTuple):
    """Properties as the cache keeps them, and as the records write them.

    ``json``: their compact JSON (what records splice in), or None when they are not JSON.
    ``packed`` and ``shape``: what the entity keeps (see :class:`Entity`).
    """

    json: bytes | None
    packed: Packed
    shape: Shape | None


def keep(props: Mapping[str, Any], shapes: Shapes) -> Kept:
    """``props`` packed for the cache: by shape where orjson reads the values back exactly."""
    whole = pack(props)
    if type(whole) is bytes:  # orjson's bytes: plain values, read back exactly
        values: list[Any] = list(props.values())
        objects = tuple(
            (i, tuple(value)) for i, value in enumerate(values) if type(value) is dict
        )
        for i, _ in objects:
            values[i] = list(values[i].values())
        try:
            # An exact-size copy, as in pack(): orjson's bytes keep its 4 KB write buffer.
            packed = bytes(memoryview(orjson.dumps(values)))
        except orjson.JSONEncodeError:  # one level deeper than orjson nests
            return Kept(whole, whole, None)
        return Kept(whole, packed, shapes.shared((tuple(props), objects)))
    return Kept(whole if isinstance(whole, bytes) else None, whole, None)


class Entity:
    """One live entity: its packed properties (with their shared shape, if any) and its sequence.

    With a ``shape``, ``packed`` is the JSON array of the property values, each object among
    them written as the array of its values; without, it is what :func:`encoding.pack` made of
    the properties.
    """

    __slots__ = ("packed", "sequence", "shape")

    def __init__(self, kept: Kept, sequence: int) -> None:
        self.packed = kept.packed
        self.shape = kept.shape
        self.sequence = sequence

    def holds(self, kept: Kept) -> bool:
        """Whether ``kept`` is byte for byte what this entity holds (the same state)."""
        same_shape = kept.shape == self.shape  # shared tuples: mostly the same object
        return same_shape and isinstance(kept.packed, bytes) and kept.packed == self.packed

    def store(self, kept: Kept) -> None:
        """Hold ``kept`` from now on."""
        self.packed = kept.packed
        self.shape = kept.shape

    @property
    def props(self) -> dict[str, Any]:
        """The properties (unpacked anew on every read)."""
        if self.shape is None:
            return unpack(self.packed)
        names, objects = self.shape
        values = orjson.loads(self.packed)
        for i, inner in objects:
            values[i] = dict(zip(inner, values[i], strict=True))
        return dict(zip(names, values, strict=True))

    def unpacked(self) -> tuple[dict[str, Any], bytes | None]:
        """The properties and their compact JSON (None when they are not JSON)."""
        props = self.props
        if self.shape is not None:
            return props, orjson.dumps(props)
        return props, self.packed if isinstance(self.packed, bytes) else None
