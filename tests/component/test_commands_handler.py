"""The command handler against fakes: one ICWS call per id, one result each, no broker, no waits.

The fakes implement the Protocols the handler takes: per user, a session that answers from a
script (and may hold its answer until released) and a view of assistance requests; an in-memory
journal, and a producer that keeps every record it is given. Retries run in stamina's test mode.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import stamina
from prometheus_client import CollectorRegistry

from bridge import errors
from bridge.commands.handler import CommandHandler, Gate, Incoming
from bridge.core.commands import Position
from bridge.core.events import Contract, Record
from bridge.core.icws_api import Answer, Call
from bridge.core.journal_entries import Baseline, Entry, Finished, Started, merge
from bridge.core.messages import AGGREGATES
from bridge.metrics import PREFIX, create
from bridge.settings import CommandSettings, TopicSettings

NOW = 1_700_000_000.0
TYPE_PREFIX = "com.example.icws"
UPDATE = f"{TYPE_PREFIX}.command.assistance.update.v1"
COMPLETE = f"{TYPE_PREFIX}.command.assistance.complete.v1"
USER = "agent.one"
TOPICS = TopicSettings()
CONTRACT = Contract(
    type_prefix=TYPE_PREFIX,
    source="/tests/icws-bridge",
    schema_base="https://schemas.example.com/events",
    event_topics={a: f"test.{a}.events" for a in AGGREGATES},
    state_topics={a: f"test.{a}.state" for a in AGGREGATES},
    lifecycle_topic="test.lifecycle",
)


@dataclass
class FakeSession:
    """A live ICWS session answering each call from a script; ``effect`` is what ICWS does."""

    answers: list[Answer | errors.IcwsError]
    effect: Callable[[Call], None] = lambda _call: None
    hold: asyncio.Event | None = None
    calls: list[Call] = field(default_factory=list)
    called: asyncio.Event = field(default_factory=asyncio.Event)
    up: bool = True

    async def request(self, make: Callable[[str], Call]) -> Answer:
        call = make("session-1")
        self.calls.append(call)
        self.effect(call)
        self.called.set()
        if self.hold is not None:
            await self.hold.wait()
        answer = self.answers.pop(0)
        if isinstance(answer, errors.IcwsError):
            raise answer
        return answer


@dataclass
class FakeView:
    """The bridge's reconciled assistance requests, always fresh."""

    requests: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def fresh(self) -> bool:
        return True

    def assistance(self, assistance_id: str) -> Mapping[str, Any] | None:
        return self.requests.get(assistance_id)


@dataclass
class FakeSessions:
    """The users a replica holds, each with its own fake session and view."""

    users: dict[str, tuple[FakeSession, FakeView]]

    def held(self) -> Sequence[str]:
        return list(self.users)

    def caller(self, user: str) -> FakeSession | None:
        held = self.users.get(user)
        return None if held is None else held[0]

    def view(self, user: str) -> FakeView | None:
        held = self.users.get(user)
        return None if held is None else held[1]


@dataclass
class FakeJournal:
    """The journal in memory: entries merged as the real one merges them."""

    topic: str = "test.journal"
    entries: dict[str, Entry] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def get(self, command_id: str) -> Entry | None:
        self.lookups.append(command_id)
        return self.entries.get(command_id)

    def remember(self, entry: Entry) -> None:
        self.entries[entry.command_id] = merge(self.entries.get(entry.command_id), entry)

    async def catch_up(self) -> int:
        return 0


@dataclass
class FakeProducer:
    """Kafka taking every record at once, in order."""

    records: list[Record] = field(default_factory=list)

    async def send(self, record: Record) -> None:
        self.records.append(record)

    def on(self, topic: str) -> list[Record]:
        return [r for r in self.records if r.topic == topic]

    def results(self) -> list[dict[str, Any]]:
        return [json.loads(r.value or b"")["data"] for r in self.on(TOPICS.command_results)]


