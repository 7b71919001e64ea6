"""Hypothesis strategies for ICWS messages: arbitrary JSON, and near-valid messages of each type.

Near-valid messages carry entries whose properties mostly have the right kind of value, so that
many parse into real upserts and removals while a fifth of each choice is junk.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from bridge.core.entries import ALERT, ENUMS, HISTORY, STATUS

ALERTING = "urn:inin.com:interactions:interactionAlertingMessage"
HISTORY_URN = "urn:inin.com:interactions:historyMessage"
STATUS_URN = "urn:inin.com:status:statusMessagesMessage"
ASSISTANCE_LIST = "urn:inin.com:interactions.assistance:assistanceRequestListMessage"
ASSISTANCE_DETAILS = "urn:inin.com:interactions.assistance:assistanceRequestDetailsMessage"
CONNECTION = "urn:inin.com:connection:connectionStateChangeMessage"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["20240105T141502Z", "2024-01-05T14:15:02Z", "", "a1", "Available"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def plausible(name: str) -> st.SearchStrategy[Any]:
    """Values of the right kind for a property, some of them out of range or empty."""
    if name in ENUMS or name in ("action", "state", "newConnectionState"):
        return st.integers(min_value=-1, max_value=8)
    if name.endswith("Time") or name == "timeAdded":
        return st.sampled_from(["20240105T141502Z", "2024-01-05T14:15:02.5Z", "20241305T0Z"])
    if name.startswith(("is", "can")) or name in ("autoAnswer", "shouldReconnect"):
        return st.booleans()
    if name == "monitoredQueue":
        return st.fixed_dictionaries(
            {"queueType": st.integers(0, 4), "queueName": st.sampled_from(["q", ""])}
        )
    if name == "attributes":
        return st.dictionaries(st.sampled_from(["Eic_A", "Eic_B"]), st.text(max_size=3))
    return st.sampled_from(["1", "2", "Available", "AVAILABLE", "agent.one", "a|b", ""])


def mostly(valid: st.SearchStrategy[Any], junk: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Four draws in five from ``valid``, the rest from ``junk``."""
    return st.integers(0, 4).flatmap(lambda n: junk if n == 3 else valid)


def entry(fields: dict[str, bool]) -> st.SearchStrategy[Any]:
    """Entries with the given (name: required) properties of plausible values, or junk."""
    shaped = st.fixed_dictionaries(
        {name: plausible(name) for name, required in fields.items() if required},
        optional={
            name: mostly(plausible(name), json_values) for name, r in fields.items() if not r
        },
    )
    return mostly(shaped, json_values)


def shape_fields(shape: Any) -> dict[str, bool]:
    return {name: name in shape.required for name in shape.fields}


def listed(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return mostly(st.lists(strategy, max_size=4), json_values)


ids = mostly(plausible("id"), json_values)
is_delta = mostly(st.booleans(), st.sampled_from([None, "false", 0]))


def family(urn: str, **properties: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {"__type": st.just(urn), "isDelta": is_delta},
        optional={**properties, "extra": json_values},
    )


near_messages = st.one_of(
    family(ALERTING, alertingInteractionDetails=listed(entry(shape_fields(ALERT)))),
    family(HISTORY_URN, interactionHistory=listed(entry(shape_fields(HISTORY)))),
    family(
        STATUS_URN,
        statusMessagesAdded=listed(entry(shape_fields(STATUS))),
        statusMessagesChanged=listed(entry(shape_fields(STATUS))),
        statusMessagesRemoved=listed(ids),
    ),
    family(ASSISTANCE_LIST, requestsAdded=listed(ids), requestsRemoved=listed(ids)),
    family(
        ASSISTANCE_DETAILS,
        assistanceId=ids,
        interactionId=ids,
        state=mostly(plausible("state"), json_values),
        messagesAdded=listed(entry({"text": True, "participantId": True, "timeAdded": True})),
        participantsAdded=listed(entry({"userId": True, "displayName": False, "action": False})),
        participantsChanged=listed(entry({"userId": True, "displayName": False, "action": False})),
    ),
    family(
        CONNECTION,
        newConnectionState=mostly(plausible("newConnectionState"), json_values),
        reason=ids,
        shouldReconnect=mostly(plausible("shouldReconnect"), json_values),
    ),
)
