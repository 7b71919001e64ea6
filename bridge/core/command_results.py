"""Command outcomes as Kafka records: the one result event per command id, and the dead letter.

:func:`result_event` builds the result CloudEvent (its id depends only on the command id, so a
result published again is the same event); :func:`result_record` wraps it with ``ce_*`` headers
like every event; :func:`dead_letter_record` keeps an unreadable record's bytes untouched and
says why in ``dlq.*`` headers. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bridge.core.command_rules import Verdict
from bridge.core.commands import RESULT_NAME, DeadLetter, Position, Ref, timestamp
from bridge.core.encoding import ce_headers, compact
from bridge.core.events import Contract, Record, envelope, event_id


def result_event(
    contract: Contract,
    ref: Ref,
    verdict: Verdict,
    *,
    assistance_id: str | None,
    user: str | None,
    deadline: float | None,
    attempts: int | None,
    finished: float,
) -> dict[str, Any]:
    """The result CloudEvent of a command (subject and key: the command id).

    ``user`` is the owner the command ran as (``data.userId``); None when it never had one.
    """
    if verdict.outcome == "retry":
        raise ValueError("a retry is not a result")
    data = {
        "commandId": ref.id,
        "commandType": ref.type,
        "commandSource": ref.source,
        "assistanceId": assistance_id,
        "userId": user,
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
    headers = ce_headers(event, contract.attribute_headers)
    return Record(topic, str(event["subject"]).encode(), compact(event), headers, RESULT_NAME)


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
