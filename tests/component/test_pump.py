"""One pump per account: its records name its user, the catalogue comes from one pump only.

The real :class:`~bridge.events.pump.Pump` runs against a recording publisher; expected keys and
fields are written from README "Topics and events" (``<user>/<entity>``, the user
percent-encoded; ``data.userId`` and ``icwsuser`` on everything but the status catalogue).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from prometheus_client import CollectorRegistry

from bridge import metrics
from bridge.core import messages
from bridge.core.events import Contract, Record
from bridge.core.messages import AGGREGATES, Aggregate
from bridge.core.state import AggregateState, new_states
from bridge.events.publisher import Publisher
from bridge.events.pump import PUT_CHUNK, Pump
from bridge.icws.session import SessionInfo

ALERTING = "urn:inin.com:interactions:interactionAlertingMessage"
STATUS = "urn:inin.com:status:statusMessagesMessage"
READ_AT = 1_700_000_000.0
CONTRACT = Contract(  # recognisable names: nothing passes by coincidence
    "t",
    "/t",
    "https://s",
    {a: f"ev.{a}" for a in AGGREGATES},
    {a: f"st.{a}" for a in AGGREGATES},
    "life",
)


class RecordingPublisher:
    """Takes records as the publisher would, and keeps each put as it came."""

    def __init__(self) -> None:
        self.puts: list[list[Record]] = []

    async def put(self, records: Sequence[Record], read_at: float) -> None:
        self.puts.append(list(records))

    @property
    def records(self) -> list[Record]:
        return [record for put in self.puts for record in put]


def make_pump(
    user: str,
    publisher: RecordingPublisher,
    *,
    catalogue: bool = True,
    states: Mapping[Aggregate, AggregateState] | None = None,
) -> tuple[Pump, CollectorRegistry]:
    """A pump for ``user`` with fresh states (or those given) and its own metrics registry."""
    registry = CollectorRegistry()
    pump = Pump(
        CONTRACT,
        new_states() if states is None else states,
        cast(Publisher, publisher),
        metrics.create(registry),
        user=user,
        catalogue=catalogue,
        clock=lambda: READ_AT,
    )
    return pump, registry


def alerting(*ids: str) -> messages.Message:
    """An alerting snapshot holding these interactions."""
    details = [
        {
            "interactionId": i,
            "alertAction": 1,
            "alertType": 5,
            "interactionType": "Call",
            "name": "John Smith",
            "address": "+13175550100",
            "autoAnswer": False,
        }
        for i in ids
    ]
    return messages.parse(
        {"__type": ALERTING, "isDelta": False, "alertingInteractionDetails": details}
    )


def statuses(*ids: str) -> messages.Message:
    """A status catalogue snapshot holding these status ids."""
    added = [{"statusId": i, "messageText": i} for i in ids]
    return messages.parse({"__type": STATUS, "isDelta": False, "statusMessagesAdded": added})


def body(record: Record) -> dict[str, Any]:
    assert record.value is not None
    value: dict[str, Any] = json.loads(record.value)
    return value


def on(publisher: RecordingPublisher, topic: str) -> list[Record]:
    return [record for record in publisher.records if record.topic == topic]


class TestRecordsNameTheUser:
    """Every record of a per-user aggregate and of the session names the pump's user."""

    async def test_alerting_events_and_state_are_keyed_and_stamped_by_user(self) -> None:
        """Event and state keys are ``a%2Fb%20c/<id>``; data.userId and icwsuser are the user."""
        publisher = RecordingPublisher()
        pump, _ = make_pump("a/b c", publisher)
        await pump.session_up(SessionInfo("1", "h", "s", "v", "sse", ("alerting",)))
        await pump.deliver([alerting("1001")], READ_AT)
        [event] = on(publisher, "ev.alerting")
        [state] = on(publisher, "st.alerting")
        assert event.key == state.key == b"a%2Fb%20c/1001"
        assert body(event)["subject"] == "1001"
        assert body(event)["icwsuser"] == body(event)["data"]["userId"] == "a/b c"
        assert ("ce_icwsuser", b"a/b c") in event.headers

    async def test_lifecycle_events_are_the_users(self) -> None:
        """session.up, the resync, session.down and its gap: keyed and stamped by the user."""
        publisher = RecordingPublisher()
        pump, _ = make_pump("agent.one", publisher)
        await pump.session_up(SessionInfo("1", "h", "s", "v", "sse", ("alerting",)))
        await pump.deliver([alerting("1001")], READ_AT)
        await pump.session_down("lost")
        life = on(publisher, "life")
        assert [record.key for record in life] == [
            b"agent.one/session",
            b"agent.one/alerting",
            b"agent.one/session",
            b"agent.one/session",
        ]
        assert {body(record)["data"]["userId"] for record in life} == {"agent.one"}
        assert {body(record)["icwsuser"] for record in life} == {"agent.one"}

    async def test_two_users_views_of_one_interaction_are_two_entities(self) -> None:
        """The same interaction alerting for two users: two keys, two ids, each its own state."""
        publisher = RecordingPublisher()
        one, _ = make_pump("agent.one", publisher)
        two, _ = make_pump("agent.two", publisher, catalogue=False)
        await one.deliver([alerting("1001")], READ_AT)
        await two.deliver([alerting("1001")], READ_AT)
        first, second = on(publisher, "ev.alerting")
        assert (first.key, second.key) == (b"agent.one/1001", b"agent.two/1001")
        assert body(first)["id"] != body(second)["id"]
        assert body(first)["sequence"] == body(second)["sequence"] == 1


