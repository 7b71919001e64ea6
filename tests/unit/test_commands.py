"""The command core: decoding, planning, judging answers, evidence, the journal, the records."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from bridge import errors
from bridge.core import command_results, command_rules, commands
from bridge.core import journal_entries as journal
from bridge.core.command_rules import Problem, Verdict
from bridge.core.commands import Command, DeadLetter, Plan, Position, Ref
from bridge.core.events import Contract
from bridge.core.icws_api import Answer
from bridge.core.journal_entries import Baseline, Finished, Started
from bridge.core.schemas import command_schemas

WRITTEN = 1_700_000_000.0  # the record's timestamp
PREFIX = "com.example.icws"
UPDATE = f"{PREFIX}.command.assistance.update.v1"
COMPLETE = f"{PREFIX}.command.assistance.complete.v1"
HERE = Position("test.commands", 2, 41)


def event(**changes: Any) -> dict[str, Any]:
    """A valid update command, with attributes changed (None removes one)."""
    base: dict[str, Any] = {
        "specversion": "1.0",
        "id": "cmd-1",
        "source": "/routing",
        "type": UPDATE,
        "datacontenttype": "application/json",
        "data": {"assistanceId": "a-1", "text": "Customer asks for a refund"},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def raw(value: Any) -> bytes:
    return json.dumps(value).encode()


def decode(contract: Contract, value: bytes | None, **options: Any) -> Command | DeadLetter:
    settings = {"default_deadline": 300.0, "max_deadline": 86400.0, "max_bytes": 4096} | options
    return commands.decode(value, contract=contract, written_at=WRITTEN, **settings)


class TestDecode:
    """Bytes become a Command, or a dead letter that names the reason."""

    def test_update(self, contract: Contract) -> None:
        """A valid update decodes with its id, sender, request, text and default deadline."""
        command = decode(contract, raw(event()))
        assert command == Command(
            Ref("cmd-1", "assistance_update", UPDATE, "/routing"),
            "a-1",
            "Customer asks for a refund",
            WRITTEN + 300,
        )

    def test_complete(self, contract: Contract) -> None:
        """A valid complete decodes without text."""
        command = decode(contract, raw(event(type=COMPLETE, data={"assistanceId": "a-1"})))
        assert isinstance(command, Command)
        assert (command.ref.kind, command.text) == ("assistance_complete", None)

    @pytest.mark.parametrize(
        ("deadline", "expected"),
        [
            ("2023-11-14T22:14:00Z", WRITTEN + 40),
            ("2023-11-14T23:14:00+01:00", WRITTEN + 40),
            ("2099-01-01T00:00:00Z", WRITTEN + 86400),  # capped by max_deadline
        ],
        ids=["utc", "offset", "capped"],
    )
    def test_deadline(self, contract: Contract, deadline: str, expected: float) -> None:
        """An explicit deadline is taken as given, but never later than the cap allows."""
        command = decode(contract, raw(event(deadline=deadline)))
        assert isinstance(command, Command)
        assert command.deadline == expected

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (b"x" * 5000, "oversize"),
            (None, "not_json"),
            (b"", "not_json"),
            (b"\xff\xfe{}", "not_json"),
            (b"{not json", "not_json"),
            (raw([1, 2]), "not_cloudevent"),
            (raw(event(specversion=None)), "not_cloudevent"),
            (raw(event(specversion="0.3")), "not_cloudevent"),
            (raw(event(id=None)), "not_cloudevent"),
            (raw(event(id="")), "not_cloudevent"),
            (raw(event(id=7)), "not_cloudevent"),
            (raw(event(source=None)), "not_cloudevent"),
            (raw(event(id="x" * 201)), "not_cloudevent"),
            (raw(event(type="com.example.icws.command.assistance.create.v1")), "unknown_type"),
            (raw(event(type="com.example.icws.command.assistance.update.v2")), "unknown_type"),
            (raw(event(type="com.other.command.assistance.update.v1")), "unknown_type"),
            (raw(event(type=f"{PREFIX}.assistance.request.opened.v1")), "unknown_type"),
        ],
        ids=[
            "oversize",
            "tombstone",
            "empty",
            "not-utf8",
            "broken-json",
            "array",
            "no-specversion",
            "old-specversion",
            "no-id",
            "empty-id",
            "numeric-id",
            "no-source",
            "long-id",
            "unknown-command",
            "unknown-major",
            "other-prefix",
            "an-event-not-a-command",
        ],
    )
    def test_not_a_command(self, contract: Contract, value: bytes | None, reason: str) -> None:
        """Records that name no command are dead letters without a command reference."""
        letter = decode(contract, value)
        assert isinstance(letter, DeadLetter)
        assert (letter.reason, letter.ref) == (reason, None)
        assert letter.detail

    @pytest.mark.parametrize(
        "changes",
        [
            {"data": None},
            {"data": "a-1"},
            {"data": {"text": "hello"}},
            {"data": {"assistanceId": "a-1"}},
            {"data": {"assistanceId": "a-1", "text": ""}},
            {"data": {"assistanceId": "a-1", "text": "   "}},
            {"data": {"assistanceId": "a-1", "text": 5}},
            {"data": {"assistanceId": "", "text": "x"}},
            {"data": {"assistanceId": 7, "text": "x"}},
            {"data": {"assistanceId": "a" * 257, "text": "x"}},
            {"data": {"assistanceId": "a\nb", "text": "x"}},
            {"data": {"assistanceId": "a\x00", "text": "x"}},
            {"data": {"assistanceId": "a\x7f", "text": "x"}},
            {"data": {"assistanceId": "a\x85", "text": "x"}},
            {"data": {"assistanceId": ".", "text": "x"}},
            {"data": {"assistanceId": "..", "text": "x"}},
            {"data": {"assistanceId": "a-1", "text": "x", "priority": "high"}},
            {"datacontenttype": "text/plain"},
            {"deadline": "tomorrow"},
            {"deadline": "2024-01-01T00:00:00"},
            {"deadline": 1700000000},
        ],
        ids=[
            "no-data",
            "data-not-object",
            "no-assistance-id",
            "no-text",
            "empty-text",
            "blank-text",
            "text-not-string",
            "empty-id",
            "id-not-string",
            "id-of-257-characters",
            "newline-in-id",
            "nul-in-id",
            "del-in-id",
            "c1-control-in-id",
            "dot-id",
            "dot-dot-id",
            "unknown-property",
            "not-json-content",
            "deadline-not-a-time",
            "deadline-without-offset",
            "deadline-a-number",
        ],
    )
    def test_invalid_data(self, contract: Contract, changes: dict[str, Any]) -> None:
        """A known command with bad data is a dead letter that still names the command."""
        letter = decode(contract, raw(event(**changes)))
        assert isinstance(letter, DeadLetter)
        assert letter.reason == "invalid_data"
        assert letter.ref == Ref("cmd-1", "assistance_update", UPDATE, "/routing")

    @pytest.mark.parametrize(
        "assistance_id",
        [
            "{a1|b:2 c/3}",
            "../../connection",
            "a/b",
            "a%2Fb",
            " ",
            "...",
            "é€😀",
            "a" * 256,
        ],
        ids=[
            "reserved-characters",
            "path-climbing",
            "slash",
            "escaped-slash",
            "space",
            "three-dots",
            "non-ascii",
            "256-characters",
        ],
    )
    def test_opaque_ids_are_accepted_as_sent(self, contract: Contract, assistance_id: str) -> None:
        """Any id without control characters, up to 256 characters, is a command's id unchanged.

        Encoding (not a whitelist) keeps it in its path segment (docs/icws-protocol.md §10).
        """
        command = decode(contract, raw(event(data={"assistanceId": assistance_id, "text": "x"})))
        assert isinstance(command, Command)
        assert command.assistance_id == assistance_id

    def test_every_reason_is_reachable(self, contract: Contract) -> None:
        """Each dead-letter reason in the vocabulary is produced by some record above."""
        samples = [b"x" * 5000, b"{", raw([]), raw(event(type="x")), raw(event(data=None))]
        assert {decode(contract, s).reason for s in samples} == set(commands.REASONS)  # type: ignore[union-attr]


class TestSchemasAgreeWithTheDecoder:
    """The published command schemas accept what the decoder accepts, and refuse its rejects."""

    @staticmethod
    def validator(contract: Contract, name: str) -> jsonschema.Draft202012Validator:
        schema = command_schemas(contract)[f"{name}.v1.json"]
        return jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )

    @pytest.mark.parametrize(
        "data",
        [
            {"assistanceId": "a-1", "text": "hello"},
            {"assistanceId": "a-1"},
            {"assistanceId": "../x", "text": "hello"},
            {"assistanceId": "{a1|b:2 c/3}", "text": "hello"},
            {"assistanceId": "é€😀", "text": "hello"},
            {"assistanceId": "a" * 256, "text": "hello"},
            {"assistanceId": "a" * 257, "text": "hello"},
            {"assistanceId": "", "text": "hello"},
            {"assistanceId": "a\nb", "text": "hello"},
            {"assistanceId": "a\n", "text": "hello"},
            {"assistanceId": "a\x9f", "text": "hello"},
            {"assistanceId": ".", "text": "hello"},
            {"assistanceId": "..", "text": "hello"},
            {"assistanceId": "a-1", "text": " "},
            {"assistanceId": "a-1", "text": "x", "extra": 1},
        ],
    )
    def test_update_data(self, contract: Contract, data: dict[str, Any]) -> None:
        """For update data, schema validity equals decodability."""
        value = event(data=data)
        accepted = isinstance(decode(contract, raw(value)), Command)
        valid = self.validator(contract, "command.assistance.update").is_valid(value)
        assert valid == accepted

    def test_complete(self, contract: Contract) -> None:
        """A complete with a deadline validates against its schema."""
        value = event(type=COMPLETE, data={"assistanceId": "a-1"}, deadline="2024-01-01T00:00:00Z")
        assert isinstance(decode(contract, raw(value)), Command)
        self.validator(contract, "command.assistance.complete").validate(value)


class TestPlan:
    """Each command becomes the documented ICWS call on the live session."""

    @pytest.mark.parametrize(
        ("changes", "planned"),
        [
            ({}, Plan("assistance_update", "a-1", "Customer asks for a refund")),
            (
                {"type": COMPLETE, "data": {"assistanceId": "a-1"}},
                Plan("assistance_complete", "a-1", None),
            ),
        ],
        ids=["update", "complete"],
    )
    def test_plan_is_a_value(
        self, contract: Contract, changes: dict[str, Any], planned: Plan
    ) -> None:
        """A plan is a comparable value naming the call's kind, target and text, no session."""
        command = decode(contract, raw(event(**changes)))
        assert isinstance(command, Command)
        assert commands.plan(command) == planned

    def test_update_posts_the_text(self, contract: Contract) -> None:
        """Update: POST .../agent-assistance/{id} with {"text": ...}."""
        command = decode(contract, raw(event()))
        assert isinstance(command, Command)
        call = commands.call(commands.plan(command), "12345")
        assert (call.method, call.path) == (
            "POST",
            "/icws/12345/interactions/agent-assistance/a-1",
        )
        assert call.body == {"text": "Customer asks for a refund"}

    def test_complete_deletes(self, contract: Contract) -> None:
        """Complete: DELETE .../agent-assistance/{id}, no body."""
        command = decode(contract, raw(event(type=COMPLETE, data={"assistanceId": "a-1"})))
        assert isinstance(command, Command)
        call = commands.call(commands.plan(command), "12345")
        assert (call.method, call.path, call.body) == (
            "DELETE",
            "/icws/12345/interactions/agent-assistance/a-1",
            None,
        )


