"""A short fleet chaos run (issue #14): replica kills, a rebalance, account churn; the zeros.

Three accounts over two replicas; the fleet's own faults come first, so each is exercised
whatever the random draws.
"""

from __future__ import annotations

import pytest

from tests.chaos_checks import passed, table
from tests.chaos_fleet import FLEET_ONLY, fleet_chaos

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
async def test_short_fleet_chaos_run_keeps_every_promise() -> None:
    """Fleet faults for 60 s: every user's state is its truth, nothing lost, one session each.

    The run must also have given the checks something to judge: commands that ICWS applied,
    result records for them, and every fleet fault kind injected and recovered.
    """
    report = await fleet_chaos(
        duration=60, seed=5, accounts=3, replicas=2, fault_every=3, first=tuple(FLEET_ONLY)
    )
    print(table(report))  # shown with -rP: what the checks judged
    assert passed(report), table(report)
    assert report["live_sessions"] == {"agent.0001": 1, "agent.0002": 1, "agent.0003": 1}
    assert report["steps_expected"] > 100, table(report)  # the zero of "lost" is not vacuous
    assert report["command_outcomes"].get("succeeded", 0) > 0, table(report)
    assert report["result_records"] >= report["commands_sent"] - report["commands_unacknowledged"]
    for kind in FLEET_ONLY:
        assert report["faults"][kind]["recovered"] >= 1, table(report)
