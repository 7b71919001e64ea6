"""Latency: from the simulator writing a message to Kafka acknowledging its event, at a fixed rate.

The simulator produces ``rate`` messages per second on an absolute schedule over SSE, one entry
and so one entity event each (``bench.workload``), and notes the wall-clock time right after
each message's bytes were written to the socket. The bridge's producer notes the time each
event record's acknowledgement arrived (acks=all). Events are paired with messages by entity:
the n-th event of an entity belongs to the n-th message about it, as both sides keep order per
entity. *Added latency* = acknowledgement time - write time: loopback transfer, SSE decoding,
the core, the buffer, producer linger (5 ms by default) and the broker's round trip.

A warm-up second is sent first and not counted. The bridge's own histogram
(``icws_bridge_delivery_latency_seconds``, read to ack of the whole chunk) is reported beside
it as a cross-check.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import procs
from bench.inproc import Acks, bench_settings, running


async def run(
    rate: float, seconds: float, log: Path, kafka_settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Measure added latency at ``rate`` events per second for ``seconds``."""
    count = max(int(rate * seconds), 1)
    async with procs.broker() as kafka, procs.simulator() as sim:
        settings = bench_settings(kafka.bootstrap, sim.url, kafka=dict(kafka_settings or {}))
        acks = Acks()
        async with running(settings, acks, log) as bridge:
            await bridge.until(bridge.settled, 60)
            await _paced(bridge, sim, rate, max(int(rate), 1))  # warm-up
            since = (await sim.call("state"))["sent"]
            acks.times.clear()
            histogram = _histogram(bridge.bridge.metrics.delivery_latency)
            paced = await _paced(bridge, sim, rate, count)
            rows = (await sim.call("timings", since=since))["rows"]
            histogram = _minus(_histogram(bridge.bridge.metrics.delivery_latency), histogram)
            acknowledged = list(acks.times)
        contract = bridge.bridge.contract
    topics = {topic: aggregate for aggregate, topic in contract.event_topics.items()}
    latencies, unmatched = _pair(rows, acknowledged, topics)
    return {
        "rate": rate,
        "events": len(latencies),
        "unmatched": unmatched,
        "achieved_rate": round(paced["queued"] / paced["seconds"]),
        "transport": "sse",
        "linger_ms": settings.kafka.linger_ms,
        "added_ms": _summary(latencies),
        "bridge_histogram_p99_bucket_ms": _p99_bucket(histogram),
    }


async def _paced(bridge: Any, sim: procs.SimulatorProcess, rate: float, count: int) -> Any:
    messages = bridge.messages
    paced = await sim.call("paced", rate=rate, count=count)
    queued = paced["queued"]
    await bridge.until(
        lambda: bridge.messages - messages >= queued and bridge.bridge.publisher.depth == 0,
        limit=60,
    )
    return paced


def _pair(
    rows: list[list[Any]],
    acknowledged: list[tuple[str, bytes | None, int]],
    topics: Mapping[str, str],
) -> tuple[list[float], int]:
    """Milliseconds from write to acknowledgement per event; and how many found no partner."""
    acks: dict[tuple[str, str], deque[int]] = {}
    for topic, key, at in acknowledged:
        aggregate = topics.get(topic)
        if aggregate is not None and key is not None:
            # Per-user aggregates key by "<user>/<entity>" (the user percent-encoded, so without
            # a slash); the simulator names the entity alone.
            user, slash, entity = key.decode().partition("/")
            acks.setdefault((aggregate, entity if slash else user), deque()).append(at)
    latencies: list[float] = []
    unmatched = 0
    for written, aggregate, key in rows:
        queue = acks.get((aggregate, key))
        if not queue:
            unmatched += 1
            continue
        latencies.append((queue.popleft() - written) / 1e6)
    return latencies, unmatched


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(fraction: float) -> float:
        return round(ordered[min(int(fraction * len(ordered)), len(ordered) - 1)], 2)

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1], 2),
        "mean": round(statistics.fmean(ordered), 2),
        "min": round(ordered[0], 2),
    }


def _histogram(histogram: Any) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                buckets[float(sample.labels["le"])] = sample.value
    return buckets


def _minus(after: dict[float, float], before: dict[float, float]) -> dict[float, float]:
    return {le: count - before.get(le, 0.0) for le, count in after.items()}


def _p99_bucket(buckets: dict[float, float]) -> float | None:
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return None
    for le in sorted(buckets):
        if buckets[le] >= 0.99 * total:
            return le * 1000
    return None
