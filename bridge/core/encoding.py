"""How the event contract is written as bytes: JSON, timestamps, ``ce_*`` headers, ids, splicing.

``bridge.core.events`` decides what a record says (names, attributes, data); this module decides
how it is written, and nothing here knows an aggregate or an event name. Every function is pure:
there is no process-wide cache. The one memo worth keeping (a batch's records share their read
time, and formatting it costs a tenth of building a record) is a value the caller makes once per
batch, a :class:`Stamp`, and hands to every record it builds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

# One encoder of each kind, made once: ``json.dumps`` with options builds a new encoder per call,
# which costs as much as encoding a small event. The output is the same.
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""Every record value and the state cache's packed properties: compact separators, UTF-8 kept."""
CANONICAL_JSON = json.JSONEncoder(sort_keys=True, default=str)
"""What ids are derived from: keys sorted, so property order does not change an id."""
# CANONICAL_JSON.encode of a tuple makes this C encoder and runs it, after a fifth of its time
# spent in Python (the float formatter it builds for the Python encoder, option lookups); the id
# of every event calls it directly, with CANONICAL_JSON's options. None without the C module.
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)

string = json.encoder.encode_basestring
"""How :data:`COMPACT_JSON` writes a string (``ensure_ascii`` off), quotes included."""

CONTENT_TYPE = "application/cloudevents+json"
"""Structured mode: the record value is the whole CloudEvent as JSON."""