def error_body(error_id: str) -> dict[str, str]:
    return {"errorId": error_id, "message": "It went wrong."}


class TestJudge:
    """ICWS answers and errors map to outcomes by a table; transient ones are retried."""

    @pytest.mark.parametrize(
        ("status", "outcome"),
        [
            (200, "succeeded"),
            (204, "succeeded"),
            (400, "rejected"),
            (401, "retry"),
            (403, "failed"),
            (404, "failed"),
            (405, "failed"),
            (410, "failed"),
            (429, "retry"),
            (500, "retry"),
            (502, "retry"),
            (503, "retry"),
            (504, "retry"),
        ],
    )
    def test_answers(self, contract: Contract, status: int, outcome: str) -> None:
        """Success, 400, gone, session and server trouble each mean one thing."""
        command = decode(contract, raw(event()))
        assert isinstance(command, Command)
        call = commands.call(commands.plan(command), "1")
        verdict = command_rules.judge(call, Answer(status, {}, error_body("error.x")))
        assert verdict.outcome == outcome
        if outcome != "succeeded":
            assert verdict.problem is not None
            assert (verdict.problem.status, verdict.problem.error_id) == (status, "error.x")

    def test_rejection_keeps_error_id_and_message(self, contract: Contract) -> None:
        """A 400's errorId and message reach the result."""
        command = decode(contract, raw(event(type=COMPLETE, data={"assistanceId": "a-1"})))
        assert isinstance(command, Command)
        body = {
            "errorId": "error.request.invalidRepresentation.invalidProperty",
            "message": "The assistance request a-1 does not exist.",
        }
        verdict = command_rules.judge(
            commands.call(commands.plan(command), "1"), Answer(400, {}, body)
        )
        assert verdict.problem is not None
        assert verdict.problem.as_data()["errorId"] == body["errorId"]
        assert body["message"] in verdict.problem.message

    @pytest.mark.parametrize(
        ("error", "outcome"),
        [
            (errors.SessionLost("request: HTTP 401", status=401), "retry"),
            (errors.ServerUnavailable("unreachable (TimeoutError)"), "retry"),
            (errors.ServerError("HTTP 500", status=500), "retry"),
            (errors.RequestRejected("HTTP 400", status=400), "rejected"),
            (errors.ResourceGone("HTTP 410", status=410), "failed"),
        ],
        ids=["401", "unreachable", "server-error", "rejected", "gone"],
    )
    def test_errors(self, error: errors.IcwsError, outcome: str) -> None:
        """Raised errors are judged by whether retrying can help."""
        assert command_rules.judge_error(error).outcome == outcome


