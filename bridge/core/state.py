"""Per-aggregate entity state: snapshots, deltas and reconciliation, in one place.

Theory of operation
-------------------
ICWS sends state as *snapshot-then-delta* (docs/icws-protocol.md §2.4). The first message after a
subscription is made has ``isDelta: false`` and holds everything currently true; later ones have
``isDelta: true`` and hold only what changed. Messages are consumed on read and cannot be
replayed, and a subscription dies with its session, so after any re-login, switchover or
restart the bridge sees a fresh snapshot and must work out what happened while it was blind.

The cache here holds, per aggregate, the *last published* state of every live entity together
with its per-entity ``sequence``. At start-up it is loaded from the compacted state topics, so
it survives restarts. Every message is applied to it with these rules:

* **delta upsert** — merge only the properties present into what is known (nested objects such
  as ``attributes`` merge key by key; everything else replaces). A new key is *added*, if the
  message is of the kind that creates entities (``FamilyRules.created_by``).
* **snapshot upsert** — the entry replaces what is known about that entity (unless the family's
  snapshot names entities without their properties, ``FamilyRules.snapshot``).
* **removal** — an explicit removal (a key listed in ``FamilyRules.removed_by``, or an entry
  carrying ``FamilyRules.ends_on``) ends the entity.
* **reconciliation** — after a snapshot that names every live entity, every live entity it did
  not mention ended while the bridge could not see it (not history: its snapshot holds only the
  most recent calls, and its entries never end, so the cache forgets the oldest instead). A
  snapshot that came with problems (an entry dropped as malformed) cannot prove that anything
  is absent, so it reconciles nothing away.

What differs between the four message families — the key and its case, what a snapshot
replaces, what creates and what ends an entity — is in one table, :data:`RULES`, one row per
family. The parser (``bridge.core.messages``) and the cache below read their decisions there.

A change is emitted only when the normalized state really differs, and only then does the
entity's ``sequence`` grow. So a restart in which nothing changed in ICWS emits nothing, and an
event re-emitted after a crash before its publication was acknowledged gets the same sequence
(and so the same deterministic id) as the one that may already be on Kafka.

A removed entity's last sequence is remembered (boundedly) so that an entity that comes back
(an interaction alerting again) continues its sequence instead of restarting it.

Each live entity is kept *packed* (``bridge.core.packing``): one ``bytes`` per entity holding
its sequence and the compact JSON of its property values, the property names kept once per
shape and shared (about 265 bytes per alerting interaction with its key, against 1,700 for the
dicts it comes from), so 100,000 live entities take about 27 MB. They are unpacked only where a
rule needs them (a delta to merge, a removal to report, a snapshot entry that is not byte for
byte what is known). The compact JSON of a change's state (``bridge.core.encoding.pack``) is
exactly what the event encoder writes, so a change carries it along (``Change.packed``) and
the state is encoded once. Properties that cannot be packed (not JSON) are kept as they are.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from bridge.core.packing import Cache, Kept, keep

Aggregate = Literal["alerting", "history", "status_messages", "assistance"]
AGGREGATES: tuple[Aggregate, ...] = ("alerting", "history", "status_messages", "assistance")
ChangeKind = Literal["added", "changed", "removed"]
Cause = Literal["delta", "snapshot", "absent"]

# --- the rules of each message family ------------------------------------------------------

SnapshotScope = Literal["every entity", "recent entities", "every id"]
"""What a snapshot (``isDelta: false``) holds, and so what it replaces.

