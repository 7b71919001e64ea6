"""Commands from Kafka as values: their types, decoding, and the ICWS call each one makes.

A command is a structured-mode CloudEvent on the command topic; its ``id`` is the idempotency key.
:func:`decode` turns a record's bytes into a :class:`Command` or a :class:`DeadLetter` naming the
reason; :func:`plan` says which ICWS call it makes, as a :class:`Plan` value that :func:`call`
turns into the call once the live session's id is known. What an answer means and when to try
again is ``core/command_rules.py``; the result and dead-letter records are
``core/command_results.py``; how one id is kept from running twice is ``core/journal_entries.py``.

The command types are a table (:data:`COMMAND_TYPES`) from which both the decoder's checks and
the published JSON Schemas are made. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bridge.core import encoding, icws_api
from bridge.core.events import SPEC_VERSION, Contract
from bridge.core.icws_api import Call

Kind = Literal["assistance_update", "assistance_complete"]
Outcome = Literal["succeeded", "rejected", "failed", "expired", "unknown"]
Reason = Literal["not_json", "not_cloudevent", "unknown_type", "invalid_data", "oversize"]

OUTCOMES: tuple[Outcome, ...] = ("succeeded", "rejected", "failed", "expired", "unknown")
# What the metrics count: every outcome, plus a record whose id already has its result.
COUNTED_OUTCOMES: tuple[str, ...] = (*OUTCOMES, "duplicate")
REASONS: tuple[Reason, ...] = (
    "not_json",
    "not_cloudevent",
    "unknown_type",
    "invalid_data",
    "oversize",
)
RESULT_NAME = "command.result"
MAX_ID_LENGTH = 200
# Assistance ids are opaque (docs/icws-protocol.md §4.4, §10): any text, since the core
# percent-encodes every path value as the SDK does. Only what no encoding can carry safely is
# refused: control characters (C0, DEL, C1), and the dot segments "." and "..", which URL
# normalization resolves.
MAX_ASSISTANCE_ID = 256
# Searched, not matched: "$" would let a trailing newline through in Python (not in ECMA-262).
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
DOT_SEGMENTS = (".", "..")


# --- the command types ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataField:
    """One property of a command's ``data``: its check and its JSON Schema."""

    check: Callable[[Any], str | None]  # the problem with a value, or None when it is fine
    schema: Mapping[str, Any]


def _assistance_id(value: Any) -> str | None:
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_ASSISTANCE_ID
        or CONTROL_CHARACTER.search(value)
        or value in DOT_SEGMENTS
    ):
        return (
            f"must be a string of 1-{MAX_ASSISTANCE_ID} characters, without control "
            "characters, and not '.' or '..'"
        )
    return None


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    return None


ASSISTANCE_ID_FIELD = DataField(
    _assistance_id,
    {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ASSISTANCE_ID,
        "not": {"anyOf": [{"pattern": CONTROL_CHARACTER.pattern}, {"enum": list(DOT_SEGMENTS)}]},
    },
)
TEXT_FIELD = DataField(_text, {"type": "string", "minLength": 1, "pattern": r"\S"})


@dataclass(frozen=True, slots=True)
class CommandType:
    """A command type: its name (``<prefix>.<name>.v1`` on the wire) and its data fields."""

    kind: Kind
    name: str
    fields: Mapping[str, DataField]
    description: str


COMMAND_TYPES: tuple[CommandType, ...] = (
    CommandType(
        "assistance_update",
        "command.assistance.update",
        {"assistanceId": ASSISTANCE_ID_FIELD, "text": TEXT_FIELD},
        "Add a message to an agent-assistance request (POST .../agent-assistance/{id}).",
    ),
    CommandType(
        "assistance_complete",
        "command.assistance.complete",
        {"assistanceId": ASSISTANCE_ID_FIELD},
        "Complete an agent-assistance request (DELETE .../agent-assistance/{id}).",
    ),
)
KINDS: tuple[Kind, ...] = tuple(t.kind for t in COMMAND_TYPES)


@dataclass(frozen=True, slots=True)
class CommandTopics:
    """The topics of the command side."""

    commands: str
    results: str
    dead_letter: str
    journal: str


# --- decoding ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ref:
    """What identifies a command in its result: id, kind, full type and sender."""

    id: str
    kind: Kind
    type: str
    source: str


@dataclass(frozen=True, slots=True)
class Command:
    """A decoded, valid command; ``deadline`` is Unix time."""

    ref: Ref
    assistance_id: str
    text: str | None
    deadline: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that is not a valid command. ``ref`` is set when it still names a command."""

    reason: Reason
    detail: str
    ref: Ref | None = None
    assistance_id: str | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record was read: topic, partition, offset."""

    topic: str
    partition: int
    offset: int


