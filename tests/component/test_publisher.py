"""The publisher against a fake producer: per-key retry, and events acknowledged before state."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry, Histogram

from bridge.core.events import Record
from bridge.errors import KafkaError
from bridge.events.publisher import BACKLOG, Publisher, observe
from bridge.kafka import RecordSender
from bridge.metrics import create
from bridge.readiness import Check
from bridge.settings import KafkaSettings, PipelineSettings


class FakeProducer:
    """Acknowledges every record except those whose value is scripted to fail (once each)."""

    def __init__(self, fail_once: Sequence[bytes] = ()) -> None:
        self.calls: list[list[bytes | None]] = []  # the values of each send_all, in order
        self.acknowledged: list[bytes | None] = []
        self._fail_once = set(fail_once)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send_all(self, records: Sequence[Record]) -> list[BaseException | None]:
        self.calls.append([record.value for record in records])
        results: list[BaseException | None] = []
        for record in records:
            if record.value in self._fail_once:
                self._fail_once.discard(record.value)
                results.append(KafkaError("send failed: simulated"))
            else:
                self.acknowledged.append(record.value)
                results.append(None)
        return results

    async def send_and_wait(self, record: Record) -> None:
        raise AssertionError("the publisher sends lists of records")


def event(key: str, value: str) -> Record:
    """An event record of ``key`` on the event topic."""
    return Record("events", key.encode(), value.encode(), (), "interaction.changed")


def state(key: str, value: str) -> Record:
    """A state record (checkpoint) of ``key`` on the state topic."""
    return Record("state", key.encode(), value.encode(), (), "state")


class Releases:
    """Counts the publisher's calls to give freed memory back."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> bool:
        self.count += 1
        return True


async def publish(
    producer: RecordSender, *puts: list[Record], release: Releases | None = None
) -> None:
    """Put each list as one message, each acknowledged before the next is put."""

    def factory(kafka: KafkaSettings, *, awaited: bool = False) -> RecordSender:
        assert not awaited, "the event side never asks for the command side's producer"
        return producer

    publisher = Publisher(
        KafkaSettings(), PipelineSettings(), create(), factory, release=release or Releases()
    )
    await publisher.start()
    sender = asyncio.create_task(publisher.run())
    try:
        async with asyncio.timeout(10):
            for records in puts:
                await publisher.put(records, read_at=0.0)
                await publisher.drained()
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await publisher.stop()


class TestPerKeyRetry:
    """A failed record is sent again with every later record of its key, in order."""

    async def test_failed_record_and_later_same_key_records_are_resent_in_order(self) -> None:
        """a1 fails: a1, a2, a3 are sent again in that order; b's records are not."""
        producer = FakeProducer(fail_once=[b"a1"])
        records = [event("a", "a1"), event("b", "b1"), event("a", "a2"), event("b", "b2")]
        records.append(event("a", "a3"))

        await publish(producer, records)

        assert producer.calls == [[b"a1", b"b1", b"a2", b"b2", b"a3"], [b"a1", b"a2", b"a3"]]

    async def test_earlier_records_of_the_key_are_not_resent(self) -> None:
        """a2 fails: a1 (acknowledged before it) stays sent; a2 and a3 go again."""
        producer = FakeProducer(fail_once=[b"a2"])
        records = [event("a", "a1"), event("a", "a2"), event("b", "b1"), event("a", "a3")]

        await publish(producer, records)

        assert producer.calls == [[b"a1", b"a2", b"b1", b"a3"], [b"a2", b"a3"]]

    async def test_newest_record_of_each_key_is_acknowledged_last(self) -> None:
        """After the retry, the last acknowledgement of each key is its newest record."""
        producer = FakeProducer(fail_once=[b"a1", b"b2"])
        records = [event("a", "a1"), event("b", "b1"), event("a", "a2"), event("b", "b2")]

        await publish(producer, records)

        last = {value[:1]: value for value in producer.acknowledged if value}
        assert last == {b"a": b"a2", b"b": b"b2"}
        assert sorted(v for v in producer.acknowledged if v) == [b"a1", b"a2", b"a2", b"b1", b"b2"]