``every entity``: every live entity in full; each entry replaces, and one it omits has ended.
``recent entities``: only the most recent entities; each entry replaces, an omission proves
nothing. ``every id``: every live entity's key but no properties (those come in messages of
their own); entries merge, and one it omits has ended.
"""


@dataclass(frozen=True, slots=True)
class FamilyRules:
    """How one message family names its entities, what its snapshots say, what creates and ends one.

    ``key``: the property whose value names the entity (and keys its records).
    ``fold_case``: names are case-insensitive, so the key is case-folded (data keeps it as sent).
    ``created_by``: the one message kind (short ``__type``) whose entries may create an entity;
    an entry of any other kind only changes an entity that is live.
    ``removed_by``: the message property that lists the keys of entities that ended, if any.
    ``ends_on``: the (property, value) that ends the entity whose entry carries it, if any.
    ``per_user``: entities are the session user's own, so records name it (not the catalogue).
    """

    key: str
    fold_case: bool
    snapshot: SnapshotScope
    created_by: str
    removed_by: str | None
    ends_on: tuple[str, str] | None
    per_user: bool

    def name(self, key: str) -> str:
        """The entity's key for a name as ICWS sent it."""
        return key.casefold() if self.fold_case else key

    def removed(self, message: Mapping[str, Any]) -> Any:
        """What a message lists (unchecked) as the keys of ended entities; None if nothing."""
        return None if self.removed_by is None else message.get(self.removed_by)

    def ends(self, props: Mapping[str, Any]) -> bool:
        """Whether an entry with these (normalized) properties ends its entity."""
        return self.ends_on is not None and props.get(self.ends_on[0]) == self.ends_on[1]

    @property
    def snapshot_replaces(self) -> bool:
        """A snapshot entry replaces what is known (it holds the entity's properties)."""
        return self.snapshot != "every id"

    @property
    def snapshot_ends_absent(self) -> bool:
        """A live entity a snapshot omits has ended (the snapshot names every live entity)."""
        return self.snapshot != "recent entities"

    @property
    def never_ends(self) -> bool:
        """Nothing ends an entity: the cache must forget the oldest instead (bounded)."""
        return not self.snapshot_ends_absent and self.removed_by is None and self.ends_on is None


RULES: Mapping[Aggregate, FamilyRules] = {
    "alerting": FamilyRules(
        key="interactionId",
        fold_case=False,
        snapshot="every entity",
        created_by="interactionAlertingMessage",
        removed_by=None,
        ends_on=("alertAction", "StopAlerting"),
        per_user=True,
    ),
    "history": FamilyRules(
        key="interactionId",
        fold_case=False,
        snapshot="recent entities",  # subscriptions.history.number_of_messages of them
        created_by="historyMessage",
        removed_by=None,
        ends_on=None,
        per_user=True,
    ),
    "status_messages": FamilyRules(
        key="statusId",
        fold_case=True,  # status ids are case-insensitive (docs/icws-protocol.md §2.4)
        snapshot="every entity",
        created_by="statusMessagesMessage",
        removed_by="statusMessagesRemoved",
        ends_on=None,
        per_user=False,  # one catalogue for everyone, published once (not once per user)
    ),
    "assistance": FamilyRules(
        key="assistanceId",
        fold_case=False,
        snapshot="every id",  # the request list; a details snapshot is one request's details
        created_by="assistanceRequestListMessage",
        removed_by="requestsRemoved",
        ends_on=("state", "Completed"),
        per_user=True,
    ),
}


# --- what a message says, and what it changes ----------------------------------------------


class Upsert(NamedTuple):
    """One entity's properties, and how they combine with what is known.

    ``replace`` drops what was known; otherwise properties merge, except those named in
    ``append`` (lists that only grow, like assistance messages), which extend. ``creates``
    False means the entity must already be live (its existence is decided elsewhere).
    A named tuple, like :class:`Update`: immutable, and built (once per entry) at a third of
    a frozen dataclass's cost.
    """

    key: str
    props: Mapping[str, Any]
    replace: bool = True
    append: tuple[str, ...] = ()
    creates: bool = True


class Update(NamedTuple):
    """What one message says about one aggregate (a named tuple, as :class:`Upsert`)."""

    aggregate: Aggregate
    snapshot: bool
    # A big message's upserts are read as they are iterated (bridge.core.streamed), and its
    # removals and problems found on the way: read those only after the upserts.
    upserts: Iterable[Upsert] = ()
    removals: Sequence[str] = ()
    problems: Sequence[str] = ()
    kind: str = ""


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


