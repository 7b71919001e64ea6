"""The independent oracle and truth: sequences not sets, every field, and no bridge.core inside.

Messages are built with the simulator's own wire builders (what it really sends); published
events are crafted as the README describes them, so each test names the fault it would catch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace
from typing import Any, cast

from bridge.settings import Settings, TopicSettings
from bridge.simulator import Simulator
from bridge.simulator.messages import (
    alerting_message,
    assistance_details_message,
    assistance_list_message,
    history_message,
    status_messages_message,
)
from bridge.simulator.wire import AlertAction, AlertType
from tests.oracle import (
    Step,
    expected_steps,
    missing_steps,
    published_steps,
    sequence_differences,
)
from tests.shapes import enum_name, rfc3339, status_state
from tests.truth import simulator_truth, state_topic_truth

SESSION = "s1"
NAMES = ["Eic_RemoteName"]


def status(text: str) -> dict[str, Any]:
    """A full status message `away` with `text`."""
    return {"statusId": "Away", "messageText": text, "groupTag": "Away", "systemId": "7"}


def status_event(sequence: int, name: str, text: str | None) -> dict[str, Any]:
    """A status event as the README describes it (`removed` when `text` is None)."""
    state = status(text) if text is not None else {"statusId": "Away"}
    return {
        "type": f"com.pureconnect.icws.status.message.{name}.v1",
        "subject": "away",
        "sequence": sequence,
        "data": {"state": state},
    }


def a_b_a() -> list[tuple[str, dict[str, Any]]]:
    """A status added as A, changed to B, changed back to A, then removed."""
    build = status_messages_message
    return [
        (SESSION, build(is_delta=False, omit_empty=False, added=[status("A")])),
        (SESSION, build(is_delta=True, omit_empty=False, changed=[status("B")])),
        (SESSION, build(is_delta=True, omit_empty=False, changed=[status("A")])),
        (SESSION, build(is_delta=True, omit_empty=False, removed=["Away"])),
    ]


class TestSequences:
    """Expected events are per-entity sequences, so a lost step shows even if its state recurs."""

    def test_the_contract_gives_begin_changes_and_end(self) -> None:
        """A, B, A, removed: added, changed, changed, removed, with full states."""
        steps = expected_steps(a_b_a(), NAMES)[("status_messages", "away")]
        assert [(s.kind, s.state) for s in steps] == [
            ("begin", status_state(status("A"))),
            ("change", status_state(status("B"))),
            ("change", status_state(status("A"))),
            ("end", None),
        ]

    def test_a_lost_a_in_a_b_a_shows(self) -> None:
        """The second A lost: the states seen are the same SET, yet the sequence differs."""
        published = published_steps(
            {
                "status_messages": [
                    status_event(1, "added", "A"),
                    status_event(2, "changed", "B"),
                    status_event(3, "removed", None),
                ]
            }
        )
        expected = expected_steps(a_b_a(), NAMES)
        assert sequence_differences(expected, published) != []
        assert missing_steps(expected, published) == [
            "('status_messages', 'away'): change from message #2 not published"
        ]

    def test_every_step_published_in_order_passes(self) -> None:
        """The whole sequence, with one record replayed, is exactly what was expected."""
        events = [
            status_event(1, "added", "A"),
            status_event(2, "changed", "B"),
            status_event(2, "changed", "B"),
            status_event(3, "changed", "A"),
            status_event(4, "removed", None),
        ]
        published = published_steps({"status_messages": events})
        expected = expected_steps(a_b_a(), NAMES)
        assert sequence_differences(expected, published) == []
        assert missing_steps(expected, published) == []

    def test_a_step_from_a_forgiven_message_may_be_missing(self) -> None:
        """Around a SIGKILL a step may be reconciled away; others still must be there."""
        published = published_steps(
            {"status_messages": [status_event(1, "added", "A"), status_event(2, "removed", None)]}
        )
        expected = expected_steps(a_b_a(), NAMES)
        assert missing_steps(expected, published, lambda i: i in (1, 2)) == []
        assert missing_steps(expected, published, lambda i: i == 1) != []

    def test_a_snapshot_ends_what_it_lacks_and_repeats_nothing(self) -> None:
        """A new snapshot without the status ends it; one with an unchanged status is silent."""
        build = status_messages_message
        first = build(is_delta=False, omit_empty=False, added=[status("A")])
        sent = [(SESSION, first), ("s2", first), ("s3", build(is_delta=False, omit_empty=False))]
        steps = expected_steps(sent, NAMES)[("status_messages", "away")]
        assert [s.kind for s in steps] == ["begin", "end"]

    def test_a_delta_changing_nothing_visible_is_no_step(self) -> None:
        """A history delta repeating the notes it had, or an unsubscribed attribute, is silent."""
        item = {"interactionId": "9", "notes": "n", "terminationTime": "20240105T141502Z"}
        alert = {
            "interactionId": "7",
            "interactionType": "Call",
            "name": "X",
            "address": "1",
            "alertType": int(AlertType.ACD_USER),
            "alertAction": int(AlertAction.START_ALERTING),
            "autoAnswer": False,
            "attributes": {"Eic_RemoteName": "X"},
        }
        sent = [
            (SESSION, history_message([item], is_delta=True, omit_empty=False)),
            (SESSION, history_message([{**item}], is_delta=True, omit_empty=False)),
            (SESSION, alerting_message([alert], is_delta=True)),
            (SESSION, alerting_message([{**alert, "attributes": {"Other": "y"}}], is_delta=True)),
        ]
        steps = expected_steps(sent, NAMES)
        assert [s.kind for s in steps[("history", "9")]] == ["begin"]
        assert [s.kind for s in steps[("alerting", "7")]] == ["begin"]
        assert steps[("history", "9")][0].state == {
            "interactionId": "9",
            "notes": "n",
            "terminationTime": "2024-01-05T14:15:02Z",
        }

    def test_assistance_opens_when_listed_and_grows_with_its_details(self) -> None:
        """Listed: opened with what is known; details snapshot, then a message: two updates."""
        message = {"text": "hi", "participantId": "agent.one", "timeAdded": "20240105T141502Z"}
        sent = [
            (SESSION, assistance_list_message(is_delta=True, omit_empty=False, added=["r1"])),
            (
                SESSION,
                assistance_details_message(
                    "r1", is_delta=False, omit_empty=False, fields={"state": 0}
                ),
            ),
            (
                SESSION,
                assistance_details_message(
                    "r1", is_delta=True, omit_empty=False, messages_added=[message]
                ),
            ),
            (SESSION, assistance_list_message(is_delta=True, omit_empty=False, removed=["r1"])),
        ]
        steps: list[Step] = expected_steps(sent, NAMES)[("assistance", "r1")]
        assert [s.kind for s in steps] == ["begin", "change", "change", "end"]
        assert steps[2].state is not None
        assert steps[2].state["messages"][0]["timeAdded"] == "2024-01-05T14:15:02Z"


class TestShapes:
    """The README's shapes: enums as names, compact dates as RFC 3339."""

    def test_enum_names_and_unknown_values(self) -> None:
        """`5` is `AcdUser`; a value ICWS may add later is `Unknown-<n>`."""
        assert enum_name(AlertType, 5) == "AcdUser"
        assert enum_name(AlertType, 42) == "Unknown-42"

    def test_compact_dates_become_rfc3339(self) -> None:
        """`20240105T141502Z` is `2024-01-05T14:15:02Z`."""
        assert rfc3339("20240105T141502Z") == "2024-01-05T14:15:02Z"


