"""A big message read one entry at a time makes exactly what the whole-message path makes.

The expected side is the path every message took before: ``json.loads``, the eager parser, and
``apply``. The streamed side leaves the entry list raw (``rawjson.decode``) and reads each entry
as ``apply`` takes it. Both start from the same cache; changes, packed states, resync counts,
problems, the cache after and the Kafka records must be identical.
"""

from __future__ import annotations

import json
import random
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core import events, messages
from bridge.core.entries import ALERT, HISTORY
from bridge.core.events import Contract
from bridge.core.rawjson import decode
from bridge.core.state import Aggregate, AggregateState, new_states
from bridge.core.streamed import StreamedUpserts

from .core_strategies import ALERTING, HISTORY_URN, entry, family, listed, shape_fields

big_messages = st.one_of(
    family(ALERTING, alertingInteractionDetails=listed(entry(shape_fields(ALERT)))),
    family(HISTORY_URN, interactionHistory=listed(entry(shape_fields(HISTORY)))),
)


def alert(n: int, action: int = 1, name: str = "Caller") -> dict[str, Any]:
    """An alerting entry as ICWS sends it (docs/icws-protocol.md §4.1)."""
    return {
        "interactionId": f"10{n:08d}",
        "interactionType": "Call",
        "name": name,
        "address": f"+1555{n:07d}",
        "alertType": 5,
        "alertAction": action,
        "autoAnswer": False,
        "monitoredQueue": {"queueType": 2, "queueName": "Support"},
        "attributes": {"Eic_RemoteName": name},
    }


def snapshot(entries: list[Any]) -> dict[str, Any]:
    return {"__type": ALERTING, "isDelta": False, "alertingInteractionDetails": entries}


def whole_props(raw: dict[str, Any]) -> dict[str, Any]:
    """An entry's properties as the cache holds them (normalized), by the eager parser."""
    message = messages.parse(snapshot([raw]))
    assert isinstance(message, messages.Update)
    (upsert,) = message.upserts
    return dict(upsert.props)


def loaded(aggregate: Aggregate, entities: dict[str, Any]) -> AggregateState:
    """A cache holding ``entities`` (normalized props) at sequence 3, as a restore leaves it."""
    state = new_states()[aggregate]
    for key, props in entities.items():
        state.load(key, props, 3)
    return state


def snapshot_of(state: AggregateState) -> tuple[Any, ...]:
    """Everything the cache holds: each entity's packed state and sequence, and the retired."""
    held = {key: (e.packed, e.sequence) for key, e in state.entities.items()}
    return held, dict(state.retired)


def both(text: str, before: dict[str, Any]) -> tuple[Any, Any]:
    """(changes, resync, problems, removals, cache after) by the eager path and the streamed one."""
    results = []
    for raw in (json.loads(text), decode(text, raw_above=0)):
        message = messages.parse(raw)
        if not isinstance(message, messages.Update):
            results.append((message,))
            continue
        state = loaded(message.aggregate, before)
        changes, resync = state.apply(message)
        packed = [c.packed for c in changes]
        results.append(
            (
                changes,
                packed,
                resync,
                list(message.problems),
                list(message.removals),
                snapshot_of(state),
            )
        )
    return results[0], results[1]


class TestSameAsWhole:
    """Streamed and whole give the same changes, problems and cache, whatever the message."""

    @settings(max_examples=300)
    @given(
        message=big_messages, known=st.lists(st.sampled_from(["1", "2", "Available"]), max_size=3)
    )
    def test_any_near_valid_message(self, message: Any, known: list[str]) -> None:
        """Near-valid alerting and history messages (junk entries included) against a cache."""
        before = {key: {"interactionId": key, "name": "old"} for key in known}
        whole, streamed = both(json.dumps(message), before)
        assert whole == streamed

    def test_a_restart_snapshot_with_changes_ends_and_broken_entries(self) -> None:
        """Unchanged, changed, new, stopped, absent and malformed entries, in one snapshot."""
        rng = random.Random(7)
        entries: list[Any] = [alert(n) for n in range(300)]
        entries[15] = alert(15, name="Changed")
        entries[9] = alert(9, action=2)  # StopAlerting: a removal
        entries.insert(40, {"interactionId": "broken"})  # lacks required properties
        rng.shuffle(entries)
        cached = [alert(n) for n in range(10, 320)]
        before = {a["interactionId"]: whole_props(a) for a in cached}
        text = json.dumps(snapshot(entries))
        whole, streamed = both(text, before)
        assert whole == streamed
        _, _, resync, problems, removals, _ = streamed
        assert len(problems) == 1
        assert "lacks required address" in problems[0]
        assert removals == ["1000000009"]
        # 0-8 are new, 15 changed; with a problem the snapshot proves nothing absent (300-319).
        assert resync is not None
        assert (resync.added, resync.changed, resync.removed) == (9, 1, 0)

    def test_a_clean_restart_snapshot_reconciles_the_absent(self) -> None:
        """Without problems, entities the snapshot omits end (cause "absent"), as before."""
        before = {f"10{n:08d}": {"interactionId": f"10{n:08d}"} for n in range(5)}
        text = json.dumps(snapshot([alert(n) for n in range(3, 8)]))
        whole, streamed = both(text, before)
        assert whole == streamed
        assert [c.cause for c in streamed[0] if c.kind == "removed"] == ["absent"] * 3


class TestRecords:
    """The records published for a big snapshot are byte for byte those of the whole path."""

    def test_records_of_a_big_snapshot(self, contract: Contract, recorded: datetime) -> None:
        """2,000 alerting entries against a cache of 1,500 (some changed): identical records."""
        before = {f"10{n:08d}": whole_props(alert(n)) for n in range(500, 2000)}
        now = [alert(n, name="Renamed" if n % 7 == 0 else "Caller") for n in range(2000)]
        text = json.dumps(snapshot(now))
        records = []
        for raw in (json.loads(text), decode(text, raw_above=0)):
            message = messages.parse(raw)
            assert isinstance(message, messages.Update)
            streamed = not isinstance(raw["alertingInteractionDetails"], list)
            assert isinstance(message.upserts, StreamedUpserts) == streamed
            changes, _ = loaded("alerting", before).apply(message)
            records.append(
                [
                    r
                    for c in changes
                    for r in events.change_records(contract, c, recorded, user="agent.one")
                ]
            )
        renamed = len([n for n in range(500, 2000) if n % 7 == 0])
        assert len(records[0]) == 2 * (500 + renamed)  # an event and a state record each
        assert records[0] == records[1]
