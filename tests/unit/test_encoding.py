"""Spliced record bytes are exactly a plain JSON encoding of the same event, whatever the state."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.core import encoding, events
from bridge.core.encoding import Stamp
from bridge.core.events import Contract
from bridge.core.messages import Aggregate
from bridge.core.state import Change, ChangeKind

from .core_strategies import json_values

KINDS: dict[Aggregate, tuple[ChangeKind, ...]] = {
    "alerting": ("added", "changed", "removed"),
    "history": ("added", "changed"),  # history items never end
    "status_messages": ("added", "changed", "removed"),
    "assistance": ("added", "changed", "removed"),
}
DATES = st.sampled_from(["2024-01-05T14:15:02Z", "2024-01-05T14:20:10.5Z", "2023-12-31T23:59:60Z"])
names = st.text(max_size=8)
props = st.dictionaries(names, json_values, max_size=5)

plain_states = props
history_states = st.tuples(
    props, st.fixed_dictionaries({}, optional={"initiationTime": DATES, "terminationTime": DATES})
).map(lambda pair: pair[0] | pair[1])
participants = st.dictionaries(
    st.text(min_size=1, max_size=5), st.fixed_dictionaries({}, optional={"action": names})
).map(lambda people: {user: {"userId": user, **rest} for user, rest in people.items()})
messages = st.lists(
    st.fixed_dictionaries({"text": names, "participantId": names, "timeAdded": DATES}), max_size=3
)
assistance_states = st.tuples(
    props,
    st.fixed_dictionaries(
        {"assistanceId": st.text(min_size=1, max_size=6)},
        optional={"messages": messages, "participants": participants},
    ),
).map(lambda pair: pair[0] | pair[1])
STATES: dict[Aggregate, st.SearchStrategy[dict[str, Any]]] = {
    "alerting": plain_states,
    "history": history_states,
    "status_messages": plain_states,
    "assistance": assistance_states,
}
# User ids as the accounts directory may name them, with what a key must quote.
users = st.text(min_size=1, max_size=8) | st.sampled_from(["agent.one", "a/b", "50%", "J Smith"])
PER_USER: frozenset[Aggregate] = frozenset({"alerting", "history", "assistance"})
"""README: every aggregate but the status catalogue is one user's view."""

moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)


@st.composite
def changes(draw: st.DrawFn) -> Change:
    """Any change of any aggregate, with the packed state the cache would hand along, or none."""
    aggregate: Aggregate = draw(st.sampled_from(list(KINDS)))
    state = draw(STATES[aggregate])
    packed = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()
    return Change(
        aggregate,
        draw(st.text(min_size=1, max_size=10)),
        draw(st.sampled_from(KINDS[aggregate])),
        state,
        tuple(draw(st.lists(names, max_size=4))),
        draw(st.integers(min_value=1, max_value=2**53)),
        draw(st.sampled_from(["delta", "snapshot", "absent"])),
        draw(st.sampled_from([packed, None])),
    )


def plain(value: Any) -> bytes:
    """The reference encoding: the standard library, compact, UTF-8 kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(moment: datetime) -> str:
    """RFC 3339 UTC to the millisecond, written out field by field."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def shown(aggregate: Aggregate, state: dict[str, Any]) -> dict[str, Any]:
    """How the README shows a state: assistance messages and participants as lists."""
    if aggregate != "assistance":
        return state
    people = sorted((state.get("participants") or {}).values(), key=lambda p: p["userId"])
    return state | {"messages": list(state.get("messages") or []), "participants": people}


def source_time(aggregate: Aggregate, state: dict[str, Any]) -> str | None:
    """When ICWS said it happened: history's end (else start), assistance's latest message."""
    if aggregate == "history":
        return state.get("terminationTime") or state.get("initiationTime")
    if aggregate == "assistance" and state.get("messages"):
        return max(m["timeAdded"] for m in state["messages"])
    return None


def record_key(aggregate: Aggregate, user: str, entity: str) -> str:
    """README: ``<user>/<entity>``, the user percent-encoded, for what is per user."""
    return f"{quote(user, safe='')}/{entity}" if aggregate in PER_USER else entity


def expected_event(change: Change, recorded: datetime, user: str) -> dict[str, Any]:
    """The whole event as a dict, attributes in contract order and ``data`` last."""
    # The names are the conftest contract's, written out: the expectation does not read it.
    name = events.EVENT_NAMES[(change.aggregate, change.kind)]
    state = shown(change.aggregate, dict(change.state))
    key = record_key(change.aggregate, user, change.key)
    ident = events.event_id(change.aggregate, key, change.sequence, name, state)
    data = {"state": state, "changedFields": list(change.changed), "cause": change.cause}
    named = change.aggregate in PER_USER
    event = {
        "specversion": "1.0",
        "id": ident,
        "source": "/tests/icws-bridge",
        "type": f"com.example.icws.{name}.v1",
        "subject": change.key,
        "time": source_time(change.aggregate, dict(change.state)) or rfc3339(recorded),
        "datacontenttype": "application/json",
        "dataschema": f"https://schemas.example.com/events/{name}.v1.json",
        "recordedtime": rfc3339(recorded),
        "sequence": change.sequence,
    }
    if named:
        event["icwsuser"] = user
    event["data"] = {"userId": user, **data} if named else data
    return event