class _Bad(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode(
    value: bytes | None,
    *,
    contract: Contract,
    written_at: float,
    default_deadline: float,
    max_deadline: float,
    max_bytes: int,
) -> Command | DeadLetter:
    """A record value as a Command, or why it is not one.

    ``written_at`` is the record's timestamp: a command without a ``deadline`` may run until
    ``written_at + default_deadline``, and no deadline reaches past ``written_at + max_deadline``
    (so a record read again long after it was written can never run).
    """
    if value is not None and len(value) > max_bytes:
        return DeadLetter("oversize", f"{len(value)} bytes, more than {max_bytes}")
    try:
        event = _json_object(value)
        ref = _envelope(event, contract)
    except _Bad as bad:
        return DeadLetter(bad.reason, bad.detail)
    data = event.get("data")
    assistance_id = data.get("assistanceId") if isinstance(data, dict) else None
    shown_id = assistance_id if isinstance(assistance_id, str) and assistance_id else None
    try:
        _content_type(event)
        _data(data, _BY_KIND[ref.kind])
        deadline = _deadline(event.get("deadline"), written_at, default_deadline, max_deadline)
    except _Bad as bad:
        return DeadLetter(bad.reason, bad.detail, ref, shown_id)
    assert isinstance(data, dict)  # checked by _data, with assistanceId
    assert isinstance(assistance_id, str)
    return Command(ref, assistance_id, data.get("text"), deadline)


_BY_KIND: Mapping[Kind, CommandType] = {t.kind: t for t in COMMAND_TYPES}


def _json_object(value: bytes | None) -> dict[str, Any]:
    if not value:
        raise _Bad("not_json", "empty record")
    try:
        event = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Bad("not_json", f"not UTF-8 JSON: {str(exc)[:120]}") from None
    if not isinstance(event, dict):
        raise _Bad("not_cloudevent", f"a JSON {type(event).__name__}, not an object")
    return event


def _envelope(event: dict[str, Any], contract: Contract) -> Ref:
    if event.get("specversion") != SPEC_VERSION:
        raise _Bad("not_cloudevent", 'specversion is not "1.0" (structured mode only)')
    for attribute in ("id", "source", "type"):
        value = event.get(attribute)
        if not isinstance(value, str) or not value:
            raise _Bad("not_cloudevent", f"{attribute} is missing or not a non-empty string")
    if len(event["id"]) > MAX_ID_LENGTH:
        raise _Bad("not_cloudevent", f"id is longer than {MAX_ID_LENGTH} characters")
    by_type = {contract.type_of(t.name): t for t in COMMAND_TYPES}
    known = by_type.get(event["type"])
    if known is None:
        raise _Bad("unknown_type", f"unknown command type {event['type'][:200]!r}")
    return Ref(event["id"], known.kind, event["type"], event["source"])


def _content_type(event: dict[str, Any]) -> None:
    content_type = event.get("datacontenttype", "application/json")
    if not isinstance(content_type, str) or not re.match(
        r"^application/(.+\+)?json\s*(;.*)?$", content_type
    ):
        raise _Bad("invalid_data", "datacontenttype must be application/json")


def _data(data: Any, command_type: CommandType) -> None:
    if not isinstance(data, dict):
        raise _Bad("invalid_data", "data is missing or not an object")
    unknown = sorted(data.keys() - command_type.fields.keys())
    if unknown:
        # A property the bridge does not know cannot be honoured; refusing beats ignoring it.
        raise _Bad("invalid_data", f"unknown data properties: {', '.join(unknown)[:200]}")
    for name, check in command_type.fields.items():
        if name not in data:
            raise _Bad("invalid_data", f"data.{name} is missing")
        problem = check.check(data[name])
        if problem:
            raise _Bad("invalid_data", f"data.{name} {problem}")


def _deadline(value: Any, written_at: float, default: float, maximum: float) -> float:
    latest = written_at + maximum
    if value is None:
        return min(written_at + default, latest)
    moment = parse_time(value)
    if moment is None:
        raise _Bad("invalid_data", "deadline is not an RFC 3339 time with a UTC offset")
    return min(moment, latest)


def parse_time(value: Any) -> float | None:
    """An RFC 3339 time with an offset as Unix time; None for anything else."""
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d", value):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return None if moment.tzinfo is None else moment.timestamp()


def timestamp(moment: float) -> str:
    """Unix time as RFC 3339 UTC with milliseconds."""
    return encoding.timestamp(datetime.fromtimestamp(moment, UTC))


# --- planning ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """The ICWS call a command makes, all but the live session's id (the session adds it)."""

    kind: Kind
    assistance_id: str
    text: str | None = None


def plan(command: Command) -> Plan:
    """What ICWS call a command makes."""
    text = (command.text or "") if command.ref.kind == "assistance_update" else None
    return Plan(command.ref.kind, command.assistance_id, text)


# Kind -> the icws_api description of its call, given the session id and the plan.
_CALLS: Mapping[Kind, Callable[[str, Plan], Call]] = {
    "assistance_update": lambda session_id, p: icws_api.assistance_update(
        session_id, p.assistance_id, p.text or ""
    ),
    "assistance_complete": lambda session_id, p: icws_api.assistance_complete(
        session_id, p.assistance_id
    ),
}


def call(planned: Plan, session_id: str) -> Call:
    """The planned call on the session with this id."""
    return _CALLS[planned.kind](session_id, planned)