@dataclass
class Rig:
    """A handler wired to fakes, with its metrics registry."""

    handler: CommandHandler
    session: FakeSession
    view: FakeView
    journal: FakeJournal
    producer: FakeProducer
    registry: CollectorRegistry

    def counted(self, kind: str, outcome: str) -> float | None:
        labels = {"type": kind, "outcome": outcome}
        return self.registry.get_sample_value(f"{PREFIX}_commands_total", labels)


def rig(
    session: FakeSession,
    view: FakeView | None = None,
    max_attempts: int = 3,
    *,
    others: Mapping[str, tuple[FakeSession, FakeView]] | None = None,
    clock: Callable[[], float] = lambda: NOW,
) -> Rig:
    """A handler for USER's ``session`` and ``view`` (by default: request a-1 open), and others."""
    registry = CollectorRegistry()
    view = view or FakeView({"a-1": OPEN_REQUEST})
    journal, producer = FakeJournal(), FakeProducer()
    settings = CommandSettings(max_attempts=max_attempts, default_deadline_seconds=300)
    sessions = FakeSessions({USER: (session, view), **(others or {})})
    handler = CommandHandler(
        settings, TOPICS, CONTRACT, sessions, journal, producer, create(registry), clock=clock
    )
    return Rig(handler, session, view, journal, producer, registry)


def record(
    data: Mapping[str, Any],
    *,
    kind: str = UPDATE,
    command_id: str = "cmd-1",
    partition: int = 0,
    written: float = NOW - 1,
    key: bytes | None = b"a-1",
) -> Incoming:
    """A command record as the consumer hands it over (keyed by the assistance id by default)."""
    value = {
        "specversion": "1.0",
        "id": command_id,
        "source": "/routing",
        "type": kind,
        "data": dict(data),
    }
    raw = json.dumps(value).encode()
    return Incoming("test.commands", partition, 7, key, raw, (("trace", b"t-1"),), written)


UPDATE_DATA = {"assistanceId": "a-1", "text": "Customer asks for a refund"}
OPEN_REQUEST = {"assistanceId": "a-1", "state": "None", "messages": []}


def ok() -> Answer:
    return Answer(200, {}, None)


@pytest.fixture(name="test_mode")
def fixture_test_mode() -> Iterator[None]:
    """Retries without backoff waits, at most three attempts."""
    with stamina.set_testing(True, attempts=3):
        yield


class TestSingleFlight:
    """Two records with one id, from two partitions, cause one ICWS call and one result."""

    async def test_second_partition_gets_the_stored_result(self) -> None:
        """The second waits for the first, then republishes its result byte for byte."""
        parts = rig(FakeSession([ok()], hold=asyncio.Event()))
        assert parts.session.hold is not None
        first = asyncio.create_task(parts.handler.handle(record(UPDATE_DATA), Gate()))
        await parts.session.called.wait()  # the first record's call is in flight
        entered = asyncio.Event()

        async def second() -> None:
            entered.set()
            await parts.handler.handle(record(UPDATE_DATA, partition=1), Gate())

        other = asyncio.create_task(second())
        await entered.wait()  # it ran on to its first suspension: waiting for the first
        assert parts.journal.lookups == ["cmd-1"]  # the second has not even asked the journal
        assert isinstance(parts.journal.entries["cmd-1"], Started)
        parts.session.hold.set()
        await asyncio.gather(first, other)

        assert len(parts.session.calls) == 1
        results = parts.producer.on(TOPICS.command_results)
        assert len(results) == 2
        assert results[0].value == results[1].value
        assert parts.producer.results()[0]["outcome"] == "succeeded"
        assert parts.counted("assistance_update", "succeeded") == 1
        assert parts.counted("assistance_update", "duplicate") == 1