# The contract fixture is an immutable value, so sharing it across examples is safe.
SHARED_FIXTURE = [HealthCheck.function_scoped_fixture]


class TestSplicedBytes:
    """Splicing pre-encoded state gives the very bytes of encoding the whole record at once."""

    @settings(max_examples=300, suppress_health_check=SHARED_FIXTURE)
    @given(change=changes(), recorded=moments, as_stamp=st.booleans(), user=users)
    def test_the_event_value_is_the_plain_encoding_of_the_event(
        self, contract: Contract, change: Change, recorded: datetime, as_stamp: bool, user: str
    ) -> None:
        """Event value == json.dumps of the event dict, for any state, key, user, fields, moment.

        Its headers are the content type, then each attribute of that dict but data.
        """
        when = Stamp.of(recorded) if as_stamp else recorded
        event, state = events.change_records(contract, change, when, user=user)
        expected = expected_event(change, recorded, user)
        assert event.value == plain(expected)
        assert event.key == state.key == record_key(change.aggregate, user, change.key).encode()
        attributes = {k: v for k, v in expected.items() if k not in ("data", "datacontenttype")}
        assert event.headers == (
            ("content-type", b"application/cloudevents+json"),
            *((f"ce_{name}", str(value).encode()) for name, value in attributes.items()),
        )

    @settings(max_examples=300, suppress_health_check=SHARED_FIXTURE)
    @given(change=changes(), recorded=moments, user=users)
    def test_the_state_value_is_the_plain_encoding_of_the_state_record(
        self, contract: Contract, change: Change, recorded: datetime, user: str
    ) -> None:
        """State value == json.dumps of {sequence, type, state}; a tombstone once it ended."""
        _, state = events.change_records(contract, change, recorded, user=user)
        if change.kind == "removed":
            assert state.value is None
            return
        name = events.EVENT_NAMES[(change.aggregate, change.kind)]
        record = {
            "sequence": change.sequence,
            "type": f"com.example.icws.{name}.v1",
            "state": shown(change.aggregate, dict(change.state)),
        }
        assert state.value == plain(record)

    @settings(suppress_health_check=SHARED_FIXTURE)
    @given(change=changes(), recorded=moments, user=users)
    def test_a_stamp_and_its_moment_give_the_same_records(
        self, contract: Contract, change: Change, recorded: datetime, user: str
    ) -> None:
        """A batch's pre-formatted read time changes no byte of any record or header."""
        assert events.change_records(contract, change, Stamp.of(recorded), user=user) == (
            events.change_records(contract, change, recorded, user=user)
        )
        lifecycle = [
            events.lifecycle_record(contract, "bridge.session.down", "session", {}, when, user=user)
            for when in (Stamp.of(recorded), recorded)
        ]
        assert lifecycle[0] == lifecycle[1]


class TestPieces:
    """The building blocks write what the contract says."""

    @given(parts=st.lists(json_values, max_size=5))
    def test_an_id_is_the_version_5_uuid_of_the_canonical_json(self, parts: list[Any]) -> None:
        """The id: SHA-256 of the sorted-key JSON of the parts, as a version 5 RFC 4122 UUID."""
        canonical = json.dumps(parts, sort_keys=True, default=str).encode()
        digest = hashlib.sha256(canonical).digest()[:16]
        assert encoding.event_id(*parts) == str(uuid.UUID(bytes=digest, version=5))

    @given(moment=moments)
    def test_timestamps_are_utc_to_the_millisecond(self, moment: datetime) -> None:
        """Any aware moment is written in UTC, milliseconds truncated, with a ``Z``."""
        assert encoding.timestamp(moment) == Stamp.of(moment).text == rfc3339(moment)

    def test_compact_json_keeps_utf8_and_has_no_spaces(self) -> None:
        """Record values are UTF-8 JSON without spaces; non-ASCII text is not escaped."""
        assert encoding.compact({"name": "Zoë", "n": [1, 2.5], "ok": None}) == (
            '{"name":"Zoë","n":[1,2.5],"ok":null}'.encode()
        )

    def test_headers_copy_every_attribute_but_data_and_its_content_type(self) -> None:
        """content-type first, then ``ce_<attr>`` in event order, numbers as their text."""
        event = {"specversion": "1.0", "datacontenttype": "application/json", "sequence": 7}
        assert encoding.ce_headers(event | {"data": {}}, copy_attributes=True) == (
            ("content-type", b"application/cloudevents+json"),
            ("ce_specversion", b"1.0"),
            ("ce_sequence", b"7"),
        )
        assert encoding.ce_headers(event, copy_attributes=False) == (
            ("content-type", b"application/cloudevents+json"),
        )


