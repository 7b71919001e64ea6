"""Entity state follows ICWS snapshot-then-delta rules and emits only real changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core import events
from bridge.core.messages import Aggregate, Update, Upsert
from bridge.core.state import (
    AggregateState,
    Change,
    Resync,
    changed_fields,
    merge,
    new_states,
)

Props = dict[str, Any]


def snapshot(
    aggregate: Aggregate, entities: Mapping[str, Props], problems: tuple[str, ...] = ()
) -> Update:
    """An ``isDelta: false`` update holding exactly these entities."""
    upserts = tuple(Upsert(key, props, replace=True) for key, props in entities.items())
    return Update(aggregate, True, upserts, problems=problems)


def delta(
    aggregate: Aggregate,
    entities: Mapping[str, Props] | None = None,
    removals: Iterable[str] = (),
    *,
    append: tuple[str, ...] = (),
    creates: bool = True,
) -> Update:
    """An ``isDelta: true`` update merging these entities and removing these keys."""
    upserts = tuple(
        Upsert(key, props, replace=False, append=append, creates=creates)
        for key, props in (entities or {}).items()
    )
    return Update(aggregate, False, upserts, tuple(removals))


def live(state: AggregateState) -> dict[str, Props]:
    return {key: entity.props for key, entity in state.entities.items()}


CALL = {"interactionId": "1", "name": "John Smith", "alertType": "AcdUser"}
CHAT = {"interactionId": "2", "name": "Web Visitor", "alertType": "Workgroup"}


def restored_from(aggregate: Aggregate, changes: list[Change]) -> AggregateState:
    """A state rebuilt, as at start-up, from the state records the changes produce.

    The records are one user's (a user id that keys must quote); their keys split back to it.
    """
    contract = events.Contract("t", "/t", "https://s", {aggregate: "ev"}, {aggregate: "st"}, "life")
    recorded = datetime(2024, 1, 5, tzinfo=UTC)
    restored = AggregateState(aggregate)
    for change in changes:
        _, record = events.change_records(contract, change, recorded, user="team/a 1%")
        assert record.key is not None
        user, key = events.split_key(aggregate, record.key)
        assert user == (None if aggregate == "status_messages" else "team/a 1%")
        restored.load(key, *events.decode_state(aggregate, record.value))
    return restored


class TestSnapshot:
    """A snapshot replaces what is known about each entity it holds."""

    def test_into_an_empty_state_every_entity_is_added(self) -> None:
        """Each entity of a first snapshot is added with sequence 1 and all its fields."""
        state = AggregateState("alerting")
        changes, _ = state.apply(snapshot("alerting", {"1": CALL, "2": CHAT}))
        assert changes == [
            Change(
                "alerting",
                "1",
                "added",
                CALL,
                ("alertType", "interactionId", "name"),
                1,
                "snapshot",
            ),
            Change(
                "alerting",
                "2",
                "added",
                CHAT,
                ("alertType", "interactionId", "name"),
                1,
                "snapshot",
            ),
        ]
        assert live(state) == {"1": CALL, "2": CHAT}

    def test_a_snapshot_entry_drops_properties_it_does_not_hold(self) -> None:
        """Replacing is not merging: a property missing from the snapshot entry is gone."""
        state = AggregateState("alerting")
        state.apply(delta("alerting", {"1": {**CALL, "attributes": {"Eic_RemoteName": "J"}}}))
        changes, _ = state.apply(snapshot("alerting", {"1": CALL}))
        assert changes == [Change("alerting", "1", "changed", CALL, ("attributes",), 2, "snapshot")]
        assert live(state) == {"1": CALL}


class TestDelta:
    """A delta merges only the properties it carries."""

    def test_a_delta_for_an_unknown_entity_adds_it(self) -> None:
        """A new key in a delta is an ``added`` change caused by the delta."""
        state = AggregateState("alerting")
        changes, resync = state.apply(delta("alerting", {"1": CALL}))
        assert changes == [
            Change(
                "alerting", "1", "added", CALL, ("alertType", "interactionId", "name"), 1, "delta"
            )
        ]
        assert resync is None

    def test_absent_properties_are_kept(self) -> None:
        """Properties the delta does not carry keep their known values."""
        state = AggregateState("alerting")
        state.apply(delta("alerting", {"1": CALL}))
        changes, _ = state.apply(delta("alerting", {"1": {"alertType": "AcdStation"}}))
        expected = {**CALL, "alertType": "AcdStation"}
        assert changes == [Change("alerting", "1", "changed", expected, ("alertType",), 2, "delta")]
        assert live(state) == {"1": expected}

    def test_attributes_merge_key_by_key(self) -> None:
        """A delta's ``attributes`` add to and overwrite the known ones, never clear the rest."""
        state = AggregateState("alerting")
        state.apply(delta("alerting", {"1": {**CALL, "attributes": {"A": "1", "B": "2"}}}))
        changes, _ = state.apply(delta("alerting", {"1": {"attributes": {"B": "3", "C": "4"}}}))
        assert live(state)["1"]["attributes"] == {"A": "1", "B": "3", "C": "4"}
        assert [c.changed for c in changes] == [("attributes",)]

    def test_a_non_object_value_replaces_an_object(self) -> None:
        """Only objects present on both sides merge; anything else replaces."""
        assert merge({"q": {"a": 1}, "x": [1]}, {"q": "none", "x": [2]}) == {"q": "none", "x": [2]}

    def test_merge_is_deep_and_leaves_its_inputs_alone(self) -> None:
        """Nested objects merge at every level, and neither input is modified."""
        old = {"a": {"b": {"c": 1, "d": 2}}, "e": 1}
        new = {"a": {"b": {"d": 3}}}
        assert merge(old, new) == {"a": {"b": {"c": 1, "d": 3}}, "e": 1}
        assert old == {"a": {"b": {"c": 1, "d": 2}}, "e": 1}
        assert new == {"a": {"b": {"d": 3}}}

    def test_append_properties_extend_their_list(self) -> None:
        """Assistance messages have no id: a delta's messages are added after the known ones."""
        state = AggregateState("assistance")
        state.apply(delta("assistance", {"a1": {"messages": [{"text": "one"}], "state": "None"}}))
        changes, _ = state.apply(
            delta("assistance", {"a1": {"messages": [{"text": "two"}]}}, append=("messages",))
        )
        expected = {"messages": [{"text": "one"}, {"text": "two"}], "state": "None"}
        assert changes == [
            Change("assistance", "a1", "changed", expected, ("messages",), 2, "delta")
        ]

    def test_append_starts_a_list_that_was_not_there(self) -> None:
        """Appending to an absent property starts it with the delta's items."""
        assert merge({}, {"messages": [1]}, ("messages",)) == {"messages": [1]}

    def test_without_append_a_list_is_replaced(self) -> None:
        """Lists not named in ``append`` are replaced like any other value."""
        assert merge({"messages": [1]}, {"messages": [2]}) == {"messages": [2]}

    def test_an_upsert_that_may_not_create_ignores_unknown_keys(self) -> None:
        """Details of a request the list never named (or already removed) create nothing."""
        state = AggregateState("assistance")
        changes, _ = state.apply(delta("assistance", {"a1": {"state": "Accepted"}}, creates=False))
        assert (changes, live(state)) == ([], {})

    def test_an_upsert_that_may_not_create_still_changes_known_keys(self) -> None:
        """For a live request, such an upsert merges as usual."""
        state = AggregateState("assistance")
        state.apply(delta("assistance", {"a1": {"assistanceId": "a1"}}))
        changes, _ = state.apply(delta("assistance", {"a1": {"state": "Accepted"}}, creates=False))
        assert [(c.kind, c.changed, c.sequence) for c in changes] == [("changed", ("state",), 2)]

    def test_changed_fields_are_the_sorted_top_level_names_that_differ(self) -> None:
        """Added, removed and modified top-level properties are named once, sorted."""
        assert changed_fields({"b": 1, "a": {"x": 1}, "k": 0}, {"c": 1, "a": {"x": 2}, "k": 0}) == (
            "a",
            "b",
            "c",
        )


