"""Command verdicts as values: what an answer means, whether to try again, when recovery ends.

Judging: :func:`judge` and :func:`judge_error` say what an ICWS answer (or a failed attempt)
means, through the table :data:`JUDGEMENT`: success → ``succeeded``; 400 → ``rejected`` (not
retried); 403/404/410 → ``failed`` (gone); 401, 429, 5xx and connection trouble → ``retry``.

Attempting: the shell drives one command through attempts and asks these rules at each turn.

* :func:`before_send` — before an attempt after the first: if the bridge's own (fresh) view of
  ICWS already shows the command's effect, an earlier attempt whose answer was lost did it, so
  nothing is sent again: ``succeeded``, observed.
* :func:`after_answer` — a judged answer becomes the next attempt (:class:`Retry`) while the
  attempt cap and the deadline allow, or a final verdict (:class:`Stop`). A rejected retry whose
  effect shows (a second complete is refused) is ``succeeded``, observed.
* :func:`unreachable` — the deadline passed while waiting for the session: ``expired`` if nothing
  was sent yet, else ``failed``.

Recovering after a crash mid-command: the bridge that started it may still be alive and finish
it, so ``unknown`` is said only ``recovery_seconds`` after both the
command's deadline and the moment this bridge's view of ICWS was fresh
(:func:`recovery_ends_at`); observed evidence settles it at once (:func:`recovery_step`).

Nothing here does I/O or reads a clock: times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bridge import errors
from bridge.core import icws_api
from bridge.core.commands import Outcome
from bridge.core.icws_api import Answer, Call

# --- judging -------------------------------------------------------------------------------


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
OBSERVED = Verdict("succeeded", observed=True)
EXPIRED_UNREAD = Verdict("expired", Problem("the deadline passed before the command was read"))
UNKNOWN = Verdict(
    "unknown",
    Problem(
        "a bridge stopped between sending the command to ICWS and recording the answer, "
        "and its effect is not visible in ICWS; it was not sent again"
    ),
)

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


# --- attempting ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send the call (again)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Transient trouble: wait (backoff) and make another attempt."""

    problem: Problem | None


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing is settled yet: look again a little later."""


@dataclass(frozen=True, slots=True)
class Stop:
    """The command's final verdict: no more attempts."""

    verdict: Verdict

    def __post_init__(self) -> None:
        if self.verdict.outcome == "retry":
            raise ValueError("a retry is not a final verdict")


def before_send(attempts: int, observed: bool) -> Send | Stop:
    """Send again, unless an earlier attempt (its answer lost) visibly did it already."""
    return Stop(OBSERVED) if attempts and observed else Send()


def after_answer(
    attempt: int,
    max_attempts: int,
    deadline: float,
    now: float,
    verdict: Verdict,
    observed: bool,
) -> Retry | Stop:
    """The next attempt or the final verdict, after attempt number ``attempt`` was judged."""
    if verdict.outcome == "rejected" and attempt > 1 and observed:
        return Stop(OBSERVED)  # a lost answer's effect makes the retry refused: it is done
    if verdict.outcome != "retry":
        return Stop(verdict)
    if attempt >= max_attempts or now >= deadline:
        return gave_up(attempt, verdict.problem)
    return Retry(verdict.problem)


def gave_up(attempts: int, last: Problem | None) -> Stop:
    """``failed``: transient trouble outlasted the attempt cap or the deadline."""
    why = last or Problem("transient failures")
    message = f"gave up after {attempts} attempt(s): {why.message}"
    return Stop(Verdict("failed", Problem(message, why.status, why.error_id)))


def unreachable(attempts: int, last: Problem | None) -> Stop:
    """The deadline passed while waiting for the session: expired if never sent, else failed."""
    if attempts == 0:
        return Stop(Verdict("expired", Problem("the deadline passed before ICWS was reachable")))
    told = last.message if last else "no answer"
    return Stop(Verdict("failed", Problem(f"the deadline passed after {told}")))


# --- recovering ----------------------------------------------------------------------------


def recovery_ends_at(
    deadline: float, first_look: float, fresh_since: float | None, recovery_seconds: float
) -> float:
    """When ``unknown`` may be said: ``recovery_seconds`` after the deadline and a fresh view.

    Until this bridge's view has been fresh, the first look stands in for that moment.
    """
    since = first_look if fresh_since is None else fresh_since
    return max(deadline, since) + recovery_seconds


def recovery_step(observed: bool, now: float, ends_at: float) -> Wait | Stop:
    """Recovery's verdict so far: the observed effect, ``unknown`` once it ends, or wait."""
    if observed:
        return Stop(OBSERVED)  # the bridge that started it can only report the same success
    if now >= ends_at:
        return Stop(UNKNOWN)
    return Wait()
