"""Commands from Kafka as values: their types, decoding, the ICWS call, the verdict, the records.

A command is a structured-mode CloudEvent on the command topic; its ``id`` is the idempotency key.
:func:`decode` turns a record's bytes into a :class:`Command` or a :class:`DeadLetter` naming the
reason; :func:`plan` says which ICWS call it makes; :func:`judge` and :func:`judge_error` say
what an answer (or a failed attempt) means, through the table :data:`JUDGEMENT`: success →
``succeeded``; 400 → ``rejected`` (not retried); 403/404/410 → ``failed`` (gone); 401, 429, 5xx
and connection trouble → retry while the deadline and the attempt cap allow, then ``failed``.
:func:`result_event` builds the one result a command id has, :func:`dead_letter_record` the
dead letter. How one id is kept from running twice is ``core/journal.py``.

The command types are a table (:data:`COMMAND_TYPES`) from which both the decoder's checks and
the published JSON Schemas are made. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bridge import errors
from bridge.core import icws_api
from bridge.core.events import CONTENT_TYPE, SPEC_VERSION, Contract, Record, envelope, event_id
from bridge.core.icws_api import Answer, Call

Kind = Literal["assistance_update", "assistance_complete"]
Outcome = Literal["succeeded", "rejected", "failed", "expired", "unknown"]
Reason = Literal["not_json", "not_cloudevent", "unknown_type", "invalid_data", "oversize"]

OUTCOMES: tuple[Outcome, ...] = ("succeeded", "rejected", "failed", "expired", "unknown")
# What the metrics count: every outcome, plus a record whose id already has its result.
COUNTED_OUTCOMES: tuple[str, ...] = (*OUTCOMES, "duplicate")
REASONS: tuple[Reason, ...] = (
    "not_json",
    "not_cloudevent",
    "unknown_type",
    "invalid_data",
    "oversize",
)
RESULT_NAME = "command.result"
MAX_ID_LENGTH = 200
# Ids go into a URL path: letters, digits and . _ - only, starting with a letter or digit, so no
# value can climb out of its path segment ("..", "/", "%2F").
ASSISTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


# --- the command types ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataField:
    """One property of a command's ``data``: its check and its JSON Schema."""

    check: Callable[[Any], str | None]  # the problem with a value, or None when it is fine
    schema: Mapping[str, Any]


def _assistance_id(value: Any) -> str | None:
    if not isinstance(value, str) or not ASSISTANCE_ID.match(value):
        return "must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
    return None


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    return None


ASSISTANCE_ID_FIELD = DataField(
    _assistance_id, {"type": "string", "pattern": ASSISTANCE_ID.pattern}
)
TEXT_FIELD = DataField(_text, {"type": "string", "minLength": 1, "pattern": r"\S"})


@dataclass(frozen=True, slots=True)
class CommandType:
    """A command type: its name (``<prefix>.<name>.v1`` on the wire) and its data fields."""

    kind: Kind
    name: str
    fields: Mapping[str, DataField]
    description: str


COMMAND_TYPES: tuple[CommandType, ...] = (
    CommandType(
        "assistance_update",
        "command.assistance.update",
        {"assistanceId": ASSISTANCE_ID_FIELD, "text": TEXT_FIELD},
        "Add a message to an agent-assistance request (POST .../agent-assistance/{id}).",
    ),
    CommandType(
        "assistance_complete",
        "command.assistance.complete",
        {"assistanceId": ASSISTANCE_ID_FIELD},
        "Complete an agent-assistance request (DELETE .../agent-assistance/{id}).",
    ),
)
KINDS: tuple[Kind, ...] = tuple(t.kind for t in COMMAND_TYPES)


@dataclass(frozen=True, slots=True)
class CommandTopics:
    """The topics of the command side."""

    commands: str
    results: str
    dead_letter: str
    journal: str


# --- decoding ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ref:
    """What identifies a command in its result: id, kind, full type and sender."""

    id: str
    kind: Kind
    type: str
    source: str


@dataclass(frozen=True, slots=True)
class Command:
    """A decoded, valid command; ``deadline`` is Unix time."""

    ref: Ref
    assistance_id: str
    text: str | None
    deadline: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that is not a valid command. ``ref`` is set when it still names a command."""

    reason: Reason
    detail: str
    ref: Ref | None = None
    assistance_id: str | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record was read: topic, partition, offset."""

    topic: str
    partition: int
    offset: int