class TestNoChange:
    """What does not change the state emits nothing and does not move the sequence."""

    def test_a_delta_repeating_known_values_emits_nothing(self) -> None:
        """Same values again: no change, sequence stays."""
        state = AggregateState("alerting")
        state.apply(delta("alerting", {"1": {**CALL, "attributes": {"A": "1"}}}))
        changes, _ = state.apply(
            delta("alerting", {"1": {"name": "John Smith", "attributes": {"A": "1"}}})
        )
        assert changes == []
        assert state.entities["1"].sequence == 1

    def test_the_same_snapshot_again_emits_nothing(self) -> None:
        """A repeated snapshot is all ``unchanged`` in its resync summary."""
        state = AggregateState("status_messages")
        state.apply(snapshot("status_messages", {"available": {"statusId": "Available"}}))
        changes, resync = state.apply(
            snapshot("status_messages", {"available": {"statusId": "Available"}})
        )
        assert changes == []
        assert resync == Resync("status_messages", added=0, changed=0, removed=0, unchanged=1)
        assert state.entities["available"].sequence == 1

    def test_removing_an_unknown_key_emits_nothing(self) -> None:
        """A StopAlerting for an interaction the bridge never saw changes nothing."""
        assert AggregateState("alerting").apply(delta("alerting", removals=["9"])) == ([], None)


