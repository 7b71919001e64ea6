"""Throughput: the bridge against a bare aiokafka producer sending the same records to one broker.

Bridge: the simulator queues ``count`` messages for the bridge's session while its SSE stream is
held silent (``faults.silence_sse``), then releases them at once; the clock runs from the
release until the bridge has read every message and Kafka has acknowledged every record they
produced (the publisher's buffer is empty). One message carries one entry, as the simulator's
deltas do, so this is the per-message worst case; a real server may batch several entries.

Baseline: right after each burst, a bare ``AIOKafkaProducer`` with the bridge's producer
options (acks=all, gzip, the configured linger, idempotence off) sends exactly the records the
bridge sent (same topics, keys, values and headers, so the same count and sizes) as fast as aiokafka
allows: every ``send`` first, then wait for every acknowledgement. Both run in this process, on
the bridge's core. Bursts and baselines alternate for ``rounds`` rounds, so both see the same
machine; the medians are reported.

CPU use of the bridge's process and of the simulator's during each burst shows which one was
the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import pstats
import resource
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench import procs
from bench.inproc import Acks, RunningBridge, bench_settings, running
from bridge.kafka import client_options
from bridge.settings import Settings

SentRecord = tuple[str, bytes | None, bytes | None, list[Any]]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(count: int, rounds: int, log: Path, profile: Path | None = None) -> dict[str, Any]:
    """Measure both, ``rounds`` times; the numbers for the report."""
    measured: list[dict[str, Any]] = []
    acks = Acks(keep_records=True, timing=False)
    async with _settled(acks, log) as (bridge, sim, settings):
        for number in range(rounds):
            burst = await _burst(bridge, sim, acks, count, profile if number == 0 else None)
            baseline = await _baseline(settings, burst.pop("sent"))
            measured.append({"bridge": burst, "baseline": baseline})
    return _summary(measured)


@contextlib.asynccontextmanager
async def _settled(
    acks: Acks, log: Path
) -> AsyncIterator[tuple[RunningBridge, procs.SimulatorProcess, Settings]]:
    """A broker, a simulator and a bridge in this loop, settled; all stopped after the block."""
    async with procs.broker() as kafka, procs.simulator() as sim:
        # The burst is queued while the stream is silent: keep the silence from looking dead.
        settings = bench_settings(kafka.bootstrap, sim.url, icws={"sse_idle_timeout_seconds": 600})
        async with running(settings, acks, log) as bridge:
            await bridge.until(bridge.settled, 60)
            yield bridge, sim, settings


async def _burst(
    bridge: RunningBridge,
    sim: procs.SimulatorProcess,
    acks: Acks,
    count: int,
    profile: Path | None,
) -> dict[str, Any]:
    await sim.call("silence")
    queued = (await sim.call("queue", count=count))["queued"]
    acks.records.clear()
    messages, events, records = bridge.messages, bridge.entity_events, bridge.records
    cpu = {"bridge": _own_cpu(), "simulator": procs.cpu_seconds(sim.pid)}
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    await sim.call("release")
    await bridge.until(
        lambda: bridge.messages - messages >= queued and bridge.bridge.publisher.depth == 0,
        limit=max(120.0, count / 200),
        poll=0.005,
    )
    seconds = time.perf_counter() - started
    if profiler and profile:
        profiler.disable()
        _write_profile(profiler, profile)
    sent = [(r.topic, r.key, r.value, list(r.headers)) for r in acks.records]
    return {
        "messages": queued,
        "events": int(bridge.entity_events - events),
        "records": int(bridge.records - records),
        "seconds": seconds,
        "cpu": {
            "bridge": (_own_cpu() - cpu["bridge"]) / seconds,
            "simulator": (procs.cpu_seconds(sim.pid) - cpu["simulator"]) / seconds,
        },
        "mean_record_bytes": sum(len(r[2] or b"") for r in sent) / max(len(sent), 1),
        "sent": sent,
    }


async def _baseline(settings: Settings, records: list[SentRecord]) -> dict[str, Any]:
    kafka = settings.kafka
    producer = AIOKafkaProducer(
        **client_options(kafka),
        acks="all",
        enable_idempotence=False,
        compression_type=kafka.compression_type,
        linger_ms=kafka.linger_ms,
    )
    await producer.start()
    try:
        for topic in {r[0] for r in records}:
            await producer.partitions_for(topic)  # metadata, as the warmed-up bridge had it
        cpu = _own_cpu()
        started = time.perf_counter()
        futures = [
            await producer.send(topic, value, key=key, headers=headers)
            for topic, key, value, headers in records
        ]
        await asyncio.gather(*futures)
        seconds = time.perf_counter() - started
        cpu = _own_cpu() - cpu
    finally:
        await producer.stop()
    return {"records": len(records), "seconds": seconds, "cpu": cpu / seconds}


async def own_work(
    count: int, rounds: int, log: Path, profile: Path | None = None
) -> dict[str, Any]:
    """The bridge's own work per event: the same bursts, with a producer that does no I/O.

    CPU seconds of this process (the bridge's, as the simulator and broker are other processes)
    per entity event, median of ``rounds`` bursts; Kafka's and aiokafka's share is left out.
    """
    per_event: list[float] = []
    acks = Acks(timing=False, no_io=True)
    async with _settled(acks, log) as (bridge, sim, _):
        for number in range(rounds):
            burst = await _burst(bridge, sim, acks, count, profile if number == 0 else None)
            per_event.append(burst["cpu"]["bridge"] * burst["seconds"] / burst["events"])
    return {
        "events": count,
        "us_per_event": round(statistics.median(per_event) * 1e6, 1),
        "rounds_us": [round(x * 1e6, 1) for x in per_event],
    }


def _summary(measured: list[dict[str, Any]]) -> dict[str, Any]:
    rounds = []
    for m in measured:
        bridge, baseline = m["bridge"], m["baseline"]
        events_per_record = bridge["events"] / max(bridge["records"], 1)
        bridge_rate = bridge["events"] / bridge["seconds"]
        baseline_rate = baseline["records"] / baseline["seconds"] * events_per_record
        rounds.append(
            {
                "bridge_events_per_second": round(bridge_rate),
                "baseline_events_per_second": round(baseline_rate),
                "ratio": round(bridge_rate / baseline_rate, 3),
                "bridge_cpu": round(bridge["cpu"]["bridge"], 2),
                "simulator_cpu": round(bridge["cpu"]["simulator"], 2),
                "baseline_cpu": round(baseline["cpu"], 2),
            }
        )
    first = measured[0]["bridge"]

    def median(name: str) -> float:
        return float(statistics.median(r[name] for r in rounds))

    return {
        "messages": first["messages"],
        "events": first["events"],
        "records": first["records"],
        "mean_record_bytes": round(first["mean_record_bytes"]),
        "bridge_events_per_second": round(median("bridge_events_per_second")),
        "bridge_records_per_second": round(
            median("bridge_events_per_second") * first["records"] / max(first["events"], 1)
        ),
        "baseline_events_per_second": round(median("baseline_events_per_second")),
        "baseline_records_per_second": round(
            median("baseline_events_per_second") * first["records"] / max(first["events"], 1)
        ),
        "ratio": round(median("ratio"), 3),
        "rounds": rounds,
    }


def _write_profile(profiler: cProfile.Profile, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(40)
    path.write_text(out.getvalue(), encoding="utf-8")