def merged_fields(
    old: Mapping[str, Any], new: Mapping[str, Any], merged: Mapping[str, Any]
) -> tuple[str, ...]:
    """``changed_fields(old, merged)`` where ``merged`` is ``merge(old, new, ...)``.

    Only the properties ``new`` names can differ, so only they are compared (a delta names a few
    of an entity's properties).
    """
    return tuple(sorted(name for name in new if old.get(name) != merged[name]))


@dataclass
class AggregateState:
    """The live entities of one aggregate and the rules that change them."""

    aggregate: Aggregate
    max_retired: int = 50_000
    max_entities: int | None = None
    entities: Cache = field(default_factory=Cache)
    retired: OrderedDict[str, int] = field(default_factory=OrderedDict)

    def load(self, key: str, props: Mapping[str, Any] | None, sequence: int) -> None:
        """Take one published state; ``None`` props means the entity ended (at ``sequence``)."""
        if props is None:
            entity = self.entities.pop(key)
            if entity is not None:  # a tombstone stands for the removal, one past the state
                self._retire(key, max(sequence, entity.sequence + 1))
            elif sequence:
                self._retire(key, max(sequence, self.retired.get(key, 0)))
            return
        self.retired.pop(key, None)
        self.entities.put(key, keep(props, self.entities.shapes), sequence)

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
        if RULES[self.aggregate].snapshot_ends_absent and not update.problems:
            absent = sorted(self.entities.keys() - seen)
            changes += [c for c in (self._remove(k, "absent") for k in absent) if c is not None]
        self._evict()
        return changes, _summary(self.aggregate, changes, len(seen))

    def _upsert(self, upsert: Upsert, cause: Cause) -> Change | None:
        key, props = upsert.key, upsert.props
        entity = self.entities.find(key)
        if entity is None:
            if not upsert.creates:
                return None  # e.g. details of a request the list already removed
            sequence = self.retired.pop(key, 0) + 1
            added = keep(props, self.entities.shapes)
            self.entities.put(key, added, sequence)
            return Change(
                self.aggregate,
                key,
                "added",
                props,
                tuple(sorted(props)),
                sequence,
                cause,
                added.json,
            )
        kept: Kept | None
        if upsert.replace:
            new = dict(props)
            kept = keep(new, self.entities.shapes)
            if entity.holds(kept):
                return None  # the same JSON is the same state (a snapshot's unchanged entry)
            diff = changed_fields(entity.props, new)
        else:
            old = entity.props
            new = merge(old, props, upsert.append)
            diff = merged_fields(old, props, new)
            kept = None
        if not diff:
            return None
        if kept is None:
            kept = keep(new, self.entities.shapes)
        sequence = entity.sequence + 1
        self.entities.put(key, kept, sequence)
        return Change(self.aggregate, key, "changed", new, diff, sequence, cause, kept.json)

    def _remove(self, key: str, cause: Cause) -> Change | None:
        entity = self.entities.pop(key)
        if entity is None:
            return None
        sequence = entity.sequence + 1
        self._retire(key, sequence)
        props, encoded = entity.unpacked()
        return Change(self.aggregate, key, "removed", props, (), sequence, cause, encoded)

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


States = dict[Aggregate, AggregateState]
"""One user's states, an :class:`AggregateState` per aggregate."""


def new_states(
    max_history: int | None = None, shared: Mapping[Aggregate, AggregateState] | None = None
) -> States:
    """One user's states, empty, but those ``shared`` (the catalogue's, one for all accounts).

    Aggregates whose entities never end keep ``max_history``.
    """
    given = shared or {}
    bound = {a: max_history if RULES[a].never_ends else None for a in AGGREGATES}
    return {
        a: given[a] if a in given else AggregateState(a, max_entities=bound[a]) for a in AGGREGATES
    }