class TestRemoval:
    """An explicit removal ends the entity with its last state and the next sequence."""

    def test_removal_carries_the_last_state(self) -> None:
        """The removed change has the last known state, no changed fields, sequence + 1."""
        state = AggregateState("alerting")
        state.apply(delta("alerting", {"1": CALL}))
        changes, _ = state.apply(delta("alerting", removals=["1"]))
        assert changes == [Change("alerting", "1", "removed", CALL, (), 2, "delta")]
        assert live(state) == {}

    def test_a_removal_in_a_snapshot_is_caused_by_the_snapshot(self) -> None:
        """Removals a snapshot names explicitly have cause ``snapshot``."""
        state = AggregateState("alerting")
        state.apply(delta("alerting", {"1": CALL}))
        update = Update("alerting", True, (Upsert("2", CHAT),), ("1",))
        changes, _ = state.apply(update)
        assert [(c.key, c.kind, c.cause) for c in changes] == [
            ("2", "added", "snapshot"),
            ("1", "removed", "snapshot"),
        ]

    def test_an_entity_that_comes_back_continues_its_sequence(self) -> None:
        """Added 1, removed 2, added again 3: consumers never see a sequence go back."""
        state = AggregateState("alerting")
        state.apply(delta("alerting", {"1": CALL}))
        state.apply(delta("alerting", removals=["1"]))
        changes, _ = state.apply(delta("alerting", {"1": CALL}))
        assert [(c.kind, c.sequence) for c in changes] == [("added", 3)]

    def test_removed_sequences_are_remembered_boundedly(self) -> None:
        """Beyond ``max_retired`` the oldest removed key is forgotten and starts again at 1."""
        state = AggregateState("alerting", max_retired=2)
        for key in ("a", "b", "c"):
            state.apply(delta("alerting", {key: {"k": key}}))
            state.apply(delta("alerting", removals=[key]))
        assert list(state.retired) == ["b", "c"]
        changes, _ = state.apply(delta("alerting", {"a": {"k": "a"}, "c": {"k": "c"}}))
        assert [(c.key, c.sequence) for c in changes] == [("a", 1), ("c", 3)]