class TestOutcomes:
    """Each way a command ends, with the one result event it gets."""

    async def test_expired_before_it_was_read(self) -> None:
        """A record read after its deadline is never sent: its result is expired."""
        parts = rig(FakeSession([ok()]))
        await parts.handler.handle(record(UPDATE_DATA, written=NOW - 301), Gate())

        assert parts.session.calls == []
        [result] = parts.producer.results()
        assert (result["outcome"], result["attempts"]) == ("expired", 0)
        assert isinstance(parts.journal.get("cmd-1"), Finished)
        assert not [r for r in parts.producer.records if b'"phase":"started"' in (r.value or b"")]

    async def test_invalid_data_is_dead_lettered_and_rejected(self) -> None:
        """A command with bad data goes to the dead-letter topic untouched and is rejected."""
        parts = rig(FakeSession([ok()]))
        incoming = record({"assistanceId": "a-1"})  # an update without its text
        await parts.handler.handle(incoming, Gate())

        assert parts.session.calls == []
        [letter] = parts.producer.on(TOPICS.dead_letter)
        assert letter.value == incoming.value
        assert ("dlq.reason", b"invalid_data") in letter.headers
        [result] = parts.producer.results()
        assert result["outcome"] == "rejected"
        assert "data.text is missing" in result["error"]["message"]

    async def test_transient_failure_then_success(
        self, test_mode: None, log_lines: io.StringIO
    ) -> None:
        """A 503 is retried; the second attempt succeeds; log lines name the command."""
        unavailable = Answer(503, {}, {"errorId": "error.x", "message": "Busy."})
        parts = rig(FakeSession([unavailable, ok()]))
        await parts.handler.handle(record(UPDATE_DATA), Gate())

        assert [c.method for c in parts.session.calls] == ["POST", "POST"]
        [result] = parts.producer.results()
        assert (result["outcome"], result["attempts"], result["observed"]) == (
            "succeeded",
            2,
            False,
        )
        lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
        named = {
            line["event"]: (line.get("command_id"), line.get("command_type")) for line in lines
        }
        assert named["command.retrying"] == ("cmd-1", "assistance_update")
        assert named["command.finished"] == ("cmd-1", "assistance_update")

    async def test_lost_answer_with_observed_effect(self, test_mode: None) -> None:
        """A complete whose answer was lost but whose effect shows is succeeded/observed."""
        view = FakeView({"a-1": OPEN_REQUEST})

        def completes(call: Call) -> None:
            view.requests.pop("a-1", None)  # ICWS did it; the answer never came back

        session = FakeSession([errors.ServerUnavailable("unreachable (TimeoutError)")], completes)
        parts = rig(session, view)
        await parts.handler.handle(record({"assistanceId": "a-1"}, kind=COMPLETE), Gate())

        assert [c.method for c in parts.session.calls] == ["DELETE"]
        [result] = parts.producer.results()
        assert (result["outcome"], result["observed"], result["attempts"]) == (
            "succeeded",
            True,
            1,
        )


OTHER = "agent.two"


def ticking(step: float = 1.0) -> Callable[[], float]:
    """A clock that moves ``step`` seconds on every reading, so waits for the view run out."""
    now = [NOW]

    def read() -> float:
        now[0] += step
        return now[0]

    return read


def started_entries(parts: Rig) -> list[dict[str, Any]]:
    """The ``started`` journal records written, decoded."""
    values = [json.loads(r.value or b"") for r in parts.producer.on(parts.journal.topic)]
    return [v for v in values if v["phase"] == "started"]


