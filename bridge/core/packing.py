"""How the state cache keeps its live entities: one ``bytes`` each, property names per shape.

An entity's properties are kept as the compact JSON of their *values* alone (a JSON array in
property order, each object among them written as the array of its own values), next to its
*shape*: the property names (and each object's names), kept once per cache and shared by every
entity of that shape (an alerting interaction's nine names and its queue's and attributes'). The
cache (:class:`Cache`) holds each entity as one ``bytes``: the shape's number, the sequence, the
values; which takes an alerting interaction from 313 bytes of JSON, its bytes object and an
object for its sequence (about 400 bytes) to one object of about 170.

The properties come back as ``dict(zip(names, values))`` (objects likewise), and their compact
JSON as orjson writes that dict: the very bytes :func:`encoding.pack` writes, because only
values orjson writes and reads back exactly are kept this way (str, int within 64 bits, bool,
None, lists and str-keyed dicts). Anything else is kept as :func:`encoding.pack` keeps it, in an
:class:`Entity` of its own, as is an entity of a shape beyond :data:`MAX_SHAPES`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, KeysView, Mapping
from typing import Any, NamedTuple

import orjson

from bridge.core.encoding import Packed, pack, plain, unpack

Names = tuple[str, ...]
Shape = tuple[Names, tuple[tuple[int, Names], ...]]
"""The property names, and for each value that is an object, its position and its names."""

MAX_SHAPES = 1_024
"""Distinct shapes one cache numbers; beyond, an entity keeps its own (unknown properties)."""

_HEAD = struct.Struct("<HQ")
"""Before a held entity's values: its shape's number and its sequence."""
_MAX_SEQUENCE = 2**64 - 1


class Shapes:
    """One cache's shapes, each distinct one kept once, shared and numbered (up to a bound)."""

    __slots__ = ("_known", "_numbered")

    def __init__(self) -> None:
        self._known: dict[Shape, int] = {}
        self._numbered: list[Shape] = []

    def number(self, shape: Shape) -> int | None:
        """The number of ``shape`` (numbering it if new), or None once the bound is reached."""
        known = self._known.get(shape)
        if known is None and len(self._numbered) < MAX_SHAPES:
            known = self._known[shape] = len(self._numbered)
            self._numbered.append(shape)
        return known

    def __getitem__(self, number: int) -> Shape:
        return self._numbered[number]


class Kept(NamedTuple):
    """Properties as the cache keeps them, and as the records write them.

    ``json``: their compact JSON (what records splice in), or None when they are not JSON.
    ``packed`` and ``shape``: what the entity keeps (see :class:`Entity`); ``number``: the
    shape's number in the cache's :class:`Shapes`, None when it has none.
    """

    json: bytes | None
    packed: Packed
    shape: Shape | None = None
    number: int | None = None


def keep(props: Mapping[str, Any], shapes: Shapes) -> Kept:
    """``props`` packed for the cache: by shape where orjson reads the values back exactly."""
    if type(props) is not dict:  # what orjson_compact refuses: kept as pack() makes it
        return _unshaped(props)
    # One pass checks what orjson_compact checks (encoding.plain) and gathers the values, each
    # object among them as the list of its values: a third of keep's time, against three passes.
    values: list[Any] = []
    objects: list[tuple[int, Names]] = []
    for value in props.values():
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            values.append(value)
        elif kind is dict and plain(value):
            objects.append((len(values), tuple(value)))
            values.append(list(value.values()))
        elif kind is list and plain(value):
            values.append(value)
        else:
            return _unshaped(props)
    try:
        whole = orjson.dumps(props)  # not kept: no exact-size copy
    except orjson.JSONEncodeError:  # keys not str, integers beyond 64 bits, lone surrogates
        return _unshaped(props)
    try:
        packed = orjson.dumps(values)  # copied to its size where kept (Cache.put)
    except orjson.JSONEncodeError:  # one level deeper than orjson nests
        return Kept(whole, pack(props))
    shape = (tuple(props), tuple(objects))
    number = shapes.number(shape)
    return Kept(whole, packed, shape if number is None else shapes[number], number)


def _unshaped(props: Mapping[str, Any]) -> Kept:
    """``props`` as :func:`encoding.pack` keeps them (not plain JSON for orjson)."""
    packed = pack(props)
    return Kept(packed if isinstance(packed, bytes) else None, packed)