class TestReconciliation:
    """After a snapshot, what it did not mention ended while the bridge was not looking."""

    @pytest.mark.parametrize("aggregate", ["alerting", "status_messages", "assistance"])
    def test_live_entities_absent_from_a_snapshot_are_removed(self, aggregate: Aggregate) -> None:
        """Absent entities are removed with cause ``absent``, in key order."""
        state = AggregateState(aggregate)
        state.apply(delta(aggregate, {"k3": {"v": 3}, "k1": {"v": 1}, "k2": {"v": 2}}))
        changes, resync = state.apply(snapshot(aggregate, {"k2": {"v": 2}}))
        assert changes == [
            Change(aggregate, "k1", "removed", {"v": 1}, (), 2, "absent"),
            Change(aggregate, "k3", "removed", {"v": 3}, (), 2, "absent"),
        ]
        assert resync == Resync(aggregate, added=0, changed=0, removed=2, unchanged=1)
        assert live(state) == {"k2": {"v": 2}}

    def test_history_entries_never_end(self) -> None:
        """A history snapshot holds only recent calls: older ones are not removed."""
        state = AggregateState("history")
        state.apply(snapshot("history", {"old": {"interactionId": "old"}}))
        changes, resync = state.apply(snapshot("history", {"new": {"interactionId": "new"}}))
        assert [(c.key, c.kind) for c in changes] == [("new", "added")]
        assert resync == Resync("history", added=1, changed=0, removed=0, unchanged=0)
        assert set(state.entities) == {"old", "new"}

    def test_a_snapshot_with_problems_removes_nothing_absent(self) -> None:
        """An entry dropped as malformed is not proof of absence, so nothing is reconciled away."""
        state = AggregateState("alerting")
        state.apply(delta("alerting", {"1": CALL, "2": CHAT}))
        update = snapshot(
            "alerting", {"2": CHAT}, problems=("alerts[0]: entry lacks required name",)
        )
        changes, resync = state.apply(update)
        assert changes == []
        assert resync == Resync("alerting", added=0, changed=0, removed=0, unchanged=1)
        assert set(state.entities) == {"1", "2"}

    def test_an_empty_snapshot_ends_everything(self) -> None:
        """A well-formed empty snapshot says nothing is alerting any more."""
        state = AggregateState("alerting")
        state.apply(delta("alerting", {"1": CALL, "2": CHAT}))
        changes, resync = state.apply(snapshot("alerting", {}))
        assert [(c.key, c.kind, c.cause) for c in changes] == [
            ("1", "removed", "absent"),
            ("2", "removed", "absent"),
        ]
        assert resync == Resync("alerting", added=0, changed=0, removed=2, unchanged=0)

    def test_the_resync_summary_counts_each_kind(self) -> None:
        """One added, one changed, one unchanged, two removed (one explicit, one absent)."""
        state = AggregateState("alerting")
        state.apply(
            delta(
                "alerting", {"same": {"v": 1}, "edit": {"v": 1}, "gone": {"v": 1}, "stop": {"v": 1}}
            )
        )
        update = Update(
            "alerting",
            True,
            (Upsert("same", {"v": 1}), Upsert("edit", {"v": 2}), Upsert("new", {"v": 1})),
            ("stop",),
        )
        changes, resync = state.apply(update)
        assert [(c.key, c.kind, c.cause) for c in changes] == [
            ("edit", "changed", "snapshot"),
            ("new", "added", "snapshot"),
            ("stop", "removed", "snapshot"),
            ("gone", "removed", "absent"),
        ]
        assert resync == Resync("alerting", added=1, changed=1, removed=2, unchanged=1)

    def test_a_delta_has_no_resync_summary(self) -> None:
        """Only snapshots are reconciled and summarized."""
        assert AggregateState("alerting").apply(delta("alerting", {"1": CALL}))[1] is None


