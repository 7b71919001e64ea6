"""ICWS messages become typed values: dispatched by ``__type``, normalized, and never raising."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.core.entries import ALERT, ENUMS, HISTORY, STATUS, Malformed, enum_name, rfc3339
from bridge.core.messages import (
    PARSERS,
    ConnectionChange,
    Ignored,
    Message,
    SubscriptionState,
    Update,
    parse,
    short_type,
)

from .core_strategies import (
    ALERTING,
    ASSISTANCE_DETAILS,
    ASSISTANCE_LIST,
    CONNECTION,
    HISTORY_URN,
    STATUS_URN,
    json_values,
    near_messages,
)

SUBSCRIPTION_STATE_URN = "urn:inin.com:messaging:subscriptionStateMessage"
ASSISTANCE_STATE_URN = (
    "urn:inin.com:interactions.assistance:assistanceRequestSubscriptionStateMessage"
)
SAMPLES = sorted((Path(__file__).parents[1] / "samples" / "messages").glob("*.json"))


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def described(message: Message) -> dict[str, Any]:
    """A parse result in the JSON shape the sample files use for ``expect``."""
    if isinstance(message, Update):
        return {
            "type": "Update",
            "aggregate": message.aggregate,
            "kind": message.kind,
            "snapshot": message.snapshot,
            "upserts": [
                {
                    "key": u.key,
                    "replace": u.replace,
                    "append": list(u.append),
                    "creates": u.creates,
                    "props": dict(u.props),
                }
                for u in message.upserts
            ],
            "removals": list(message.removals),
            "problems": list(message.problems),
        }
    if isinstance(message, ConnectionChange):
        return {
            "type": "ConnectionChange",
            "up": message.up,
            "reason": message.reason,
            "should_reconnect": message.should_reconnect,
        }
    if isinstance(message, SubscriptionState):
        return {
            "type": "SubscriptionState",
            "kind": message.kind,
            "family": message.family,
            "subscription": message.subscription,
            "state": message.state,
            "error": message.error,
            "lost": message.lost,
        }
    return {"type": "Ignored", "kind": message.kind, "reason": message.reason}


def alert(**overrides: Any) -> dict[str, Any]:
    """A valid ``interactionAlertDetails`` entry (§4.1), with some properties replaced."""
    entry = {
        "interactionId": "100123456780170101",
        "interactionType": "Call",
        "name": "John Smith",
        "address": "+13175550100",
        "alertType": 5,
        "alertAction": 1,
        "autoAnswer": False,
    }
    entry.update(overrides)
    return entry


def alerting(*entries: Any, is_delta: bool = True) -> dict[str, Any]:
    return {"__type": ALERTING, "isDelta": is_delta, "alertingInteractionDetails": list(entries)}


def only_update(raw: Any) -> Update:
    message = parse(raw)
    assert isinstance(message, Update), message
    return message


class TestSamples:
    """Every recorded-shape sample parses to exactly the value written beside it."""

    @pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
    def test_sample_parses_to_its_expected_value(self, path: Path) -> None:
        """The parse result of a sample equals its ``expect`` block, field by field."""
        sample = load(path)
        assert described(parse(sample["message"])) == sample["expect"]

    def test_samples_cover_every_message_type_the_bridge_reads(self) -> None:
        """There is at least one sample of each ``__type`` in the dispatch table."""
        types = {
            sample["message"].get("__type")
            for sample in map(load, SAMPLES)
            if isinstance(sample["message"], dict)
        }
        assert set(PARSERS) <= types

    def test_samples_cover_every_outcome(self) -> None:
        """The samples include snapshots, deltas, connection and subscription states, ignoreds."""
        outcomes = {(e["type"], e.get("snapshot")) for e in (load(p)["expect"] for p in SAMPLES)}
        assert outcomes == {
            ("Update", True),
            ("Update", False),
            ("ConnectionChange", None),
            ("SubscriptionState", None),
            ("Ignored", None),
        }


class TestDispatch:
    """Messages are read by their exact ``__type``; anything else is ignored by name."""

    def test_the_table_holds_the_five_families_and_the_state_messages(self) -> None:
        """The dispatch table knows exactly the message types §4, §3.1, §2.4 and §10 name."""
        assert set(PARSERS) == {
            ALERTING,
            HISTORY_URN,
            STATUS_URN,
            ASSISTANCE_LIST,
            ASSISTANCE_DETAILS,
            CONNECTION,
            SUBSCRIPTION_STATE_URN,
            ASSISTANCE_STATE_URN,
        }

    @pytest.mark.parametrize(
        ("urn", "aggregate"),
        [
            (ALERTING, "alerting"),
            (HISTORY_URN, "history"),
            (STATUS_URN, "status_messages"),
            (ASSISTANCE_LIST, "assistance"),
        ],
    )
    def test_each_family_belongs_to_its_aggregate(self, urn: str, aggregate: str) -> None:
        """An empty snapshot of each family is an Update of its aggregate, kind from the URN."""
        update = only_update({"__type": urn, "isDelta": False, "alertingInteractionDetails": []})
        assert (update.aggregate, update.kind, update.snapshot) == (
            aggregate,
            urn.rsplit(":", 1)[1],
            True,
        )

    def test_assistance_with_a_colon_instead_of_the_dot_is_not_assistance(self) -> None:
        """``urn:inin.com:interactions:assistance…`` (pitfall 8) is an unrecognized type."""
        urn = "urn:inin.com:interactions:assistanceRequestListMessage"
        assert parse({"__type": urn, "isDelta": True, "requestsAdded": ["a1"]}) == Ignored(
            "assistanceRequestListMessage", f"unrecognized __type {urn}"
        )

    @pytest.mark.parametrize(
        ("urn", "kind"),
        [
            ("urn:inin.com:status:userStatusMessage", "userStatusMessage"),
            ("no-colons-at-all", "no-colons-at-all"),
            ("urn:inin.com:", "none"),
            ("", "none"),
            ("urn:x:" + "y" * 100, "y" * 64),
        ],
    )
    def test_short_type_is_the_last_part_bounded(self, urn: str, kind: str) -> None:
        """The kind used as a metric label is the URN's last part, at most 64 characters."""
        assert short_type(urn) == kind

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (None, "message is NoneType, not an object"),
            ("[]", "message is str, not an object"),
            (42, "message is int, not an object"),
            ({"__type": 7, "isDelta": True}, "message has no __type"),
        ],
    )
    def test_a_message_that_is_not_an_object_with_a_type_is_invalid(
        self, raw: Any, reason: str
    ) -> None:
        """Such messages are Ignored with kind ``invalid`` and say why."""
        assert parse(raw) == Ignored("invalid", reason)


