"""The cyclic garbage collector's policy for a process whose live heap is large and long-lived.

A fleet of 1,000 accounts keeps about 480,000 container objects alive (each account's tasks,
coroutines, futures, events, timers, state) for as long as its session lives. CPython's automatic
full (generation-2) collection walks every one of them with the event loop held: about 300 ms,
every few seconds at 200 changes a second, which was the whole of the fleet's latency tail
(BENCHMARKS.md, issue #14). A small heap's full collections stay within the budget: left alone.

:class:`HeapPolicy` rides on the full collections the collector chooses to run, and adds none:

* a full collection that took longer than ``budget`` found a large long-lived heap; everything
  that survived it is alive at that moment, so it is frozen (``gc.freeze``) and later automatic
  collections walk only what is younger;
* the first full collection at least ``period`` after the last thaw (or the start) thaws
  (``gc.unfreeze``) before it runs, so it walks the whole heap once, and (slow again) freezes
  the survivors anew. Counted from the thaw, not the last freeze: frequent freezes cannot put
  the next thaw off.

Why this cannot grow without bound: a frozen object that loses its last reference is freed by
reference counting as usual; only garbage *cycles* among frozen objects are left for the
collector, and the next thaw hands them back to it, at most ``period`` plus one full collection
after they were frozen. So what such cycles hold is bounded by what of the heap dies within one
period, not by the uptime.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

BUDGET_SECONDS = 0.02  # well under the 50 ms p99 target; small heaps' full collections take less
PERIOD_SECONDS = 300.0  # a full pass every 5 min: ~0.1 % of the time at 1,000 accounts
OLDEST = 2  # the generation a full collection collects


def freeze_due(took: float, budget: float) -> bool:
    """Whether a full collection that took ``took`` seconds found a heap worth freezing."""
    return took > budget


def thaw_due(now: float, thawed_at: float, period: float, frozen: Callable[[], int]) -> bool:
    """Whether the full collection starting ``now`` should walk the frozen objects too.

    ``frozen`` (the frozen objects' count) is asked only once a period is over: CPython counts
    them one by one, which took 6.7 ms for the ~74,000 frozen at start-up, half of every full
    collection's pause (BENCHMARKS.md, issue #15 latency).
    """
    return now - thawed_at >= period and frozen() > 0


@dataclass
class HeapPolicy:
    """A ``gc.callbacks`` entry applying the freeze and thaw rules above to full collections."""

    budget: float = BUDGET_SECONDS
    period: float = PERIOD_SECONDS
    clock: Callable[[], float] = time.monotonic
    freeze: Callable[[], None] = gc.freeze
    unfreeze: Callable[[], None] = gc.unfreeze
    frozen_count: Callable[[], int] = gc.get_freeze_count
    thawed_at: float = field(default=0.0)  # the last thaw, or the start
    _started: float | None = field(default=None, repr=False)

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if info["generation"] != OLDEST:
            return
        now = self.clock()
        if phase == "start":
            self._started = now
            if thaw_due(now, self.thawed_at, self.period, self.frozen_count):
                self.unfreeze()
                self.thawed_at = now
        elif self._started is not None and freeze_due(now - self._started, self.budget):
            self._started = None
            self.freeze()


def install(policy: HeapPolicy | None = None) -> HeapPolicy:
    """Register ``policy`` (once: an installed one is kept); its period counts from now.

    The collector's thresholds stay CPython's: a young threshold of 10,000 was tried and cost a
    one-account bridge its 5,000 events/s (BENCHMARKS.md, issue #14), and it put the fleet's
    first full collection, and so its first freeze, off until after start-up.
    """
    installed = next((c for c in gc.callbacks if isinstance(c, HeapPolicy)), None)
    if installed is not None:
        return installed
    chosen = policy if policy is not None else HeapPolicy()
    chosen.thawed_at = chosen.clock()
    gc.callbacks.append(chosen)
    return chosen


def uninstall() -> None:
    """Remove an installed policy (tests); what it froze stays frozen."""
    gc.callbacks[:] = [c for c in gc.callbacks if not isinstance(c, HeapPolicy)]