class TestRestore:
    """State loaded from the state topics behaves like the state that wrote them."""

    def test_the_same_snapshot_after_a_restore_emits_nothing(self) -> None:
        """Loaded entities that the snapshot repeats are unchanged."""
        state = AggregateState("alerting")
        state.load("1", CALL, 4)
        state.load("2", CHAT, 1)
        changes, resync = state.apply(snapshot("alerting", {"1": CALL, "2": CHAT}))
        assert changes == []
        assert resync == Resync("alerting", added=0, changed=0, removed=0, unchanged=2)

    def test_a_change_after_a_restore_continues_the_loaded_sequence(self) -> None:
        """Sequence 4 loaded, the next change is 5."""
        state = AggregateState("alerting")
        state.load("1", CALL, 4)
        changes, _ = state.apply(delta("alerting", {"1": {"name": "J. Smith"}}))
        assert [(c.kind, c.sequence) for c in changes] == [("changed", 5)]

    def test_a_tombstone_ends_a_loaded_entity(self) -> None:
        """A later tombstone for the key removes it from the live entities."""
        state = AggregateState("alerting")
        state.load("1", CALL, 4)
        state.load("1", None, 0)
        assert live(state) == {}

    def test_an_entity_back_after_its_tombstone_continues_past_the_removal(self) -> None:
        """State 4 then tombstone (the removal was 5): coming back is 6, as without a restart."""
        state = AggregateState("alerting")
        state.load("1", CALL, 4)
        state.load("1", None, 0)
        changes, _ = state.apply(delta("alerting", {"1": CALL}))
        assert [(c.kind, c.sequence) for c in changes] == [("added", 6)]

    def test_a_record_after_a_tombstone_revives_the_entity(self) -> None:
        """The last record per key wins, whatever came before it."""
        state = AggregateState("alerting")
        state.load("1", CALL, 1)
        state.load("1", None, 0)
        state.load("1", CHAT, 3)
        assert live(state) == {"1": CHAT}
        assert state.entities["1"].sequence == 3
        assert "1" not in state.retired

    def test_a_tombstone_for_an_unknown_key_is_harmless(self) -> None:
        """A tombstone whose state record was compacted away leaves nothing behind."""
        state = AggregateState("alerting")
        state.load("1", None, 0)
        assert (live(state), dict(state.retired)) == ({}, {})


class TestEviction:
    """History keeps at most ``max_entities``: the oldest are forgotten, not removed."""

    def test_the_oldest_entries_are_forgotten_silently(self) -> None:
        """Three added, two kept; forgetting emits no removal."""
        state = new_states(max_history=2)["history"]
        changes, _ = state.apply(snapshot("history", {k: {"interactionId": k} for k in "abc"}))
        assert [(c.key, c.kind) for c in changes] == [
            ("a", "added"),
            ("b", "added"),
            ("c", "added"),
        ]
        assert list(state.entities) == ["b", "c"]
        assert dict(state.retired) == {}

    def test_a_forgotten_entry_seen_again_is_the_same_event(self) -> None:
        """Published again with the same sequence and state, hence the same event id."""
        state = new_states(max_history=1)["history"]
        first, _ = state.apply(delta("history", {"a": {"interactionId": "a"}}))
        state.apply(delta("history", {"b": {"interactionId": "b"}}))
        again, _ = state.apply(delta("history", {"a": {"interactionId": "a"}}))
        assert again == first

    def test_new_states_has_one_state_per_aggregate(self) -> None:
        """Four aggregates; only history is bounded."""
        states = new_states(max_history=10)
        assert {a: (s.aggregate, s.max_entities) for a, s in states.items()} == {
            "alerting": ("alerting", None),
            "history": ("history", 10),
            "status_messages": ("status_messages", None),
            "assistance": ("assistance", None),
        }


# --- properties ----------------------------------------------------------------------------

KEYS = ["k1", "k2", "k3", "k4", "k5"]

# Property values drawn from fixed variants: cheap to generate, and chosen so that merges
# touch nested objects (attributes, monitoredQueue) as well as plain values.
ENTITY_VARIANTS: list[Props] = [
    {"name": "a"},
    {"name": "b"},
    {"name": "a", "alertType": "AcdUser"},
    {"alertType": "Workgroup"},
    {"name": "a", "attributes": {"A": "1"}},
    {"attributes": {"A": "2", "B": "1"}},
    {"attributes": {"C": "1"}},
    {"name": "b", "attributes": {}},
    {"monitoredQueue": {"queueType": "User", "queueName": "q"}},
    {"name": "a", "monitoredQueue": {"queueType": "System"}},
]