class TestEnums:
    """Enum integers become the names §4 gives them; unknown numbers stay visible."""

    PROTOCOL_NAMES = {
        "alertType": [
            "None",
            "User",
            "Station",
            "Workgroup",
            "StationGroup",
            "AcdUser",
            "AcdStation",
        ],
        "alertAction": ["None", "StartAlerting", "StopAlerting"],
        "queueType": ["System", "User", "Workgroup", "Station"],
        "direction": ["None", "Incoming", "Outgoing"],
        "interactionHistoryStatus": ["None", "Connected", "Forwarded"],
        "assistanceState": ["None", "Accepted", "Completed"],
        "participantAction": ["None", "Initiated", "Ignored", "Accepted"],
        "subscriptionState": ["None", "Normal", "Suspended", "Faulted"],
    }

    @pytest.mark.parametrize(
        ("enum", "number", "name"),
        [
            (enum, number, name)
            for enum, names in PROTOCOL_NAMES.items()
            for number, name in enumerate(names)
        ],
    )
    def test_every_protocol_value_has_its_name(self, enum: str, number: int, name: str) -> None:
        """Each integer of each enum in docs/icws-protocol.md §4 maps to its documented name."""
        assert enum_name(enum, number) == name

    def test_the_table_has_no_enum_the_protocol_does_not_name(self) -> None:
        """The enum table and the protocol's list have the same enums and lengths."""
        assert {k: list(v) for k, v in ENUMS.items()} == self.PROTOCOL_NAMES

    @pytest.mark.parametrize(("number", "name"), [(7, "Unknown7"), (-1, "Unknown-1")])
    def test_an_unknown_number_is_kept_visible(self, number: int, name: str) -> None:
        """A number outside the enum becomes ``Unknown<n>``, not a guess."""
        assert enum_name("alertType", number) == name

    @pytest.mark.parametrize("value", [True, "5", 5.0, None, [5]])
    def test_anything_but_an_integer_is_malformed(self, value: Any) -> None:
        """Names, floats, booleans (which Python counts as ints) and nulls are refused."""
        with pytest.raises(Malformed, match="alertType must be an integer"):
            enum_name("alertType", value)


