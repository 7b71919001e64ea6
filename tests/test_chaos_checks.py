"""Each chaos check fails on the fault it guards against (and passes when there is none).

The checks in tests/chaos_checks.py are pure functions, so each test hands one crafted record of
a run to one check. One test drives the real simulator with its `repeat_updates` switch, so the
"executed twice" check is shown to catch what the simulator's call log really records.
"""

from __future__ import annotations

import itertools
import json

import aiohttp

from bridge.simulator import Simulator, SimulatorConfig
from bridge.simulator.sessions import Call
from tests import chaos_checks as checks
from tests.chaos_checks import Result, SentCommand, Window
from tests.chaos_run import FAULTS, fault_order
from tests.simulator.support import PASSWORD, login

AID = "a-1"


def update(ident: str = "c1", acked: bool = True, aid: str = AID) -> SentCommand:
    """An update command whose text names it, as the chaos run sends them."""
    return SentCommand(ident, "update", aid, f"chaos {ident}", acked)


def complete(ident: str = "c9", aid: str = AID) -> SentCommand:
    """A complete command."""
    return SentCommand(ident, "complete", aid, None, True)


def post(ident: str = "c1", status: int = 204, applied: int = 1) -> Call:
    """The simulator's log entry for an update carrying `ident`'s text."""
    return Call("POST", AID, f"chaos {ident}", status, applied)


def delete(status: int = 204, applied: int = 1, aid: str = AID) -> Call:
    """The simulator's log entry for a complete."""
    return Call("DELETE", aid, None, status, applied)


class TestResultRecords:
    """Result records are counted per command, with their outcomes."""

    def test_two_different_outcomes_for_one_command_fail(self) -> None:
        """Two result records for one command saying different things are found."""
        results = [Result("c1", "succeeded", False), Result("c1", "failed", False)]
        assert checks.result_problems([update()], results) == [
            "c1: two different outcomes ['failed', 'succeeded']"
        ]

    def test_a_lost_result_record_fails(self) -> None:
        """An acknowledged command without any result record is found."""
        assert checks.result_problems([update()], []) == ["c1: no result"]

    def test_a_replayed_identical_result_passes(self) -> None:
        """The same outcome read twice is at-least-once delivery, not a second result."""
        results = [Result("c1", "succeeded", False)] * 2
        assert checks.result_problems([update()], results) == []

    def test_a_send_that_timed_out_is_tracked_and_may_lack_a_result(self) -> None:
        """A command whose send was not acknowledged is kept; no result is allowed for it."""
        assert checks.result_problems([update(acked=False)], []) == []

    def test_a_send_that_timed_out_still_may_not_have_two_outcomes(self) -> None:
        """Tracking unacknowledged sends means their results are checked too."""
        results = [Result("c1", "succeeded", False), Result("c1", "expired", False)]
        assert checks.result_problems([update(acked=False)], results) != []

    def test_a_result_for_a_command_never_sent_fails(self) -> None:
        """A result nobody asked for is found."""
        results = [Result("zz", "succeeded", False)]
        assert checks.result_problems([], results) == ["result for a command never sent: zz"]

    def test_an_outcome_the_readme_does_not_name_fails(self) -> None:
        """Only the README's outcomes are valid."""
        assert checks.result_problems([update()], [Result("c1", "maybe", False)]) != []

    def test_result_from_record_reads_the_event_data(self) -> None:
        """A result event value is read for its command id, outcome and `observed`."""
        value = {"data": {"commandId": "c1", "outcome": "succeeded", "observed": True}}
        assert checks.result_from_record(json.dumps(value).encode()) == Result(
            "c1", "succeeded", True
        )