def request(*messages: tuple[str, str], state: str = "None") -> dict[str, Any]:
    """The bridge's state of an assistance request with (text, participantId) messages."""
    return {
        "assistanceId": "a-1",
        "state": state,
        "messages": [
            {"text": t, "participantId": p, "timeAdded": "2024-01-05T14:16:00Z"}
            for t, p in messages
        ],
    }


class TestEvidence:
    """What the bridge's own view says about whether a command took effect."""

    @pytest.mark.parametrize(
        ("before", "after", "took_effect"),
        [
            (request(), None, True),
            (request(), request(state="Completed"), True),
            (request(), request(), False),
            (None, None, False),  # never knew the request: its absence proves nothing
        ],
        ids=["gone", "completed", "still-open", "never-seen"],
    )
    def test_complete(self, contract: Contract, before: Any, after: Any, took_effect: bool) -> None:
        """A complete took effect when a request that was open is gone or completed."""
        command = decode(contract, raw(event(type=COMPLETE, data={"assistanceId": "a-1"})))
        assert isinstance(command, Command)
        base = journal.baseline(command, before, "agent.one")
        assert journal.observed(command, base, after, "agent.one") is took_effect

    TEXT = "Customer asks for a refund"

    @pytest.mark.parametrize(
        ("before", "after", "took_effect"),
        [
            (request(), request((TEXT, "agent.one")), True),
            (request(), request((TEXT, "Agent.One")), True),  # user ids are case-insensitive
            (request((TEXT, "agent.one")), request((TEXT, "agent.one")), False),
            (
                request((TEXT, "agent.one")),
                request((TEXT, "agent.one"), (TEXT, "agent.one")),
                True,
            ),
            (request(), request((TEXT, "supervisor")), False),
            (request(), request(("another text", "agent.one")), False),
            (request(), None, False),
        ],
        ids=[
            "new-message",
            "case",
            "same-as-before",
            "one-more",
            "other-user",
            "other-text",
            "request-gone",
        ],
    )
    def test_update(self, contract: Contract, before: Any, after: Any, took_effect: bool) -> None:
        """An update took effect when its text from the bridge's user appears once more."""
        command = decode(contract, raw(event()))
        assert isinstance(command, Command)
        base = journal.baseline(command, before, "agent.one")
        assert journal.observed(command, base, after, "agent.one") is took_effect


