"""The benchmark's other processes: broker, simulator, a bridge of its own; CPU pinning and RSS.

On a machine with two or more cores the benchmark gives core 0 to the bridge (the in-process
bridge and the baseline producer run in the benchmark's own process; the bridge under test for
RSS and start-up is a child) and the last core to the Tansu broker and the simulator, so the
bridge's numbers are "on one core" as the targets are stated. Children inherit the CPU set of
the thread that starts them, which is how each gets its core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.simproc import PASSWORD, USER
from bridge.embedded_broker import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def on_cpus(cpus: set[int]) -> Iterator[None]:
    """Run the block (and the children it starts) on ``cpus``, then come back."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


ALL_CPUS = set(os.sched_getaffinity(0))
BRIDGE_CPUS = {min(ALL_CPUS)}
HELPER_CPUS = {max(ALL_CPUS)}


def pin_self() -> None:
    """Put the benchmark's own process (the in-process bridge) on the bridge's core."""
    os.sched_setaffinity(0, BRIDGE_CPUS)


async def poll_until(check: Callable[[], Awaitable[bool]], limit: float, every: float) -> None:
    """Call ``check`` every ``every`` seconds until it says True; TimeoutError after ``limit``."""
    async with asyncio.timeout(limit):
        while True:
            if await check():
                return
            await asyncio.sleep(every)


# --- broker ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def broker() -> AsyncIterator[EmbeddedBroker]:
    """A fresh Tansu broker on the helpers' core."""
    instance = EmbeddedBroker()
    with on_cpus(HELPER_CPUS):
        await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


# --- simulator -------------------------------------------------------------------------------


class SimulatorProcess:
    """Drives ``bench.simproc`` over its stdin and stdout."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self._process = process
        self.url = url
        self.pid = process.pid

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one command; its answer, or RuntimeError when the simulator reports a failure."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        await stdin.drain()
        line = await stdout.readline()
        if not line:
            raise RuntimeError(f"simulator process ended during {cmd!r}")
        answer: dict[str, Any] = json.loads(line)
        if not answer.pop("ok", False):
            raise RuntimeError(f"simulator: {cmd}: {answer.get('error')}")
        return answer

    async def until(self, check: str, value: int, limit: float) -> dict[str, Any]:
        """Poll the simulator's state until ``state[check] >= value``."""
        state: dict[str, Any] = {}

        async def reached() -> bool:
            nonlocal state
            state = await self.call("state")
            return bool(state[check] >= value)

        await poll_until(reached, limit, 0.02)
        return state


@contextlib.asynccontextmanager
async def simulator(*argv: str) -> AsyncIterator[SimulatorProcess]:
    """The simulator in a child process on the helpers' core; stopped on exit.

    ``argv``: another driver module and its arguments (``"bench.fleet", "1000"``), not
    ``bench.simproc``.
    """
    with on_cpus(HELPER_CPUS):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            *(argv or ("bench.simproc",)),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=1 << 26,
        )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            first = await process.stdout.readline()
        if not first:
            raise RuntimeError("the simulator process did not start")
        yield SimulatorProcess(process, json.loads(first)["url"])
    finally:
        await _end(process, quit_line=True)


async def _end(process: asyncio.subprocess.Process, quit_line: bool = False) -> None:
    if process.returncode is not None:
        return
    if quit_line and process.stdin is not None:
        with contextlib.suppress(ConnectionError):
            process.stdin.write(b'{"cmd":"quit"}\n')
            await process.stdin.drain()
    else:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()


# --- a bridge in its own process -------------------------------------------------------------


def bridge_env(kafka: str, icws: str, health_port: int, **extra: str) -> dict[str, str]:
    """Environment for ``python -m bridge run`` against the benchmark's broker and simulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(
        {
            "BRIDGE_CONFIG_FILE": str(ROOT / "config" / "bridge.yaml"),
            "BRIDGE_ICWS__SERVERS": icws,
            "BRIDGE_ICWS__USERNAME": USER,
            "BRIDGE_ICWS__PASSWORD": PASSWORD,
            "BRIDGE_KAFKA__BOOTSTRAP_SERVERS": kafka,
            "BRIDGE_KAFKA__ENABLE_IDEMPOTENCE": "false",
            "BRIDGE_HEALTH__HOST": "127.0.0.1",
            "BRIDGE_HEALTH__PORT": str(health_port),
            "BRIDGE_LOG__LEVEL": "WARNING",
            "BRIDGE_LOG__FORMAT": "json",
        }
    )
    env.update(extra)
    return env


@dataclass
class BridgeProcess:
    """A ``python -m bridge run`` child and where its health server listens."""

    process: asyncio.subprocess.Process
    health: str
    started: float

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.asynccontextmanager
async def bridge_process(
    kafka: str, icws: str, extra: Mapping[str, str] | None = None, log: Path | None = None
) -> AsyncIterator[BridgeProcess]:
    """Start the bridge as a service would run it, on the bridge's core; SIGTERM on exit.

    Its log lines (stderr) go to ``log`` when given (appended), else nowhere.
    """
    port = free_port()
    env = bridge_env(kafka, icws, port, **dict(extra or {}))
    errors = log.open("ab") if log is not None else None
    with on_cpus(BRIDGE_CPUS):
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            "run",
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=errors or asyncio.subprocess.DEVNULL,
        )
    try:
        yield BridgeProcess(process, f"http://127.0.0.1:{port}", started)
    finally:
        await _end(process)
        if errors is not None:
            errors.close()


# --- memory ----------------------------------------------------------------------------------


def memory_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident set size of a process, in MB (10^6 bytes)."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024 / 1e6
    return {"rss_mb": values["VmRSS"], "peak_rss_mb": values["VmHWM"]}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def metric(http: aiohttp.ClientSession, base: str, name: str) -> float | None:
    """The sum of the samples called ``name`` (or exactly ``name{...}``) on ``base``/metrics."""
    try:
        async with http.get(f"{base}/metrics") as response:
            text = await response.text()
    except aiohttp.ClientError:
        return None
    found = None
    for line in text.splitlines():
        sample, _, number = line.rpartition(" ")
        if sample == name or (sample.startswith(name + "{") and "{" not in name):
            found = (found or 0.0) + float(number)
    return found
