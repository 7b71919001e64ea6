"""Changes become CloudEvents 1.0 records for Kafka, and state records that restore the state."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.v1 import http as ce_http
from cloudevents.v1 import kafka as ce_kafka_v1
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core import events
from bridge.core.events import Contract, Record
from bridge.core.messages import Aggregate, Update, parse
from bridge.core.state import AggregateState, Change, ChangeKind, Resync

from .core_strategies import near_messages

ALERT = {"interactionId": "100123456780170101", "name": "John Smith", "alertType": "AcdUser"}
HISTORY = {
    "interactionId": "100123456780170090",
    "initiationTime": "2024-01-05T14:15:02Z",
    "terminationTime": "2024-01-05T14:20:10Z",
}
STATUS = {"statusId": "Available", "messageText": "Available"}
MESSAGE_1 = {"text": "Refund?", "participantId": "agent.one", "timeAdded": "2024-01-05T14:16:00Z"}
MESSAGE_2 = {"text": "Yes", "participantId": "super.visor", "timeAdded": "2024-01-05T14:17:45Z"}
ASSISTANCE = {
    "assistanceId": "a1b2c3",
    "state": "Accepted",
    "messages": [MESSAGE_2, MESSAGE_1],
    "participants": {
        "super.visor": {"userId": "super.visor", "action": "Accepted"},
        "agent.one": {"userId": "agent.one", "action": "Initiated"},
    },
}
STATES: dict[Aggregate, dict[str, Any]] = {
    "alerting": ALERT,
    "history": HISTORY,
    "status_messages": STATUS,
    "assistance": ASSISTANCE,
}
USER = "agent.one"
"""The ICWS user whose session saw the changes."""
KEYS: dict[Aggregate, str] = {
    "alerting": "100123456780170101",
    "history": "100123456780170090",
    "status_messages": "available",
    "assistance": "a1b2c3",
}
# README: per-user aggregates are keyed ``<user>/<entity>``; the status catalogue by the entity.
RECORD_KEYS: dict[Aggregate, bytes] = {
    "alerting": b"agent.one/100123456780170101",
    "history": b"agent.one/100123456780170090",
    "status_messages": b"available",
    "assistance": b"agent.one/a1b2c3",
}
EVENT_TYPES = [
    ("alerting", "added", "interaction.alerting.started"),
    ("alerting", "changed", "interaction.alerting.changed"),
    ("alerting", "removed", "interaction.alerting.stopped"),
    ("history", "added", "interaction.history.recorded"),
    ("history", "changed", "interaction.history.updated"),
    ("status_messages", "added", "status.message.added"),
    ("status_messages", "changed", "status.message.changed"),
    ("status_messages", "removed", "status.message.removed"),
    ("assistance", "added", "assistance.request.opened"),
    ("assistance", "changed", "assistance.request.updated"),
    ("assistance", "removed", "assistance.request.closed"),
]


def change(
    aggregate: Aggregate = "alerting",
    kind: ChangeKind = "added",
    sequence: int = 1,
    state: dict[str, Any] | None = None,
) -> Change:
    props = STATES[aggregate] if state is None else state
    changed = () if kind == "removed" else tuple(sorted(props))
    return Change(aggregate, KEYS[aggregate], kind, props, changed, sequence, "delta")


def value(record: Record) -> Any:
    assert record.value is not None
    return json.loads(record.value)


def headers(record: Record) -> dict[str, str]:
    return {name: raw.decode() for name, raw in record.headers}


# Written by the bridge before #14 (main at baa21bd), for the change in the test below.
CATALOGUE_EVENT = (
    b'{"specversion":"1.0","id":"9cc78f7e-1a3b-5a53-ab68-7b8ba306715e",'
    b'"source":"/tests/icws-bridge","type":"com.example.icws.status.message.changed.v1",'
    b'"subject":"available","time":"2024-01-05T14:30:00.123Z",'
    b'"datacontenttype":"application/json",'
    b'"dataschema":"https://schemas.example.com/events/status.message.changed.v1.json",'
    b'"recordedtime":"2024-01-05T14:30:00.123Z","sequence":4,'
    b'"data":{"state":{"statusId":"Available","messageText":"Available"},'
    b'"changedFields":["messageText"],"cause":"snapshot"}}'
)
CATALOGUE_STATE = (
    b'{"sequence":4,"type":"com.example.icws.status.message.changed.v1",'
    b'"state":{"statusId":"Available","messageText":"Available"}}'
)


class TestEventRecord:
    """Each change becomes one structured-mode CloudEvent on its aggregate's event topic."""

    def test_the_whole_event(self, contract: Contract, recorded: datetime) -> None:
        """Every attribute and the data of an alerting start, exactly, naming its user."""
        event, _ = events.change_records(contract, change(sequence=3), recorded, user=USER)
        assert value(event) == {
            "specversion": "1.0",
            "id": "4c1bea6f-f347-557a-9c90-bf196931b6d9",
            "source": "/tests/icws-bridge",
            "type": "com.example.icws.interaction.alerting.started.v1",
            "subject": "100123456780170101",
            "time": "2024-01-05T14:30:00.123Z",
            "datacontenttype": "application/json",
            "dataschema": "https://schemas.example.com/events/interaction.alerting.started.v1.json",
            "recordedtime": "2024-01-05T14:30:00.123Z",
            "sequence": 3,
            "icwsuser": "agent.one",
            "data": {
                "userId": "agent.one",
                "state": ALERT,
                "changedFields": ["alertType", "interactionId", "name"],
                "cause": "delta",
            },
        }
        assert (event.topic, event.key, event.label) == (
            "test.alerting.events",
            b"agent.one/100123456780170101",
            "interaction.alerting.started",
        )

    def test_the_catalogue_event_is_byte_identical_to_before_users(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """A status catalogue event names no user: key, value and headers as before #14."""
        made = Change(
            "status_messages", "available", "changed", STATUS, ("messageText",), 4, "snapshot"
        )
        event, state = events.change_records(contract, made, recorded, user=USER)
        assert event.key == state.key == b"available"
        assert event.value == CATALOGUE_EVENT
        assert state.value == CATALOGUE_STATE
        assert "ce_icwsuser" not in headers(event)

    @pytest.mark.parametrize("user", ["agent.one", "a/b", "50%", "J Smith"])
    def test_two_users_views_of_one_entity_differ_in_key_and_id(
        self, contract: Contract, recorded: datetime, user: str
    ) -> None:
        """Another user's view of the same interaction is another key and another event id."""
        mine, _ = events.change_records(contract, change(), recorded, user=USER)
        theirs, _ = events.change_records(contract, change(), recorded, user=user + "2")
        assert mine.key != theirs.key
        assert value(mine)["id"] != value(theirs)["id"]
        assert value(theirs)["data"]["userId"] == value(theirs)["icwsuser"] == user + "2"

    @pytest.mark.parametrize(("aggregate", "kind", "name"), EVENT_TYPES)
    def test_type_and_schema_are_versioned_per_event(
        self,
        contract: Contract,
        recorded: datetime,
        aggregate: Aggregate,
        kind: ChangeKind,
        name: str,
    ) -> None:
        """Type is ``<prefix>.<name>.v1`` and dataschema ``<base>/<name>.v1.json``."""
        event, _ = events.change_records(contract, change(aggregate, kind), recorded, user=USER)
        body = value(event)
        assert (body["type"], body["dataschema"], event.label) == (
            f"com.example.icws.{name}.v1",
            f"https://schemas.example.com/events/{name}.v1.json",
            name,
        )

    def test_the_event_names_are_exactly_the_published_ones(self) -> None:
        """No event type exists that is not listed here (history items never end)."""
        assert sorted((a, k, n) for (a, k), n in events.EVENT_NAMES.items()) == sorted(EVENT_TYPES)

    @pytest.mark.parametrize("aggregate", list(STATES))
    def test_topic_key_and_subject_are_the_entity(
        self, contract: Contract, recorded: datetime, aggregate: Aggregate
    ) -> None:
        """One user's view of an entity shares a key (one partition); the subject is the entity."""
        event, _ = events.change_records(contract, change(aggregate), recorded, user=USER)
        assert (event.topic, event.key, value(event)["subject"]) == (
            f"test.{aggregate}.events",
            RECORD_KEYS[aggregate],
            KEYS[aggregate],
        )


class TestHeaders:
    """The attributes are also ``ce_*`` headers, for routers that do not parse values."""

    @pytest.mark.parametrize(("aggregate", "kind", "name"), EVENT_TYPES)
    def test_every_attribute_is_a_header_with_the_same_value(
        self,
        contract: Contract,
        recorded: datetime,
        aggregate: Aggregate,
        kind: ChangeKind,
        name: str,
    ) -> None:
        """``ce_<attr>`` equals the JSON attribute for all but data and datacontenttype."""
        event, _ = events.change_records(contract, change(aggregate, kind, 7), recorded, user=USER)
        body = value(event)
        expected = {
            f"ce_{attr}": str(v)
            for attr, v in body.items()
            if attr not in ("data", "datacontenttype")
        }
        assert headers(event) == {"content-type": "application/cloudevents+json", **expected}

    def test_header_names_are_unique_and_content_type_comes_first(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """No header is repeated; the structured-mode content type is the first one."""
        event, _ = events.change_records(contract, change(), recorded, user=USER)
        names = [name for name, _ in event.headers]
        assert names[0] == "content-type"
        assert len(names) == len(set(names))
        assert set(names) == {
            "content-type",
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_subject",
            "ce_time",
            "ce_dataschema",
            "ce_recordedtime",
            "ce_sequence",
            "ce_icwsuser",
        }

    def test_attribute_headers_can_be_turned_off(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """Without attribute headers only the content type is sent, and the value is unchanged."""
        plain = dataclasses.replace(contract, attribute_headers=False)
        event, _ = events.change_records(plain, change(), recorded, user=USER)
        with_headers, _ = events.change_records(contract, change(), recorded, user=USER)
        assert event.headers == (("content-type", b"application/cloudevents+json"),)
        assert event.value == with_headers.value


class TestTime:
    """``time`` is when ICWS said it happened, where known; else when the bridge saw it."""

    @pytest.mark.parametrize(
        ("aggregate", "state", "time"),
        [
            ("alerting", ALERT, "2024-01-05T14:30:00.123Z"),
            ("status_messages", STATUS, "2024-01-05T14:30:00.123Z"),
            ("history", HISTORY, "2024-01-05T14:20:10Z"),
            ("history", {**HISTORY, "terminationTime": None}, "2024-01-05T14:15:02Z"),
            ("history", {"interactionId": "1"}, "2024-01-05T14:30:00.123Z"),
            ("assistance", ASSISTANCE, "2024-01-05T14:17:45Z"),
            ("assistance", {"assistanceId": "a1b2c3"}, "2024-01-05T14:30:00.123Z"),
        ],
        ids=[
            "alerting-recorded",
            "status-recorded",
            "history-termination",
            "history-initiation",
            "history-recorded",
            "assistance-latest-message",
            "assistance-recorded",
        ],
    )
    def test_time_by_aggregate(
        self,
        contract: Contract,
        recorded: datetime,
        aggregate: Aggregate,
        state: dict[str, Any],
        time: str,
    ) -> None:
        """History uses termination then initiation time; assistance its latest message."""
        event, _ = events.change_records(
            contract, change(aggregate, state=state), recorded, user=USER
        )
        body = value(event)
        assert (body["time"], body["recordedtime"]) == (time, "2024-01-05T14:30:00.123Z")

    @pytest.mark.parametrize(
        ("moment", "text"),
        [
            (datetime(2024, 1, 5, 14, 30, tzinfo=UTC), "2024-01-05T14:30:00.000Z"),
            (
                datetime(2024, 1, 5, 15, 30, 0, 999999, tzinfo=timezone(timedelta(hours=1))),
                "2024-01-05T14:30:00.999Z",
            ),
        ],
    )
    def test_timestamps_are_utc_with_milliseconds(self, moment: datetime, text: str) -> None:
        """Any aware moment is written in UTC, to the millisecond, with a ``Z``."""
        assert events.timestamp(moment) == text


class TestIds:
    """Ids are deterministic: the same change always gets the same id, another change another."""

    def test_the_same_change_gets_the_same_id_whenever_it_is_seen(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """Re-emitted later (after a crash), a change keeps its id."""
        first, _ = events.change_records(contract, change(), recorded, user=USER)
        again, _ = events.change_records(
            contract, change(), recorded + timedelta(hours=1), user=USER
        )
        assert value(first)["id"] == value(again)["id"]

    @pytest.mark.parametrize(
        "other",
        [
            change(sequence=2),
            change(state={**ALERT, "name": "J. Smith"}),
            change(kind="changed"),
            dataclasses.replace(change(), key="100123456780170102"),
            change("status_messages", state=ALERT),
        ],
        ids=["sequence", "state", "type", "key", "aggregate"],
    )
    def test_a_different_change_gets_a_different_id(
        self, contract: Contract, recorded: datetime, other: Change
    ) -> None:
        """Sequence, state, type, key and aggregate each take part in the id."""
        first, _ = events.change_records(contract, change(), recorded, user=USER)
        second, _ = events.change_records(contract, other, recorded, user=USER)
        assert value(first)["id"] != value(second)["id"]

    def test_ids_do_not_change_between_releases(self) -> None:
        """A known change has a known id: a new bridge version must not re-identify old events."""
        ident = events.event_id(
            "alerting", "100123456780170101", 3, "interaction.alerting.started", ALERT
        )
        assert ident == "51d106d1-03cc-580b-bb61-94379d51b410"

    def test_an_id_is_a_uuid(self) -> None:
        """Ids are UUID strings, stable for given parts."""
        ident = events.event_id("alerting", "1", 1, "x", {"a": 1})
        assert str(uuid.UUID(ident)) == ident
        assert ident == events.event_id("alerting", "1", 1, "x", {"a": 1})

    def test_an_id_does_not_depend_on_property_order(self) -> None:
        """The same state with its properties in another order is the same event."""
        assert events.event_id({"a": 1, "b": 2}) == events.event_id({"b": 2, "a": 1})


class TestStateRecord:
    """The state topic holds each entity's latest full state, or a tombstone once it ended."""

    def test_the_state_record(self, contract: Contract, recorded: datetime) -> None:
        """Latest state, sequence and event type, keyed by user and entity, without headers."""
        _, state = events.change_records(
            contract, change(kind="changed", sequence=4), recorded, user=USER
        )
        assert (state.topic, state.key, state.headers, state.label) == (
            "test.alerting.state",
            b"agent.one/100123456780170101",
            (),
            "state",
        )
        assert value(state) == {
            "sequence": 4,
            "type": "com.example.icws.interaction.alerting.changed.v1",
            "state": ALERT,
        }

    @pytest.mark.parametrize("aggregate", ["alerting", "status_messages", "assistance"])
    def test_a_removal_writes_a_tombstone(
        self, contract: Contract, recorded: datetime, aggregate: Aggregate
    ) -> None:
        """An ended entity's state record has no value, so compaction drops the key."""
        event, state = events.change_records(
            contract, change(aggregate, "removed", 5), recorded, user=USER
        )
        assert (state.topic, state.key, state.value) == (
            f"test.{aggregate}.state",
            RECORD_KEYS[aggregate],
            None,
        )
        assert (value(event)["sequence"], value(event)["data"]["changedFields"]) == (5, [])

    @pytest.mark.parametrize("aggregate", list(STATES))
    @pytest.mark.parametrize("kind", ["added", "changed"])
    def test_decode_state_gives_back_the_change(
        self, contract: Contract, recorded: datetime, aggregate: Aggregate, kind: ChangeKind
    ) -> None:
        """What a state record holds decodes to the change's own state and sequence."""
        _, state = events.change_records(contract, change(aggregate, kind, 9), recorded, user=USER)
        assert events.decode_state(aggregate, state.value) == (STATES[aggregate], 9)

    def test_a_tombstone_decodes_to_nothing(self) -> None:
        """No value: no state, sequence 0."""
        assert events.decode_state("alerting", None) == (None, 0)


class TestAssistancePresentation:
    """Assistance participants are a keyed map inside and a sorted list outside."""

    def test_events_show_lists(self, contract: Contract, recorded: datetime) -> None:
        """Messages in the order ICWS sent them; participants sorted by user id."""
        event, state = events.change_records(contract, change("assistance"), recorded, user=USER)
        shown = {
            "assistanceId": "a1b2c3",
            "state": "Accepted",
            "messages": [MESSAGE_2, MESSAGE_1],
            "participants": [
                {"userId": "agent.one", "action": "Initiated"},
                {"userId": "super.visor", "action": "Accepted"},
            ],
        }
        assert value(event)["data"]["state"] == shown
        assert value(state)["state"] == shown

    def test_a_request_without_details_shows_empty_lists(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """A request known only from the list shows empty messages and participants."""
        event, state = events.change_records(
            contract, change("assistance", state={"assistanceId": "a1"}), recorded, user=USER
        )
        expected = {"assistanceId": "a1", "messages": [], "participants": []}
        assert value(event)["data"]["state"] == expected
        assert events.decode_state("assistance", state.value) == ({"assistanceId": "a1"}, 1)

    def test_a_removed_request_shows_its_last_state(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """A closed request's event carries what was last known, presented."""
        event, _ = events.change_records(
            contract, change("assistance", "removed", 2), recorded, user=USER
        )
        data = value(event)["data"]
        assert (data["state"]["messages"], data["changedFields"]) == ([MESSAGE_2, MESSAGE_1], [])


class TestLifecycle:
    """Bridge lifecycle events go to the lifecycle topic, keyed by their subject."""

    def test_a_session_event(self, contract: Contract, recorded: datetime) -> None:
        """Session up: no sequence; names its user and is keyed ``<user>/session``."""
        record = events.lifecycle_record(
            contract,
            "bridge.session.up",
            "session",
            {"host": "https://icserver:8019"},
            recorded,
            user="a/b c",
        )
        body = value(record)
        assert body == {
            "specversion": "1.0",
            "id": body["id"],
            "source": "/tests/icws-bridge",
            "type": "com.example.icws.bridge.session.up.v1",
            "subject": "session",
            "time": "2024-01-05T14:30:00.123Z",
            "datacontenttype": "application/json",
            "dataschema": "https://schemas.example.com/events/bridge.session.up.v1.json",
            "recordedtime": "2024-01-05T14:30:00.123Z",
            "icwsuser": "a/b c",
            "data": {"userId": "a/b c", "host": "https://icserver:8019"},
        }
        assert (record.topic, record.key, record.label) == (
            "test.lifecycle",
            b"a%2Fb%20c/session",
            "bridge.session.up",
        )
        assert "ce_sequence" not in headers(record)
        assert headers(record)["ce_type"] == "com.example.icws.bridge.session.up.v1"
        assert headers(record)["ce_icwsuser"] == "a/b c"

    def test_lifecycle_ids_depend_on_the_moment(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """The same event at the same moment has one id; a later one another."""

        def ident(moment: datetime) -> str:
            record = events.lifecycle_record(
                contract, "bridge.session.down", "session", {}, moment, user=USER
            )
            return str(value(record)["id"])

        assert ident(recorded) == ident(recorded)
        assert ident(recorded) != ident(recorded + timedelta(milliseconds=1))

    def test_resync_completed_reports_the_counts(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """One record per aggregate of a user's session, with what reconciliation found."""
        record = events.resync_record(contract, Resync("alerting", 1, 2, 3, 4), recorded, user=USER)
        body = value(record)
        assert (record.topic, record.key, body["type"], body["subject"], body["icwsuser"]) == (
            "test.lifecycle",
            b"agent.one/alerting",
            "com.example.icws.bridge.resync.completed.v1",
            "alerting",
            "agent.one",
        )
        assert body["data"] == {
            "userId": "agent.one",
            "aggregate": "alerting",
            "added": 1,
            "changed": 2,
            "removed": 3,
            "unchanged": 4,
        }

    def test_the_catalogue_resync_names_no_user_and_is_as_before(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """The catalogue's resync is keyed ``status_messages``, byte for byte as before #14."""
        record = events.resync_record(
            contract, Resync("status_messages", 1, 0, 0, 2), recorded, user=USER
        )
        assert record.key == b"status_messages"
        assert record.value == (
            b'{"specversion":"1.0","id":"e091ff2d-7da0-5973-a9db-8967957e1704",'
            b'"source":"/tests/icws-bridge","type":"com.example.icws.bridge.resync.completed.v1",'
            b'"subject":"status_messages","time":"2024-01-05T14:30:00.123Z",'
            b'"datacontenttype":"application/json",'
            b'"dataschema":"https://schemas.example.com/events/bridge.resync.completed.v1.json",'
            b'"recordedtime":"2024-01-05T14:30:00.123Z",'
            b'"data":{"aggregate":"status_messages","added":1,"changed":0,"removed":0,'
            b'"unchanged":2}}'
        )

    def test_the_lifecycle_names(self) -> None:
        """The four lifecycle events the design names."""
        assert events.LIFECYCLE_NAMES == (
            "bridge.session.up",
            "bridge.session.down",
            "bridge.gap.possible",
            "bridge.resync.completed",
        )


def sample_records(contract: Contract, recorded: datetime) -> list[Record]:
    records = [
        events.change_records(contract, change(a, k, 2), recorded, user=USER)[0]
        for a, k, _ in EVENT_TYPES
    ]
    records.append(
        events.lifecycle_record(
            contract, "bridge.gap.possible", "session", {"since": None}, recorded, user=USER
        )
    )
    records.append(
        events.resync_record(contract, Resync("history", 1, 0, 0, 2), recorded, user=USER)
    )
    return records


class TestCloudEventsSdk:
    """The official CloudEvents SDK reads every record the bridge writes."""

    def test_the_http_json_reader_reads_every_value(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """``cloudevents.v1.http.from_json`` gives back each value's attributes and data."""
        for record in sample_records(contract, recorded):
            body = value(record)
            event = ce_http.from_json(record.value)
            attributes = dict(event.get_attributes())
            assert attributes == {k: v for k, v in body.items() if k != "data"}
            assert event.data == body["data"]

    def test_the_kafka_structured_reader_reads_every_record(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """``cloudevents.v1.kafka.from_structured`` reads the record with its key and headers."""
        for record in sample_records(contract, recorded):
            body = value(record)
            message = ce_kafka_v1.KafkaMessage(dict(record.headers), record.key, record.value)
            event = ce_kafka_v1.from_structured(message)
            assert (event["id"], event["type"], event["subject"], event.data) == (
                body["id"],
                body["type"],
                body["subject"],
                body["data"],
            )

    def test_the_core_kafka_reader_reads_every_record(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """``cloudevents.core.bindings.kafka.from_structured_event`` agrees, key as partitionkey."""
        for record in sample_records(contract, recorded):
            body = value(record)
            assert record.value is not None
            message = ce_kafka.KafkaMessage(dict(record.headers), record.key, record.value)
            event = ce_kafka.from_structured_event(message)
            attributes = event.get_attributes()
            assert attributes["id"] == body["id"]
            assert record.key is not None
            assert attributes["partitionkey"] == record.key.decode()
            assert attributes["time"] == datetime.fromisoformat(body["time"])
            assert event.get_data() == body["data"]

    def test_without_attribute_headers_the_auto_detecting_reader_works(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """Without ``ce_*`` headers the SDK's mode-guessing ``from_kafka_event`` reads the value.

        With them it guesses binary mode and fails, hence the ``attribute_headers`` switch.
        """
        plain = dataclasses.replace(contract, attribute_headers=False)
        for record in sample_records(plain, recorded):
            assert record.value is not None
            message = ce_kafka.KafkaMessage(dict(record.headers), record.key, record.value)
            event = ce_kafka.from_kafka_event(message)
            assert event.get_data() == value(record)["data"]


# --- the pipeline is total -----------------------------------------------------------------


class TestPipelineIsTotal:
    """Whatever ICWS sends, parse, apply and encode never raise, and state records round-trip."""

    @settings(max_examples=100)
    @given(raws=st.lists(near_messages, min_size=1, max_size=3))
    def test_any_messages_encode_and_their_state_decodes(self, raws: list[Any]) -> None:
        """Each change encodes, and its state record decodes to exactly the change's state."""
        contract = Contract(
            "t", "/t", "https://s", dict.fromkeys(STATES, "ev"), dict.fromkeys(STATES, "st"), "life"
        )
        recorded = datetime(2024, 1, 5, tzinfo=UTC)
        states = {a: AggregateState(a) for a in STATES}
        for raw in raws:
            message = parse(raw)
            if not isinstance(message, Update):
                continue
            state = states[message.aggregate]
            changes, resync = state.apply(message)
            for one in changes:
                event, record = events.change_records(contract, one, recorded, user=USER)
                assert value(event)["sequence"] == one.sequence
                decoded = events.decode_state(one.aggregate, record.value)
                expected = (None, 0) if one.kind == "removed" else (dict(one.state), one.sequence)
                assert decoded == expected
            if resync is not None:
                events.resync_record(contract, resync, recorded, user=USER)


class TestReadingEventsBack:
    """Events read back at start-up (the crash window) give their state and sequence."""

    @pytest.mark.parametrize("kind", ["added", "changed", "removed"])
    def test_decode_event_round_trips(
        self, contract: Contract, recorded: datetime, kind: ChangeKind
    ) -> None:
        """decode_event returns the change's internal state (None when it ended), sequence, type."""
        state = {"statusId": "Away", "messageText": "Away"}
        made = Change("status_messages", "away", kind, state, ("messageText",), 4, "delta")
        event, _ = events.change_records(contract, made, recorded, user=USER)
        assert event.value is not None
        props, sequence, event_type = events.decode_event("status_messages", event.value)
        assert props == (None if kind == "removed" else state)
        assert sequence == 4
        assert event_type == value(event)["type"]

    def test_repair_record_equals_the_checkpoint_change_records_writes(
        self, contract: Contract, recorded: datetime
    ) -> None:
        """A repair from a decoded event is that change's state record, byte for byte."""
        state = {"statusId": "Away", "messageText": "Away"}
        made = Change("status_messages", "away", "changed", state, ("messageText",), 4, "delta")
        event, checkpoint = events.change_records(contract, made, recorded, user=USER)
        assert event.value is not None
        props, sequence, event_type = events.decode_event("status_messages", event.value)
        repair = events.state_record(
            contract, "status_messages", b"away", props, sequence, event_type
        )
        assert repair == checkpoint
        gone = events.state_record(contract, "status_messages", b"away", None, 5, event_type)
        assert gone.value is None