def finished(outcome: commands.Outcome = "succeeded", where: Position = HERE) -> Finished:
    return Finished("cmd-1", where, outcome, {"id": "result-1", "data": {"outcome": outcome}})


STARTED = Started("cmd-1", HERE, WRITTEN + 1, Baseline(True, 0), "instance-a", "agent.one")
STARTED_BEFORE_OWNERS = Started("cmd-1", HERE, WRITTEN + 1, Baseline(True, 0), "instance-a")


class TestJournal:
    """Journal entries round-trip through Kafka records and decide what a record causes."""

    @pytest.mark.parametrize(
        "entry", [STARTED, STARTED_BEFORE_OWNERS, finished(), finished("unknown")]
    )
    def test_round_trip(self, entry: journal.Entry) -> None:
        """An entry read back from its record is the entry written, keyed by command id."""
        record = journal.journal_record("test.journal", entry)
        assert (record.topic, record.key) == ("test.journal", b"cmd-1")
        assert journal.read_entry(record.value) == entry

    def test_started_names_its_owner(self) -> None:
        """A ``started`` entry records the user it runs as; one from before owners has none."""
        owned = json.loads(journal.journal_record("t", STARTED).value or b"")
        legacy = json.loads(journal.journal_record("t", STARTED_BEFORE_OWNERS).value or b"")
        assert owned["user"] == "agent.one"
        assert "user" not in legacy

    @pytest.mark.parametrize(
        "value",
        [None, b"", b"{", b"[]", b'{"phase":"started"}', b'{"v":1,"phase":"done"}'],
    )
    def test_unreadable_entries_are_skipped(self, value: bytes | None) -> None:
        """Anything unreadable on the journal topic is ignored, never an exception."""
        assert journal.read_entry(value) is None

    @pytest.mark.parametrize(
        ("old", "new", "stands"),
        [
            (None, STARTED, STARTED),
            (STARTED, finished(), finished()),
            (finished(), STARTED, finished()),  # read out of order: finished is final
        ],
        ids=["first", "finishes", "never-back"],
    )
    def test_merge(
        self, old: journal.Entry | None, new: journal.Entry, stands: journal.Entry
    ) -> None:
        """``finished`` is final whatever order entries are read in."""
        assert journal.merge(old, new) == stands

    @pytest.mark.parametrize(
        ("entry", "now", "where", "decision"),
        [
            (None, WRITTEN, HERE, journal.Execute()),
            (None, WRITTEN + 300, HERE, journal.Expire()),
            (None, WRITTEN + 301, HERE, journal.Expire()),
            (finished(), WRITTEN, HERE, journal.Repeat(finished(), True)),
            (
                finished(),
                WRITTEN + 999,
                Position("test.commands", 0, 3),
                journal.Repeat(finished(), False),
            ),
            (STARTED, WRITTEN, HERE, journal.Recover(STARTED)),
            (STARTED, WRITTEN + 999, HERE, journal.Recover(STARTED)),
        ],
        ids=[
            "new",
            "deadline-now",
            "deadline-passed",
            "redelivered",
            "duplicate",
            "interrupted",
            "interrupted-after-deadline",
        ],
    )
    def test_decide(
        self,
        entry: journal.Entry | None,
        now: float,
        where: Position,
        decision: journal.Decision,
    ) -> None:
        """New ids run (or expire); finished ids repeat their result; started ones recover."""
        assert journal.decide(entry, WRITTEN + 300, now, where) == decision