class TestEventsBeforeState:
    """No state record is sent before every event record of the chunk is acknowledged."""

    async def test_state_records_wait_for_the_retried_events(self) -> None:
        """An event fails once: the state records go only after its retry is acknowledged."""
        producer = FakeProducer(fail_once=[b"b1"])
        records = [event("a", "a1"), state("a", "sa1"), event("b", "b1"), state("b", "sb1")]

        await publish(producer, records)

        assert producer.calls == [[b"a1", b"b1"], [b"b1"], [b"sa1", b"sb1"]]

    async def test_a_failed_state_record_is_retried_without_resending_events(self) -> None:
        """A state record fails once: it is sent again alone; no event goes twice."""
        producer = FakeProducer(fail_once=[b"sa1"])
        records = [event("a", "a1"), state("a", "sa1"), event("b", "b1"), state("b", "sb1")]

        await publish(producer, records)

        assert producer.calls == [[b"a1", b"b1"], [b"sa1", b"sb1"], [b"sa1"]]


class GatedProducer(FakeProducer):
    """A FakeProducer whose first send waits for the test's gate: a chunk held in flight."""

    def __init__(self, fail_once: Sequence[bytes] = ()) -> None:
        super().__init__(fail_once)
        self.sending = asyncio.Event()  # set once the first send is waiting
        self.gate = asyncio.Event()

    async def send_all(self, records: Sequence[Record]) -> list[BaseException | None]:
        """The first send waits at the gate; every send is then the FakeProducer's."""
        if not self.calls and not self.sending.is_set():
            self.sending.set()
            await self.gate.wait()
        return await super().send_all(records)


async def publish_during_first_send(
    producer: GatedProducer, first: list[Record], second: list[Record]
) -> None:
    """Put ``first``; put ``second`` while the first send is out; then let Kafka answer."""
    publisher = Publisher(KafkaSettings(), PipelineSettings(), create(), lambda *_a, **_k: producer)
    await publisher.start()
    sender = asyncio.create_task(publisher.run())
    try:
        async with asyncio.timeout(10):
            await publisher.put(first, read_at=0.0)
            await producer.sending.wait()
            await publisher.put(second, read_at=0.0)
            producer.gate.set()
            await publisher.drained()
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)


class TestStateRecordsShareTheNextSend:
    """A chunk's state records go with the next chunk's events, and each key stays in order."""

    async def test_the_next_chunks_events_go_with_the_owed_state_records(self) -> None:
        """b1 came while a1 was out: sa1 and b1 share one send, then sb1 goes alone."""
        producer = GatedProducer()

        await publish_during_first_send(
            producer, [event("a", "a1"), state("a", "sa1")], [event("b", "b1"), state("b", "sb1")]
        )

        assert producer.calls == [[b"a1"], [b"sa1", b"b1"], [b"sb1"]]

    async def test_a_failed_owed_state_record_goes_before_the_keys_next_state_record(
        self,
    ) -> None:
        """sa1 fails beside a2: it is sent again before sa2, so a's newest state lands last."""
        producer = GatedProducer(fail_once=[b"sa1"])

        await publish_during_first_send(
            producer, [event("a", "a1"), state("a", "sa1")], [event("a", "a2"), state("a", "sa2")]
        )

        assert producer.calls == [[b"a1"], [b"sa1", b"a2"], [b"sa1"], [b"sa2"]]
        states = [value for value in producer.acknowledged if value and value.startswith(b"s")]
        assert states == [b"sa1", b"sa2"]

    async def test_state_records_wait_for_their_chunks_retried_events(self) -> None:
        """b1 fails beside sa1: sb1 goes only after b1's retry is acknowledged."""
        producer = GatedProducer(fail_once=[b"b1"])

        await publish_during_first_send(
            producer, [event("a", "a1"), state("a", "sa1")], [event("b", "b1"), state("b", "sb1")]
        )

        assert producer.calls == [[b"a1"], [b"sa1", b"b1"], [b"b1"], [b"sb1"]]


