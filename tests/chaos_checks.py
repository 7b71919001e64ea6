"""The chaos run's verdict as pure functions over what it collected (no I/O, no clock).

Each check returns the problems it found, as sentences; an empty list is a pass. Evidence comes
from three independent places: the commands the run sent (and whether Kafka acknowledged each
send), the result RECORDS read back from Kafka, and the simulator's call log (every assistance
update and complete ICWS answered, and how many times it applied each). tests/test_chaos_checks.py
feeds each check the fault it guards against and proves it fails.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bridge.simulator.sessions import Call

# Outcomes the README names for the command-result event.
OUTCOMES = frozenset({"succeeded", "rejected", "failed", "expired", "unknown"})
# More expired than this share of the commands means the bridge hardly ran any: a failure.
MOST = 0.5


@dataclass(frozen=True)
class SentCommand:
    """A command the run produced; `acked` False means its send timed out or failed.

    A send that was not acknowledged may still have reached the broker, so such a command may
    have a result, but need not; it is tracked, never dropped.
    """

    ident: str
    kind: Literal["update", "complete"]
    assistance_id: str
    text: str | None
    acked: bool


@dataclass(frozen=True)
class Result:
    """One command-result record as read from Kafka (replays are separate records)."""

    command_id: str
    outcome: str
    observed: bool


def result_from_record(value: bytes) -> Result:
    """The fields of a `command.result` event value the checks look at."""
    data: dict[str, Any] = json.loads(value)["data"]
    return Result(data["commandId"], data["outcome"], bool(data.get("observed")))


def result_problems(commands: Sequence[SentCommand], results: Sequence[Result]) -> list[str]:
    """Each acknowledged command has results, all with ONE outcome; no command has two outcomes.

    Records are counted, not ids: a result id derives from the command id, so two different
    results for one command would share it.
    """
    outcomes: dict[str, set[str]] = defaultdict(set)
    for result in results:
        outcomes[result.command_id].add(result.outcome)
    known = {c.ident for c in commands}
    problems = [f"result for a command never sent: {i}" for i in sorted(outcomes.keys() - known)]
    for command in commands:
        found = outcomes.get(command.ident, set())
        if len(found) > 1:
            problems.append(f"{command.ident}: two different outcomes {sorted(found)}")
        elif not found and command.acked:
            problems.append(f"{command.ident}: no result")
        elif found - OUTCOMES:
            problems.append(f"{command.ident}: outcome {sorted(found)} is not one the README names")
    return problems


def executions(commands: Sequence[SentCommand], calls: Iterable[Call]) -> dict[str, int]:
    """How many times ICWS applied each command (every update and complete, from its call log).

    An update is known by its text (unique per command), a complete by its assistance id (the run
    sends at most one complete per request).
    """
    by_text = {c.text: c.ident for c in commands if c.kind == "update"}
    by_request = {c.assistance_id: c.ident for c in commands if c.kind == "complete"}
    applied: Counter[str] = Counter()
    for call in calls:
        owner = (
            by_text.get(call.text) if call.method == "POST" else by_request.get(call.assistance_id)
        )
        if owner is not None:
            applied[owner] += call.applied
    return {c.ident: applied[c.ident] for c in commands}


def executed_twice(commands: Sequence[SentCommand], calls: Iterable[Call]) -> list[str]:
    """Commands ICWS applied more than once."""
    return [
        f"{ident}: applied {times} times"
        for ident, times in executions(commands, calls).items()
        if times > 1
    ]


def outcome_problems(
    commands: Sequence[SentCommand],
    results: Sequence[Result],
    calls: Sequence[Call],
    completed: Iterable[str],
) -> list[str]:
    """Each outcome agrees with what ICWS did.

    Applied by ICWS: `succeeded` (never `unknown`, `failed`, ...). Not applied: never
    `succeeded`, except a complete whose request someone else completed and whose effect the
    bridge observed. Answered 400 and never applied: `rejected`. `completed` names the
    requests completed in the simulator's world.
    """
    done = set(completed)
    applied = executions(commands, calls)
    refused = {c.text if c.method == "POST" else c.assistance_id for c in calls if c.status == 400}
    outcome: dict[str, Result] = {r.command_id: r for r in results}
    problems = []
    for command in commands:
        result = outcome.get(command.ident)
        if result is None:
            continue
        said, times = result.outcome, applied[command.ident]
        if times and said != "succeeded":
            problems.append(f"{command.ident}: ICWS applied its {command.kind}, outcome {said}")
        elif not times and said == "succeeded" and not _observed_elsewhere(command, result, done):
            problems.append(f"{command.ident}: {command.kind} never applied, outcome succeeded")
        key = command.text if command.kind == "update" else command.assistance_id
        if not times and key in refused and said != "rejected":
            problems.append(f"{command.ident}: ICWS answered 400, outcome {said}")
    return problems


def _observed_elsewhere(command: SentCommand, result: Result, completed: set[str]) -> bool:
    return command.kind == "complete" and result.observed and command.assistance_id in completed


def expiry_problems(commands: Sequence[SentCommand], results: Sequence[Result]) -> list[str]:
    """A run whose commands mostly expired did not exercise them: that is a failure."""
    outcome = {r.command_id: r.outcome for r in results}
    decided = [outcome[c.ident] for c in commands if c.ident in outcome]
    expired = decided.count("expired")
    if not commands:
        return ["no commands were sent"]
    if expired > MOST * len(commands):
        return [f"{expired} of {len(commands)} commands expired"]
    return []


@dataclass(frozen=True)
class Window:
    """One fault injection: from injection to recovery (or giving up), with the logins around it.

    `logins_before` and `logins_after` are the simulator's `logins` counter at those moments.
    """

    kind: str
    started: float
    ended: float
    logins_before: int
    logins_after: int

    def overlaps(self, other: Window) -> bool:
        """Whether the two windows share a moment."""
        return self.started <= other.ended and other.started <= self.ended


def login_problems(windows: Sequence[Window], loginless: Iterable[str]) -> list[str]:
    """Faults that end only a stream (`loginless` kinds: recycled, cut, hung) cost no login.

    A stream is not a session (issue #12): a window of such a kind in which the simulator's
    login counter grew is a problem, unless a fault of another kind (one that may cause logins)
    overlapped it, which would make the count say nothing about this one.
    """
    kinds = frozenset(loginless)
    problems = []
    for window in windows:
        if window.kind not in kinds or window.logins_after == window.logins_before:
            continue
        if any(o.kind not in kinds and o.overlaps(window) for o in windows):
            continue
        grew = window.logins_after - window.logins_before
        problems.append(f"{window.kind} at {window.started:.1f}: {grew} login(s) while it lasted")
    return problems


def fault_problems(
    injected: Mapping[str, int], recovered: Mapping[str, Sequence[float]]
) -> list[str]:
    """Every fault kind injected was recovered from every time; none vanishes from the matrix."""
    return [
        f"{name}: recovered {len(recovered.get(name, ()))} of {count} injections"
        for name, count in sorted(injected.items())
        if len(recovered.get(name, ())) != count
    ]


def fault_matrix(
    injected: Mapping[str, int],
    recovered: Mapping[str, Sequence[float]],
    windows: Sequence[Window] = (),
) -> dict[str, dict[str, Any]]:
    """Per fault kind injected: injections, recoveries, the slowest recovery, logins during it."""
    logins: Counter[str] = Counter()
    for window in windows:
        logins[window.kind] += window.logins_after - window.logins_before
    return {
        name: {
            "injected": count,
            "recovered": len(recovered.get(name, ())),
            "max_recovery_seconds": round(max(recovered[name]), 2) if recovered.get(name) else None,
            "logins": logins[name],
        }
        for name, count in sorted(injected.items())
    }


def forgiven_count(spans: Iterable[tuple[int, int]]) -> int:
    """How many sent messages fall in the spans forgiven around SIGKILLs (overlaps once)."""
    return len({index for start, end in spans for index in range(start, end)})


def forgiveness_problems(forgiven: int, sent: int) -> list[str]:
    """Forgiveness covering most messages would make "nothing lost" vacuous."""
    if forgiven > MOST * sent:
        return [f"{forgiven} of {sent} messages forgiven around SIGKILLs"]
    return []


def session_problems(live: Mapping[str, int]) -> list[str]:
    """Every account has exactly one live ICWS session (a fleet after its rebalances settle)."""
    return [f"{user}: {count} live sessions" for user, count in sorted(live.items()) if count != 1]


def table(report: dict[str, Any]) -> str:
    """The fault matrix, the counts and the problems, for people."""
    lines = [f"{'fault':22} {'injected':>8} {'recovered':>9} {'max recovery s':>15} {'logins':>6}"]
    for name, row in report["faults"].items():
        slowest = row["max_recovery_seconds"]
        lines.append(
            f"{name:22} {row['injected']:>8} {row['recovered']:>9} "
            f"{slowest if slowest is not None else '-':>15} {row.get('logins', '-'):>6}"
        )
    lines.append("")
    for key in (
        "ready_at_end",
        "state_topics_equal_truth",
        "events_lost",
        "phantom_duplicates",
        "commands_sent",
        "commands_unacknowledged",
        "command_outcomes",
        "result_records",
        "messages_from_icws",
        "messages_forgiven",
    ):
        lines.append(f"{key:40} {report[key]}")
    for name, count in report["problem_counts"].items():
        lines.append(f"{'problems: ' + name:40} {count}")
        lines.extend(f"    {problem}" for problem in report["problems"][name][:5])
    if not report["state_topics_equal_truth"]:
        lines.append(f"state difference: {report['state_difference']}")
    lines.extend(f"lost: {step}" for step in report["lost"][:5])
    return "\n".join(lines)


def passed(report: dict[str, Any]) -> bool:
    """The zeros the run promises: state equal, nothing lost, no phantoms, no problem found."""
    return (
        report["ready_at_end"]
        and report["state_topics_equal_truth"]
        and report["events_lost"] == 0
        and report["phantom_duplicates"] == 0
        and not any(report["problem_counts"].values())
    )
