"""A subscription ICWS suspends or faults is PUT again, with a gap and a resync; no sleeps.

The session half runs against the recording fake client, reader and sink of ``session_fakes``;
the pipeline half runs the real :class:`~bridge.events.pump.Pump` against a recording publisher.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from prometheus_client import CollectorRegistry

from bridge import metrics
from bridge.core import messages
from bridge.core.events import Record
from bridge.core.icws_api import Answer, Call
from bridge.core.messages import AGGREGATES, Aggregate
from bridge.core.state import AggregateState
from bridge.events.publisher import Publisher
from bridge.events.pump import Pump
from bridge.icws.session import SessionInfo

from .session_fakes import FakeClient, FakeSink, ScriptedReader, make_session, running
from .test_pump import CONTRACT

STATE = "urn:inin.com:messaging:subscriptionStateMessage"
ASSISTANCE_STATE = "urn:inin.com:interactions.assistance:assistanceRequestSubscriptionStateMessage"
ALERTING = "urn:inin.com:interactions:interactionAlertingMessage"


def state(urn: str, value: int, name: str | None = None) -> dict[str, Any]:
    """A subscription-state message (§10); ``subscriptionId`` only when it names one."""
    named = {} if name is None else {"subscriptionId": name}
    error = {"errorId": "error.messaging.subscription.faulted", "message": "Busy"}
    return {"__type": urn, "isDelta": False, "state": value, "error": error, **named}


def marker() -> dict[str, Any]:
    """A harmless delta: delivered only once the batch before it was fully handled."""
    return {"__type": ALERTING, "isDelta": True, "alertingInteractionDetails": []}


class LosingSink(FakeSink):
    """The fake sink, also noting each lost subscription in the client's call log (for order)."""

    def __init__(self, client: FakeClient) -> None:
        super().__init__()
        self.client = client

    async def subscription_lost(self, aggregate: Aggregate, reason: str) -> None:
        self.client.calls.append(f"lost.{aggregate}")
        await self._note("lost", (aggregate, reason))


class RefusingClient(FakeClient):
    """Answers a chosen status to the second PUT of one subscription (the re-creation)."""

    def __init__(self, name: str, status: int) -> None:
        super().__init__()
        self.refused, self.status = f"subscribe.{name}", status

    async def send(self, base: str, call: Call) -> Answer:
        answer = await super().send(base, call)
        if call.name == self.refused and self.calls.count(call.name) == 2:
            return Answer(self.status, {}, {"errorId": "error.x", "message": "no"})
        return answer


def resubscriptions(registry: CollectorRegistry, aggregate: str) -> float | None:
    return registry.get_sample_value(
        "icws_bridge_icws_resubscriptions_total", {"aggregate": aggregate}
    )


class TestSessionResubscribes:
    """The session marks the gap, then PUTs the lost subscription on the same session."""

    async def test_a_faulted_subscription_is_put_again_after_its_gap(self) -> None:
        """Faulted alerting: the sink hears of it first, then one new PUT; no new login."""
        client, reader = FakeClient(), ScriptedReader()
        sink = LosingSink(client)
        reader.script = [[state(STATE, 3, "interaction-alerting")]]
        registry = CollectorRegistry()
        session = make_session(client, sink, reader, registry)
        async with running(session):
            await sink.until(
                ("up", "1"),
                ("batch", [messages.parse(state(STATE, 3, "interaction-alerting"))]),
                ("lost", ("alerting", "subscription_faulted")),
            )
            await client.until(lambda: client.calls[-1:] == ["subscribe.alerting"])
            assert client.calls[-2:] == ["lost.alerting", "subscribe.alerting"]
            assert (client.logins, session.up) == (1, True)
        assert client.calls.count("subscribe.alerting") == 2
        assert resubscriptions(registry, "alerting") == 1
        assert resubscriptions(registry, "history") == 0  # created at 0

    async def test_an_unnamed_state_re_creates_the_whole_family(self) -> None:
        """A messaging state naming nothing: alerting, history and status messages, in order."""
        client, reader = FakeClient(), ScriptedReader()
        sink = LosingSink(client)
        reader.script = [[state(STATE, 2)]]
        session = make_session(client, sink, reader)
        async with running(session):
            await client.until(lambda: "subscribe.status_messages" in client.calls[5:])
            assert client.calls[-6:] == [
                "lost.alerting",
                "subscribe.alerting",
                "lost.history",
                "subscribe.history",
                "lost.status_messages",
                "subscribe.status_messages",
            ]
        assert client.calls.count("subscribe.assistance") == 1

    async def test_a_details_subscription_re_creates_the_assistance_list(self) -> None:
        """A lost details subscription is the assistance list's: its snapshot re-follows all."""
        client, reader = FakeClient(), ScriptedReader()
        sink = LosingSink(client)
        aid = "interactions/agent-assistance/{a1|b:2 c/3}"
        reader.script = [[state(ASSISTANCE_STATE, 3, aid)]]
        session = make_session(client, sink, reader)
        async with running(session):
            await client.until(lambda: client.calls.count("subscribe.assistance") == 2)
            assert client.calls[-2:] == ["lost.assistance", "subscribe.assistance"]

    async def test_a_normal_state_changes_nothing(self) -> None:
        """State 1 (Normal) reaches the sink as a message, but nothing is lost or PUT."""
        client, reader = FakeClient(), ScriptedReader()
        sink = LosingSink(client)
        reader.script = [[state(STATE, 1, "interaction-alerting")], [marker()]]
        session = make_session(client, sink, reader)
        async with running(session):
            await sink.until(
                ("up", "1"),
                ("batch", [messages.parse(state(STATE, 1, "interaction-alerting"))]),
                ("batch", [messages.parse(marker())]),
            )
        assert not [kind for kind, _ in sink.events if kind == "lost"]
        assert client.calls.count("subscribe.alerting") == 1

    async def test_a_refused_put_leaves_the_subscription_unavailable(self) -> None:
        """The new PUT answered 404: named unavailable, not active, and the session holds."""
        client, reader = RefusingClient("history", 404), ScriptedReader()
        sink = LosingSink(client)
        reader.script = [[state(STATE, 3, "interaction-history")]]
        registry = CollectorRegistry()
        session = make_session(client, sink, reader, registry)
        async with running(session):
            await client.until(lambda: client.calls.count("subscribe.history") == 2)
            await client.until(lambda: "history" in session.health.unavailable)
            assert "HTTP 404" in session.health.unavailable["history"]
            assert "history" not in session.health.active  # counted by the fleet's gauge
            assert (client.logins, session.up) == (1, True)
        # A stop unsubscribes only what is in place.
        assert "unsubscribe.history" not in client.calls

    async def test_a_failed_put_ends_the_session(self, no_waits: None) -> None:
        """The new PUT answered 503: the session ends; the next one subscribes everything."""
        client, reader = RefusingClient("alerting", 503), ScriptedReader()
        sink = LosingSink(client)
        reader.script = [[state(STATE, 3, "interaction-alerting")]]
        session = make_session(client, sink, reader)
        async with running(session):
            await sink.until(
                ("up", "1"),
                ("batch", [messages.parse(state(STATE, 3, "interaction-alerting"))]),
                ("lost", ("alerting", "subscription_faulted")),
                ("down", "unavailable"),
                ("up", "2"),
            )


