"""ICWS messages in, typed values out: dispatch on ``__type`` through a table, never raise.

Each of the four subscribed families (docs/icws-protocol.md §4) becomes an :class:`Update`: the
aggregate it belongs to, whether it is a snapshot (``isDelta: false``), the entities it adds or
changes (already *normalized*: enum integers as names, compact dates as RFC 3339) and the keys it
removes. ``connectionStateChangeMessage`` becomes :class:`ConnectionChange`, and the two
subscription-state messages :class:`SubscriptionState`. Anything else, and any message too
broken to use, becomes :class:`Ignored` with the reason. A malformed *entry*
inside a good message is dropped with a problem noted, and the rest of the message is kept.

Normalizing at parse time is safe because it is per property: merging normalized deltas gives
the same result as merging raw ones and normalizing after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bridge.core.entries import (
    ALERT,
    ASSISTANCE_MESSAGE,
    HISTORY,
    PARTICIPANT,
    STATUS,
    Malformed,
    Shape,
    enum_name,
    read_entries,
)
from bridge.core.rawjson import RawList

# Re-exported (``x as x``): the parser's output types live with the rules that apply them.
from bridge.core.state import AGGREGATES as AGGREGATES
from bridge.core.state import RULES, FamilyRules
from bridge.core.state import Aggregate as Aggregate
from bridge.core.state import Update as Update
from bridge.core.state import Upsert as Upsert
from bridge.core.streamed import StreamedUpserts

LOST_STATES = frozenset({"Suspended", "Faulted"})

Family = Literal["messaging", "assistance"]  # which subscription-state message said it


@dataclass(frozen=True, slots=True)
class ConnectionChange:
    """The session's connection state: Down means log in again (if allowed).

    The one type for it, whether a ``connectionStateChangeMessage`` said it or a connection
    check (``GET /icws/{sessionId}/connection``) answered it.
    """

    up: bool
    reason: str
    should_reconnect: bool | None
    kind: str = "connectionStateChangeMessage"


@dataclass(frozen=True, slots=True)
class SubscriptionState:
    """A subscription's state (docs/icws-protocol.md §2.4, §10): Suspended or Faulted means lost.

    ``family`` is which kind of state message said it; ``subscription`` is the resource path
    below ``messaging/subscriptions/`` when the server named it (the SDK names no such property,
    the simulator sends ``subscriptionId``), else None. ``error`` is the server's errorId and
    message, bounded.
    """

    family: Family
    subscription: str | None
    state: str
    error: str
    kind: str

    @property
    def lost(self) -> bool:
        """Suspended or Faulted: the server sends it nothing more until it is PUT again."""
        return self.state in LOST_STATES


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message the bridge does not use, or cannot read, and why."""

    kind: str
    reason: str
    problems: tuple[str, ...] = field(default=())


Message = Update | ConnectionChange | SubscriptionState | Ignored


# --- the four families ---------------------------------------------------------------------


# Each family's key, case, snapshot scope and what creates and ends an entity come from its
# row of bridge.core.state.RULES; what is left here is where ICWS puts them in a message.


def _upserts(
    rules: FamilyRules, entries: Iterable[tuple[str, dict[str, Any]]], snapshot: bool, kind: str
) -> tuple[Upsert, ...]:
    """Entries as their family's rules take them: keys named, replace and create as they say."""
    replace = snapshot and rules.snapshot_replaces
    creates = kind == rules.created_by
    if rules.fold_case:
        entries = [(rules.name(key), props) for key, props in entries]
    return tuple([Upsert(key, props, replace, (), creates) for key, props in entries])


def _streamed(
    aggregate: Aggregate, shape: Shape, raws: RawList, what: str, snapshot: bool, kind: str
) -> Update:
    """A big message's Update, its entries read as it is applied (as the eager path reads them)."""
    rules = RULES[aggregate]
    upserts = StreamedUpserts(
        shape,
        raws,
        what,
        rules,
        replace=snapshot and rules.snapshot_replaces,
        creates=kind == rules.created_by,
    )
    return Update(aggregate, snapshot, upserts, upserts.removals, upserts.problems, kind)