class _Bad(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode(
    value: bytes | None,
    *,
    contract: Contract,
    written_at: float,
    default_deadline: float,
    max_deadline: float,
    max_bytes: int,
) -> Command | DeadLetter:
    """A record value as a Command, or why it is not one.

    ``written_at`` is the record's timestamp: a command without a ``deadline`` may run until
    ``written_at + default_deadline``, and no deadline reaches past ``written_at + max_deadline``
    (so a record read again long after it was written can never run).
    """
    if value is not None and len(value) > max_bytes:
        return DeadLetter("oversize", f"{len(value)} bytes, more than {max_bytes}")
    try:
        event = _json_object(value)
        ref = _envelope(event, contract)
    except _Bad as bad:
        return DeadLetter(bad.reason, bad.detail)
    data = event.get("data")
    assistance_id = data.get("assistanceId") if isinstance(data, dict) else None
    shown_id = assistance_id if isinstance(assistance_id, str) and assistance_id else None
    try:
        _content_type(event)
        _data(data, _BY_KIND[ref.kind])
        deadline = _deadline(event.get("deadline"), written_at, default_deadline, max_deadline)
    except _Bad as bad:
        return DeadLetter(bad.reason, bad.detail, ref, shown_id)
    assert isinstance(data, dict)  # checked by _data, with assistanceId
    assert isinstance(assistance_id, str)
    return Command(ref, assistance_id, data.get("text"), deadline)


_BY_KIND: Mapping[Kind, CommandType] = {t.kind: t for t in COMMAND_TYPES}


def _json_object(value: bytes | None) -> dict[str, Any]:
    if not value:
        raise _Bad("not_json", "empty record")
    try:
        event = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Bad("not_json", f"not UTF-8 JSON: {str(exc)[:120]}") from None
    if not isinstance(event, dict):
        raise _Bad("not_cloudevent", f"a JSON {type(event).__name__}, not an object")
    return event


def _envelope(event: dict[str, Any], contract: Contract) -> Ref:
    if event.get("specversion") != SPEC_VERSION:
        raise _Bad("not_cloudevent", 'specversion is not "1.0" (structured mode only)')
    for attribute in ("id", "source", "type"):
        value = event.get(attribute)
        if not isinstance(value, str) or not value:
            raise _Bad("not_cloudevent", f"{attribute} is missing or not a non-empty string")
    if len(event["id"]) > MAX_ID_LENGTH:
        raise _Bad("not_cloudevent", f"id is longer than {MAX_ID_LENGTH} characters")
    by_type = {contract.type_of(t.name): t for t in COMMAND_TYPES}
    known = by_type.get(event["type"])
    if known is None:
        raise _Bad("unknown_type", f"unknown command type {event['type'][:200]!r}")
    return Ref(event["id"], known.kind, event["type"], event["source"])


def _content_type(event: dict[str, Any]) -> None:
    content_type = event.get("datacontenttype", "application/json")
    if not isinstance(content_type, str) or not re.match(
        r"^application/(.+\+)?json\s*(;.*)?$", content_type
    ):
        raise _Bad("invalid_data", "datacontenttype must be application/json")


def _data(data: Any, command_type: CommandType) -> None:
    if not isinstance(data, dict):
        raise _Bad("invalid_data", "data is missing or not an object")
    unknown = sorted(data.keys() - command_type.fields.keys())
    if unknown:
        # A property the bridge does not know cannot be honoured; refusing beats ignoring it.
        raise _Bad("invalid_data", f"unknown data properties: {', '.join(unknown)[:200]}")
    for name, check in command_type.fields.items():
        if name not in data:
            raise _Bad("invalid_data", f"data.{name} is missing")
        problem = check.check(data[name])
        if problem:
            raise _Bad("invalid_data", f"data.{name} {problem}")


def _deadline(value: Any, written_at: float, default: float, maximum: float) -> float:
    latest = written_at + maximum
    if value is None:
        return min(written_at + default, latest)
    moment = parse_time(value)
    if moment is None:
        raise _Bad("invalid_data", "deadline is not an RFC 3339 time with a UTC offset")
    return min(moment, latest)


def parse_time(value: Any) -> float | None:
    """An RFC 3339 time with an offset as Unix time; None for anything else."""
    if not isinstance(value, str) or not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d", value):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return None if moment.tzinfo is None else moment.timestamp()


# --- planning and judging ------------------------------------------------------------------


def plan(command: Command) -> Callable[[str], Call]:
    """The ICWS call a command makes, given the live session's id."""
    if command.ref.kind == "assistance_update":
        text = command.text or ""
        return lambda session_id: icws_api.assistance_update(
            session_id, command.assistance_id, text
        )
    return lambda session_id: icws_api.assistance_complete(session_id, command.assistance_id)


@dataclass(frozen=True, slots=True)
class Problem:
    """What went wrong, as the result event shows it."""

    message: str
    status: int | None = None
    error_id: str | None = None

    def as_data(self) -> dict[str, Any]:
        return {"status": self.status, "errorId": self.error_id, "message": self.message}


@dataclass(frozen=True, slots=True)
class Verdict:
    """An outcome (``retry`` means: transient, try again while the deadline allows)."""

    outcome: Outcome | Literal["retry"]
    problem: Problem | None = None
    observed: bool = False


SUCCEEDED = Verdict("succeeded")

# Status → outcome for an answer the call did not expect; anything not listed is by class.
JUDGEMENT: Mapping[int, Outcome | Literal["retry"]] = {
    400: "rejected",
    401: "retry",  # the session is lost; Session re-logs in, and the command waits for it
    403: "failed",
    404: "failed",
    410: "failed",
    429: "retry",
}


def judge(call: Call, answer: Answer) -> Verdict:
    """What an ICWS answer to a command's call means."""
    failure = icws_api.interpret_ok(call, answer)
    if failure is None:
        return SUCCEEDED
    outcome = JUDGEMENT.get(answer.status)
    if outcome is None:
        outcome = "retry" if answer.status >= 500 else "failed"
    return Verdict(outcome, problem_of(failure))


def judge_error(exc: errors.IcwsError) -> Verdict:
    """What a failed attempt (no usable answer) means: retriable errors are retried."""
    if exc.retriable:
        return Verdict("retry", problem_of(exc))
    outcome: Outcome = "rejected" if isinstance(exc, errors.RequestRejected) else "failed"
    return Verdict(outcome, problem_of(exc))


def problem_of(exc: errors.IcwsError) -> Problem:
    return Problem(str(exc)[:500], exc.status, exc.error_id)


# --- records -------------------------------------------------------------------------------


def timestamp(moment: float) -> str:
    """Unix time as RFC 3339 UTC with milliseconds."""
    text = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def result_event(
    contract: Contract,
    ref: Ref,
    verdict: Verdict,
    *,
    assistance_id: str | None,
    deadline: float | None,
    attempts: int | None,
    finished: float,
) -> dict[str, Any]:
    """The result CloudEvent of a command (subject and key: the command id)."""
    if verdict.outcome == "retry":
        raise ValueError("a retry is not a result")
    data = {
        "commandId": ref.id,
        "commandType": ref.type,
        "commandSource": ref.source,
        "assistanceId": assistance_id,
        "outcome": verdict.outcome,
        "observed": verdict.observed,
        "attempts": attempts,
        "deadline": None if deadline is None else timestamp(deadline),
        "error": None if verdict.problem is None else verdict.problem.as_data(),
    }
    recorded = datetime.fromtimestamp(finished, UTC)
    return envelope(
        contract,
        RESULT_NAME,
        ident=event_id(RESULT_NAME, ref.id),
        subject=ref.id,
        data=data,
        recorded=recorded,
    )


def result_record(contract: Contract, topic: str, event: Mapping[str, Any]) -> Record:
    """The Kafka record of a result event, with ``ce_*`` headers like every event."""
    headers = [("content-type", CONTENT_TYPE.encode())]
    if contract.attribute_headers:
        headers += [
            (f"ce_{attr}", str(value).encode())
            for attr, value in event.items()
            if attr not in ("data", "datacontenttype")
        ]
    return Record(topic, str(event["subject"]).encode(), _json(event), tuple(headers), RESULT_NAME)


DLQ_HEADER_PREFIX = "dlq."


def dead_letter_record(
    topic: str,
    letter: DeadLetter,
    *,
    key: bytes | None,
    value: bytes | None,
    headers: tuple[tuple[str, bytes], ...],
    position: Position,
) -> Record:
    """The original record, bytes untouched, with why and where from in ``dlq.*`` headers."""
    kept = tuple(h for h in headers if not h[0].startswith(DLQ_HEADER_PREFIX))
    added = (
        ("dlq.reason", letter.reason.encode()),
        ("dlq.detail", letter.detail[:500].encode()),
        ("dlq.topic", position.topic.encode()),
        ("dlq.partition", str(position.partition).encode()),
        ("dlq.offset", str(position.offset).encode()),
    )
    return Record(topic, key, value, kept + added, "dead_letter")


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