class TestDates:
    """ICWS dates (compact or extended, UTC) become RFC 3339; anything else is malformed."""

    @pytest.mark.parametrize(
        ("icws", "expected"),
        [
            ("20240105T141502Z", "2024-01-05T14:15:02Z"),
            ("20201029T082018Z", "2020-10-29T08:20:18Z"),
            ("20240105T141502.250Z", "2024-01-05T14:15:02.250Z"),
            ("2024-01-05T14:15:02Z", "2024-01-05T14:15:02Z"),
            ("2024-01-05T14:15:02.5Z", "2024-01-05T14:15:02.5Z"),
            ("20240229T000000Z", "2024-02-29T00:00:00Z"),
            ("20161231T235960Z", "2016-12-31T23:59:60Z"),
        ],
    )
    def test_valid_dates_become_rfc3339(self, icws: str, expected: str) -> None:
        """Compact dates are expanded, extended ones kept, fractions and leap seconds kept."""
        assert rfc3339(icws) == expected

    @pytest.mark.parametrize(
        "value",
        [
            "2024-01-05 14:15:02",
            "20240105T141502",
            "20240105T141502+0100",
            "2024-01-05T14:15:02+00:00",
            "20240105",
            "",
            "20241305T141502Z",
            "20230229T000000Z",
            "20240105T246000Z",
            "20240105T141561Z",
            "\uff12\uff10\uff12\uff14\uff10\uff11\uff10\uff15T\uff11\uff14\uff11\uff15\uff10\uff12Z",
        ],
        ids=[
            "space",
            "no-zone",
            "offset",
            "extended-offset",
            "date-only",
            "empty",
            "month-13",
            "feb-29-non-leap",
            "hour-24",
            "second-61",
            "fullwidth-digits",
        ],
    )
    def test_other_strings_are_malformed(self, value: str) -> None:
        """Strings that are not a real UTC moment in one of the two forms are refused."""
        with pytest.raises(Malformed, match="date"):
            rfc3339(value)

    @pytest.mark.parametrize("value", [20240105, None, {"date": "20240105T141502Z"}])
    def test_non_strings_are_malformed(self, value: Any) -> None:
        """A date must be a string."""
        with pytest.raises(Malformed, match="date must be a string"):
            rfc3339(value)