def _alerting(raw: dict[str, Any], snapshot: bool, kind: str) -> Update:
    # An entry that ends its entity (StopAlerting) is a removal; any other starts or changes it.
    # The list is required: without it a snapshot would seem to say "nothing is alerting".
    rules = RULES["alerting"]
    if isinstance(raw.get("alertingInteractionDetails"), RawList):
        return _streamed(
            "alerting", ALERT, raw["alertingInteractionDetails"], "alerts", snapshot, kind
        )
    if not isinstance(raw.get("alertingInteractionDetails"), list):
        raise Malformed("alertingInteractionDetails is missing or not a list")
    entries, problems = read_entries(ALERT, raw["alertingInteractionDetails"], "alerts")
    live: list[tuple[str, dict[str, Any]]] = []
    removals: list[str] = []
    for key, props in entries:
        if rules.ends(props):
            removals.append(rules.name(key))
        else:
            live.append((key, props))
    upserts = _upserts(rules, live, snapshot, kind)
    return Update("alerting", snapshot, upserts, tuple(removals), tuple(problems), kind)


def _history(raw: dict[str, Any], snapshot: bool, kind: str) -> Update:
    rules = RULES["history"]
    if isinstance(raw.get("interactionHistory"), RawList):
        return _streamed("history", HISTORY, raw["interactionHistory"], "history", snapshot, kind)
    entries, problems = read_entries(HISTORY, raw.get("interactionHistory"), "history")
    upserts = _upserts(rules, entries, snapshot, kind)
    return Update("history", snapshot, upserts, (), tuple(problems), kind)


def _status_messages(raw: dict[str, Any], snapshot: bool, kind: str) -> Update:
    # Status ids are case-insensitive (§2.4): the key is folded, the data keeps the id as sent.
    rules = RULES["status_messages"]
    added, p1 = read_entries(STATUS, raw.get("statusMessagesAdded"), "added")
    changed, p2 = read_entries(STATUS, raw.get("statusMessagesChanged"), "changed")
    removed = rules.removed(raw) or []
    problems = p1 + p2
    if not isinstance(removed, list) or not all(isinstance(r, str) and r for r in removed):
        problems.append(f"{rules.removed_by} is not a list of ids")
        removed = (
            [r for r in removed if isinstance(r, str) and r] if isinstance(removed, list) else []
        )
    # An added entry is whole, so it replaces even in a delta (as a snapshot's entry); a
    # changed one merges.
    upserts = _upserts(rules, added, True, kind) + _upserts(rules, changed, snapshot, kind)
    removals = tuple(rules.name(r) for r in removed)
    return Update("status_messages", snapshot, upserts, removals, tuple(problems), kind)


def _assistance_list(raw: dict[str, Any], snapshot: bool, kind: str) -> Update:
    # The list names requests only; their details arrive in separate messages, so never replace.
    rules = RULES["assistance"]
    ids: list[list[str]] = []
    problems: list[str] = []
    for what, listed in (
        ("requestsAdded", raw.get("requestsAdded")),
        (rules.removed_by, rules.removed(raw)),
    ):
        value = listed or []
        if not isinstance(value, list):
            value = [None]
        good = [i for i in value if isinstance(i, str) and i]
        if len(good) != len(value):
            problems.append(f"{what} is not a list of ids")
        ids.append(good)
    upserts = _upserts(rules, [(i, {rules.key: i}) for i in ids[0]], snapshot, kind)
    removals = tuple(rules.name(i) for i in ids[1])
    return Update("assistance", snapshot, upserts, removals, tuple(problems), kind)


def _assistance_details(raw: dict[str, Any], snapshot: bool, kind: str) -> Update:
    # Messages have no id in ICWS: a delta's messagesAdded are appended, a snapshot's replace.
    # Participants are keyed by userId so a delta merges into them. The list message decides
    # whether a request exists (RULES: it alone creates), and a Completed state ends it.
    rules = RULES["assistance"]
    assistance_id = raw.get(rules.key)
    if not isinstance(assistance_id, str) or not assistance_id:
        raise Malformed(f"{rules.key} is missing")
    props: dict[str, Any] = {rules.key: assistance_id}
    problems: list[str] = []
    if isinstance(raw.get("interactionId"), str):
        props["interactionId"] = raw["interactionId"]
    if raw.get("state") is not None:
        try:
            props["state"] = enum_name("assistanceState", raw["state"])
        except Malformed as exc:
            problems.append(f"state: {exc}")
    messages, p1 = read_entries(ASSISTANCE_MESSAGE, raw.get("messagesAdded"), "messagesAdded")
    if messages:
        props["messages"] = [m for _, m in messages]
    people = [raw.get("participantsAdded"), raw.get("participantsChanged")]
    participants: dict[str, Any] = {}
    for what, value in zip(("participantsAdded", "participantsChanged"), people, strict=True):
        entries, p = read_entries(PARTICIPANT, value, what)
        problems += p
        participants.update(entries)
    if participants:
        props["participants"] = participants
    # A details snapshot replaces one request's details; it is not a snapshot of the aggregate.
    upsert = Upsert(
        rules.name(assistance_id),
        props,
        replace=snapshot,
        append=() if snapshot else ("messages",),
        creates=kind == rules.created_by,
    )
    # An ending state ends the request, after taking in anything the same message added.
    removals = (rules.name(assistance_id),) if rules.ends(props) else ()
    return Update("assistance", False, (upsert,), removals, tuple(p1 + problems), kind)


