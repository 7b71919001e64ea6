"""How each kind of ICWS entry reads: its fields, their conversions, and reading one entry.

A :class:`Shape` is the table of one entry kind (an alert, a history item, a status message, an
assistance message or participant): its key, the properties it requires, and the conversion of
each property into what consumers get (enum integers as names, compact dates as RFC 3339,
docs/icws-protocol.md §4). :func:`read_entry` applies it and raises :class:`Malformed` on an
entry that breaks a rule the protocol states; the parser (``messages``) drops such entries with
a problem noted. The JSON Schemas (``schemas``) are generated from the same tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.core.state import RULES


class Malformed(ValueError):
    """An entry (or a whole message) that breaks a rule the protocol states."""


# --- value conversions ---------------------------------------------------------------------

ENUMS: Mapping[str, tuple[str, ...]] = {
    "alertType": (
        "None",
        "User",
        "Station",
        "Workgroup",
        "StationGroup",
        "AcdUser",
        "AcdStation",
    ),
    "alertAction": ("None", "StartAlerting", "StopAlerting"),
    "queueType": ("System", "User", "Workgroup", "Station"),
    "direction": ("None", "Incoming", "Outgoing"),
    "interactionHistoryStatus": ("None", "Connected", "Forwarded"),
    "assistanceState": ("None", "Accepted", "Completed"),
    "participantAction": ("None", "Initiated", "Ignored", "Accepted"),
    "subscriptionState": ("None", "Normal", "Suspended", "Faulted"),
}

_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\.\d+)?Z$", re.ASCII)
_EXTENDED = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$", re.ASCII)


def enum_name(enum: str, value: Any) -> str:
    """The name of an ICWS enum integer; an unknown number is kept visible, not guessed."""
    names = ENUMS[enum]
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{enum} must be an integer, got {type(value).__name__}")
    return names[value] if 0 <= value < len(names) else f"Unknown{value}"


def rfc3339(value: Any) -> str:
    """An ICWS date (compact ``20201029T082018Z`` or extended) as RFC 3339 UTC."""
    if not isinstance(value, str):
        raise Malformed(f"date must be a string, got {type(value).__name__}")
    match = _COMPACT.match(value) or _EXTENDED.match(value)
    if match is None:
        raise Malformed(f"date {value!r} is not ISO-8601 UTC")
    y, mo, d, h, mi, s, frac = match.groups()
    # The digits must also name a real moment (a leap second, :60, is allowed).
    try:
        datetime(int(y), int(mo), int(d), int(h), int(mi), min(int(s), 59))
    except ValueError:
        raise Malformed(f"date {value!r} is not a valid date and time") from None
    if int(s) > 60:
        raise Malformed(f"date {value!r} is not a valid date and time")
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}{frac or ''}Z"


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise Malformed(f"expected a string, got {type(value).__name__}")
    return value


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Malformed(f"expected a boolean, got {type(value).__name__}")
    return value


def strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise Malformed("expected an object of strings")
    return {str(k): str(v) for k, v in value.items()}


def queue_id(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise Malformed("monitoredQueue must be an object")
    return {
        "queueType": enum_name("queueType", value.get("queueType")),
        "queueName": text(value.get("queueName")),
    }


@dataclass(frozen=True, slots=True)
class EnumField:
    """Converts one ICWS enum's integers to names; the schema generator reads ``enum``."""

    enum: str

    def __call__(self, value: Any) -> str:
        return enum_name(self.enum, value)


def _enum(name: str) -> EnumField:
    return EnumField(name)


Converter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Shape:
    """How to read one kind of entry: its key property, and each property's converter."""

    key: str
    fields: Mapping[str, Converter]
    required: frozenset[str]


ALERT = Shape(
    key=RULES["alerting"].key,
    fields={
        "interactionId": text,
        "interactionType": text,
        "name": text,
        "address": text,
        "alertType": _enum("alertType"),
        "alertAction": _enum("alertAction"),
        "autoAnswer": flag,
        "monitoredQueue": queue_id,
        "attributes": strings,
    },
    required=frozenset(
        {
            "interactionId",
            "interactionType",
            "name",
            "address",
            "alertType",
            "alertAction",
            "autoAnswer",
        }
    ),
)
HISTORY = Shape(
    key=RULES["history"].key,
    fields={
        "interactionId": text,
        "initiationTime": rfc3339,
        "terminationTime": rfc3339,
        "direction": _enum("direction"),
        "interactionHistoryStatus": _enum("interactionHistoryStatus"),
        "localAddress": text,
        "localId": text,
        "localName": text,
        "remoteAddress": text,
        "remoteId": text,
        "remoteName": text,
        "notes": text,
        "log": text,
    },
    required=frozenset({"interactionId"}),  # all optional in §4.2, but no key, no entity
)
STATUS = Shape(
    key=RULES["status_messages"].key,
    fields={
        "statusId": text,
        "messageText": text,
        "iconUri": text,
        "groupTag": text,
        "canHaveDate": flag,
        "canHaveTime": flag,
        "isDoNotDisturbStatus": flag,
        "isSelectableStatus": flag,
        "isPersistentStatus": flag,
        "isForwardStatus": flag,
        "isAfterCallWorkStatus": flag,
        "isAcdStatus": flag,
        "isAllowFollowUpStatus": flag,
        "systemId": text,
    },
    required=frozenset({"statusId"}),  # a delta must carry at least the id
)
ASSISTANCE_MESSAGE = Shape(
    key="timeAdded",
    fields={"text": text, "participantId": text, "timeAdded": rfc3339},
    required=frozenset({"text", "participantId", "timeAdded"}),
)
PARTICIPANT = Shape(
    key="userId",
    fields={"userId": text, "displayName": text, "action": _enum("participantAction")},
    required=frozenset({"userId"}),
)


def read_entry(shape: Shape, raw: Any) -> tuple[str, dict[str, Any]]:
    """Validate and normalize one entry; unknown properties are kept as they are."""
    if not isinstance(raw, dict):
        raise Malformed(f"entry is {type(raw).__name__}, not an object")
    props: dict[str, Any] = {}
    fields = shape.fields
    for name, value in raw.items():
        if value is None or name == "__type":
            continue  # a null says nothing: treat it as absent
        convert = fields.get(name)
        # Most properties are text, and text() returns a str as it is: skip the call for them.
        if convert is None or (convert is text and type(value) is str):
            props[name] = value
            continue
        try:
            props[name] = convert(value)
        except Malformed as exc:
            _require(shape, raw)  # a missing property is the problem to name first
            raise Malformed(f"{name}: {exc}") from None
    # Checked once all are read (props holds no null): one subset test instead of a look-up each.
    if not shape.required <= props.keys():
        _require(shape, raw)
    key = props[shape.key]
    if not isinstance(key, str) or not key:
        raise Malformed(f"{shape.key} is empty")
    return key, props


def _require(shape: Shape, raw: dict[str, Any]) -> None:
    # A required property is always sent (§2.4); null is as good as missing.
    missing = sorted(name for name in shape.required if raw.get(name) is None)
    if missing:
        raise Malformed(f"entry lacks required {', '.join(missing)}")


def read_entries(
    shape: Shape, raws: Any, what: str
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """All readable entries of a list property, and a problem line for each unreadable one."""
    if raws is None:
        return [], []
    if not isinstance(raws, list):
        return [], [f"{what} is not a list"]
    good, problems = [], []
    for index, raw in enumerate(raws):
        try:
            good.append(read_entry(shape, raw))
        except Malformed as exc:
            problems.append(f"{what}[{index}]: {exc}")
    return good, problems