class TestAlerting:
    """Alerting entries start, change or (with StopAlerting) end an interaction's alert."""

    def test_start_alerting_in_a_delta_is_a_merging_upsert(self) -> None:
        """A StartAlerting delta entry is one upsert that merges (``replace`` False)."""
        update = only_update(alerting(alert()))
        assert [(u.key, u.replace, u.props["alertAction"]) for u in update.upserts] == [
            ("100123456780170101", False, "StartAlerting")
        ]
        assert update.removals == ()

    def test_stop_alerting_is_a_removal_not_an_upsert(self) -> None:
        """A StopAlerting entry names the interaction in ``removals`` only."""
        update = only_update(alerting(alert(alertAction=2), alert(interactionId="2")))
        assert update.removals == ("100123456780170101",)
        assert [u.key for u in update.upserts] == ["2"]

    def test_snapshot_entries_replace(self) -> None:
        """Entries of an ``isDelta: false`` message replace what is known."""
        update = only_update(alerting(alert(), is_delta=False))
        assert update.snapshot is True
        assert [u.replace for u in update.upserts] == [True]

    def test_queue_and_attributes_are_normalized(self) -> None:
        """MonitoredQueue's type becomes a name; attributes stay a string map."""
        entry = alert(
            monitoredQueue={"queueType": 2, "queueName": "Support"},
            attributes={"Eic_CallDirection": "I", "Eic_WorkgroupName": "Support"},
        )
        (upsert,) = only_update(alerting(entry)).upserts
        assert upsert.props["monitoredQueue"] == {"queueType": "Workgroup", "queueName": "Support"}
        assert upsert.props["attributes"] == {
            "Eic_CallDirection": "I",
            "Eic_WorkgroupName": "Support",
        }

    def test_unknown_properties_are_kept_and_type_markers_dropped(self) -> None:
        """A property the bridge does not know passes through; an entry's ``__type`` does not."""
        (upsert,) = only_update(alerting(alert(Eic_New="x", __type="urn:x"))).upserts
        assert upsert.props["Eic_New"] == "x"
        assert "__type" not in upsert.props

    def test_a_null_optional_property_is_treated_as_absent(self) -> None:
        """A null says nothing: it is neither converted, nor a problem, nor kept."""
        update = only_update(alerting(alert(monitoredQueue=None, attributes=None)))
        assert update.problems == ()
        assert "monitoredQueue" not in update.upserts[0].props
        assert "attributes" not in update.upserts[0].props


class TestMalformedEntries:
    """A malformed entry is dropped with a problem; good entries in the same message survive."""

    PROTOCOL_REQUIRED = [
        "interactionId",
        "interactionType",
        "name",
        "address",
        "alertType",
        "alertAction",
        "autoAnswer",
    ]

    def test_the_required_alert_properties_are_those_of_the_protocol(self) -> None:
        """The alert shape requires exactly the properties §4.1 marks required."""
        assert ALERT.required == frozenset(self.PROTOCOL_REQUIRED)

    @pytest.mark.parametrize("name", PROTOCOL_REQUIRED)
    @pytest.mark.parametrize("how", ["missing", "null"])
    def test_an_alert_without_a_required_property_is_dropped(self, name: str, how: str) -> None:
        """Missing or null, a required property drops the entry; the next entry survives."""
        bad = alert(interactionId="bad")
        if how == "missing":
            del bad[name]
        else:
            bad[name] = None
        update = only_update(alerting(bad, alert(interactionId="good")))
        assert [u.key for u in update.upserts] == ["good"]
        assert update.problems == (f"alerts[0]: entry lacks required {name}",)

    @pytest.mark.parametrize(
        ("override", "problem"),
        [
            ({"autoAnswer": "false"}, "autoAnswer: expected a boolean, got str"),
            ({"name": 42}, "name: expected a string, got int"),
            (
                {"alertAction": "StopAlerting"},
                "alertAction: alertAction must be an integer, got str",
            ),
            ({"monitoredQueue": "Support"}, "monitoredQueue: monitoredQueue must be an object"),
            (
                {"monitoredQueue": {"queueName": "Support"}},
                "monitoredQueue: queueType must be an integer, got NoneType",
            ),
            ({"attributes": ["Eic_RemoteName"]}, "attributes: expected an object of strings"),
            ({"interactionId": ""}, "interactionId is empty"),
        ],
    )
    def test_a_wrong_value_drops_the_entry_and_names_the_property(
        self, override: dict[str, Any], problem: str
    ) -> None:
        """The problem names the entry's index and the property at fault."""
        update = only_update(alerting(alert(), alert(**{"interactionId": "second", **override})))
        assert [u.key for u in update.upserts] == ["100123456780170101"]
        assert update.problems == (f"alerts[1]: {problem}",)

    def test_every_bad_entry_gets_its_own_problem(self) -> None:
        """Three bad entries give three problems, in order, and no upsert."""
        update = only_update(alerting("x", None, alert(alertType="AcdUser")))
        assert update.upserts == ()
        assert update.problems == (
            "alerts[0]: entry is str, not an object",
            "alerts[1]: entry is NoneType, not an object",
            "alerts[2]: alertType: alertType must be an integer, got str",
        )

    @pytest.mark.parametrize("value", [None, {"interactionId": "1"}, "[]"])
    def test_an_alerting_message_without_its_list_is_ignored(self, value: Any) -> None:
        """The required list missing or not a list makes the whole message unusable.

        Read as an empty snapshot it would end every live alert.
        """
        raw = {"__type": ALERTING, "isDelta": False, "alertingInteractionDetails": value}
        assert parse(raw) == Ignored(
            "interactionAlertingMessage", "alertingInteractionDetails is missing or not a list"
        )

    def test_a_history_list_that_is_not_a_list_is_a_problem(self) -> None:
        """History's optional list, if present, must be a list."""
        update = only_update({"__type": HISTORY_URN, "isDelta": True, "interactionHistory": {}})
        assert (update.upserts, update.problems) == ((), ("history is not a list",))

    def test_history_and_status_require_their_key(self) -> None:
        """Every history property is optional, but without its id an entry names nothing."""
        assert HISTORY.required == frozenset({"interactionId"})
        assert STATUS.required == frozenset({"statusId"})