# Beyond what ICWS sends: what orjson writes differently or refuses, so the fast path must fall
# back for it. Floats at the edges of Python's repr, integers beyond 64 bits, non-str keys.
awkward_scalars = (
    st.floats()  # NaN and infinities included: json writes NaN, orjson would write null
    | st.sampled_from([1e16, 1e-7, 1e-5, 123456789.0, -0.0, 5e-324, 1.7976931348623157e308])
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1])
    | st.characters(codec="utf-8").map(lambda c: f"a{c}\u2028\x7f\x1f")
)
wide_values = st.recursive(
    json_values | awkward_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.dictionaries(st.integers(0, 3) | st.booleans() | st.none(), inner, max_size=2)
    ),
    max_leaves=12,
)


class TestFastPath:
    """The orjson path writes the very bytes of the standard library, or leaves the work to it."""

    @settings(max_examples=1000)
    @given(value=wide_values)
    def test_fast_compact_is_the_plain_encoding(self, value: Any) -> None:
        """Any JSON value (floats, huge integers, non-str keys included) gives json's bytes."""
        assert encoding.fast_compact(value) == plain(value)

    @settings(max_examples=300)
    @given(props=st.dictionaries(st.text(max_size=8), wide_values, max_size=6))
    def test_packed_properties_are_the_plain_encoding(self, props: dict[str, Any]) -> None:
        """The state cache packs properties in exactly the encoding record values use."""
        assert encoding.pack(props) == plain(props)

    @settings(max_examples=300)
    @given(props=st.dictionaries(st.text(max_size=8), wide_values, max_size=6))
    def test_unpacked_properties_are_what_json_reads_back(self, props: dict[str, Any]) -> None:
        """Whichever encoder packed them, the properties come back as json reads their bytes."""
        packed = encoding.pack(props)
        assert isinstance(packed, bytes)
        # repr tells 1 from 1.0 and True from 1, which == does not.
        assert repr(encoding.unpack(packed)) == repr(json.loads(plain(props)))

    @pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30, 1.5, 1e16])
    def test_numbers_orjson_would_misread_come_back_exactly(self, number: float) -> None:
        """A huge integer stays an integer (orjson would read it as a float), a float a float."""
        unpacked = encoding.unpack(encoding.pack({"n": number, "name": "x"}))
        assert type(unpacked["n"]) is type(number)
        assert unpacked == {"n": number, "name": "x"}

    def test_a_lone_surrogate_fails_as_before(self) -> None:
        """Text UTF-8 cannot hold is refused by both paths alike, so pack keeps a dict."""
        with pytest.raises(UnicodeEncodeError):
            encoding.fast_compact({"name": "a\ud800"})
        assert encoding.pack({"name": "a\ud800"}) == {"name": "a\ud800"}

    def test_values_json_refuses_are_refused(self) -> None:
        """A type json cannot write (orjson could) is still refused: pack keeps a dict."""
        moment = datetime(2024, 1, 5, tzinfo=UTC)
        with pytest.raises(TypeError):
            encoding.fast_compact({"at": moment})
        assert encoding.pack({"at": moment}) == {"at": moment}


json_texts = wide_values.map(json.dumps) | st.text(
    alphabet='{}[]",:0123456789.eE-+ \\ud8ntrfalsNIiy\ufeff\x00é', max_size=24
)


def read_or_error(text: str) -> str | type[Exception]:
    """What json reads (as repr, which tells 1 from 1.0), or the kind of error it raises."""
    try:
        return repr(json.loads(text))
    except json.JSONDecodeError:
        return json.JSONDecodeError


class TestReadJson:
    """SSE data is read into exactly the values json reads, whichever parser reads it."""

    @settings(max_examples=2000)
    @given(text=json_texts)
    def test_read_json_reads_what_json_reads(self, text: str) -> None:
        """Any text (huge integers, floats, NaN, broken JSON) gives json's value or its error."""
        expected = read_or_error(text)
        if expected is json.JSONDecodeError:
            with pytest.raises(json.JSONDecodeError):
                encoding.read_json(text)
        else:
            assert repr(encoding.read_json(text)) == expected

    @pytest.mark.parametrize("text", ['{"id": 18446744073709551616}', "[1, -9223372036854775809]"])
    def test_integers_beyond_64_bits_stay_integers(self, text: str) -> None:
        """Integers orjson would read as floats come back exact."""
        assert repr(encoding.read_json(text)) == repr(json.loads(text))


def test_packed_state_holds_no_spare_buffer() -> None:
    """The cache's packed bytes are allocated at their size (orjson's own keep a 4 KB buffer)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [encoding.pack({"interactionId": str(i), "note": "x" * 50}) for i in range(1000)]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(kept) == 1000
    assert grown < 1000 * 400  # about 130 bytes each; 4 KB each without the copy