class TestTheCatalogueOnce:
    """The status catalogue is published by the catalogue account's pump only, naming no user."""

    async def test_the_catalogue_pump_publishes_status_without_a_user(self) -> None:
        """Keyed by the status id alone, no userId, no icwsuser; its resync keyed as before."""
        publisher = RecordingPublisher()
        pump, _ = make_pump("agent.one", publisher, catalogue=True)
        await pump.session_up(SessionInfo("1", "h", "s", "v", "sse", ("status_messages",)))
        await pump.deliver([statuses("Available")], READ_AT)
        [event] = on(publisher, "ev.status_messages")
        assert event.key == b"available"
        assert "icwsuser" not in body(event)
        assert "userId" not in body(event)["data"]
        assert on(publisher, "life")[-1].key == b"status_messages"

    async def test_another_pump_drops_status_messages_and_counts_the_problem(self) -> None:
        """A pump without the catalogue makes no record of a status message, and says so."""
        publisher = RecordingPublisher()
        pump, registry = make_pump("agent.two", publisher, catalogue=False)
        await pump.deliver([statuses("Available")], READ_AT)
        assert publisher.records == []
        problems = registry.get_sample_value(
            "icws_bridge_icws_message_problems_total", {"type": STATUS.rsplit(":", 1)[1]}
        )
        assert problems == 1


class TestCounting:
    """Messages are counted by type and events by name, state records not (README, Metrics)."""

    async def test_a_batch_counts_each_message_and_each_event_once(self) -> None:
        """Three snapshots in two batches: 3 messages, 3 started, 2 stopped, 1 resync, no state."""
        publisher = RecordingPublisher()
        pump, registry = make_pump("agent.one", publisher)
        pump.resync_pending = {"alerting"}
        await pump.deliver([alerting("1", "2"), alerting("2", "3")], READ_AT)
        await pump.deliver([alerting("3")], READ_AT)

        def count(family: str, kind: str) -> float | None:
            return registry.get_sample_value(f"icws_bridge_{family}_total", {"type": kind})

        kind = ALERTING.rsplit(":", 1)[1]
        assert count("icws_messages", kind) == 3
        assert count("events", "interaction.alerting.started") == 3
        assert count("events", "interaction.alerting.stopped") == 2
        assert count("events", "bridge.resync.completed") == 1
        assert count("events", "state") is None
        assert len(on(publisher, "st.alerting")) == 5


class TestFairness:
    """A huge batch goes to the publisher in bounded chunks, and other accounts get turns."""

    async def test_a_big_snapshot_is_put_in_chunks_that_interleave(self) -> None:
        """Chunks of at most PUT_CHUNK records; a second account's put lands between them."""
        publisher = RecordingPublisher()
        big, _ = make_pump("big", publisher)
        small, _ = make_pump("small", publisher, catalogue=False)
        ids = [str(n) for n in range(PUT_CHUNK)]  # two records each: two chunks at least
        await asyncio.gather(
            big.deliver([alerting(*ids)], READ_AT), small.deliver([alerting("1")], READ_AT)
        )
        assert max(len(put) for put in publisher.puts) <= PUT_CHUNK
        owners = [put[0].key.split(b"/")[0] if put[0].key else b"" for put in publisher.puts]
        assert owners[0] == b"big"
        assert b"small" in owners
        assert owners.index(b"small") < len(owners) - 1  # not only after the big one ended
        assert len(on(publisher, "ev.alerting")) == PUT_CHUNK + 1