class Entity:
    """One entity: its packed properties (with their shape, if any) and its sequence.

    With a ``shape``, ``packed`` is the JSON array of the property values, each object among
    them written as the array of its values; without, it is what :func:`encoding.pack` made of
    the properties. What a :class:`Cache` hands out is a copy: change it with ``Cache.put``.
    """

    __slots__ = ("packed", "sequence", "shape")

    def __init__(self, packed: Packed, shape: Shape | None, sequence: int) -> None:
        self.packed = packed
        self.shape = shape
        self.sequence = sequence

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entity):
            return NotImplemented
        same = (self.packed, self.shape, self.sequence)
        return same == (other.packed, other.shape, other.sequence)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def holds(self, kept: Kept) -> bool:
        """Whether ``kept`` is byte for byte what this entity holds (the same state)."""
        same_shape = kept.shape == self.shape  # shared tuples: mostly the same object
        return same_shape and isinstance(kept.packed, bytes) and kept.packed == self.packed

    @property
    def props(self) -> dict[str, Any]:
        """The properties (unpacked anew on every read)."""
        packed, shape = self.packed, self.shape
        if shape is None or isinstance(packed, dict):
            return unpack(packed)
        names, objects = shape
        values = orjson.loads(packed)
        # As many values as names, by construction. zip without keywords: ``strict=False``
        # passed costs a third of this read (a keyword call), ``strict=True`` a fifth.
        for i, inner in objects:
            values[i] = dict(zip(inner, values[i]))  # noqa: B905
        return dict(zip(names, values))  # noqa: B905

    def unpacked(self) -> tuple[dict[str, Any], bytes | None]:
        """The properties and their compact JSON (None when they are not JSON)."""
        props = self.props
        if self.shape is not None:
            return props, orjson.dumps(props)
        return props, self.packed if isinstance(self.packed, bytes) else None


class Cache(Mapping[str, "Entity"]):
    """Live entities by key, each held as one ``bytes``: its shape's number, sequence and values.

    One object per entity, not three (an :class:`Entity`, its bytes and the shape's reference):
    an :class:`Entity` is made when one is read. Entities without a numbered shape (properties
    that are not plain JSON, or beyond :data:`MAX_SHAPES` shapes) are held as an Entity.
    """

    __slots__ = ("_held", "shapes")

    def __init__(self) -> None:
        self._held: dict[str, bytes | Entity] = {}
        self.shapes = Shapes()

    def put(self, key: str, kept: Kept, sequence: int) -> None:
        """Hold ``kept`` at ``sequence`` as the entity ``key`` (new, or replacing it)."""
        if kept.number is not None and 0 <= sequence <= _MAX_SEQUENCE:
            assert isinstance(kept.packed, bytes)  # a shape's values are always bytes
            self._held[key] = _HEAD.pack(kept.number, sequence) + kept.packed
        elif kept.shape is not None:
            # An exact-size copy, as in pack(): orjson's bytes keep its 4 KB write buffer.
            assert isinstance(kept.packed, bytes)
            self._held[key] = Entity(bytes(memoryview(kept.packed)), kept.shape, sequence)
        else:
            self._held[key] = Entity(kept.packed, kept.shape, sequence)

    def find(self, key: str) -> Entity | None:
        """The entity ``key``, or None when it is not live (``get`` without an exception)."""
        held = self._held.get(key)
        return None if held is None else self._entity(held)

    def pop(self, key: str) -> Entity | None:
        """The entity ``key``, no longer held; None when it was not live."""
        held = self._held.pop(key, None)
        return None if held is None else self._entity(held)

    def _entity(self, held: bytes | Entity) -> Entity:
        if isinstance(held, Entity):
            return held
        number, sequence = _HEAD.unpack_from(held)
        return Entity(held[_HEAD.size :], self.shapes[number], sequence)

    def __getitem__(self, key: str) -> Entity:
        return self._entity(self._held[key])

    def __delitem__(self, key: str) -> None:
        del self._held[key]

    def __contains__(self, key: object) -> bool:
        return key in self._held

    def __iter__(self) -> Iterator[str]:
        return iter(self._held)

    def __len__(self) -> int:
        return len(self._held)

    def keys(self) -> KeysView[str]:
        """The keys of the live entities."""
        return self._held.keys()