class TestHistory:
    """History items are upserts keyed by interaction id, with dates and enums normalized."""

    def test_a_delta_item_carries_only_what_it_sent(self) -> None:
        """A delta item has only its present properties, normalized, and merges."""
        raw = {
            "__type": HISTORY_URN,
            "isDelta": True,
            "interactionHistory": [
                {"interactionId": "9", "terminationTime": "20240105T142010Z", "direction": 2}
            ],
        }
        (upsert,) = only_update(raw).upserts
        assert (upsert.key, upsert.replace, dict(upsert.props)) == (
            "9",
            False,
            {
                "interactionId": "9",
                "terminationTime": "2024-01-05T14:20:10Z",
                "direction": "Outgoing",
            },
        )

    def test_history_never_removes(self) -> None:
        """A history message has no removals, snapshot or not."""
        raw = {"__type": HISTORY_URN, "isDelta": False, "interactionHistory": []}
        assert only_update(raw).removals == ()


class TestStatusMessages:
    """Status messages: added and changed are upserts, removed are ids; ids ignore case."""

    def status(self, status_id: str, **props: Any) -> dict[str, Any]:
        return {"statusId": status_id, "messageText": status_id, **props}

    def test_ids_are_folded_for_the_key_and_kept_as_sent_in_the_data(self) -> None:
        """``Available`` and ``AVAILABLE`` are one key; the data keeps the id as ICWS sent it."""
        raw = {
            "__type": STATUS_URN,
            "isDelta": True,
            "statusMessagesAdded": [self.status("Available")],
            "statusMessagesChanged": [self.status("AVAILABLE")],
            "statusMessagesRemoved": ["AvAiLaBlE"],
        }
        update = only_update(raw)
        assert [(u.key, u.props["statusId"]) for u in update.upserts] == [
            ("available", "Available"),
            ("available", "AVAILABLE"),
        ]
        assert update.removals == ("available",)

    @pytest.mark.parametrize(("is_delta", "changed_replaces"), [(True, False), (False, True)])
    def test_added_replaces_and_changed_merges_in_a_delta(
        self, is_delta: bool, changed_replaces: bool
    ) -> None:
        """Added entries always replace; changed ones merge in a delta and replace in a snapshot."""
        raw = {
            "__type": STATUS_URN,
            "isDelta": is_delta,
            "statusMessagesAdded": [self.status("A")],
            "statusMessagesChanged": [self.status("B")],
        }
        assert [u.replace for u in only_update(raw).upserts] == [True, changed_replaces]

    @pytest.mark.parametrize("omitted", [True, False])
    def test_empty_arrays_may_be_sent_or_omitted(self, omitted: bool) -> None:
        """A snapshot with empty arrays and one without them parse alike."""
        raw: dict[str, Any] = {"__type": STATUS_URN, "isDelta": False}
        if not omitted:
            raw |= {
                "statusMessagesAdded": [],
                "statusMessagesChanged": [],
                "statusMessagesRemoved": [],
            }
        update = only_update(raw)
        assert (update.snapshot, update.upserts, update.removals, update.problems) == (
            True,
            (),
            (),
            (),
        )

    def test_a_removed_collection_that_is_not_a_list_is_a_problem(self) -> None:
        """``statusMessagesRemoved`` as a string removes nothing and says so."""
        raw = {"__type": STATUS_URN, "isDelta": True, "statusMessagesRemoved": "Available"}
        update = only_update(raw)
        assert (update.removals, update.problems) == (
            (),
            ("statusMessagesRemoved is not a list of ids",),
        )