class TestRecords:
    """The result event and the dead letter, as Kafka records."""

    REF = Ref("cmd-1", "assistance_update", UPDATE, "/routing")

    def result(self, contract: Contract, verdict: Verdict, **options: Any) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "assistance_id": "a-1",
            "user": "agent.one",
            "deadline": WRITTEN + 300,
            "attempts": 1,
        }
        return command_results.result_event(
            contract, self.REF, verdict, finished=WRITTEN + 2, **(settings | options)
        )

    def test_result_event(self, contract: Contract) -> None:
        """A result is a CloudEvent about the command id, with the outcome and the error."""
        problem = Problem("assistance.update: HTTP 400 error.x: No.", 400, "error.x")
        event_ = self.result(contract, Verdict("rejected", problem))
        assert event_["type"] == f"{PREFIX}.command.result.v1"
        assert event_["subject"] == "cmd-1"
        assert event_["time"] == "2023-11-14T22:13:22.000Z"
        assert event_["data"] == {
            "commandId": "cmd-1",
            "commandType": UPDATE,
            "commandSource": "/routing",
            "assistanceId": "a-1",
            "userId": "agent.one",
            "outcome": "rejected",
            "observed": False,
            "attempts": 1,
            "deadline": "2023-11-14T22:18:20.000Z",
            "error": {"status": 400, "errorId": "error.x", "message": problem.message},
        }

    def test_result_id_depends_only_on_the_command_id(self, contract: Contract) -> None:
        """Whatever the outcome, one command id has one result event id."""
        ids = {
            self.result(contract, verdict)["id"]
            for verdict in (command_rules.SUCCEEDED, Verdict("unknown", Problem("?")))
        }
        assert len(ids) == 1

    def test_a_retry_is_not_a_result(self, contract: Contract) -> None:
        """Building a result from a retry verdict is a programming error."""
        with pytest.raises(ValueError, match="retry"):
            self.result(contract, Verdict("retry"))

    @pytest.mark.parametrize(
        "verdict",
        [
            command_rules.SUCCEEDED,
            Verdict("succeeded", observed=True),
            Verdict("expired", Problem("too late")),
            Verdict("unknown", Problem("?")),
        ],
    )
    @pytest.mark.parametrize("user", ["agent.one", None], ids=["owner", "no-owner"])
    def test_result_matches_its_schema(
        self, contract: Contract, verdict: Verdict, user: str | None
    ) -> None:
        """Every result validates against the published result schema, with or without owner."""
        event_ = self.result(contract, verdict, attempts=None, user=user)
        schema = command_schemas(contract)["command.result.v1.json"]
        jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        ).validate(event_)

    def test_result_schema_requires_the_owner(self, contract: Contract) -> None:
        """A result without ``data.userId`` does not validate: consumers can rely on it."""
        event_ = self.result(contract, command_rules.SUCCEEDED)
        del event_["data"]["userId"]
        schema = command_schemas(contract)["command.result.v1.json"]
        with pytest.raises(jsonschema.ValidationError, match="userId"):
            jsonschema.Draft202012Validator(schema).validate(event_)

    def test_result_record(self, contract: Contract) -> None:
        """The record is keyed by the command id and carries ce_* headers."""
        event_ = self.result(contract, command_rules.SUCCEEDED)
        record = command_results.result_record(contract, "test.results", event_)
        headers = dict(record.headers)
        assert (record.topic, record.key) == ("test.results", b"cmd-1")
        assert headers["content-type"] == b"application/cloudevents+json"
        assert headers["ce_id"] == event_["id"].encode()
        assert headers["ce_subject"] == b"cmd-1"
        assert json.loads(record.value or b"") == event_

    def test_dead_letter_keeps_the_original(self) -> None:
        """The dead letter has the original key, bytes and headers, plus why and where from."""
        letter = DeadLetter("not_json", "not UTF-8 JSON")
        record = command_results.dead_letter_record(
            "test.dlq",
            letter,
            key=b"k",
            value=b"\xff garbage",
            headers=(("trace", b"t-1"), ("dlq.reason", b"forged")),
            position=HERE,
        )
        assert (record.topic, record.key, record.value) == ("test.dlq", b"k", b"\xff garbage")
        assert record.headers == (
            ("trace", b"t-1"),
            ("dlq.reason", b"not_json"),
            ("dlq.detail", b"not UTF-8 JSON"),
            ("dlq.topic", b"test.commands"),
            ("dlq.partition", b"2"),
            ("dlq.offset", b"41"),
        )
