"""``python -m bench``: the benchmarks of issues #8 and #15, as a table and as JSON.

Every part starts its own Tansu broker and ICWS simulator (on loopback) and stops them, so the
parts are independent and ``--only`` can pick some. ``make bench ARGS="..."`` passes options.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import fleet, latency, memory, procs, recovery, report, throughput

PARTS = ("throughput", "ownwork", "latency", "memory", "cache", "recovery", "startup", "fleet")
OUT = procs.ROOT / ".bench"


def parser() -> argparse.ArgumentParser:
    """The command line."""
    cli = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the bridge against a Tansu broker and the ICWS simulator on "
        "loopback: throughput against a bare aiokafka producer, added latency at a fixed rate, "
        "RSS with many live entities, recovery after a session loss, start-up time.",
    )
    cli.add_argument(
        "--count", type=int, default=40_000, help="messages per throughput burst (%(default)s)"
    )
    cli.add_argument(
        "--rounds", type=int, default=3, help="throughput rounds, median reported (%(default)s)"
    )
    cli.add_argument(
        "--rate", type=float, default=1000.0, help="latency: events per second (%(default)s)"
    )
    cli.add_argument(
        "--high-rate",
        type=float,
        default=5000.0,
        help="latency: the second, higher rate in events per second (%(default)s)",
    )
    cli.add_argument(
        "--duration", type=float, default=10.0, help="latency: seconds measured (%(default)s)"
    )
    cli.add_argument(
        "--entities", type=int, default=100_000, help="memory: live entities (%(default)s)"
    )
    cli.add_argument(
        "--repeats", type=int, default=5, help="recovery and start-up repeats (%(default)s)"
    )
    cli.add_argument(
        "--accounts", type=int, default=1000, help="fleet: ICWS accounts (%(default)s)"
    )
    cli.add_argument(
        "--fleet-rate",
        type=float,
        default=200.0,
        help="fleet: changes per second spread over the accounts (%(default)s)",
    )
    cli.add_argument(
        "--max-logins",
        type=int,
        default=None,
        help="fleet: icws.max_concurrent_logins for a tuned run (shipped default)",
    )
    cli.add_argument(
        "--only", action="append", choices=PARTS, help="run only this part (repeatable)"
    )
    cli.add_argument(
        "--json",
        type=Path,
        default=OUT / "results.json",
        help="where to write the results (%(default)s)",
    )
    cli.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="PATH",
        help="cProfile the first throughput burst and write the hot spots to PATH",
    )
    return cli


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen parts in turn; each part's numbers under its name."""
    parts = args.only or list(PARTS)
    log = OUT / "bridge.log"
    results: dict[str, Any] = {"machine": report.machine(), "options": _options(args)}
    procs.pin_self()
    for part in parts:
        started = time.perf_counter()
        print(f"bench: {part} ...", file=sys.stderr, flush=True)
        results.update(await _part(part, args, log))
        print(f"bench: {part} done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    results["targets"] = report.verdicts(results)
    return results


async def _part(part: str, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    if part == "throughput":
        return {"throughput": await throughput.run(args.count, args.rounds, log, args.profile)}
    if part == "ownwork":
        profile = args.profile.with_suffix(".ownwork.txt") if args.profile else None
        return {"ownwork": await throughput.own_work(args.count, args.rounds, log, profile)}
    if part == "latency":
        return {
            "latency": await latency.run(args.rate, args.duration, log),
            "latency_high": await latency.run(args.high_rate, args.duration, log),
        }
    if part == "memory":
        return {"memory": await memory.run(args.entities, log)}
    if part == "cache":
        return {"cache": await _cache(min(args.entities, 20_000))}
    if part == "fleet":
        return {
            "fleet": await fleet.run(
                args.accounts, args.fleet_rate, args.duration, log, args.max_logins
            )
        }
    if part == "recovery":
        return {"recovery": await recovery.session_loss(args.repeats, log)}
    return {"startup": await recovery.start_to_ready(max(args.repeats // 2, 1))}


async def _cache(entities: int) -> dict[str, Any]:
    # A fresh interpreter, so nothing else this process allocated is counted.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.cachesize",
        str(entities),
        cwd=procs.ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"bench.cachesize exited with {process.returncode}")
    measured: dict[str, Any] = json.loads(out)
    return measured


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        name: str(value) if isinstance(value, Path) else value for name, value in vars(args).items()
    }


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write the JSON; exit 0 (targets missed are reported, not errors)."""
    args = parser().parse_args(argv)
    results = asyncio.run(run(args))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report.table(results))
    print(f"\nresults: {args.json}")
    return 0
