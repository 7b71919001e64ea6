"""Each message family's rules, as the README and docs/icws-protocol.md state them, and as applied.

One class per family: its row of ``state.RULES`` (key, case, snapshot scope, what creates and
what ends an entity), written out from the documents, then the behaviour of the parser and the
cache that reads it, on messages shaped like the protocol's examples.
"""

from __future__ import annotations

from typing import Any

from bridge.core.messages import Update, parse
from bridge.core.state import RULES, AggregateState, Change, FamilyRules, new_states

from .core_strategies import ALERTING, ASSISTANCE_DETAILS, ASSISTANCE_LIST, HISTORY_URN, STATUS_URN


def alerting(is_delta: bool, *entries: tuple[str, int]) -> dict[str, Any]:
    """An alerting message with (interactionId, alertAction) entries, §4.1's shape."""
    details = [
        {
            "interactionId": ident,
            "interactionType": "Call",
            "name": "John Smith",
            "address": "+13175550100",
            "alertType": 5,
            "alertAction": action,
            "autoAnswer": False,
        }
        for ident, action in entries
    ]
    return {"__type": ALERTING, "isDelta": is_delta, "alertingInteractionDetails": details}


def history(is_delta: bool, *idents: str) -> dict[str, Any]:
    """A history message with one item per interaction id, §4.2's shape."""
    items = [{"interactionId": i, "initiationTime": "20240105T141502Z"} for i in idents]
    return {"__type": HISTORY_URN, "isDelta": is_delta, "interactionHistory": items}


def status(is_delta: bool, **parts: Any) -> dict[str, Any]:
    """A status-messages message with the given added/changed/removed parts, §4.3's shape."""
    return {"__type": STATUS_URN, "isDelta": is_delta, **parts}


def listing(is_delta: bool, added: list[str], removed: list[str] | None = None) -> dict[str, Any]:
    """An assistance request list message, §4.4's shape."""
    body = {"requestsAdded": added, "requestsRemoved": removed or []}
    return {"__type": ASSISTANCE_LIST, "isDelta": is_delta, **body}


def details(ident: str, state: int, is_delta: bool = True) -> dict[str, Any]:
    """An assistance request details message with a state (None=0, Accepted=1, Completed=2)."""
    return {
        "__type": ASSISTANCE_DETAILS,
        "isDelta": is_delta,
        "assistanceId": ident,
        "state": state,
    }


def run(state: AggregateState, *raws: dict[str, Any]) -> list[Change]:
    """Parse and apply each message in turn; every change made, in order."""
    made: list[Change] = []
    for raw in raws:
        update = parse(raw)
        assert isinstance(update, Update), update
        made += state.apply(update)[0]
    return made


def kinds(changes: list[Change]) -> list[tuple[str, str, str]]:
    return [(c.key, c.kind, c.cause) for c in changes]


class TestAlerting:
    """Alerting: keyed by interaction id; StopAlerting ends; a snapshot is everything alerting."""

    def test_the_row(self) -> None:
        """README: key = interaction id; §4.1: alertAction StopAlerting ends an alert."""
        assert RULES["alerting"] == FamilyRules(
            key="interactionId",
            fold_case=False,
            snapshot="every entity",
            created_by="interactionAlertingMessage",
            removed_by=None,
            ends_on=("alertAction", "StopAlerting"),
        )

    def test_start_creates_and_stop_ends(self) -> None:
        """StartAlerting (1) starts an interaction, StopAlerting (2) ends it."""
        made = run(AggregateState("alerting"), alerting(True, ("1", 1)), alerting(True, ("1", 2)))
        assert kinds(made) == [("1", "added", "delta"), ("1", "removed", "delta")]

    def test_a_snapshot_ends_what_it_omits(self) -> None:
        """An interaction absent from a snapshot stopped alerting while the bridge was blind."""
        made = run(AggregateState("alerting"), alerting(True, ("1", 1)), alerting(False))
        assert kinds(made)[-1] == ("1", "removed", "absent")

    def test_interaction_ids_keep_their_case(self) -> None:
        """Only status ids are case-insensitive: two ids differing in case are two interactions."""
        made = run(AggregateState("alerting"), alerting(True, ("Ab", 1), ("ab", 1)))
        assert kinds(made) == [("Ab", "added", "delta"), ("ab", "added", "delta")]


