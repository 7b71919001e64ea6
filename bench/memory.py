"""Memory: resident set size of a real ``bridge run`` process holding many live entities.

The bridge runs as its own process (``python -m bridge run``, shipped defaults), so its RSS is
its own and not the benchmark's. Three readings of ``/proc/PID/status``:

* **idle** - ready, subscribed, no entities;
* **steady** - after ``entities`` interactions started alerting, one delta message each, all
  published: VmRSS then, and the peak (VmHWM) so far;
* **restart** - a new bridge process over the same broker and ICWS: it loads the ``entities``
  states from the compacted state topic, then reconciles the alerting snapshot, one ICWS
  message listing every entity, against them (nothing changed, so no entity events). Peak and
  the time from process start until every subscription is reconciled; and, from VmRSS sampled
  every 20 ms and the bridge's ``state.restored`` log line, the restore's share: its time, the
  RSS when it was done and the highest RSS until then (what the snapshot adds is the rest).

Alerting interactions are the largest entities the bridge keeps (queue, attributes); a
contact centre never has 100,000 alerting at once, which makes this an upper bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs

RESYNCED = 'icws_bridge_events_total{type="bridge.resync.completed"}'


async def run(entities: int, log: Path) -> dict[str, Any]:
    """Measure the three readings for ``entities`` live alerting interactions."""
    extra = {"BRIDGE_ICWS__SSE_IDLE_TIMEOUT_SECONDS": "600"}
    _empty(log)
    result: dict[str, Any] = {"entities": entities, "aggregate": "alerting"}
    async with procs.broker() as kafka, procs.simulator() as sim, aiohttp.ClientSession() as http:
        async with procs.bridge_process(kafka.bootstrap, sim.url, extra, log) as bridge:
            await _until_metric(http, bridge, RESYNCED, 4, 60)
            result["idle"] = procs.memory_mb(bridge.pid)
            await sim.call("silence")
            await sim.call("populate", alerting=entities, history=0)
            started = time.perf_counter()
            await sim.call("release")
            await _until_metric(
                http, bridge, "icws_bridge_icws_messages_total", entities, max(120, entities / 200)
            )
            await _until_metric(http, bridge, "icws_bridge_buffer_records", 0, 120, at_most=True)
            result["steady"] = {
                **procs.memory_mb(bridge.pid),
                "load_seconds": round(time.perf_counter() - started, 2),
            }
        restart = {**extra, "BRIDGE_LOG__LEVEL": "INFO"}  # for state.restored
        async with procs.bridge_process(kafka.bootstrap, sim.url, restart, log) as bridge:
            samples: list[tuple[float, float]] = []
            sampler = asyncio.create_task(_sample(bridge.pid, samples))
            try:
                await _until_metric(http, bridge, RESYNCED, 4, max(120, entities / 500))
            finally:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            result["restart"] = {
                **procs.memory_mb(bridge.pid),
                "start_to_reconciled_seconds": round(time.perf_counter() - bridge.started, 2),
                **_restore_share(log, samples, time.time() - time.perf_counter() + bridge.started),
            }
    return result


def _empty(log: Path) -> None:
    """An empty ``log`` for this run's bridges (the restart's ``state.restored`` comes last)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")


async def _sample(pid: int, samples: list[tuple[float, float]]) -> None:
    """Append (wall-clock time, VmRSS in MB) every 20 ms until cancelled."""
    while True:
        samples.append((time.time(), procs.memory_mb(pid)["rss_mb"]))
        await asyncio.sleep(0.02)


def _restore_share(log: Path, samples: list[tuple[float, float]], start: float) -> dict[str, Any]:
    """Restore's time from process start, RSS when done and the peak RSS sampled until then."""
    done = None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("event") == "state.restored":
                done = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
    before = [rss for at, rss in samples if done is None or at <= done.timestamp()]
    if done is None or not before:
        return {}
    return {
        "restored_seconds": round(done.timestamp() - start, 2),
        "restored_rss_mb": before[-1],
        "restore_peak_rss_mb": max(before),
    }


async def _until_metric(
    http: aiohttp.ClientSession,
    bridge: procs.BridgeProcess,
    name: str,
    value: float,
    limit: float,
    at_most: bool = False,
) -> None:
    """Poll /metrics until the sum of the samples called ``name`` reaches ``value``."""

    async def reached() -> bool:
        if bridge.process.returncode is not None:
            raise RuntimeError(f"the bridge exited with {bridge.process.returncode}")
        current = await procs.metric(http, bridge.health, name)
        return current is not None and (current <= value if at_most else current >= value)

    await procs.poll_until(reached, limit, 0.1)
