"""A short chaos run (the smoke version of ``make chaos``): every fault type, then the zeros."""

from __future__ import annotations

import pytest

from tests.chaos import FAULTS, chaos, passed, table

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(240)
async def test_short_chaos_run_keeps_every_promise() -> None:
    """Random faults for 50 s: state equals truth, nothing lost, no phantoms, commands once."""
    report = await chaos(duration=50, seed=7, rate=20, fault_every=3)
    assert passed(report), table(report)
    assert report["commands_sent"] > 5
    assert len(report["faults"]) >= len(FAULTS) // 2
