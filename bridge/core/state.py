"""Per-aggregate entity state: snapshots, deltas and reconciliation, in one place.

Theory of operation
-------------------
ICWS sends state as *snapshot-then-delta* (ICWS-PROTOCOL.md §2.4). The first message after a
subscription is made has ``isDelta: false`` and holds everything currently true; later ones have
``isDelta: true`` and hold only what changed. Messages are consumed on read and cannot be
replayed, and a subscription dies with its session, so after any re-login, switchover or
restart the bridge sees a fresh snapshot and must work out what happened while it was blind.

The cache here holds, per aggregate, the *last published* state of every live entity together
with its per-entity ``sequence``. At start-up it is loaded from the compacted state topics, so
it survives restarts. Every message is applied to it with these rules:

* **delta upsert** — merge only the properties present into what is known (nested objects such
  as ``attributes`` merge key by key; everything else replaces). A new key is *added*.
* **snapshot upsert** — the entry replaces what is known about that entity.
* **removal** — an explicit removal (``StopAlerting``, ``statusMessagesRemoved``,
  ``requestsRemoved``) ends the entity.
* **reconciliation** — after a snapshot, every live entity the snapshot did not mention ended
  while the bridge could not see it (except history, whose snapshot is only the most recent
  calls and whose entries never end). A snapshot that came with problems (an entry dropped as
  malformed) cannot prove that anything is absent, so it reconciles nothing away.

A change is emitted only when the normalized state really differs, and only then does the
entity's ``sequence`` grow. So a restart in which nothing changed in ICWS emits nothing, and an
event re-emitted after a crash before its publication was acknowledged gets the same sequence
(and so the same deterministic id) as the one that may already be on Kafka.

A removed entity's last sequence is remembered (boundedly) so that an entity that comes back
(an interaction alerting again) continues its sequence instead of restarting it.

Each live entity's properties are kept *packed*: as their compact JSON (UTF-8 bytes), under a
third of the memory of the dicts they come from (about 500 bytes per alerting interaction with
its key, against 1,700), so 100,000 live entities take about 50 MB. They are unpacked only
where a rule needs them (a delta to merge, a removal to report, a snapshot entry that is not
byte for byte what is known). The packing is exactly what the event encoder writes for the
state, so a change carries it along (``Change.packed``) and the state is encoded once.
Properties that cannot be packed (not JSON) are kept as they are.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bridge.core.encoding import COMPACT_JSON
from bridge.core.messages import Aggregate, Update, Upsert

ChangeKind = Literal["added", "changed", "removed"]
Cause = Literal["delta", "snapshot", "absent"]

REMOVES_ABSENT: Mapping[Aggregate, bool] = {
    "alerting": True,
    "history": False,
    "status_messages": True,
    "assistance": True,
}


@dataclass(frozen=True, slots=True)
class Change:
    """One real change of one entity, ready to become an event."""

    aggregate: Aggregate
    key: str
    kind: ChangeKind
    state: Mapping[str, Any]
    changed: tuple[str, ...]
    sequence: int
    cause: Cause
    # ``state`` as compact JSON (see :func:`pack`) when the cache has it at hand, else None.
    packed: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Resync:
    """What reconciling one snapshot found."""

    aggregate: Aggregate
    added: int
    changed: int
    removed: int
    unchanged: int


Packed = bytes | dict[str, Any]


def pack(props: Mapping[str, Any]) -> Packed:
    """Properties as compact JSON bytes, or as a dict copy when they are not JSON."""
    try:
        return COMPACT_JSON.encode(props).encode()
    except (TypeError, ValueError):  # not JSON, or a lone surrogate UTF-8 cannot hold
        return dict(props)


def unpack(packed: Packed) -> dict[str, Any]:
    """The properties again (a new dict when packed)."""
    if isinstance(packed, bytes):
        unpacked: dict[str, Any] = json.loads(packed)
        return unpacked
    return packed


class Entity:
    """One live entity: its packed properties and its sequence."""

    __slots__ = ("packed", "sequence")

    def __init__(self, props: Mapping[str, Any], sequence: int) -> None:
        self.packed = pack(props)
        self.sequence = sequence

    @property
    def props(self) -> dict[str, Any]:
        """The properties (unpacked anew on every read)."""
        return unpack(self.packed)

    @property
    def encoded(self) -> bytes | None:
        """The properties as compact JSON, or None when they could not be packed."""
        return self.packed if isinstance(self.packed, bytes) else None


def merge(
    old: Mapping[str, Any], new: Mapping[str, Any], append: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Properties of ``new`` over ``old``; objects merge key by key, ``append`` lists extend."""
    merged = dict(old)
    for name, value in new.items():
        before = merged.get(name)
        if name in append and isinstance(value, list):
            merged[name] = [*(before if isinstance(before, list) else []), *value]
        elif isinstance(value, dict) and isinstance(before, dict):
            merged[name] = merge(before, value)
        else:
            merged[name] = value
    return merged


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """Top-level property names whose values differ, sorted."""
    return tuple(sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name)))