class TestAssistance:
    """Assistance list messages name requests; details messages carry one request's state."""

    def test_list_entries_never_replace_known_details(self) -> None:
        """Even in a list snapshot, a named request merges, so its details are kept."""
        raw = {"__type": ASSISTANCE_LIST, "isDelta": False, "requestsAdded": ["a1"]}
        update = only_update(raw)
        assert update.snapshot is True
        assert [(u.key, u.replace, dict(u.props)) for u in update.upserts] == [
            ("a1", False, {"assistanceId": "a1"})
        ]

    def test_list_removals_name_the_requests(self) -> None:
        """``requestsRemoved`` are removals by assistance id."""
        raw = {"__type": ASSISTANCE_LIST, "isDelta": True, "requestsRemoved": ["a1", "a2"]}
        assert only_update(raw).removals == ("a1", "a2")

    @pytest.mark.parametrize(
        ("is_delta", "replace", "append"), [(True, False, ("messages",)), (False, True, ())]
    )
    def test_details_are_never_an_aggregate_snapshot(
        self, is_delta: bool, replace: bool, append: tuple[str, ...]
    ) -> None:
        """A details snapshot replaces that request only; a details delta appends its messages.

        Neither is a snapshot of the aggregate, and neither creates a request: the list
        message decides which requests exist.
        """
        raw = {"__type": ASSISTANCE_DETAILS, "isDelta": is_delta, "assistanceId": "a1"}
        update = only_update(raw)
        assert update.snapshot is False
        assert [(u.replace, u.append, u.creates) for u in update.upserts] == [
            (replace, append, False)
        ]

    def test_messages_become_a_list_and_participants_a_keyed_map(self) -> None:
        """Messages keep their order (ICWS gives them no id); participants are keyed by user."""
        first = {"text": "Hi", "participantId": "agent.one", "timeAdded": "20240105T141600Z"}
        second = {"text": "Hi", "participantId": "agent.one", "timeAdded": "20240105T141500Z"}
        raw = {
            "__type": ASSISTANCE_DETAILS,
            "isDelta": True,
            "assistanceId": "a1",
            "interactionId": "100",
            "state": 1,
            "messagesAdded": [first, second],
            "participantsAdded": [{"userId": "agent.one", "displayName": "A", "action": 1}],
            "participantsChanged": [{"userId": "super.visor", "action": 3}],
        }
        (upsert,) = only_update(raw).upserts
        assert dict(upsert.props) == {
            "assistanceId": "a1",
            "interactionId": "100",
            "state": "Accepted",
            "messages": [
                {**first, "timeAdded": "2024-01-05T14:16:00Z"},
                {**second, "timeAdded": "2024-01-05T14:15:00Z"},
            ],
            "participants": {
                "agent.one": {"userId": "agent.one", "displayName": "A", "action": "Initiated"},
                "super.visor": {"userId": "super.visor", "action": "Accepted"},
            },
        }

    def test_completed_details_end_the_request(self) -> None:
        """State Completed (2) updates the request with what it brings, then removes it."""
        raw = {"__type": ASSISTANCE_DETAILS, "isDelta": True, "assistanceId": "a1", "state": 2}
        update = only_update(raw)
        assert [u.props for u in update.upserts] == [{"assistanceId": "a1", "state": "Completed"}]
        assert update.upserts[0].creates is False
        assert update.removals == ("a1",)

    def test_down_without_is_delta_is_still_read(self) -> None:
        """A connectionStateChangeMessage lacking isDelta is not ignored: a Down must count."""
        raw = {
            "__type": "urn:inin.com:connection:connectionStateChangeMessage",
            "previousConnectionState": 1,
            "newConnectionState": 2,
            "reason": "bye",
        }
        message = parse(raw)
        assert message == ConnectionChange(up=False, reason="bye", should_reconnect=None)

    def test_details_without_messages_or_participants_leave_them_out(self) -> None:
        """Absent collections are not turned into empty ones (a delta must not clear them)."""
        raw = {"__type": ASSISTANCE_DETAILS, "isDelta": True, "assistanceId": "a1", "state": 1}
        (upsert,) = only_update(raw).upserts
        assert dict(upsert.props) == {"assistanceId": "a1", "state": "Accepted"}