class TestHistory:
    """History: keyed by interaction id; a snapshot holds only recent calls; items never end."""

    def test_the_row(self) -> None:
        """README: key = interaction id, events recorded/updated only (never ended)."""
        assert RULES["history"] == FamilyRules(
            key="interactionId",
            fold_case=False,
            snapshot="recent entities",
            created_by="historyMessage",
            removed_by=None,
            ends_on=None,
        )

    def test_a_snapshot_ends_nothing_it_omits(self) -> None:
        """A snapshot holds the newest numberOfHistoryMessages: an older item left out is kept."""
        made = run(AggregateState("history"), history(True, "1"), history(False, "2"))
        assert kinds(made) == [("1", "added", "delta"), ("2", "added", "snapshot")]

    def test_only_history_is_bounded(self) -> None:
        """The history cache bound applies to history alone, whose items never end."""
        states = new_states(max_history=10)
        assert {a: s.max_entities for a, s in states.items()} == {
            "alerting": None,
            "history": 10,
            "status_messages": None,
            "assistance": None,
        }


class TestStatusMessages:
    """Status messages: keyed by lower-cased status id; removed ids and absence end them."""

    AVAILABLE = {"statusId": "Available", "messageText": "Available"}

    def test_the_row(self) -> None:
        """README: the key is the status id, lower-cased; §4.3: statusMessagesRemoved ends."""
        assert RULES["status_messages"] == FamilyRules(
            key="statusId",
            fold_case=True,
            snapshot="every entity",
            created_by="statusMessagesMessage",
            removed_by="statusMessagesRemoved",
            ends_on=None,
        )

    def test_ids_ignore_case_and_the_data_keeps_it(self) -> None:
        """``Available`` added and ``AVAILABLE`` removed are one status, keyed ``available``."""
        made = run(
            AggregateState("status_messages"),
            status(True, statusMessagesAdded=[self.AVAILABLE]),
            status(True, statusMessagesRemoved=["AVAILABLE"]),
        )
        assert kinds(made) == [("available", "added", "delta"), ("available", "removed", "delta")]
        assert made[0].state["statusId"] == "Available"

    def test_a_snapshot_is_the_whole_catalogue(self) -> None:
        """A status missing from a snapshot was removed while the bridge was blind."""
        made = run(
            AggregateState("status_messages"),
            status(True, statusMessagesAdded=[self.AVAILABLE]),
            status(False, statusMessagesAdded=[]),
        )
        assert kinds(made)[-1] == ("available", "removed", "absent")


class TestAssistance:
    """Assistance: only the request list creates; requestsRemoved, Completed and absence end."""

    def test_the_row(self) -> None:
        """README: key = assistance id; §4.4: the list names requests, state Completed=2 ends."""
        assert RULES["assistance"] == FamilyRules(
            key="assistanceId",
            fold_case=False,
            snapshot="every id",
            created_by="assistanceRequestListMessage",
            removed_by="requestsRemoved",
            ends_on=("state", "Completed"),
        )

    def test_details_of_an_unknown_request_create_nothing(self) -> None:
        """Details alone never open a request; the list does."""
        state = AggregateState("assistance")
        assert run(state, details("a1", 1)) == []
        made = run(state, listing(True, ["a1"]), details("a1", 1))
        assert kinds(made) == [("a1", "added", "delta"), ("a1", "changed", "delta")]

    def test_completed_ends_a_request(self) -> None:
        """A details message with state Completed closes the request."""
        made = run(AggregateState("assistance"), listing(True, ["a1"]), details("a1", 2))
        assert kinds(made)[-1] == ("a1", "removed", "delta")

    def test_requests_removed_ends_a_request(self) -> None:
        """An id in requestsRemoved closes the request."""
        made = run(AggregateState("assistance"), listing(True, ["a1"]), listing(True, [], ["a1"]))
        assert kinds(made)[-1] == ("a1", "removed", "delta")

    def test_a_list_snapshot_keeps_details_and_ends_what_it_omits(self) -> None:
        """The list names ids only: it leaves known details alone and ends absent requests."""
        state = AggregateState("assistance")
        run(state, listing(True, ["a1", "a2"]), details("a1", 1))
        made = run(state, listing(False, ["a1"]))
        assert kinds(made) == [("a2", "removed", "absent")]
        assert state.entities["a1"].props == {"assistanceId": "a1", "state": "Accepted"}