def _connection_state(raw: dict[str, Any], _snapshot: bool, _kind: str) -> ConnectionChange:
    state = raw.get("newConnectionState")
    if isinstance(state, bool) or not isinstance(state, int):
        raise Malformed("newConnectionState is not an integer")
    reconnect = raw.get("shouldReconnect")
    return ConnectionChange(
        up=state == 1,
        reason=str(raw.get("reason", "")),
        should_reconnect=reconnect if isinstance(reconnect, bool) else None,
    )


_SUBSCRIPTIONS_PATH = "messaging/subscriptions/"


def _subscription_state(raw: dict[str, Any], _snapshot: bool, kind: str) -> SubscriptionState:
    state = enum_name("subscriptionState", raw.get("state"))
    name = raw.get("subscriptionId")
    if isinstance(name, str) and name.strip("/"):
        # Robust to a full path: keep what follows ``messaging/subscriptions/``.
        name = name.rpartition(_SUBSCRIPTIONS_PATH)[2].strip("/")[:300] or None
    else:
        name = None
    family: Family = "messaging" if raw["__type"] == SUBSCRIPTION_STATE else "assistance"
    return SubscriptionState(family, name, state, _error_text(raw.get("error")), kind)


def _error_text(error: Any) -> str:
    # An ICWS error object (§5) or, leniently, a bare string; bounded like failure() does.
    if isinstance(error, dict):
        parts = (error.get("errorId"), error.get("message"))
        return ": ".join(str(p)[:200] for p in parts if p)
    return str(error)[:200] if isinstance(error, str) else ""


Parser = Callable[[dict[str, Any], bool, str], Message]  # (message, is snapshot, kind)
CONNECTION_STATE = "urn:inin.com:connection:connectionStateChangeMessage"
SUBSCRIPTION_STATE = "urn:inin.com:messaging:subscriptionStateMessage"
ASSISTANCE_SUBSCRIPTION_STATE = (
    "urn:inin.com:interactions.assistance:assistanceRequestSubscriptionStateMessage"
)
# State messages are not snapshots or deltas: isDelta may be absent and must not lose them.
_STATE_TYPES = frozenset({CONNECTION_STATE, SUBSCRIPTION_STATE, ASSISTANCE_SUBSCRIPTION_STATE})

PARSERS: Mapping[str, Parser] = {
    "urn:inin.com:interactions:interactionAlertingMessage": _alerting,
    "urn:inin.com:interactions:historyMessage": _history,
    "urn:inin.com:status:statusMessagesMessage": _status_messages,
    "urn:inin.com:interactions.assistance:assistanceRequestListMessage": _assistance_list,
    "urn:inin.com:interactions.assistance:assistanceRequestDetailsMessage": _assistance_details,
    CONNECTION_STATE: _connection_state,
    SUBSCRIPTION_STATE: _subscription_state,
    ASSISTANCE_SUBSCRIPTION_STATE: _subscription_state,
}


def short_type(urn: str) -> str:
    """The last part of a ``__type`` URN, bounded: safe as a metric label."""
    return urn.rsplit(":", 1)[-1][:64] or "none"


def parse(raw: Any) -> Message:
    """One ICWS message as a typed value; never raises."""
    if not isinstance(raw, dict):
        return Ignored("invalid", f"message is {type(raw).__name__}, not an object")
    urn = raw.get("__type")
    if not isinstance(urn, str):
        return Ignored("invalid", "message has no __type")
    kind = short_type(urn)
    parser = PARSERS.get(urn)
    if parser is None:
        return Ignored(kind, f"unrecognized __type {urn}")
    is_delta = raw.get("isDelta")
    if urn in _STATE_TYPES and is_delta is None:
        is_delta = False  # unconfirmed whether ICWS sends it here (§8.8); a state must not be lost
    if not isinstance(is_delta, bool):
        return Ignored(kind, "isDelta is missing or not a boolean")
    try:
        return parser(raw, not is_delta, kind)
    except Malformed as exc:
        return Ignored(kind, str(exc))