class TestConnectionChange:
    """``connectionStateChangeMessage`` says whether the session is up, and if to reconnect."""

    @pytest.mark.parametrize(("state", "up"), [(0, False), (1, True), (2, False)])
    def test_only_state_one_is_up(self, state: int, up: bool) -> None:
        """None (0) and Down (2) are both not up."""
        raw = {"__type": CONNECTION, "isDelta": False, "newConnectionState": state, "reason": "r"}
        assert parse(raw) == ConnectionChange(up=up, reason="r", should_reconnect=None)

    @pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), ("yes", None)])
    def test_should_reconnect_is_a_boolean_or_unknown(self, value: Any, expected: Any) -> None:
        """A non-boolean shouldReconnect is treated as not given."""
        raw = {
            "__type": CONNECTION,
            "isDelta": True,
            "newConnectionState": 2,
            "reason": "Switchover",
            "shouldReconnect": value,
        }
        message = parse(raw)
        assert isinstance(message, ConnectionChange)
        assert message.should_reconnect is expected

    def test_a_missing_reason_is_empty(self) -> None:
        """The reason defaults to the empty string."""
        raw = {"__type": CONNECTION, "isDelta": True, "newConnectionState": 2}
        assert parse(raw) == ConnectionChange(up=False, reason="", should_reconnect=None)


def state_message(urn: str = SUBSCRIPTION_STATE_URN, **props: Any) -> dict[str, Any]:
    return {"__type": urn, "isDelta": False, "state": 3, **props}