class TestRunsAsTheOwner:
    """A command runs on its owner's session only; without an owner here, it is rejected."""

    async def test_keyed_by_the_user_runs_on_that_users_session(self) -> None:
        """Keyed by agent.one for its own open request: one call on its session, named userId."""
        other = FakeSession([ok()])
        parts = rig(FakeSession([ok()]), others={OTHER: (other, FakeView({"a-1": OPEN_REQUEST}))})
        await parts.handler.handle(record(UPDATE_DATA, key=USER.encode()), Gate())

        assert [c.method for c in parts.session.calls] == ["POST"]
        assert other.calls == []
        [result] = parts.producer.results()
        assert (result["outcome"], result["userId"]) == ("succeeded", USER)
        assert [entry["user"] for entry in started_entries(parts)] == [USER]

    async def test_keyed_by_a_user_for_another_users_request_is_rejected(self) -> None:
        """Keyed by agent.one for agent.two's request: rejected, no call on any session."""
        other = FakeSession([ok()])
        parts = rig(
            FakeSession([ok()]),
            FakeView(),
            others={OTHER: (other, FakeView({"a-1": OPEN_REQUEST}))},
            clock=ticking(),
        )
        await parts.handler.handle(record(UPDATE_DATA, key=USER.encode()), Gate())

        assert parts.session.calls == []
        assert other.calls == []
        [result] = parts.producer.results()
        assert (result["outcome"], result["userId"], result["attempts"]) == ("rejected", None, 0)
        assert result["error"]["message"] == f"request a-1 is not open for user {USER}"
        assert started_entries(parts) == []

    async def test_keyed_by_the_assistance_id_runs_on_its_one_owner(self) -> None:
        """Keyed by the request id, held by agent.two only: it runs on agent.two's session."""
        other = FakeSession([ok()])
        parts = rig(
            FakeSession([ok()]),
            FakeView(),
            others={OTHER: (other, FakeView({"a-1": OPEN_REQUEST}))},
        )
        await parts.handler.handle(record(UPDATE_DATA, key=b"a-1"), Gate())

        assert parts.session.calls == []
        assert [c.method for c in other.calls] == ["POST"]
        [result] = parts.producer.results()
        assert (result["outcome"], result["userId"]) == ("succeeded", OTHER)

    async def test_two_owners_are_ambiguous(self) -> None:
        """Keyed by the request id that two users' views hold: rejected, naming both, no call."""
        other = FakeSession([ok()])
        parts = rig(FakeSession([ok()]), others={OTHER: (other, FakeView({"a-1": OPEN_REQUEST}))})
        await parts.handler.handle(record(UPDATE_DATA, key=b"a-1"), Gate())

        assert parts.session.calls == other.calls == []
        [result] = parts.producer.results()
        assert result["outcome"] == "rejected"
        assert result["error"]["message"] == (
            f"request a-1 is ambiguous: users {USER}, {OTHER} all hold it"
        )

    async def test_nobody_holds_the_request(self) -> None:
        """No held view shows the request, once looked again: rejected without any call."""
        parts = rig(FakeSession([ok()]), FakeView(), clock=ticking())
        await parts.handler.handle(record(UPDATE_DATA), Gate())

        assert parts.session.calls == []
        [result] = parts.producer.results()
        assert (result["outcome"], result["userId"]) == ("rejected", None)
        assert result["error"]["message"] == "no account of this fleet holds request a-1"

    async def test_recovery_looks_at_the_owners_view(self) -> None:
        """A complete started as agent.two and gone from agent.two's view is succeeded/observed."""
        other = FakeSession([])
        # The clock runs fast, so looking in the wrong view would end in ``unknown``, not hang.
        parts = rig(FakeSession([]), others={OTHER: (other, FakeView())}, clock=ticking(50.0))
        started = Started(
            "cmd-1",
            Position("test.commands", 0, 7),
            NOW - 1,
            Baseline(True, 0),
            "another-bridge",
            OTHER,
        )
        parts.journal.remember(started)
        await parts.handler.handle(record({"assistanceId": "a-1"}, kind=COMPLETE), Gate())

        assert parts.session.calls == other.calls == []
        [result] = parts.producer.results()
        assert (result["outcome"], result["observed"], result["userId"]) == (
            "succeeded",
            True,
            OTHER,
        )
