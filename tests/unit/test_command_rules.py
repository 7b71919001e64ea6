"""The command verdict rules as tables: next attempt or stop, observed effects, recovery's end."""

from __future__ import annotations

import pytest

from bridge.core import command_rules as rules
from bridge.core.command_rules import Problem, Retry, Send, Stop, Verdict, Wait

NOW = 1_700_000_000.0
AHEAD = NOW + 60  # a deadline not yet reached
UNAVAILABLE = Problem("HTTP 503", 503, "error.server.unavailable")
REFUSED = Problem("HTTP 400", 400, "error.request.invalidRepresentation")
DONE_BY_A_LOST_ANSWER = Verdict("succeeded", observed=True)


class TestBeforeSend:
    """An attempt after the first is not sent when the effect of an earlier one already shows."""

    @pytest.mark.parametrize(
        ("attempts", "observed", "step"),
        [
            (0, False, Send()),
            (0, True, Send()),  # nothing sent yet: whatever shows is not this command's doing
            (1, False, Send()),
            (1, True, Stop(DONE_BY_A_LOST_ANSWER)),
            (4, True, Stop(DONE_BY_A_LOST_ANSWER)),
        ],
        ids=["first", "first-seen", "again", "lost-answer", "lost-answer-later"],
    )
    def test_before_send(self, attempts: int, observed: bool, step: Send | Stop) -> None:
        """Only an earlier attempt's visible effect stops a resend, as succeeded/observed."""
        assert rules.before_send(attempts, observed) == step


class TestAfterAnswer:
    """A judged answer becomes another attempt while cap and deadline allow, else a verdict."""

    @pytest.mark.parametrize(
        ("attempt", "max_attempts", "deadline", "verdict", "observed", "step"),
        [
            (1, 3, AHEAD, Verdict("succeeded"), False, Stop(Verdict("succeeded"))),
            (1, 3, AHEAD, Verdict("rejected", REFUSED), True, Stop(Verdict("rejected", REFUSED))),
            (2, 3, AHEAD, Verdict("rejected", REFUSED), True, Stop(DONE_BY_A_LOST_ANSWER)),
            (2, 3, AHEAD, Verdict("rejected", REFUSED), False, Stop(Verdict("rejected", REFUSED))),
            (2, 3, AHEAD, Verdict("failed", REFUSED), True, Stop(Verdict("failed", REFUSED))),
            (1, 3, AHEAD, Verdict("retry", UNAVAILABLE), False, Retry(UNAVAILABLE)),
            (2, 3, AHEAD, Verdict("retry", UNAVAILABLE), True, Retry(UNAVAILABLE)),
            (1, 3, AHEAD, Verdict("retry"), False, Retry(None)),
        ],
        ids=[
            "succeeded",
            "rejected-first-time",
            "rejected-retry-with-effect",
            "rejected-retry-without-effect",
            "failed-stays-failed",
            "transient",
            "transient-again",
            "transient-without-detail",
        ],
    )
    def test_verdicts(
        self,
        attempt: int,
        max_attempts: int,
        deadline: float,
        verdict: Verdict,
        observed: bool,
        step: Retry | Stop,
    ) -> None:
        """Final answers stop; a refused retry whose effect shows succeeded; transients retry."""
        assert rules.after_answer(attempt, max_attempts, deadline, NOW, verdict, observed) == step

    @pytest.mark.parametrize(
        ("attempt", "max_attempts", "deadline"),
        [(3, 3, AHEAD), (1, 3, NOW), (1, 3, NOW - 1), (5, 3, AHEAD)],
        ids=["cap-reached", "deadline-now", "deadline-passed", "past-cap"],
    )
    def test_transient_trouble_gives_up(
        self, attempt: int, max_attempts: int, deadline: float
    ) -> None:
        """At the attempt cap or the deadline, transient trouble is failed, keeping its error."""
        step = rules.after_answer(
            attempt, max_attempts, deadline, NOW, Verdict("retry", UNAVAILABLE), False
        )
        message = f"gave up after {attempt} attempt(s): HTTP 503"
        assert step == Stop(Verdict("failed", Problem(message, 503, "error.server.unavailable")))


class TestStopping:
    """The verdicts said when attempts end without an answer to judge."""

    @pytest.mark.parametrize(
        ("attempts", "last", "verdict"),
        [
            (0, None, Verdict("expired", Problem("the deadline passed before ICWS was reachable"))),
            (
                0,
                UNAVAILABLE,
                Verdict("expired", Problem("the deadline passed before ICWS was reachable")),
            ),
            (1, None, Verdict("failed", Problem("the deadline passed after no answer"))),
            (2, UNAVAILABLE, Verdict("failed", Problem("the deadline passed after HTTP 503"))),
        ],
        ids=["never-sent", "never-sent-with-trouble", "sent-no-answer", "sent-503"],
    )
    def test_unreachable(self, attempts: int, last: Problem | None, verdict: Verdict) -> None:
        """Never sent before the deadline is expired; sent at least once is failed."""
        assert rules.unreachable(attempts, last) == Stop(verdict)

    @pytest.mark.parametrize(
        ("attempts", "last", "problem"),
        [
            (
                10,
                UNAVAILABLE,
                Problem("gave up after 10 attempt(s): HTTP 503", 503, UNAVAILABLE.error_id),
            ),
            (2, None, Problem("gave up after 2 attempt(s): transient failures")),
        ],
        ids=["with-error", "without-error"],
    )
    def test_gave_up(self, attempts: int, last: Problem | None, problem: Problem) -> None:
        """Exhausted retries fail, naming the attempts and the last transient error."""
        assert rules.gave_up(attempts, last) == Stop(Verdict("failed", problem))

    def test_a_retry_is_never_final(self) -> None:
        """A Stop cannot carry ``retry``, so a transient answer can never end a command."""
        with pytest.raises(ValueError, match="retry"):
            Stop(Verdict("retry", UNAVAILABLE))


class TestRecovery:
    """``unknown`` waits for the deadline and a fresh view; observed evidence settles at once."""

    @pytest.mark.parametrize(
        ("deadline", "first_look", "fresh_since", "ends_at"),
        [
            (NOW + 100, NOW, NOW + 5, NOW + 130),  # the deadline is the later moment
            (NOW - 100, NOW, NOW + 5, NOW + 35),  # the view became fresh after the deadline
            (NOW - 100, NOW, None, NOW + 30),  # never fresh yet: counted from the first look
            (NOW + 100, NOW, None, NOW + 130),
            (NOW, NOW, NOW, NOW + 30),
        ],
        ids=["deadline-later", "fresh-later", "not-fresh-yet", "not-fresh-deadline-later", "same"],
    )
    def test_ends_at(
        self, deadline: float, first_look: float, fresh_since: float | None, ends_at: float
    ) -> None:
        """Recovery ends ``recovery_seconds`` after both the deadline and the fresh-view moment."""
        assert rules.recovery_ends_at(deadline, first_look, fresh_since, 30.0) == ends_at

    @pytest.mark.parametrize(
        ("observed", "now", "ends_at", "outcome"),
        [
            (True, NOW, NOW + 30, "succeeded"),
            (True, NOW + 31, NOW + 30, "succeeded"),
            (False, NOW, NOW + 30, None),
            (False, NOW + 30, NOW + 30, "unknown"),
            (False, NOW + 31, NOW + 30, "unknown"),
        ],
        ids=["seen", "seen-late", "wait", "ends-now", "ended"],
    )
    def test_step(self, observed: bool, now: float, ends_at: float, outcome: str | None) -> None:
        """Seen effect: succeeded/observed; else wait, then unknown (and nothing sent again)."""
        step = rules.recovery_step(observed, now, ends_at)
        match outcome:
            case None:
                assert step == Wait()
            case "succeeded":
                assert step == Stop(DONE_BY_A_LOST_ANSWER)
            case _:
                assert isinstance(step, Stop)
                assert step.verdict.outcome == "unknown"
                assert step.verdict.problem is not None
                assert "not sent again" in step.verdict.problem.message