def _assistance(*messages: tuple[str, str], **rest: Any) -> Props:
    props: Props = {"assistanceId": "x", **rest}
    if messages:
        props["messages"] = [
            {"text": t, "participantId": "agent.one", "timeAdded": at} for t, at in messages
        ]
    return props


ASSISTANCE_VARIANTS: list[Props] = [
    _assistance(),
    _assistance(state="Accepted"),
    _assistance(("hi", "2024-01-05T14:16:00Z")),
    _assistance(("ok", "2024-01-05T14:17:00Z"), ("hi", "2024-01-05T14:16:00Z"), state="None"),
    _assistance(
        participants={"agent.one": {"userId": "agent.one", "action": "Initiated"}},
    ),
    _assistance(
        ("hi", "2024-01-05T14:16:00Z"),
        participants={"super.visor": {"userId": "super.visor", "action": "Accepted"}},
    ),
    _assistance(participants={"agent.one": {"userId": "agent.one", "action": "Ignored"}}),
]
props = st.sampled_from(ENTITY_VARIANTS)
PROPS_BY_AGGREGATE: dict[Aggregate, st.SearchStrategy[Props]] = {
    "alerting": props,
    "status_messages": props,
    "history": props,
    "assistance": st.sampled_from(ASSISTANCE_VARIANTS),
}


def operations(aggregate: Aggregate) -> st.SearchStrategy[list[Update]]:
    """Sequences of deltas and snapshots of one aggregate."""
    entities = st.dictionaries(st.sampled_from(KEYS), PROPS_BY_AGGREGATE[aggregate], max_size=5)
    # ICWS never removes history items (§4.2), so history deltas remove nothing.
    removals = st.lists(
        st.sampled_from(KEYS), max_size=0 if aggregate == "history" else 2, unique=True
    )
    kinds = [
        st.builds(lambda e, r: delta(aggregate, e, r), entities, removals),
        st.builds(lambda e: snapshot(aggregate, e), entities),
    ]
    if aggregate == "assistance":  # details deltas: messages append, no request is created
        kinds.append(
            st.builds(lambda e: delta(aggregate, e, append=("messages",), creates=False), entities)
        )
    one = st.one_of(*kinds)
    return st.lists(one, max_size=8)


OPERATIONS = {aggregate: operations(aggregate) for aggregate in PROPS_BY_AGGREGATE}
ENTITIES = {
    aggregate: st.dictionaries(st.sampled_from(KEYS), strategy, max_size=5)
    for aggregate, strategy in PROPS_BY_AGGREGATE.items()
}


def run(state: AggregateState, updates: Iterable[Update]) -> list[Change]:
    changes: list[Change] = []
    for update in updates:
        changes += state.apply(update)[0]
    return changes


# Each property runs once per aggregate, so fewer examples per run keep the suite fast.
PROPERTY = settings(max_examples=40)


