"""The README's event contract applied to raw ICWS entities: the full state an event must carry.

Written from README.md "Topics and events" and the JSON Schemas in bridge/schemas, never from
the bridge's code (no `bridge.core`): enums as names (`5` -> `"AcdUser"`, an unknown value ->
`"Unknown-9"`), ICWS compact dates as RFC 3339, assistance participants as a list, alerting
attributes cut to those the subscription asked for. The enum values come from the simulator's
own wire vocabulary, which is transcribed from the protocol reference, not from the bridge.

Dates are compared as instants: both sides are rendered in one canonical RFC 3339 form, so
`Z` and `+00:00` are the same moment.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from bridge.simulator.catalogue import STATUS_DEFAULTS
from bridge.simulator.wire import (
    AlertAction,
    AlertType,
    AssistanceState,
    Direction,
    HistoryStatus,
    ParticipantAction,
    QueueType,
)

State = dict[str, Any]
AGGREGATES = ("status_messages", "alerting", "history", "assistance")

_COMPACT = "%Y%m%dT%H%M%SZ"
_CANONICAL = "%Y-%m-%dT%H:%M:%SZ"
# Every `statusMessage` property is required (protocol §4.3), as the simulator's defaults list them.
STATUS_FIELDS = ("statusId", *STATUS_DEFAULTS)
_HISTORY_DATES: tuple[str, ...] = ("initiationTime", "terminationTime")
HISTORY_TEXT_FIELDS = (
    "interactionId",
    "localAddress",
    "localId",
    "localName",
    "remoteAddress",
    "remoteId",
    "remoteName",
    "notes",
    "log",
)


def enum_name(kind: type[IntEnum], value: int) -> str:
    """`AcdUser` for `AlertType.ACD_USER`; `Unknown-<n>` for a value the vocabulary lacks."""
    try:
        member = kind(value)
    except ValueError:
        return f"Unknown-{value}"
    return "".join(word.capitalize() for word in member.name.split("_"))


def rfc3339(compact: str) -> str:
    """An ICWS compact date (`20240105T141502Z`) in canonical RFC 3339 (`2024-01-05T14:15:02Z`)."""
    return datetime.strptime(compact, _COMPACT).replace(tzinfo=UTC).strftime(_CANONICAL)


def canonical_time(text: str) -> str:
    """Any RFC 3339 date-time as the same instant in canonical form (seconds, UTC, `Z`)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"RFC 3339 needs an offset: {text!r}")
    return moment.astimezone(UTC).strftime(_CANONICAL)


def status_state(raw: Mapping[str, Any]) -> State:
    """A `statusMessage` as event state: every property, unchanged (none is an enum or date)."""
    return {name: raw[name] for name in STATUS_FIELDS if name in raw}


def alerting_state(raw: Mapping[str, Any], attribute_names: Collection[str]) -> State:
    """An `interactionAlertDetails` as event state, with the subscribed attributes only."""
    state: State = {
        "interactionId": raw["interactionId"],
        "interactionType": raw["interactionType"],
        "name": raw["name"],
        "address": raw["address"],
        "alertType": enum_name(AlertType, raw["alertType"]),
        "alertAction": enum_name(AlertAction, raw["alertAction"]),
        "autoAnswer": raw["autoAnswer"],
    }
    queue = raw.get("monitoredQueue")
    if queue is not None:
        state["monitoredQueue"] = {
            "queueType": enum_name(QueueType, queue["queueType"]),
            "queueName": queue["queueName"],
        }
    attributes = {k: v for k, v in (raw.get("attributes") or {}).items() if k in attribute_names}
    if attributes:
        state["attributes"] = attributes
    return state


def history_state(raw: Mapping[str, Any]) -> State:
    """A `historyItem` as event state: enums as names, compact dates as RFC 3339."""
    state: State = {name: raw[name] for name in HISTORY_TEXT_FIELDS if name in raw}
    for name in _HISTORY_DATES:
        if name in raw:
            state[name] = rfc3339(raw[name])
    if "direction" in raw:
        state["direction"] = enum_name(Direction, raw["direction"])
    if "interactionHistoryStatus" in raw:
        state["interactionHistoryStatus"] = enum_name(
            HistoryStatus, raw["interactionHistoryStatus"]
        )
    return state


def assistance_state(raw: Mapping[str, Any]) -> State:
    """An assistance request (details) as event state: participants as a list, enums as names."""
    participants = raw.get("participants") or {}
    listed = participants.values() if isinstance(participants, Mapping) else participants
    state: State = {
        "assistanceId": raw["assistanceId"],
        "messages": [
            {
                "text": m["text"],
                "participantId": m["participantId"],
                "timeAdded": rfc3339(m["timeAdded"]),
            }
            for m in raw.get("messages") or ()
        ],
        "participants": [
            {
                "userId": p["userId"],
                "displayName": p["displayName"],
                "action": enum_name(ParticipantAction, p["action"]),
            }
            for p in listed
        ],
    }
    if "interactionId" in raw:
        state["interactionId"] = raw["interactionId"]
    if "state" in raw:
        state["state"] = enum_name(AssistanceState, raw["state"])
    return state


def _canonical_assistance(state: State) -> State:
    messages = [{**m, "timeAdded": canonical_time(m["timeAdded"])} for m in state["messages"]]
    return {**state, "messages": messages}


def _canonical_history(state: State) -> State:
    dates: State = {n: canonical_time(state[n]) for n in _HISTORY_DATES if n in state}
    return {**state, **dates}


def _canonical_alerting(state: State) -> State:
    # No attributes asked for and an empty map say the same thing.
    return {k: v for k, v in state.items() if not (k == "attributes" and not v)}


_CANONICAL_PUBLISHED: dict[str, Callable[[State], State]] = {
    "status_messages": dict,
    "alerting": _canonical_alerting,
    "history": _canonical_history,
    "assistance": _canonical_assistance,
}


def published_state(aggregate: str, state: State) -> State:
    """A state as the bridge published it, with its dates in canonical form for comparison."""
    return _CANONICAL_PUBLISHED[aggregate](state)
