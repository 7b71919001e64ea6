"""The command journal as values: entries, how they merge, and what a record's id calls for.

Theory of operation
-------------------
One command id causes at most one ICWS call sequence and has exactly one result, whatever
happens to its records: redelivery after a crash, a consumer-group rebalance, a sender that sends
the same command twice. That rests on the **journal**, a compacted Kafka topic keyed by command
id that the shell writes (acks=all, awaited) at two moments:

* ``started`` — just before the first ICWS call, with what the bridge then knew about the
  target (the :class:`Baseline`), so that after a crash the effect can be told apart from the
  state before;
* ``finished`` — once the outcome is known, holding the complete result event, *before* the
  result is published. A crash between the two leaves a ``finished`` entry whose result is
  simply published (again, same event id) when the record is redelivered.

On every command record the shell asks :func:`decide` what to do, given the journal's entry:

* none, deadline ahead       → **execute**;
* none, deadline passed      → **expire**: never sent to ICWS late;
* ``finished``               → **repeat**: not executed again; the stored result is published
  again, byte for byte (a redelivery, or a duplicate sent by the producer);
* ``started``, not finished  → **recover**: a bridge died (or gave the partition up) between the
  ICWS call and its result. The call is never re-sent blindly: :func:`observed` looks for its
  effect in the bridge's own view of ICWS (a completed request is gone from the list; an update's
  text appears once more from the bridge's user than in the baseline); without such evidence the
  outcome is ``unknown``.

Nothing here does I/O or reads a clock: times come in as arguments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never

from bridge.core.commands import OUTCOMES, Command, Outcome, Position
from bridge.core.encoding import compact
from bridge.core.events import Record

# --- evidence: what the bridge's own view of ICWS says ------------------------------------


@dataclass(frozen=True, slots=True)
class Baseline:
    """What the bridge knew of the target when a command started."""

    open: bool  # the request was in the bridge's list of open requests
    matching: int  # messages with the command's text from the bridge's user


def _matching(command: Command, request: Mapping[str, Any] | None, user: str) -> int:
    if request is None or command.text is None:
        return 0
    return sum(
        1
        for message in request.get("messages") or ()
        if message.get("text") == command.text
        and str(message.get("participantId", "")).casefold() == user.casefold()
    )


def baseline(command: Command, request: Mapping[str, Any] | None, user: str) -> Baseline:
    """The baseline from the bridge's state of the request (None: not an open request)."""
    is_open = request is not None and request.get("state") != "Completed"
    return Baseline(is_open, _matching(command, request, user))


def observed(
    command: Command, base: Baseline, request: Mapping[str, Any] | None, user: str
) -> bool:
    """Whether the bridge's current view shows the command's effect, relative to ``base``.

    A complete took effect when a request that was open is now gone or completed; an update when
    its text appears from the bridge's user more often than before. Only a *fresh* view (the
    list reconciled on the current session) may be asked.
    """
    if command.ref.kind == "assistance_complete":
        return base.open and (request is None or request.get("state") == "Completed")
    return _matching(command, request, user) > base.matching


# --- the journal ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """A bridge began a command: where its record was, when, the baseline, and which bridge."""

    command_id: str
    position: Position
    at: float
    baseline: Baseline
    instance: str
    user: str | None = None  # the owner it runs as; None in entries written before owners


@dataclass(frozen=True, slots=True)
class Finished:
    """A command's outcome is known: the complete result event, published after this entry."""

    command_id: str
    position: Position
    outcome: Outcome
    result: Mapping[str, Any] = field(repr=False)


Entry = Started | Finished


def merge(old: Entry | None, new: Entry) -> Entry:
    """The entry that stands: ``finished`` is final, whatever order entries are read in."""
    return old if isinstance(old, Finished) else new


def journal_record(topic: str, entry: Entry) -> Record:
    """The journal record of an entry, keyed by command id."""
    where = [entry.position.topic, entry.position.partition, entry.position.offset]
    value: dict[str, Any] = {"v": 1, "commandId": entry.command_id, "position": where}
    match entry:
        case Started():
            value |= {
                "phase": "started",
                "at": entry.at,
                "baseline": {"open": entry.baseline.open, "matching": entry.baseline.matching},
                "instance": entry.instance,
            }
            if entry.user is not None:
                value["user"] = entry.user
        case Finished():
            value |= {"phase": "finished", "outcome": entry.outcome, "result": entry.result}
        case _:
            assert_never(entry)
    return Record(topic, entry.command_id.encode(), compact(value), (), "journal")


def read_entry(value: bytes | None) -> Entry | None:
    """A journal record back as an entry; None for anything unreadable (never raises)."""
    try:
        raw = json.loads(value or b"")
        topic, partition, offset = raw["position"]
        position = Position(str(topic), int(partition), int(offset))
        if raw["phase"] == "started":
            base = Baseline(bool(raw["baseline"]["open"]), int(raw["baseline"]["matching"]))
            user = raw.get("user")
            owner = user if isinstance(user, str) else None
            return Started(
                raw["commandId"], position, float(raw["at"]), base, raw["instance"], owner
            )
        if raw["phase"] == "finished" and raw["outcome"] in OUTCOMES:
            return Finished(raw["commandId"], position, raw["outcome"], raw["result"])
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


@dataclass(frozen=True, slots=True)
class Execute:
    """Run it: nothing is known about this id, and its deadline is ahead."""


@dataclass(frozen=True, slots=True)
class Expire:
    """Its deadline passed before it could run: result ``expired``, nothing sent."""


@dataclass(frozen=True, slots=True)
class Repeat:
    """Already finished: publish the stored result again, run nothing."""

    entry: Finished
    same_record: bool  # the very record again (a redelivery), not another record with its id


@dataclass(frozen=True, slots=True)
class Recover:
    """Started by a bridge that did not finish it: find the effect, or say ``unknown``."""

    entry: Started


Decision = Execute | Expire | Repeat | Recover


def decide(entry: Entry | None, deadline: float, now: float, position: Position) -> Decision:
    """What to do with a command record, given the journal's entry for its id."""
    match entry:
        case Finished():
            return Repeat(entry, entry.position == position)
        case Started():
            return Recover(entry)
        case None:
            return Expire() if now >= deadline else Execute()
        case _:
            assert_never(entry)
