"""The garbage collector policy (bridge.heap): freeze a big heap, thaw it once a period.

Small heaps and young collections are left alone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bridge import heap


class FakeCollector:
    """A clock and a freeze count the policy drives instead of the process's collector."""

    def __init__(self) -> None:
        self.now = 0.0
        self.frozen = 0
        self.calls: list[str] = []
        self.counted = 0  # how often the policy asked for the frozen count

    def freeze(self) -> None:
        self.calls.append("freeze")
        self.frozen += 1

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")
        self.frozen = 0

    def policy(self, budget: float = 0.02, period: float = 300.0) -> heap.HeapPolicy:
        return heap.HeapPolicy(
            budget=budget,
            period=period,
            clock=lambda: self.now,
            freeze=self.freeze,
            unfreeze=self.unfreeze,
            frozen_count=self.frozen_count,
        )

    def frozen_count(self) -> int:
        """The frozen objects, counting that they were asked for (the count costs a walk)."""
        self.counted += 1
        return self.frozen

    def collection(self, policy: heap.HeapPolicy, generation: int, took: float) -> None:
        policy("start", {"generation": generation})
        self.now += took
        policy("stop", {"generation": generation, "collected": 0, "uncollectable": 0})


@pytest.fixture(name="collector")
def fixture_collector() -> FakeCollector:
    """A fake collector at time 0 with nothing frozen."""
    return FakeCollector()


class TestFreezing:
    """When the survivors of a full collection are frozen."""

    def test_a_slow_full_collection_freezes_its_survivors(self, collector: FakeCollector) -> None:
        """A full collection over the budget (a large long-lived heap) freezes what survived it."""
        policy = collector.policy(budget=0.02)
        collector.collection(policy, 2, took=0.3)
        assert collector.calls == ["freeze"]

    def test_a_quick_full_collection_freezes_nothing(self, collector: FakeCollector) -> None:
        """A full collection within the budget (one account's heap) leaves the collector alone."""
        policy = collector.policy(budget=0.02)
        collector.collection(policy, 2, took=0.005)
        assert collector.calls == []

    @pytest.mark.parametrize("generation", [0, 1])
    def test_young_collections_are_ignored(self, collector: FakeCollector, generation: int) -> None:
        """However long a young collection takes, only full collections decide a freeze."""
        policy = collector.policy(budget=0.02)
        collector.collection(policy, generation, took=1.0)
        assert collector.calls == []


class TestThawing:
    """When the frozen heap is handed back to the collector."""

    def test_the_first_full_collection_a_period_after_the_start_thaws(
        self, collector: FakeCollector
    ) -> None:
        """A period after the start, a full collection first thaws, then freezes anew."""
        policy = collector.policy(budget=0.02, period=300.0)
        collector.collection(policy, 2, took=0.3)
        collector.now += 300.0
        collector.collection(policy, 2, took=0.3)
        assert collector.calls == ["freeze", "unfreeze", "freeze"]

    def test_frequent_freezes_do_not_put_the_thaw_off(self, collector: FakeCollector) -> None:
        """The period counts from the last thaw: a freeze every 200 s still sees a thaw by 300 s."""
        policy = collector.policy(budget=0.02, period=300.0)
        for _ in range(3):  # full collections at 0, 200 and 400 s, each slow
            collector.collection(policy, 2, took=0.3)
            collector.now += 200.0
        assert collector.calls == ["freeze", "freeze", "unfreeze", "freeze"]

    def test_within_the_period_nothing_is_thawed(self, collector: FakeCollector) -> None:
        """A full collection less than a period after the freeze walks only the unfrozen heap."""
        policy = collector.policy(budget=0.02, period=300.0)
        collector.collection(policy, 2, took=0.3)
        collector.now += 200.0
        collector.collection(policy, 2, took=0.005)
        assert collector.calls == ["freeze"]

    def test_within_the_period_the_frozen_objects_are_not_counted(
        self, collector: FakeCollector
    ) -> None:
        """Counting the frozen heap walks it: a full collection within the period never asks."""
        policy = collector.policy(budget=0.02, period=300.0)
        for _ in range(3):  # full collections at 0, 100 and 200 s, the first slow
            collector.collection(policy, 2, took=0.3)
            collector.now += 100.0
        assert collector.counted == 0
        collector.now = 400.0
        collector.collection(policy, 2, took=0.005)
        assert collector.counted == 1

    def test_nothing_frozen_nothing_thawed(self, collector: FakeCollector) -> None:
        """With nothing frozen there is nothing to thaw, however long ago the last freeze was."""
        policy = collector.policy(period=300.0)
        collector.now = 1000.0
        collector.collection(policy, 2, took=0.005)
        assert collector.calls == []


@pytest.fixture(name="real_collector")
def fixture_real_collector() -> Iterator[None]:
    """The process's collector without the policy; removed again and the heap thawed after."""
    heap.uninstall()
    yield
    heap.uninstall()
    gc.unfreeze()


@pytest.mark.usefixtures("real_collector")
class TestInstalled:
    """The policy registered with CPython's collector."""

    def test_a_full_collection_over_budget_freezes_the_heap(self) -> None:
        """Installed with a zero budget, a full collection leaves every live object frozen."""
        heap.install(heap.HeapPolicy(budget=0.0))
        gc.collect()
        assert gc.get_freeze_count() > 0
        assert len(gc.get_objects(2)) < gc.get_freeze_count()

    def test_install_is_idempotent(self) -> None:
        """Installing twice registers one policy."""
        first = heap.install()
        assert heap.install() is first
        assert sum(isinstance(c, heap.HeapPolicy) for c in gc.callbacks) == 1
