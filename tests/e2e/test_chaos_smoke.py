"""A short chaos run (the smoke version of ``make chaos``): every fault type, then the zeros.

It starts with stream recycling and a hanging SSE request, so the stream faults (which must cost
no login, and a fallback to polling and back) are exercised whatever the random draws.
"""

from __future__ import annotations

import pytest

from tests.chaos import chaos
from tests.chaos_checks import passed, table
from tests.chaos_run import FAULTS

FIRST = ("stream recycling", "SSE hang")

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(240)
async def test_short_chaos_run_keeps_every_promise() -> None:
    """Random faults for 50 s: state equals truth, nothing lost, no phantoms, commands right.

    The run must also have given the checks something to judge: commands that ICWS applied,
    result records for them, most fault kinds injected, and the stream faults recovered with
    no login.
    """
    report = await chaos(duration=50, seed=7, rate=20, fault_every=2, first=FIRST)
    print(table(report))  # shown with -rP: what the checks judged
    assert passed(report), table(report)
    assert report["commands_sent"] > 5
    assert report["command_outcomes"].get("succeeded", 0) > 0, table(report)
    assert report["result_records"] >= report["commands_sent"] - report["commands_unacknowledged"]
    assert len(report["faults"]) >= len(FAULTS) // 2, table(report)
    for kind in FIRST:
        assert report["faults"][kind]["recovered"] >= 1, table(report)
        assert report["faults"][kind]["logins"] == 0, table(report)