class TestCheckAndFlushed:
    """The publisher's readiness check and its wait for what was put so far."""

    async def test_check_says_why_kafka_is_not_delivering_then_ok(self) -> None:
        """Before start: not ok with the start-up problem; started: ok, counting the buffer."""
        producer = FakeProducer()
        publisher = Publisher(
            KafkaSettings(), PipelineSettings(), create(), lambda *_a, **_k: producer
        )
        publisher.problem = "kafka:9092 unreachable"
        assert publisher.check(0.0) == Check(False, "kafka:9092 unreachable")
        await publisher.start()
        publisher.problem = ""
        await publisher.put([event("a", "a1")], read_at=0.0)
        assert publisher.check(publisher.last_delivery) == Check(True, "1 records buffered")

    async def test_flushed_waits_until_what_was_put_is_acknowledged(self) -> None:
        """flushed() does not return while the records put before it wait for Kafka."""
        producer = FakeProducer()
        publisher = Publisher(
            KafkaSettings(), PipelineSettings(), create(), lambda *_a, **_k: producer
        )
        await publisher.start()
        await publisher.put([event("a", "a1")], read_at=0.0)
        flushing = asyncio.create_task(publisher.flushed())
        for _ in range(3):
            await asyncio.sleep(0)  # let it run: nothing sends yet
        assert not flushing.done()
        sender = asyncio.create_task(publisher.run())
        try:
            async with asyncio.timeout(10):
                await flushing
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        assert b"a1" in producer.acknowledged


class TestGarbage:
    """What a delivered chunk leaves for the cyclic garbage collector (issue #14's latency tail)."""

    async def test_chunks_kafka_takes_at_once_leave_no_cyclic_garbage(self) -> None:
        """Chunks acknowledged at the first send leave (next to) no cycles: no retry loop entered.

        With 1,000 accounts nearly every event is a chunk of its own; a retry loop entered per
        chunk left ~45 objects of cyclic garbage each, the young collector's main work.
        """
        producer = FakeProducer()
        publisher = Publisher(
            KafkaSettings(), PipelineSettings(), create(), lambda *_a, **_k: producer
        )
        await publisher.start()
        sender = asyncio.create_task(publisher.run())
        chunks = 100
        gc.collect()
        gc.disable()
        try:
            for n in range(chunks):
                await publisher.put([event(f"k{n}", f"v{n}"), state(f"k{n}", f"s{n}")], 0.0)
                async with asyncio.timeout(10):
                    await publisher.drained()
            garbage = gc.collect()
        finally:
            gc.enable()
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        assert len(producer.acknowledged) == 2 * chunks
        assert garbage < chunks  # less than one object per chunk (a retry loop left ~90)


class TestReleaseAfterBacklog:
    """Freed memory is given back once a backlog has drained, and not during steady traffic."""

    async def test_a_drained_backlog_releases_once(self) -> None:
        """A buffer BACKLOG records deep, then empty: one release, after every acknowledgement."""
        producer = FakeProducer()
        releases = Releases()
        backlog = [event(f"k{i}", f"v{i}") for i in range(BACKLOG)]

        await publish(producer, backlog, release=releases)

        assert releases.count == 1
        assert len(producer.acknowledged) == BACKLOG

    async def test_steady_traffic_never_releases(self) -> None:
        """Twice BACKLOG records in messages of 100, each drained before the next: no release."""
        producer = FakeProducer()
        releases = Releases()
        messages = [
            [event(f"k{m}-{i}", f"v{m}-{i}") for i in range(100)] for m in range(2 * BACKLOG // 100)
        ]

        await publish(producer, *messages, release=releases)

        assert releases.count == 0
        assert len(producer.acknowledged) == 2 * BACKLOG


class TestLatencyObservedPerReadTime:
    """Events read at one moment are observed in one step, as one observation each."""

    @pytest.mark.parametrize("amount", [0.0, 0.001, 0.003, 0.7, 30.0, 31.0])
    @pytest.mark.parametrize("count", [1, 2, 4999])
    def test_a_weighted_observation_is_that_many_observations(
        self, amount: float, count: int
    ) -> None:
        """Buckets, count and sum are those of ``count`` calls of ``observe`` (sum to rounding)."""
        buckets = (0.001, 0.0025, 0.5, 30)
        one_by_one = Histogram("h", "h", buckets=buckets, registry=CollectorRegistry())
        at_once = Histogram("h", "h", buckets=buckets, registry=CollectorRegistry())
        for _ in range(count):
            one_by_one.observe(amount)
        observe(at_once, amount, count)
        expected, got = samples(one_by_one), samples(at_once)
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            assert got[name] == pytest.approx(value, rel=1e-12), name


def samples(histogram: Histogram) -> dict[str, float]:
    """Bucket counts, count and sum by sample name and labels (creation time left out)."""
    return {
        s.name + str(s.labels): s.value
        for metric in histogram.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }
