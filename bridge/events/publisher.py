"""Kafka producer side: a bounded buffer, keyed sends with acks=all, and nothing dropped.

Records wait in a bounded buffer; ``put`` waits while it is full, which is what stops the pump
from reading ICWS. The sender takes the buffer in chunks and sends each chunk in two phases:
first the event and lifecycle records, then, once *all* of those are acknowledged, the state
records. So the compacted state topics, which the bridge reconciles against after a restart,
never run ahead of the event topics: a crash can only make the bridge publish an event again
(with the same id), never skip one. A chunk's state phase shares its send with the next chunk's
event phase; the next chunk's state records wait for both, so each key's records stay in order.

A failed send is retried, and with it every later record of the same key in the chunk, so the
newest record of a key is always the last one written. Records leave the buffer only when Kafka
has acknowledged them. The producer is the Kafka adapter's (or any :class:`RecordSender`).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections import deque
from collections.abc import Callable, Sequence
from itertools import repeat

from prometheus_client import Histogram

from bridge import retries
from bridge.core.events import Record
from bridge.events import allocator
from bridge.kafka import ProducerFactory, RecordSender, producers
from bridge.logs import get_logger
from bridge.metrics import Metrics
from bridge.readiness import Check
from bridge.settings import KafkaSettings, PipelineSettings

# Records per send cycle (at most; a cycle takes what is buffered). Bigger cycles fill the
# producer's batches better: from 2,000 to 5,000 the Kafka cost per record fell by a tenth
# (BENCHMARKS.md). The buffer bound (pipeline.buffer_size) is unchanged.
CHUNK = 5000

# How many of an event partition's last records may lack their state records after a crash: a
# chunk's state records go with the next chunk's events, so the events of both may be
# acknowledged when the process dies (bridge.events.restore reads this much of each end).
UNCHECKED = 2 * CHUNK

# A buffer this deep is a backlog: once it has drained, the C heap's freed pages are returned to
# the system (bridge.events.allocator). Steady traffic never builds one, so never pays for it.
BACKLOG = CHUNK


class _Unsent(Exception):
    """Some records of a phase were not acknowledged: send them again after a backoff."""


Pending = tuple[Record, float]
"""A buffered record and when its ICWS message was read (a tuple: one is made per record)."""


def observe(histogram: Histogram, amount: float, count: int) -> None:
    """``histogram.observe(amount)`` ``count`` times over, in one step.

    prometheus_client has no weighted observation; this does what ``observe`` does (the sum,
    then the first bucket that holds the amount) with ``count`` at once. A test holds it equal
    to ``count`` observations, should the library change.
    """
    if count == 1:
        histogram.observe(amount)
        return
    histogram._sum.inc(amount * count)
    for i, bound in enumerate(histogram._upper_bounds):
        if amount <= bound:
            histogram._buckets[i].inc(count)
            break


class Publisher:
    """Owns the producer and the buffer between the pump and Kafka."""

    def __init__(
        self,
        kafka: KafkaSettings,
        pipeline: PipelineSettings,
        metrics: Metrics,
        new_producer: ProducerFactory | None = None,
        release: Callable[[], object] = allocator.release_free_memory,
    ) -> None:
        self._kafka = kafka
        self._new_producer = new_producer
        self._pipeline = pipeline
        self._metrics = metrics
        self._log = get_logger("bridge.events.publisher")
        self._buffer: deque[Pending] = deque()
        self._changed = asyncio.Condition()
        self._producer: RecordSender | None = None
        self._stopping = False
        self.last_delivery = time.time()
        self.outage_since: float | None = None
        self.problem = "not connected yet"  # why Kafka could not be started, until it was
        self._put = 0  # records ever put, and ever acknowledged: marks to wait for
        self._acknowledged = 0
        self._release = release  # gives freed memory back once a backlog drained
        self._deepest = 0  # the buffer's greatest depth since the last release
        metrics.buffer_capacity.set(pipeline.buffer_size)

    # --- producer lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Start the producer; raises KafkaError while Kafka cannot be reached."""
        # The adapter's factory is looked up now, not at import, so the benchmark can swap it.
        producer = (self._new_producer or producers.new_producer)(self._kafka)
        await producer.start()
        self._producer = producer
        self.last_delivery = time.time()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    # --- the buffer ----------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return len(self._buffer)

    async def put(self, records: Sequence[Record], read_at: float) -> None:
        """Add the records of one ICWS message; wait while the buffer is full."""
        if not records:
            return
        async with self._changed:
            if self.depth + len(records) > self._pipeline.buffer_size and self.depth:
                started = time.monotonic()
                await self._changed.wait_for(
                    lambda: (
                        self.depth == 0 or self.depth + len(records) <= self._pipeline.buffer_size
                    )
                )
                self._metrics.blocked_seconds.inc(time.monotonic() - started)
            self._buffer.extend(zip(records, repeat(read_at)))
            self._put += len(records)
            self._deepest = max(self._deepest, self.depth)
            self._metrics.buffer_depth.set(self.depth)
            self._changed.notify_all()

    async def drained(self) -> None:
        """Wait until everything put so far is acknowledged."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.depth == 0)

    async def flushed(self) -> None:
        """Wait until the records put before this call are acknowledged (not later ones)."""
        mark = self._put
        async with self._changed:
            await self._changed.wait_for(lambda: self._acknowledged >= mark)

    # --- the sender ----------------------------------------------------------------------

    async def run(self) -> None:
        """Send buffered records until cancelled; never gives a record up.

        A chunk's state records go in the next cycle, with the next chunk's events: one
        produce request per cycle where there were two round trips in turn, so a record read
        while a chunk is out waits for one of them, not two (BENCHMARKS.md, issue #15
        latency). Owed state records with nothing new to go with them go alone, at once.
        """
        owed: list[Pending] = []  # the held chunk's state records; its events are acknowledged
        held: list[Pending] = []  # that chunk, at the buffer's head; empty when none is owed
        while True:
            async with self._changed:
                if not owed:
                    await self._changed.wait_for(lambda: self.depth > 0)
                end = min(len(held) + CHUNK, self.depth)
                chunk = [self._buffer[i] for i in range(len(held), end)]
            await self._deliver(owed + [p for p in chunk if p[0].label != "state"])
            await self._acknowledge(held)
            owed = [p for p in chunk if p[0].label == "state"]
            held = chunk
            if not owed:
                await self._acknowledge(held)
                held = []

    async def _acknowledge(self, chunk: list[Pending]) -> None:
        """The buffer's first records, ``chunk``, are acknowledged, state records included."""
        if not chunk:
            return
        now = time.time()
        # One observation per event, made once per read time: a chunk's events come from a few
        # batches, each read at one moment, and an observation costs more than a record's send.
        reads = collections.Counter(read_at for record, read_at in chunk if record.label != "state")
        for read_at, count in reads.items():
            observe(self._metrics.delivery_latency, max(now - read_at, 0.0), count)
        async with self._changed:
            for _ in chunk:
                self._buffer.popleft()
            self._acknowledged += len(chunk)
            self._metrics.buffer_depth.set(self.depth)
            self._changed.notify_all()
        if not self.depth and self._deepest >= BACKLOG:
            self._deepest = 0
            self._release()

    async def _deliver(self, cycle: list[Pending]) -> None:
        """Send one cycle's records until Kafka has them all."""
        if not cycle:  # a chunk of state records alone: they go in the next cycle
            return
        # The usual case (Kafka took it all) enters no retry loop: each stamina loop leaves
        # ~45 objects of cyclic garbage, per chunk, which is per event with 1,000 accounts.
        left = await self._send(cycle)
        if left:
            await self._resend(left)
        self._delivered(time.time(), len(cycle))

    async def _resend(self, left: list[Pending]) -> None:
        """Until Kafka took what a failed send left; each retry sends only what is still owed."""
        async for attempt in retries.forever(_Unsent, retries.KAFKA):
            with attempt:
                if attempt.num > 1:  # the first attempt was the send that failed: wait first
                    left = await self._send(left)
                if left:
                    raise _Unsent

    async def _send(self, batch: list[Pending]) -> list[Pending]:
        """Send a batch; return what must be sent again (failures and later same-key records)."""
        producer = self._producer
        assert producer is not None, "start() the publisher first"
        results = await producer.send_all([record for record, _ in batch])
        retry: list[Pending] = []
        poisoned: set[tuple[str, bytes | None]] = set()
        published = {"event": 0, "state": 0}
        for pending, result in zip(batch, results, strict=True):
            record = pending[0]
            slot = (record.topic, record.key)
            if result is not None or slot in poisoned:
                poisoned.add(slot)
                retry.append(pending)
            else:
                published["state" if record.label == "state" else "event"] += 1
        for kind, count in published.items():
            if count:  # counted per batch: labels() per record cost more than the send
                self._metrics.records_published.labels(kind=kind).inc(count)
        if retry:
            self._metrics.publish_errors.inc(len(retry))
            self._outage(retry, results)
        return retry

    def _outage(self, retry: list[Pending], results: list[BaseException | None]) -> None:
        if self.outage_since is None:
            self.outage_since = time.time()
            error = next((r for r in results if r is not None), None)
            self._log.error(
                "kafka.outage.started",
                held=self.depth,
                failed=len(retry),
                error=str(error) if error is not None else "unknown",
            )

    def _delivered(self, now: float, count: int) -> None:
        self.last_delivery = now
        self._metrics.last_delivery.set(now)
        if self.outage_since is not None:
            self._log.info(
                "kafka.outage.ended",
                seconds=round(now - self.outage_since, 3),
                delivered=count,
                held=self.depth - count,
            )
            self.outage_since = None

    def check(self, now: float) -> Check:
        """Readiness: delivering, or why not (start-up problem, or an outage)."""
        if not self.delivering(now):
            return Check(False, self.problem or f"no delivery for {now - self.last_delivery:.0f}s")
        return Check(True, f"{self.depth} records buffered")

    def delivering(self, now: float) -> bool:
        """False after ``outage_seconds`` with records waiting and none acknowledged."""
        if self._producer is None:
            return False
        stalled = now - self.last_delivery > self._pipeline.outage_seconds
        return not (self.depth and stalled)