def record(topic: str, key: str, state: dict[str, Any] | None) -> SimpleNamespace:
    """A state-topic record: `{sequence, type, state}`, or a tombstone."""
    value = None if state is None else json.dumps({"sequence": 1, "type": "t", "state": state})
    return SimpleNamespace(topic=topic, key=key.encode(), value=value)


class TestTruth:
    """The state topics are compared with the simulator's world on every field."""

    def test_one_wrong_field_of_an_alert_shows(self) -> None:
        """A state equal to the truth but for `alertType` differs."""
        sim = Simulator()
        iid = sim.world.start_alerting("agent.one", name="Ann")
        settings = cast(Settings, SimpleNamespace(topics=TopicSettings()))
        truth = simulator_truth(sim, "agent.one", NAMES)
        right = truth["alerting"][iid]
        topic = settings.topics.alerting_state
        assert state_topic_truth([record(topic, iid, right)], settings)["alerting"] == {iid: right}
        wrong = {**right, "alertType": "User"}
        assert state_topic_truth([record(topic, iid, wrong)], settings)["alerting"] != {iid: right}

    def test_a_tombstone_drops_the_key_and_dates_compare_as_instants(self) -> None:
        """A tombstone ends a key; `+00:00` and `Z` are one instant."""
        sim = Simulator()
        iid = sim.world.add_history("agent.one")
        settings = cast(Settings, SimpleNamespace(topics=TopicSettings()))
        truth = simulator_truth(sim, "agent.one", NAMES)["history"][iid]
        shifted = {**truth, "initiationTime": truth["initiationTime"].replace("Z", "+00:00")}
        topic = settings.topics.history_state
        records = [record(topic, "gone", {"interactionId": "gone"}), record(topic, "gone", None)]
        records.append(record(topic, iid, shifted))
        assert state_topic_truth(records, settings)["history"] == {iid: truth}


def test_the_oracle_and_truth_never_import_the_code_they_judge() -> None:
    """Importing the oracle, truth, shapes and chaos checks loads no bridge.core, no bridge.app."""
    probe = (
        "import sys, tests.oracle, tests.truth, tests.shapes, tests.chaos_checks\n"
        "print(sorted(m for m in sys.modules if m.startswith(('bridge.core', 'bridge.app'))))"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter and a fixed probe, no shell
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout
