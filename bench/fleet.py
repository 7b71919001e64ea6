"""Fleet (issue #14): many ICWS accounts per process, their cost, latency and a replica's loss.

A contact centre of ``accounts`` simulated agents (``users_named("agent", N, ...)``) is served by a
simulator in its own process (``python -m bench.fleet``, driven by JSON lines like
``bench.simproc``) and read from an accounts directory of N files. Four readings:

* **start** - one ``bridge run`` process (shipped defaults, commands on): seconds from exec until
  ``/readyz`` is 200 (every held account up, every snapshot received, the consumer in its group),
  ``/accounts`` holds all N up and every account's resyncs are published (3 per account, plus the
  status catalogue's once);
* **idle** - that process's RSS and its CPU (``/proc/PID/stat`` utime+stime) over 20 s of quiet;
* **latency** - an in-process bridge holding the N accounts (commands off, as ``bench.latency``)
  while the lively scenario makes ``rate`` changes a second, spread over the users in rounds
  (``spread="cycle"``); written-to-acknowledged per entity, paired as ``bench.latency`` pairs them;
* **takeover** - two ``bridge run`` processes in one consumer group share the N accounts; one is
  SIGKILLed; seconds from the kill until the survivor's held count grows (the group noticed:
  the consumer's session timeout), and from then until it holds all N up.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench import latency, procs
from bench.inproc import Acks, bench_settings, running
from bench.memory import RESYNCED
from bench.simproc import TimedSent, drive, entries
from bridge.simulator import Simulator, SimulatorConfig
from bridge.simulator.config import users_named
from bridge.simulator.scenario import run_lively

PASSWORD = "fleet-Pa55word"  # noqa: S105 - a loopback simulator's made-up users
IDLE_SECONDS = 20.0
WARM_UP_SECONDS = 2.0


async def run(
    accounts: int, rate: float, seconds: float, log: Path, logins: int | None = None
) -> dict[str, Any]:
    """All four readings for ``accounts`` accounts; each part gets a fresh broker.

    ``logins``: ``icws.max_concurrent_logins`` instead of the shipped default (a tuned run).
    """
    users = sorted(users_named("agent", accounts, PASSWORD))
    result: dict[str, Any] = {"accounts": accounts, "max_concurrent_logins": logins}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        directory = Path(tmp)
        for user in users:
            (directory / user).write_text(PASSWORD + "\n", encoding="utf-8")
        extra = {"BRIDGE_ICWS__ACCOUNTS_DIR": str(directory)}
        tuned = {} if logins is None else {"max_concurrent_logins": logins}
        if logins is not None:
            extra["BRIDGE_ICWS__MAX_CONCURRENT_LOGINS"] = str(logins)
        async with (
            procs.simulator("bench.fleet", str(accounts)) as sim,
            aiohttp.ClientSession() as http,
        ):
            async with procs.broker() as kafka:
                result.update(await _start_and_idle(http, kafka.bootstrap, sim.url, extra, users))
            _progress(result)
            async with procs.broker() as kafka:
                result["latency"] = await _latency(
                    kafka.bootstrap, sim, {"accounts_dir": directory, **tuned}, rate, seconds, log
                )
            _progress(result["latency"])
            async with procs.broker() as kafka:
                result["takeover"] = await _takeover(http, kafka.bootstrap, sim.url, extra, users)
            _progress(result["takeover"])
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _progress(reading: dict[str, Any]) -> None:
    """Each reading as soon as it is taken (a later part that fails loses nothing)."""
    print(f"bench: fleet: {json.dumps(reading)}", file=sys.stderr, flush=True)


async def _start_and_idle(
    http: aiohttp.ClientSession, kafka: str, icws: str, extra: dict[str, str], users: list[str]
) -> dict[str, Any]:
    async with procs.bridge_process(kafka, icws, extra) as bridge:
        ready = await _until(lambda: _ready(http, bridge.health), bridge, 300)
        await _until(lambda: _all_up(http, bridge.health, len(users)), bridge, 300)
        await _until(lambda: _resynced(http, bridge.health, 3 * len(users) + 1), bridge, 300)
        reconciled = time.perf_counter() - bridge.started
        await asyncio.sleep(2.0)  # let the last records and log lines go out before idling
        before = procs.cpu_seconds(bridge.pid)
        await asyncio.sleep(IDLE_SECONDS)
        cpu = (procs.cpu_seconds(bridge.pid) - before) / IDLE_SECONDS
        return {
            "start": {
                "ready_s": round(ready - bridge.started, 2),
                "reconciled_s": round(reconciled, 2),
                "resyncs": await procs.metric(http, bridge.health, RESYNCED),
            },
            "idle": {**procs.memory_mb(bridge.pid), "cpu_share": round(cpu, 4)},
        }


async def _latency(
    kafka: str,
    sim: procs.SimulatorProcess,
    icws: dict[str, Any],
    rate: float,
    seconds: float,
    log: Path,
) -> dict[str, Any]:
    settings = bench_settings(kafka, sim.url, icws=icws)
    acks = Acks()
    async with running(settings, acks, log) as bridge:
        await bridge.until(bridge.settled, 300, poll=0.05)
        await _lively(bridge, sim, rate, WARM_UP_SECONDS)
        since = (await sim.call("state"))["sent"]
        acks.times.clear()
        lively = await _lively(bridge, sim, rate, seconds)
        rows = (await sim.call("timings", since=since))["rows"]
        acknowledged = list(acks.times)
        contract = bridge.bridge.contract
    topics = {topic: aggregate for aggregate, topic in contract.event_topics.items()}
    latencies, unmatched = latency._pair(rows, acknowledged, topics)
    return {
        "rate": rate,
        "achieved_rate": round(lively["steps"] / lively["seconds"]),
        "users_touched": lively["users"],
        "events": len(latencies),
        "unmatched": unmatched,
        "added_ms": latency._summary(latencies),
    }


async def _lively(bridge: Any, sim: procs.SimulatorProcess, rate: float, seconds: float) -> Any:
    """Run the scenario; then wait until the bridge read every message and published it all."""
    read, sent = bridge.messages, (await sim.call("state"))["sent"]
    answer = await sim.call("lively", rate=rate, seconds=seconds)
    count = (await sim.call("state"))["sent"] - sent
    await bridge.until(
        lambda: bridge.messages - read >= count and bridge.bridge.publisher.depth == 0, 60
    )
    return answer


async def _takeover(
    http: aiohttp.ClientSession, kafka: str, icws: str, extra: dict[str, str], users: list[str]
) -> dict[str, Any]:
    """The first replica holds every account; a second joins the group; the first is killed."""
    result: dict[str, Any] = {}
    async with procs.bridge_process(kafka, icws, extra) as one:
        await _until(lambda: _all_up(http, one.health, len(users)), one, 300)
        async with procs.bridge_process(kafka, icws, extra) as two:
            started = time.perf_counter()

            async def shared() -> bool:
                held = [await _held(http, b.health) for b in (one, two)]
                return all(held) and sum(len(h) for h in held) == len(users)

            try:
                await _until(shared, two, 180)
            except TimeoutError:
                result["error"] = "the two replicas did not settle on sharing the accounts"
                result["replicas"] = [await _states(http, b.health) for b in (one, two)]
                return result
            result["second_joined_to_shared_s"] = round(time.perf_counter() - started, 2)
            result.update(await _kill(http, one, two, len(users)))
    return result


async def _kill(
    http: aiohttp.ClientSession, one: procs.BridgeProcess, two: procs.BridgeProcess, count: int
) -> dict[str, Any]:
    before = len(await _held(http, two.health))
    os.kill(one.pid, signal.SIGKILL)
    killed = time.perf_counter()
    await one.process.wait()

    async def grown() -> bool:
        return len(await _held(http, two.health, up=False)) > before

    await _until(grown, two, 120, every=0.05)
    noticed = time.perf_counter()
    try:
        await _until(lambda: _all_up(http, two.health, count), two, 300, every=0.05)
        up = time.perf_counter()
        await _until(lambda: _ready(http, two.health), two, 300, every=0.05)
    except TimeoutError:
        return {"error": "not all up again", "replicas": [await _states(http, two.health)]}
    return {
        "victim_held": count - before,
        "kill_to_noticed_s": round(noticed - killed, 2),
        "noticed_to_all_up_s": round(up - noticed, 2),
        "noticed_to_ready_s": round(time.perf_counter() - noticed, 2),
    }


async def _states(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    """How a replica's held accounts stand, and its readiness detail (for a failed run)."""
    _, accounts = await _get(http, f"{base}/accounts")
    _, ready = await _get(http, f"{base}/readyz")
    states = Counter(a["state"] for a in (accounts or {}).get("accounts", []))
    return {"states": dict(states), "readyz": ready}