class TestExecutedTwice:
    """Every ICWS call is counted per command, updates and completes alike."""

    def test_an_update_applied_twice_in_one_call_fails(self) -> None:
        """A call ICWS applied twice is found."""
        assert checks.executed_twice([update()], [post(applied=2)]) == ["c1: applied 2 times"]

    def test_an_update_sent_again_and_applied_again_fails(self) -> None:
        """Two calls for one update, both applied, are found."""
        assert checks.executed_twice([update()], [post(), post()]) == ["c1: applied 2 times"]

    def test_a_complete_applied_twice_fails(self) -> None:
        """Completes are counted by their request, so a second applied DELETE is found."""
        assert checks.executed_twice([complete()], [delete(), delete()]) == ["c9: applied 2 times"]

    def test_failed_attempts_then_one_success_pass(self) -> None:
        """Calls that ICWS answered with an error changed nothing and do not count."""
        calls = [post(status=500, applied=0), post(status=503, applied=0), post()]
        assert checks.executed_twice([update()], calls) == []
        assert checks.executions([update()], calls) == {"c1": 1}

    async def test_the_simulator_switch_that_applies_a_call_twice_is_caught(self) -> None:
        """With `repeat_updates`, one real POST shows up as applied twice in the call log."""
        sim = Simulator(SimulatorConfig(users={"agent.one": PASSWORD}))
        jar = aiohttp.CookieJar(unsafe=True)  # the session cookie comes from an IP address
        async with sim, aiohttp.ClientSession(cookie_jar=jar) as http:
            aid = sim.world.create_assistance("agent.one", "100", "help")
            icws = await login(http, sim)
            sim.faults.repeat_updates(1)
            path = f"/interactions/agent-assistance/{aid}"
            await icws.call("POST", path, json={"text": "chaos c1"})
            await icws.call("POST", path, json={"text": "chaos c2"})
            commands = [update("c1", aid=aid), update("c2", aid=aid)]
            assert checks.executed_twice(commands, sim.calls) == ["c1: applied 2 times"]


class TestOutcomes:
    """Each command's outcome agrees with what ICWS did."""

    def test_a_delete_applied_but_reported_unknown_fails(self) -> None:
        """ICWS completed the request: `unknown` is wrong."""
        found = checks.outcome_problems(
            [complete()], [Result("c9", "unknown", False)], [delete()], [AID]
        )
        assert found == ["c9: ICWS applied its complete, outcome unknown"]

    def test_a_delete_applied_but_reported_failed_fails(self) -> None:
        """ICWS completed the request (its answer lost): `failed` is wrong."""
        results = [Result("c9", "failed", False)]
        assert checks.outcome_problems([complete()], results, [delete()], [AID]) != []

    def test_an_update_applied_once_and_succeeded_passes(self) -> None:
        """The outcome that agrees with one applied update."""
        results = [Result("c1", "succeeded", False)]
        assert checks.outcome_problems([update()], results, [post()], []) == []

    def test_an_update_never_applied_but_succeeded_fails(self) -> None:
        """`succeeded` for an update ICWS never applied is found."""
        results = [Result("c1", "succeeded", True)]
        calls = [post(status=500, applied=0)]
        assert checks.outcome_problems([update()], results, calls, []) == [
            "c1: update never applied, outcome succeeded"
        ]

    def test_a_complete_observed_after_someone_else_completed_it_passes(self) -> None:
        """The README's `observed` success: the request was completed, if not by this call."""
        results = [Result("c9", "succeeded", True)]
        assert checks.outcome_problems([complete()], results, [], [AID]) == []

    def test_a_call_answered_400_but_not_rejected_fails(self) -> None:
        """ICWS answered 400 and applied nothing: the outcome must be `rejected`."""
        results = [Result("c1", "failed", False)]
        calls = [post(status=400, applied=0)]
        assert checks.outcome_problems([update()], results, calls, []) == [
            "c1: ICWS answered 400, outcome failed"
        ]


class TestExpiry:
    """A run whose commands mostly expire is a failure."""

    def test_mostly_expired_commands_fail(self) -> None:
        """Three of four expired: the bridge hardly ran any command."""
        commands = [update(f"c{n}") for n in range(4)]
        outcomes = ["expired", "expired", "expired", "succeeded"]
        results = [Result(f"c{n}", o, False) for n, o in enumerate(outcomes)]
        assert checks.expiry_problems(commands, results) == ["3 of 4 commands expired"]

    def test_a_few_expired_commands_pass(self) -> None:
        """One of four expired (a long outage) is allowed."""
        commands = [update(f"c{n}") for n in range(4)]
        outcomes = ["expired", "succeeded", "succeeded", "rejected"]
        results = [Result(f"c{n}", o, False) for n, o in enumerate(outcomes)]
        assert checks.expiry_problems(commands, results) == []

    def test_no_commands_at_all_fails(self) -> None:
        """A run that sent nothing proved nothing about commands."""
        assert checks.expiry_problems([], []) == ["no commands were sent"]


class TestFaults:
    """Every fault kind injected must be recovered from, and stays in the matrix."""

    def test_a_broker_pause_that_never_ends_fails(self) -> None:
        """The second broker pause never recovered: the run fails, naming it."""
        injected = {"broker pause": 2, "session expiry": 1}
        recovered = {"broker pause": [3.0], "session expiry": [1.0]}
        assert checks.fault_problems(injected, recovered) == [
            "broker pause: recovered 1 of 2 injections"
        ]

    def test_a_fault_kind_that_never_recovers_stays_in_the_matrix(self) -> None:
        """A kind with no recovery at all still has its row, with zero recovered."""
        matrix = checks.fault_matrix({"broker pause": 1}, {})
        assert matrix == {
            "broker pause": {
                "injected": 1,
                "recovered": 0,
                "max_recovery_seconds": None,
                "logins": 0,
            }
        }
        assert checks.fault_problems({"broker pause": 1}, {}) != []

    def test_every_fault_recovered_passes(self) -> None:
        """Recovered every time: no problem, and the slowest recovery is reported."""
        recovered = {"switchover": [1.234, 4.5]}
        assert checks.fault_problems({"switchover": 2}, recovered) == []
        assert checks.fault_matrix({"switchover": 2}, recovered)["switchover"] == {
            "injected": 2,
            "recovered": 2,
            "max_recovery_seconds": 4.5,
            "logins": 0,
        }

    def test_the_matrix_counts_the_logins_during_each_kind(self) -> None:
        """Logins are summed over every window of a kind, and shown in the table."""
        windows = [
            Window("switchover", 0.0, 5.0, 1, 2),
            Window("switchover", 9.0, 12.0, 2, 4),
            Window("stream recycling", 20.0, 30.0, 4, 4),
        ]
        injected = {"switchover": 2, "stream recycling": 1}
        matrix = checks.fault_matrix(injected, {"switchover": [1.0, 2.0]}, windows)
        assert matrix["switchover"]["logins"] == 3
        assert matrix["stream recycling"]["logins"] == 0


class TestFaultOrder:
    """Faults come in seeded rounds, so even a short run sees most kinds."""

    def test_the_first_kinds_come_first_then_every_kind_once_per_round(self) -> None:
        """After the kinds asked for first, each round holds every kind exactly once."""
        order = fault_order(3, ["SSE hang"])
        assert next(order) == "SSE hang"
        for _ in range(2):
            round_ = [next(order) for _ in FAULTS]
            assert sorted(round_) == sorted(FAULTS)

    def test_the_order_depends_on_the_seed_alone(self) -> None:
        """One seed, one order; another seed, another order."""

        def rounds(seed: int) -> list[str]:
            return list(itertools.islice(fault_order(seed), 3 * len(FAULTS)))

        assert rounds(3) == rounds(3)
        assert rounds(3) != rounds(4)


class TestLoginlessFaults:
    """Faults that end only a stream (recycling above all) must cost no login."""

    LOGINLESS = ("stream recycling", "SSE hang")

    def test_a_login_during_stream_recycling_fails(self) -> None:
        """The simulator's login counter grew while streams were recycled: found, naming it."""
        windows = [Window("stream recycling", 10.0, 18.0, 3, 4)]
        assert checks.login_problems(windows, self.LOGINLESS) == [
            "stream recycling at 10.0: 1 login(s) while it lasted"
        ]

    def test_stream_recycling_without_a_login_passes(self) -> None:
        """The counter unchanged over the window: no problem."""
        windows = [Window("stream recycling", 10.0, 18.0, 3, 3)]
        assert checks.login_problems(windows, self.LOGINLESS) == []

    def test_logins_during_a_fault_that_ends_sessions_are_allowed(self) -> None:
        """A session expiry is expected to cost a login; it is not a loginless kind."""
        windows = [Window("session expiry", 0.0, 4.0, 1, 2)]
        assert checks.login_problems(windows, self.LOGINLESS) == []

    def test_an_overlapping_session_fault_excuses_the_login(self) -> None:
        """A login while an expiry overlapped the recycling says nothing about the recycling."""
        windows = [
            Window("stream recycling", 10.0, 18.0, 3, 4),
            Window("session expiry", 15.0, 20.0, 3, 4),
        ]
        assert checks.login_problems(windows, self.LOGINLESS) == []

    def test_a_session_fault_that_only_touches_another_window_excuses_nothing(self) -> None:
        """An expiry over before the recycling began, or another stream fault, excuses nothing."""
        windows = [
            Window("session expiry", 0.0, 5.0, 1, 2),
            Window("stream recycling", 10.0, 18.0, 2, 3),
            Window("SSE hang", 12.0, 14.0, 2, 2),
        ]
        assert checks.login_problems(windows, self.LOGINLESS) == [
            "stream recycling at 10.0: 1 login(s) while it lasted"
        ]


class TestForgiveness:
    """Messages forgiven around SIGKILLs are counted, and may not be most of the run."""

    def test_overlapping_spans_count_each_message_once(self) -> None:
        """Two kills close together forgive the union of their spans."""
        assert checks.forgiven_count([(10, 20), (15, 25)]) == 15

    def test_most_messages_forgiven_fails(self) -> None:
        """Forgiving more than half the messages would make "nothing lost" vacuous."""
        assert checks.forgiveness_problems(60, 100) == [
            "60 of 100 messages forgiven around SIGKILLs"
        ]
        assert checks.forgiveness_problems(10, 100) == []


class TestReport:
    """The run passes only with every zero and no problem of any kind."""

    def report(self, **changes: object) -> dict[str, object]:
        """A clean report, with `changes`."""
        clean: dict[str, object] = {
            "ready_at_end": True,
            "state_topics_equal_truth": True,
            "state_difference": "",
            "events_lost": 0,
            "lost": [],
            "phantom_duplicates": 0,
            "commands_sent": 3,
            "commands_unacknowledged": 0,
            "command_outcomes": {"succeeded": 3},
            "result_records": 3,
            "messages_from_icws": 10,
            "messages_forgiven": 0,
            "faults": {
                "stream recycling": {
                    "injected": 1,
                    "recovered": 1,
                    "max_recovery_seconds": 7.5,
                    "logins": 0,
                }
            },
            "problems": {"results": []},
            "problem_counts": {"results": 0},
        }
        return {**clean, **changes}

    def test_a_clean_report_passes(self) -> None:
        """No problem: passed."""
        assert checks.passed(self.report())

    def test_any_problem_fails_and_is_shown(self) -> None:
        """One problem fails the run, and the table names it."""
        report = self.report(problems={"results": ["c1: no result"]}, problem_counts={"results": 1})
        assert not checks.passed(report)
        assert "c1: no result" in checks.table(report)

    def test_the_table_shows_each_fault_kind_with_its_logins(self) -> None:
        """The matrix row names the kind, its counts, its slowest recovery and its logins."""
        rows = checks.table(self.report()).splitlines()
        assert rows[0].split()[-1] == "logins"
        assert rows[1].split() == ["stream", "recycling", "1", "1", "7.5", "0"]

    def test_a_login_problem_fails_the_run(self) -> None:
        """A login during stream recycling is a problem like any other."""
        found = ["stream recycling at 10.0: 1 login(s) while it lasted"]
        report = self.report(problems={"logins": found}, problem_counts={"logins": 1})
        assert not checks.passed(report)
        assert found[0] in checks.table(report)

    def test_a_bridge_not_ready_at_the_end_fails(self) -> None:
        """A bridge that never became ready again fails the run."""
        assert not checks.passed(self.report(ready_at_end=False))


class TestOneSessionPerAccount:
    """At the end of a fleet run every account has exactly one live ICWS session."""

    async def test_two_live_sessions_of_one_account_fail(self) -> None:
        """Two real logins of one user in the simulator: the check names that account."""
        users = {"agent.one": PASSWORD, "agent.two": PASSWORD, "agent.three": PASSWORD}
        jar = aiohttp.CookieJar(unsafe=True)
        async with Simulator(SimulatorConfig(users=users)) as sim:
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                await login(http, sim, "agent.one")
                await login(http, sim, "agent.two")
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                await login(http, sim, "agent.one")
            live = {user: len(sim.sessions_of(user)) for user in users}
        assert checks.session_problems(live) == [
            "agent.one: 2 live sessions",
            "agent.three: 0 live sessions",
        ]

    def test_one_session_each_passes(self) -> None:
        """Exactly one live session per account: no problem."""
        assert checks.session_problems({"agent.one": 1, "agent.two": 1}) == []
