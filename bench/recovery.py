"""Recovery: ICWS session loss to resubscribed and reconciled; process start to ready.

Session loss: the simulator forgets the bridge's session (``faults.expire_session``: every
later request is a 401 and the SSE stream closes), as after an IC server restart. The clock
runs from the expiry until the bridge has logged in again and subscribed (*resubscribed*), and
until every aggregate's snapshot is reconciled and its ``bridge.resync.completed``
acknowledged by Kafka (*reconciled*). Each repeat uses a fresh bridge whose session was stable:
the bridge deliberately backs off when sessions keep dying soon after login. The world holds
``RECOVERY_ALERTING`` alerting interactions, ``RECOVERY_HISTORY`` history items, the status
catalogue and two open assistance requests, so every snapshot has something to reconcile.

In the outage variant ICWS also refuses logins (503) for ``OUTAGE`` seconds; the clock starts
when it accepts them again, so it shows what the login backoff adds (shipped defaults: from
0.5 s, doubling, jittered, at most 30 s).

Start to ready: ``python -m bridge run`` as a service starts it, each time against a fresh
broker, timed from the exec until every subscription is reconciled (event path, from
/metrics) and until ``GET /readyz`` answers 200 (which also waits for the command consumer
to join its group), polled every 10 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench import procs
from bench.inproc import Acks, RunningBridge, bench_settings, running
from bench.memory import RESYNCED

RECOVERY_ALERTING = 50
RECOVERY_HISTORY = 1000
OUTAGE = 3.0  # seconds ICWS refuses logins in the outage variant


async def session_loss(repeats: int, log: Path) -> dict[str, Any]:
    """Expire the session of ``repeats`` fresh bridges; seconds to resubscribed, to reconciled.

    A fresh bridge each time: the bridge backs off when sessions keep dying soon after login
    (no login storms), and one loss after a stable session is the case to measure.
    """
    up: list[float] = []
    reconciled: list[float] = []
    after_outage: list[float] = []
    async with procs.broker() as kafka, procs.simulator() as sim:
        await sim.call("populate", alerting=RECOVERY_ALERTING, history=RECOVERY_HISTORY)
        await sim.call("assist", count=2)
        settings = bench_settings(kafka.bootstrap, sim.url)
        for _ in range(repeats):
            async with running(settings, Acks(timing=False), log) as bridge:
                first_up, done = await _lose_session(bridge, sim, outage=0.0)
                up.append(first_up)
                reconciled.append(done)
        for _ in range(max(repeats // 2, 1)):
            async with running(settings, Acks(timing=False), log) as bridge:
                after_outage.append((await _lose_session(bridge, sim, outage=OUTAGE))[1])
    return {
        "repeats": repeats,
        "entities": {
            "alerting": RECOVERY_ALERTING,
            "history": RECOVERY_HISTORY,
            "status_messages": 6,
            "assistance": 2,
        },
        "resubscribed_s": _spread(up),
        "reconciled_s": _spread(reconciled),
        "outage_s": OUTAGE,
        "reconciled_after_outage_s": _spread(after_outage),
    }


async def _lose_session(
    bridge: RunningBridge, sim: procs.SimulatorProcess, outage: float
) -> tuple[float, float]:
    """Expire the session (refusing logins for ``outage`` s); seconds to up, to reconciled.

    With an outage the clock starts when ICWS accepts logins again.
    """
    await bridge.until(bridge.settled, 60)
    aggregates = 4 - len(bridge.bridge.session.health.unavailable)
    resyncs, logins = bridge.resyncs, (await sim.call("state"))["logins"]
    session = bridge.bridge.session
    started = time.perf_counter()
    if outage:
        await sim.call("refuse")
    await sim.call("expire")
    await bridge.until(lambda: session.health.state != "up", 10, poll=0.0005)
    if outage:
        await asyncio.sleep(outage)
        started = time.perf_counter()
        await sim.call("accept")
    await bridge.until(lambda: session.health.state == "up", 60, poll=0.0005)
    first_up = time.perf_counter() - started
    await bridge.until(
        lambda: bridge.resyncs - resyncs >= aggregates and bridge.settled(), 60, poll=0.0005
    )
    done = time.perf_counter() - started
    if (await sim.call("state"))["logins"] <= logins:
        raise RuntimeError("the bridge did not log in again")
    return first_up, done


async def start_to_ready(repeats: int) -> dict[str, Any]:
    """Start ``bridge run`` ``repeats`` times, each against a fresh broker (a cold start)."""
    ready: list[float] = []
    reconciled: list[float] = []
    async with procs.simulator() as sim, aiohttp.ClientSession() as http:
        await sim.call("populate", alerting=RECOVERY_ALERTING, history=RECOVERY_HISTORY)
        for _ in range(repeats):
            async with (
                procs.broker() as kafka,
                procs.bridge_process(kafka.bootstrap, sim.url) as bridge,
            ):
                await procs.poll_until(
                    lambda: _reconciled(http, bridge),
                    60,
                    0.01,
                )
                reconciled.append(time.perf_counter() - bridge.started)
                ready.append(await _until_ready(http, bridge) - bridge.started)
    return {
        "repeats": repeats,
        "ready_s": _spread(ready),
        "reconciled_s": _spread(reconciled),
        "imports_s": await _import_seconds(),
    }


async def _import_seconds() -> float:
    """How long the interpreter takes to start and import the bridge (no work done)."""
    with procs.on_cpus(procs.BRIDGE_CPUS):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import bridge.__main__, bridge.app", cwd=procs.ROOT
        )
    await process.wait()
    return round(time.perf_counter() - started, 3)


async def _until_ready(http: aiohttp.ClientSession, bridge: procs.BridgeProcess) -> float:
    async with asyncio.timeout(60):
        while True:
            if bridge.process.returncode is not None:
                raise RuntimeError(f"the bridge exited with {bridge.process.returncode}")
            try:
                async with http.get(f"{bridge.health}/readyz") as response:
                    if response.status == 200:
                        return time.perf_counter()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.01)


async def _reconciled(http: aiohttp.ClientSession, bridge: procs.BridgeProcess) -> bool:
    return (await procs.metric(http, bridge.health, RESYNCED) or 0) >= 4


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }
