"""The event contract: CloudEvents 1.0 records for Kafka, built from state changes.

Every entity change becomes two records: the *event* (structured-mode CloudEvent JSON as the
value, its attributes copied into ``ce_*`` headers) on the aggregate's event topic, and the
*state* record (latest full state and sequence, or a tombstone when the entity ended) on the
aggregate's compacted state topic. What one ICWS user sees (alerting, history, assistance) is
that user's: its records are keyed ``<user>/<entity>`` (:func:`entity_key`, the user
percent-encoded) and name the user in ``data.userId`` and the ``icwsuser`` extension attribute;
the status catalogue, the same for everyone, is keyed by the entity alone and names no user.
Event ids are derived from aggregate, key, sequence, type and state, so an event re-emitted
after a crash has the id it had before (and two users' views of one entity have two ids).
Types are ``<prefix>.<aggregate>.<event>.v<major>``; a breaking change adds a new major.
This module decides what each record says; ``bridge.core.encoding`` writes it as bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, NamedTuple
from urllib.parse import quote, unquote

# Re-exported (``x as x``): ids, timestamps and the content type are part of the contract too.
from bridge.core.encoding import CONTENT_TYPE as CONTENT_TYPE
from bridge.core.encoding import (
    EventWriter,
    When,
    ce_headers,
    compact,
    read_json,
    spliced_event,
    spliced_state,
    stamp_text,
)
from bridge.core.encoding import event_id as event_id
from bridge.core.encoding import timestamp as timestamp
from bridge.core.messages import Aggregate
from bridge.core.state import RULES, Change, ChangeKind, Resync

SPEC_VERSION = "1.0"
MAJOR = 1

EVENT_NAMES: Mapping[tuple[Aggregate, ChangeKind], str] = {
    ("alerting", "added"): "interaction.alerting.started",
    ("alerting", "changed"): "interaction.alerting.changed",
    ("alerting", "removed"): "interaction.alerting.stopped",
    ("history", "added"): "interaction.history.recorded",
    ("history", "changed"): "interaction.history.updated",
    ("status_messages", "added"): "status.message.added",
    ("status_messages", "changed"): "status.message.changed",
    ("status_messages", "removed"): "status.message.removed",
    ("assistance", "added"): "assistance.request.opened",
    ("assistance", "changed"): "assistance.request.updated",
    ("assistance", "removed"): "assistance.request.closed",
}
LIFECYCLE_NAMES = (
    "bridge.session.up",
    "bridge.session.down",
    "bridge.gap.possible",
    "bridge.resync.completed",
)


@dataclass(frozen=True, slots=True)
class Contract:
    """The configurable parts of the contract: type prefix, source, schema base, topics."""

    type_prefix: str
    source: str
    schema_base: str
    event_topics: Mapping[Aggregate, str]
    state_topics: Mapping[Aggregate, str]
    lifecycle_topic: str
    attribute_headers: bool = True
    # Each entity event's constant attributes, written once (see EventWriter).
    written: Mapping[str, EventWriter] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        written = {
            name: EventWriter.of(
                SPEC_VERSION, self.source, self.type_of(name), self.schema_of(name), USER_ATTRIBUTE
            )
            for name in EVENT_NAMES.values()
        }
        object.__setattr__(self, "written", written)

    def type_of(self, name: str) -> str:
        return f"{self.type_prefix}.{name}.v{MAJOR}"

    def schema_of(self, name: str) -> str:
        return f"{self.schema_base}/{name}.v{MAJOR}.json"


class Record(NamedTuple):
    """One Kafka record to publish; ``label`` names it for metrics (event name or ``state``).

    A named tuple, immutable like the core's dataclasses, at a third of a frozen dataclass's
    cost to build (two per event).
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    label: str


# --- keys: whose view of which entity -----------------------------------------------------

Scope = Aggregate | Literal["session"]
"""What a key is about: one aggregate's entities, or (lifecycle) an account's session."""
USER_ATTRIBUTE = "icwsuser"
"""The CloudEvents extension attribute naming the user (header ``ce_icwsuser``)."""


def per_user(scope: Scope) -> bool:
    """Records about ``scope`` are one user's: an account's session, a per-user aggregate."""
    return scope == "session" or RULES[scope].per_user