class TestSubscriptionState:
    """Subscription-state messages (§2.4, §10) say which family, which subscription, and how."""

    @pytest.mark.parametrize(
        ("urn", "family", "kind"),
        [
            (SUBSCRIPTION_STATE_URN, "messaging", "subscriptionStateMessage"),
            (ASSISTANCE_STATE_URN, "assistance", "assistanceRequestSubscriptionStateMessage"),
        ],
    )
    def test_each_type_names_its_family(self, urn: str, family: str, kind: str) -> None:
        """The generic message is the messaging family's; the derived one is assistance's."""
        message = parse(state_message(urn))
        assert isinstance(message, SubscriptionState)
        assert (message.family, message.kind) == (family, kind)

    @pytest.mark.parametrize(
        ("state", "name", "lost"),
        [
            (0, "None", False),
            (1, "Normal", False),
            (2, "Suspended", True),
            (3, "Faulted", True),
            (9, "Unknown9", False),
        ],
    )
    def test_only_suspended_and_faulted_are_lost(self, state: int, name: str, lost: bool) -> None:
        """States 2 and 3 mean the server sends the subscription nothing more; others do not."""
        message = parse(state_message(state=state))
        assert isinstance(message, SubscriptionState)
        assert (message.state, message.lost) == (name, lost)

    @pytest.mark.parametrize(
        ("named", "subscription"),
        [
            ("interaction-alerting", "interaction-alerting"),
            ("status/status-messages", "status/status-messages"),
            ("/icws/1/messaging/subscriptions/interaction-history", "interaction-history"),
            (
                "interactions/agent-assistance/{a1|b:2 c/3}",
                "interactions/agent-assistance/{a1|b:2 c/3}",
            ),
            ("", None),
            ("/", None),
            (7, None),
            (None, None),
        ],
    )
    def test_the_subscription_named_if_at_all(self, named: Any, subscription: Any) -> None:
        """A path below ``messaging/subscriptions/`` is kept; anything else names nothing."""
        message = parse(state_message(subscriptionId=named))
        assert isinstance(message, SubscriptionState)
        assert message.subscription == subscription

    @pytest.mark.parametrize(
        ("error", "text"),
        [
            ({"errorId": "error.x", "message": "Busy"}, "error.x: Busy"),
            ({"message": "Busy"}, "Busy"),
            ({"errorId": "e" * 300}, "e" * 200),
            ("Server busy", "Server busy"),
            (None, ""),
            (42, ""),
        ],
    )
    def test_the_error_is_short_text(self, error: Any, text: str) -> None:
        """The ICWS error object becomes ``errorId: message``, each part at most 200 chars."""
        message = parse(state_message(error=error))
        assert isinstance(message, SubscriptionState)
        assert message.error == text

    def test_without_is_delta_it_is_still_read(self) -> None:
        """Like a Down, a lost subscription must not be dropped for lacking ``isDelta``."""
        raw = {"__type": ASSISTANCE_STATE_URN, "state": 2}
        assert isinstance(parse(raw), SubscriptionState)

    @pytest.mark.parametrize("state", [None, "3", True, 3.0])
    def test_a_state_that_is_not_an_integer_is_ignored(self, state: Any) -> None:
        """Without an integer state nothing can be decided: the message is Ignored."""
        assert isinstance(parse(state_message(state=state)), Ignored)


class TestParseIsTotal:
    """Whatever arrives, ``parse`` returns a Message and never raises."""

    @given(raw=json_values)
    def test_any_json_value_is_a_message(self, raw: Any) -> None:
        """Arbitrary JSON-like values parse to one of the Message types."""
        assert isinstance(parse(raw), Update | ConnectionChange | SubscriptionState | Ignored)

    @given(raw=near_messages)
    def test_any_message_of_a_known_type_is_a_message(self, raw: dict[str, Any]) -> None:
        """Known types with arbitrary bodies parse, and every upsert has a non-empty str key."""
        message = parse(raw)
        assert isinstance(message, Update | ConnectionChange | SubscriptionState | Ignored)
        if isinstance(message, Update):
            assert all(isinstance(u.key, str) and u.key for u in message.upserts)
            assert all(isinstance(k, str) and k for k in message.removals)
            json.dumps([dict(u.props) for u in message.upserts])

    @given(
        raw=st.fixed_dictionaries(
            {"__type": st.sampled_from([SUBSCRIPTION_STATE_URN, ASSISTANCE_STATE_URN])},
            optional={
                "isDelta": json_values,
                "state": st.one_of(st.integers(), json_values),
                "subscriptionId": json_values,
                "error": json_values,
            },
        )
    )
    def test_any_state_message_is_a_message(self, raw: dict[str, Any]) -> None:
        """State messages with arbitrary bodies parse to a SubscriptionState or Ignored."""
        message = parse(raw)
        assert isinstance(message, SubscriptionState | Ignored)
        if isinstance(message, SubscriptionState):
            assert message.subscription is None or message.subscription
            assert len(message.error) <= 401