@dataclass
class AggregateState:
    """The live entities of one aggregate and the rules that change them."""

    aggregate: Aggregate
    max_retired: int = 50_000
    max_entities: int | None = None
    entities: dict[str, Entity] = field(default_factory=dict)
    retired: OrderedDict[str, int] = field(default_factory=OrderedDict)

    def load(self, key: str, props: Mapping[str, Any] | None, sequence: int) -> None:
        """Take one published state; ``None`` props means the entity ended (at ``sequence``)."""
        if props is None:
            entity = self.entities.pop(key, None)
            if entity is not None:  # a tombstone stands for the removal, one past the state
                self._retire(key, max(sequence, entity.sequence + 1))
            elif sequence:
                self._retire(key, max(sequence, self.retired.get(key, 0)))
            return
        self.retired.pop(key, None)
        self.entities[key] = Entity(props, sequence)

    def apply(self, update: Update) -> tuple[list[Change], Resync | None]:
        """Apply one parsed message; the changes it makes, and the resync summary of a snapshot."""
        changes: list[Change] = []
        cause: Cause = "snapshot" if update.snapshot else "delta"
        seen: set[str] = set()
        for upsert in update.upserts:
            seen.add(upsert.key)
            change = self._upsert(upsert, cause)
            if change is not None:
                changes.append(change)
        for key in update.removals:
            change = self._remove(key, cause)
            if change is not None:
                changes.append(change)
        if not update.snapshot:
            self._evict()
            return changes, None
        if REMOVES_ABSENT[self.aggregate] and not update.problems:
            absent = sorted(self.entities.keys() - seen)
            changes += [c for c in (self._remove(k, "absent") for k in absent) if c is not None]
        self._evict()
        return changes, _summary(self.aggregate, changes, len(seen))

    def _upsert(self, upsert: Upsert, cause: Cause) -> Change | None:
        key, props = upsert.key, upsert.props
        entity = self.entities.get(key)
        if entity is None:
            if not upsert.creates:
                return None  # e.g. details of a request the list already removed
            sequence = self.retired.pop(key, 0) + 1
            entity = self.entities[key] = Entity(props, sequence)
            return Change(
                self.aggregate,
                key,
                "added",
                props,
                tuple(sorted(props)),
                sequence,
                cause,
                entity.encoded,
            )
        if upsert.replace:
            new = dict(props)
            packed = pack(new)
            if isinstance(packed, bytes) and packed == entity.packed:
                return None  # the same JSON is the same state (a snapshot's unchanged entry)
            old = entity.props
        else:
            old = entity.props
            new = merge(old, props, upsert.append)
            packed = None
        diff = changed_fields(old, new)
        if not diff:
            return None
        entity.packed = pack(new) if packed is None else packed
        entity.sequence += 1
        return Change(
            self.aggregate, key, "changed", new, diff, entity.sequence, cause, entity.encoded
        )

    def _remove(self, key: str, cause: Cause) -> Change | None:
        entity = self.entities.pop(key, None)
        if entity is None:
            return None
        sequence = entity.sequence + 1
        self._retire(key, sequence)
        return Change(
            self.aggregate, key, "removed", entity.props, (), sequence, cause, entity.encoded
        )

    def _retire(self, key: str, sequence: int) -> None:
        self.retired[key] = sequence
        self.retired.move_to_end(key)
        while len(self.retired) > self.max_retired:
            self.retired.popitem(last=False)

    def _evict(self) -> None:
        # Only for aggregates whose entities never end (history): keep the newest, forget the
        # oldest. A forgotten entry that a later snapshot still holds is published again as
        # new; if it never changed (history items rarely do) that is the same sequence and
        # state, hence the same event id, which consumers deduplicate. Keep the cache larger
        # than the snapshot (subscriptions.history.number_of_messages) and it does not happen.
        if self.max_entities is None:
            return
        excess = len(self.entities) - self.max_entities
        for key in list(self.entities)[: max(excess, 0)]:
            del self.entities[key]


def _summary(aggregate: Aggregate, changes: Iterable[Change], mentioned: int) -> Resync:
    counts = {"added": 0, "changed": 0, "removed": 0}
    for change in changes:
        counts[change.kind] += 1
    return Resync(
        aggregate,
        counts["added"],
        counts["changed"],
        counts["removed"],
        max(mentioned - counts["added"] - counts["changed"], 0),
    )


def new_states(
    max_history: int | None = None,
) -> dict[Aggregate, AggregateState]:
    """One empty state per aggregate."""
    return {
        "alerting": AggregateState("alerting"),
        "history": AggregateState("history", max_entities=max_history),
        "status_messages": AggregateState("status_messages"),
        "assistance": AggregateState("assistance"),
    }