# --- polling the bridge processes ------------------------------------------------------------


async def _until(
    check: Any, bridge: procs.BridgeProcess, limit: float, every: float = 0.2
) -> float:
    """Poll ``check`` until True (RuntimeError if the bridge exits); the time it held."""

    async def reached() -> bool:
        if bridge.process.returncode is not None:
            raise RuntimeError(f"the bridge exited with {bridge.process.returncode}")
        return bool(await check())

    await procs.poll_until(reached, limit, every)
    return time.perf_counter()


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    try:
        async with http.get(url) as response:
            return response.status, await response.json(content_type=None)
    except (aiohttp.ClientError, json.JSONDecodeError):
        return 0, None


async def _ready(http: aiohttp.ClientSession, base: str) -> bool:
    return (await _get(http, f"{base}/readyz"))[0] == 200


async def _held(http: aiohttp.ClientSession, base: str, up: bool = True) -> list[str]:
    status, body = await _get(http, f"{base}/accounts")
    if status != 200:
        return []
    return [a["user"] for a in body["accounts"] if not up or a["state"] == "up"]


async def _all_up(http: aiohttp.ClientSession, base: str, count: int) -> bool:
    return len(await _held(http, base)) >= count


async def _resynced(http: aiohttp.ClientSession, base: str, count: int) -> bool:
    return (await procs.metric(http, base, RESYNCED) or 0) >= count


# --- the contact centre in a process of its own ----------------------------------------------


class Centre:
    """The simulator side: its state, the lively scenario on demand, per-user send times."""

    def __init__(self, sim: Simulator, sent: TimedSent, users: list[str]) -> None:
        self.sim = sim
        self.sent = sent
        self.users = users
        self.seed = 0

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command["cmd"]
        if name == "state":
            return {"sessions": len(self.sim.sessions), "sent": len(self.sent)}
        if name == "lively":
            self.seed += 1
            started = time.perf_counter()
            scenario = await run_lively(
                self.sim,
                self.users,
                float(command["rate"]),
                self.seed,
                duration=float(command["seconds"]),
                spread="cycle",
            )
            took = time.perf_counter() - started
            return {"steps": scenario.steps, "seconds": took, "users": len(scenario.touched)}
        if name == "timings":
            return {"rows": self._rows(int(command["since"]))}
        raise ValueError(f"unknown command {name!r}")

    def _rows(self, since: int) -> list[list[Any]]:
        """(written at, aggregate, entity) per entry, as ``bench.latency._pair`` pairs them."""
        return [
            [self.sent.times[i], aggregate, key]
            for i in range(since, len(self.sent))
            for aggregate, key in entries(self.sent[i][1])
        ]


async def serve(accounts: int) -> None:
    """Serve ``accounts`` agents; answer one JSON line per command line on stdin."""
    users = users_named("agent", accounts, PASSWORD)
    sim = Simulator(SimulatorConfig(users=users, sse_keepalive_seconds=5.0))
    sent = TimedSent()
    await drive(sim, sent, Centre(sim, sent, sorted(users)).handle)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