def owner(user: str | None, scope: Scope) -> str | None:
    """The user records about ``scope`` name: the session's user; none for the catalogue."""
    return user if per_user(scope) else None


def entity_key(user: str | None, aggregate: Scope, entity: str) -> bytes:
    """A record key: ``<user>/<entity>`` (user quoted, so it has no ``/``), or the entity alone.

    The entity alone for the catalogue (not per user) and for ``user`` None.
    """
    named = owner(user, aggregate)
    return (entity if named is None else f"{_quoted(named)}/{entity}").encode()


@lru_cache(maxsize=4096)
def _quoted(user: str) -> str:
    # The same for every record of an account: quoted once, not per record.
    return quote(user, safe="")


def split_key(aggregate: Scope, key: bytes) -> tuple[str | None, str]:
    """A key of ``aggregate`` back as (user, entity); the inverse of :func:`entity_key`.

    No user for the catalogue, nor for a key without one (written before keys named users).
    """
    text = key.decode()
    if not per_user(aggregate):
        return None, text
    quoted, slash, entity = text.partition("/")
    return (unquote(quoted), entity) if slash else (None, text)


# --- how each aggregate shows its state ----------------------------------------------------
# Internally assistance participants are a map by userId (so deltas merge); consumers get a
# list. ``present`` and ``unpresent`` are exact inverses on what the bridge makes.


def _assistance_present(state: Mapping[str, Any]) -> dict[str, Any]:
    shown = dict(state)
    shown["messages"] = list(state.get("messages") or [])
    shown["participants"] = sorted(
        (state.get("participants") or {}).values(), key=lambda p: p["userId"]
    )
    return shown


def _assistance_unpresent(shown: Mapping[str, Any]) -> dict[str, Any]:
    state = dict(shown)
    messages = shown.get("messages") or []
    participants = shown.get("participants") or []
    if messages:
        state["messages"] = list(messages)
    else:
        state.pop("messages", None)
    if participants:
        state["participants"] = {p["userId"]: p for p in participants}
    else:
        state.pop("participants", None)
    return state


def _same(state: Mapping[str, Any]) -> dict[str, Any]:
    return dict(state)


PRESENT: Mapping[Aggregate, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "alerting": _same,
    "history": _same,
    "status_messages": _same,
    "assistance": _assistance_present,
}
UNPRESENT: Mapping[Aggregate, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "alerting": _same,
    "history": _same,
    "status_messages": _same,
    "assistance": _assistance_unpresent,
}


def _source_time(aggregate: Aggregate, state: Mapping[str, Any]) -> str | None:
    # When ICWS said it happened, where the data says so.
    if aggregate == "history":
        return state.get("terminationTime") or state.get("initiationTime")
    if aggregate == "assistance":
        times = [m["timeAdded"] for m in state.get("messages") or []]
        return max(times) if times else None
    return None


# --- records -------------------------------------------------------------------------------


def _attributes(
    contract: Contract,
    name: str,
    ident: str,
    subject: str,
    recorded: When,
    time: str | None,
    sequence: int | None,
    user: str | None,
) -> dict[str, Any]:
    recorded_text = stamp_text(recorded)
    event: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": ident,
        "source": contract.source,
        "type": contract.type_of(name),
        "subject": subject,
        "time": time or recorded_text,
        "datacontenttype": "application/json",
        "dataschema": contract.schema_of(name),
        "recordedtime": recorded_text,
    }
    if sequence is not None:
        event["sequence"] = sequence
    if user is not None:
        event[USER_ATTRIBUTE] = user
    return event


def envelope(
    contract: Contract,
    name: str,
    *,
    ident: str,
    subject: str,
    data: Mapping[str, Any],
    recorded: When,
    time: str | None = None,
    sequence: int | None = None,
    user: str | None = None,
) -> dict[str, Any]:
    """A structured-mode CloudEvent as a dict; ``user`` adds the ``icwsuser`` attribute."""
    event = _attributes(contract, name, ident, subject, recorded, time, sequence, user)
    event["data"] = data
    return event


def _record(
    contract: Contract, topic: str, key: bytes, event: Mapping[str, Any], label: str
) -> Record:
    headers = ce_headers(event, contract.attribute_headers)
    return Record(topic, key, compact(event), headers, label)


def change_records(
    contract: Contract, change: Change, recorded: When, *, user: str
) -> tuple[Record, Record]:
    """The event record and the state record for one change seen by ``user``'s session."""
    name = EVENT_NAMES[(change.aggregate, change.kind)]
    shown = PRESENT[change.aggregate](change.state)
    named = owner(user, change.aggregate)
    key = entity_key(named, change.aggregate, change.key)
    ident = event_id(change.aggregate, key.decode(), change.sequence, name, shown)
    written = contract.written[name]
    recorded_text = stamp_text(recorded)
    time = _source_time(change.aggregate, change.state) or recorded_text
    # The state cache keeps the state packed in the very encoding of record values, so when
    # the aggregate shows its state as it is, those bytes are spliced in without encoding.
    if change.packed is not None and PRESENT[change.aggregate] is _same:
        state_json = change.packed
    else:
        state_json = compact(shown)
    head = written.head(ident, change.key, time, recorded_text, change.sequence, named)
    event_value = spliced_event(head, state_json, change.changed, change.cause, named)
    state_value = (
        None
        if change.kind == "removed"
        else spliced_state(change.sequence, written.kind, state_json)
    )
    headers = (
        written.headers(ident, change.key, time, recorded_text, change.sequence, named)
        if contract.attribute_headers
        else ce_headers({}, copy_attributes=False)
    )
    event = Record(contract.event_topics[change.aggregate], key, event_value, headers, name)
    state = Record(contract.state_topics[change.aggregate], key, state_value, (), "state")
    return event, state


ENDING_NAMES = tuple(name for (_, kind), name in EVENT_NAMES.items() if kind == "removed")


def decode_event(aggregate: Aggregate, value: bytes) -> tuple[dict[str, Any] | None, int, str]:
    """An entity event back as (internal state, or None if it ended the entity; sequence; type)."""
    event = read_json(value)
    ended = event["type"].rsplit(".", 1)[0].endswith(ENDING_NAMES)
    state = None if ended else UNPRESENT[aggregate](event["data"]["state"])
    return state, int(event["sequence"]), str(event["type"])


def state_record(
    contract: Contract,
    aggregate: Aggregate,
    key: bytes,
    state: Mapping[str, Any] | None,
    sequence: int,
    event_type: str,
) -> Record:
    """A state-topic record written on its own (a repair): the latest state, or a tombstone."""
    value = (
        None
        if state is None
        else compact({"sequence": sequence, "type": event_type, "state": PRESENT[aggregate](state)})
    )
    return Record(contract.state_topics[aggregate], key, value, (), "state")


def decode_state(aggregate: Aggregate, value: bytes | None) -> tuple[dict[str, Any] | None, int]:
    """A state-topic record back as (internal state or None for a tombstone, sequence)."""
    if value is None:
        return None, 0
    record = read_json(value)
    return UNPRESENT[aggregate](record["state"]), int(record["sequence"])


def lifecycle_record(
    contract: Contract,
    name: str,
    subject: Scope,
    data: Mapping[str, Any],
    recorded: When,
    *,
    user: str,
) -> Record:
    """A lifecycle event (session up/down, gap possible, resync completed) of ``user``'s session.

    About the session or a per-user aggregate, it is keyed ``<user>/<subject>`` and names the
    user (``data.userId`` first); about the catalogue, it is keyed by the subject alone.
    """
    named = owner(user, subject)
    key = entity_key(named, subject, subject)
    full = data if named is None else {"userId": named, **data}
    ident = event_id(name, key.decode(), stamp_text(recorded), full)
    event = envelope(
        contract, name, ident=ident, subject=subject, data=full, recorded=recorded, user=named
    )
    return _record(contract, contract.lifecycle_topic, key, event, name)


def resync_record(contract: Contract, resync: Resync, recorded: When, *, user: str) -> Record:
    """``resync completed`` for one aggregate of ``user``'s session, with what it found."""
    data = {
        "aggregate": resync.aggregate,
        "added": resync.added,
        "changed": resync.changed,
        "removed": resync.removed,
        "unchanged": resync.unchanged,
    }
    return lifecycle_record(
        contract, "bridge.resync.completed", resync.aggregate, data, recorded, user=user
    )