class RecordingPublisher:
    """Takes records as the publisher would, and keeps them."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    async def put(self, records: Sequence[Record], read_at: float) -> None:
        self.records += records


def lifecycle(publisher: RecordingPublisher) -> list[tuple[str, str, dict[str, Any]]]:
    """The lifecycle events published: (event name, subject, data)."""
    out = []
    for record in publisher.records:
        if record.topic == "life":
            event = json.loads(record.value or b"{}")
            name = event["type"].removeprefix("t.").removesuffix(".v1")
            out.append((name, event["subject"], event["data"]))
    return out


def make_pump() -> tuple[Pump, RecordingPublisher]:
    publisher = RecordingPublisher()
    states = {a: AggregateState(a) for a in AGGREGATES}
    pump = Pump(
        CONTRACT,
        states,
        cast(Publisher, publisher),
        metrics.create(CollectorRegistry()),
        user="agent.one",
        catalogue=True,
        clock=lambda: 1_700_000_000.0,
    )
    return pump, publisher


class TestPumpMarksTheGap:
    """The pump publishes the aggregate's gap, then a resync once its next snapshot is in."""

    async def test_gap_then_resync_for_that_aggregate_only(self) -> None:
        """gap.possible with the aggregate as subject; its next snapshot brings resync.completed."""
        pump, publisher = make_pump()
        info = SessionInfo("1", "h", "s", "v", "poll", ("alerting", "history"))
        await pump.session_up(info)
        snapshot = {"__type": ALERTING, "isDelta": False, "alertingInteractionDetails": []}
        history = {"__type": "urn:inin.com:interactions:historyMessage", "isDelta": False}
        await pump.deliver([messages.parse(snapshot), messages.parse(history)], 1_700_000_000.0)
        publisher.records.clear()
        await pump.subscription_lost("alerting", "subscription_faulted")
        assert pump.resync_pending == {"alerting"}
        await pump.deliver([messages.parse(history), messages.parse(snapshot)], 1_700_000_001.0)
        assert [(name, subject) for name, subject, _ in lifecycle(publisher)] == [
            ("bridge.gap.possible", "alerting"),
            ("bridge.resync.completed", "alerting"),
        ]
        gap = lifecycle(publisher)[0][2]
        assert gap == {
            "userId": "agent.one",
            "reason": "subscription_faulted",
            "since": "2023-11-14T22:13:20.000Z",
        }
        assert pump.resync_pending == set()

    async def test_state_messages_make_no_records(self) -> None:
        """Subscription-state messages, lost or not, are the session's business: no records."""
        pump, publisher = make_pump()
        batch = [messages.parse(state(STATE, value)) for value in (1, 2, 3)]
        await pump.deliver(batch, 1_700_000_000.0)
        assert publisher.records == []