def compact(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON."""
    return COMPACT_JSON.encode(value).encode()


# orjson writes str, int, bool, None, lists and str-keyed dicts exactly as COMPACT_JSON does
# (compact, UTF-8 kept, the same string escapes: checked over every code point), about ten times
# faster. It differs on floats (``1e16`` against ``1e+16``, NaN as null) and on types json
# refuses (datetime, dataclasses, subclasses), so only values of those exact types go to it; and
# what it refuses (integers beyond 64 bits, non-str keys, lone surrogates, deep nesting) falls
# back. The property is in tests/unit/test_encoding.py.


def fast_compact(value: Any) -> bytes:
    """:func:`compact` byte for byte, through orjson where it writes the same bytes."""
    fast = orjson_compact(value)
    return compact(value) if fast is None else fast


def orjson_compact(value: Any) -> bytes | None:
    """:func:`compact` byte for byte by orjson, or None where only json writes those bytes.

    orjson's bytes keep its 4 KB write buffer: copy what is kept for long.
    """
    if plain(value):
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError:
            pass
    return None


def plain(value: Any) -> bool:
    """True when ``value`` holds only str, int, bool, None, lists and dicts of them.

    Dict keys are not looked at: orjson refuses keys that are not str, and that falls back.
    """
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    else:
        return kind is str or kind is int or kind is bool or value is None
    # Leaves are checked here, not by a call each: a message or a state is mostly leaves.
    for item in items:
        kind = type(item)
        if not (kind is str or kind is int or kind is bool or item is None or plain(item)):
            return False
    return True


def read_json(text: str | bytes) -> Any:
    """``json.loads(text)``, through orjson where it reads the same values (four times faster).

    orjson reads JSON as json does (duplicate keys, escapes, whitespace and errors included) but
    for numbers: an integer beyond 64 bits comes back as a float. So a value holding any float is
    read again by json, and what orjson refuses (NaN, lone surrogates, huge exponents) is left to
    json, which reads it or raises its own error.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    return value if plain(value) else json.loads(text)


# The state cache keeps each live entity's properties packed in the very encoding of record
# values, so a change's state is spliced into its records as it is (bridge.core.state).
Packed = bytes | dict[str, Any]


class JsonPacked(bytes):
    """Packed properties that json wrote (orjson could not be trusted with them): json reads them.

    Plain packed bytes are orjson's, written from str, int (64 bits), bool, None, lists and
    dicts alone, so orjson reads them back exactly, about four times faster than json. What only
    json can write (floats, integers beyond 64 bits) orjson would read otherwise (a huge integer
    as a float), so it is marked by this type and read by json.
    """

    __slots__ = ()


def pack(props: Mapping[str, Any]) -> Packed:
    """Properties as compact JSON bytes, or as a dict copy when they are not JSON."""
    fast = orjson_compact(props)
    if fast is not None:
        # A copy of exact size: orjson's bytes keep its 4 KB write buffer allocated, which
        # the cache would hold per entity for as long as the entity lives (548 MB for 100,000).
        return bytes(memoryview(fast))
    try:
        return JsonPacked(compact(props))
    except (TypeError, ValueError):  # not JSON, or a lone surrogate UTF-8 cannot hold
        return dict(props)


def unpack(packed: Packed) -> dict[str, Any]:
    """The properties again (a new dict when packed)."""
    unpacked: dict[str, Any]
    if type(packed) is bytes:
        unpacked = orjson.loads(packed)
    elif isinstance(packed, bytes):
        unpacked = json.loads(packed)
    else:
        unpacked = packed
    return unpacked


# --- timestamps ----------------------------------------------------------------------------


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Stamp:
    """A moment and its :func:`timestamp`, formatted once: the records of one batch share it."""

    moment: datetime
    text: str

    @classmethod
    def of(cls, moment: datetime) -> Stamp:
        return cls(moment, timestamp(moment))


When = datetime | Stamp


def stamp_text(when: When) -> str:
    """The RFC 3339 text of a moment, formatted now unless it is a :class:`Stamp`."""
    return when.text if isinstance(when, Stamp) else timestamp(when)


# --- ids -----------------------------------------------------------------------------------


def _canonical(parts: tuple[Any, ...]) -> str:
    """``CANONICAL_JSON.encode(parts)``: what its one-shot path runs, without the Python around."""
    if _C_ENCODER is None:
        return CANONICAL_JSON.encode(parts)
    encoder = _C_ENCODER(
        {}, str, json.encoder.encode_basestring_ascii, None, ": ", ", ", True, False, True
    )
    return "".join(encoder(parts, 0))


def event_id(*parts: Any) -> str:
    """A UUID derived from the parts: the same parts always give the same id."""
    h = hashlib.sha256(_canonical(parts).encode()).hexdigest()
    # What str(uuid.UUID(bytes=digest[:16], version=5)) writes, without building the object:
    # version 5 in the high nibble of byte 6 (hex digit 12), the RFC 4122 variant in the two
    # high bits of byte 8 (hex digit 16).
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


# A hex digit with its two high bits set to the RFC 4122 variant, 10.
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


# --- headers -------------------------------------------------------------------------------

# Every attribute but data is copied (README, Topics and events); datacontenttype describes
# ``data``, and in the Kafka binding it would be the content-type header, which here says
# "structured mode".
_NOT_COPIED = frozenset({"data", "datacontenttype"})
_CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())


def ce_headers(event: Mapping[str, Any], copy_attributes: bool) -> tuple[tuple[str, bytes], ...]:
    """The content-type header, then (if copied) each attribute as ``ce_<name>``, in event order."""
    if not copy_attributes:
        return (_CONTENT_TYPE_HEADER,)
    headers = [_CONTENT_TYPE_HEADER]
    for attr, value in event.items():
        if attr in _NOT_COPIED:
            continue
        headers.append(ce_header(attr, value))
    return tuple(headers)


def ce_header(attr: str, value: Any) -> tuple[str, bytes]:
    """One attribute as its ``ce_<name>`` header: text as UTF-8, anything else as its ``str``."""
    return (f"ce_{attr}", (value if type(value) is str else str(value)).encode())


# --- an event's attributes, from pieces written once ---------------------------------------