class TestProperties:
    """Invariants of the snapshot/delta rules, over arbitrary sequences of messages."""

    @pytest.mark.parametrize("aggregate", ["alerting", "status_messages"])
    @PROPERTY
    @given(data=st.data())
    def test_a_snapshot_after_any_deltas_yields_exactly_the_snapshot(
        self, aggregate: Aggregate, data: st.DataObject
    ) -> None:
        """Whatever came before, the live entities afterwards are the snapshot's entities."""
        state = AggregateState(aggregate)
        run(state, data.draw(OPERATIONS[aggregate]))
        final = data.draw(ENTITIES[aggregate])
        state.apply(snapshot(aggregate, final))
        assert live(state) == final

    @pytest.mark.parametrize("aggregate", ["alerting", "history", "status_messages", "assistance"])
    @PROPERTY
    @given(data=st.data())
    def test_sequences_grow_by_exactly_one_per_emitted_change(
        self, aggregate: Aggregate, data: st.DataObject
    ) -> None:
        """Per key the emitted sequences are 1, 2, 3, … and the live entity holds the last one."""
        state = AggregateState(aggregate)
        changes = run(state, data.draw(OPERATIONS[aggregate]))
        by_key: dict[str, list[int]] = {}
        for change in changes:
            by_key.setdefault(change.key, []).append(change.sequence)
        for key, sequences in by_key.items():
            assert sequences == list(range(1, len(sequences) + 1)), key
            if key in state.entities:
                assert state.entities[key].sequence == sequences[-1]

    @pytest.mark.parametrize("aggregate", ["alerting", "history", "status_messages", "assistance"])
    @PROPERTY
    @given(data=st.data())
    def test_replaying_a_snapshot_emits_nothing_the_second_time(
        self, aggregate: Aggregate, data: st.DataObject
    ) -> None:
        """The second of two identical snapshots is all unchanged."""
        state = AggregateState(aggregate)
        run(state, data.draw(OPERATIONS[aggregate]))
        entities = data.draw(ENTITIES[aggregate])
        state.apply(snapshot(aggregate, entities))
        sequences = {key: e.sequence for key, e in state.entities.items()}
        changes, resync = state.apply(snapshot(aggregate, entities))
        assert changes == []
        assert resync == Resync(aggregate, 0, 0, 0, len(entities))
        assert {key: e.sequence for key, e in state.entities.items()} == sequences

    @pytest.mark.parametrize("aggregate", ["alerting", "history", "status_messages", "assistance"])
    @PROPERTY
    @given(data=st.data())
    def test_a_restored_state_reconciles_to_no_changes(
        self, aggregate: Aggregate, data: st.DataObject
    ) -> None:
        """State rebuilt from the emitted state records, given the same snapshot, emits nothing."""
        original = AggregateState(aggregate)
        entities = data.draw(ENTITIES[aggregate])
        updates = [*data.draw(OPERATIONS[aggregate]), snapshot(aggregate, entities)]
        restored = restored_from(aggregate, run(original, updates))

        assert restored.apply(snapshot(aggregate, entities))[0] == []
        assert live(restored) == live(original)

    @pytest.mark.parametrize("aggregate", ["alerting", "status_messages", "assistance"])
    @PROPERTY
    @given(data=st.data())
    def test_a_restored_state_goes_on_exactly_like_the_original(
        self, aggregate: Aggregate, data: st.DataObject
    ) -> None:
        """After a restart, any further messages emit the same changes as without the restart."""
        original = AggregateState(aggregate)
        restored = restored_from(aggregate, run(original, data.draw(OPERATIONS[aggregate])))

        later = data.draw(OPERATIONS[aggregate])
        assert run(restored, later) == run(original, later)


class TestLoadingAnEnding:
    """An ending read back at start-up keeps the sequence counting past it."""

    def test_ending_with_sequence_retires_the_key_at_that_sequence(self) -> None:
        """load(key, None, n) ends a live entity, and a comeback continues from n + 1."""
        state = AggregateState("status_messages")
        state.load("away", {"statusId": "Away"}, 3)
        state.load("away", None, 7)
        assert "away" not in state.entities
        comeback = Update("status_messages", False, (Upsert("away", {"statusId": "Away"}),))
        (change,), _ = state.apply(comeback)
        assert (change.kind, change.sequence) == ("added", 8)

    def test_ending_of_an_unknown_key_is_remembered(self) -> None:
        """An ending of a key never loaded still sets where its sequence resumes."""
        state = AggregateState("status_messages")
        state.load("gone", None, 5)
        comeback = Update("status_messages", False, (Upsert("gone", {"statusId": "Gone"}),))
        (change,), _ = state.apply(comeback)
        assert change.sequence == 6