@dataclass(frozen=True, slots=True)
class EventWriter:
    """One event type's constant attributes, written once: JSON pieces and ``ce_*`` headers.

    An entity event's attributes are, in this order: specversion, id, source, type, subject,
    time, datacontenttype, dataschema, recordedtime, sequence and (if named) the user
    (``bridge.core.events``). Their compact JSON and their headers are written here from these
    pieces and the attributes that vary, the very bytes of :func:`compact` and
    :func:`ce_headers` on the whole dict (tests/unit/test_encoding.py holds them equal).
    """

    kind: str
    start: str
    after_id: str
    after_time: str
    user_attribute: str
    constant_headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(
        cls, spec_version: str, source: str, kind: str, schema: str, user_attribute: str
    ) -> EventWriter:
        return cls(
            kind,
            f'{{"specversion":{string(spec_version)},"id":',
            f',"source":{string(source)},"type":{string(kind)}',
            f',"datacontenttype":"application/json","dataschema":{string(schema)}',
            user_attribute,
            (
                _CONTENT_TYPE_HEADER,
                ce_header("specversion", spec_version),
                ce_header("source", source),
                ce_header("type", kind),
                ce_header("dataschema", schema),
            ),
        )

    def head(
        self, ident: str, subject: str, time: Any, recorded: str, sequence: int, user: str | None
    ) -> bytes:
        """``compact(attributes)`` without its closing brace."""
        # The source time is text as the parser writes it; anything else as compact writes it.
        time_json = string(time) if type(time) is str else COMPACT_JSON.encode(time)
        head = (
            f'{self.start}{string(ident)}{self.after_id},"subject":{string(subject)}'
            f',"time":{time_json}{self.after_time}'
            f',"recordedtime":{string(recorded)},"sequence":{int.__repr__(sequence)}'
        )
        if user is not None:
            head += f",{string(self.user_attribute)}:{string(user)}"
        return head.encode()

    def headers(
        self, ident: str, subject: str, time: Any, recorded: str, sequence: int, user: str | None
    ) -> tuple[tuple[str, bytes], ...]:
        """``ce_headers(attributes, copy_attributes=True)``."""
        content_type, spec, source, kind, schema = self.constant_headers
        # ce_header's text, inline for the values known to be text (the sequence an int).
        headers = (
            content_type,
            spec,
            ("ce_id", ident.encode()),
            source,
            kind,
            ("ce_subject", subject.encode()),
            ce_header("time", time),
            schema,
            ("ce_recordedtime", recorded.encode()),
            ("ce_sequence", str(sequence).encode()),
        )
        return headers if user is None else (*headers, ce_header(self.user_attribute, user))


# --- the splicer ---------------------------------------------------------------------------
# An entity's state is encoded once (or not at all: the state cache keeps it packed in this very
# encoding) and spliced into both record values. The bytes are exactly those of compact() on the
# whole dict, ``data`` last; the sequence is an int (JSON writes int.__repr__), changed fields
# are property names.


def spliced_event(
    head: bytes,
    state_json: bytes,
    changed: Iterable[str],
    cause: str,
    user: str | None = None,
) -> bytes:
    """``compact({**attributes, "data": {"userId", "state", "changedFields", "cause"}})``.

    ``head`` is ``compact(attributes)`` without its closing brace; the state as given;
    ``userId`` only when ``user`` is given.
    """
    data = (
        b',"data":{"state":'
        if user is None
        else f',"data":{{"userId":{string(user)},"state":'.encode()
    )
    return b"".join(
        (
            head,
            data,
            state_json,
            b',"changedFields":',
            _names(changed),
            f',"cause":{string(cause)}}}}}'.encode(),
        )
    )


def _names(names: Iterable[str]) -> bytes:
    """``compact(list(names))``: a tuple of text through orjson, which writes it as json does."""
    if type(names) is tuple:
        try:
            return orjson.dumps(names)
        except orjson.JSONEncodeError:  # a lone surrogate: json's to write, or to refuse
            pass
    return f"[{','.join([string(name) for name in names])}]".encode()


def spliced_state(sequence: int, event_type: str, state_json: bytes) -> bytes:
    """``compact({"sequence", "type", "state"})``, state as given."""
    head = f'{{"sequence":{int.__repr__(sequence)},"type":{string(event_type)},"state":'
    return b"".join((head.encode(), state_json, b"}"))
