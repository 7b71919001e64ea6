"""The Kafka adapter's batch sends against a fake aiokafka client: partitions, order, failures.

The fake stands where ``AIOKafkaProducer`` stands (``partitions_for``, ``create_batch``,
``send_batch``); its batches hold a fixed number of records, as aiokafka's hold a fixed number
of bytes. Expected partitions come from aiokafka's own ``DefaultPartitioner``, the one a bare
``send`` would use, not from the adapter under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaTimeoutError, NotLeaderForPartitionError
from aiokafka.partitioner import DefaultPartitioner

from bridge.core.events import Record
from bridge.errors import KafkaError
from bridge.kafka.producers import Producer

from .test_publisher import publish

PARTITIONS = {"events": 4, "state": 3}


class FakeBuilder:
    """Takes up to ``capacity`` records (the first always), then says it is full and closes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values: list[bytes | None] = []
        self.closed = False

    def append(
        self, *, timestamp: float | None, key: bytes | None, value: bytes | None, headers: Any
    ) -> object | None:
        if self.closed or (self.values and len(self.values) >= self.capacity):
            self.closed = True
            return None
        self.values.append(value)
        return object()

    def close(self) -> None:
        self.closed = True


class FakeClient:
    """Records each submitted batch; fails the batches holding a scripted value, once each."""

    def __init__(
        self,
        capacity: int = 3,
        fail_once: Sequence[bytes] = (),
        refuse_once: Sequence[bytes] = (),
    ) -> None:
        self.capacity = capacity
        self.submitted: list[tuple[str, int, list[bytes | None], bool]] = []
        self.sends = 0  # send_all calls so far (each asks for its topics' partitions first)
        self.resent: list[bytes | None] = []  # the values submitted after the first send_all
        self._fail_once = set(fail_once)  # the batch is taken, then Kafka answers an error
        self._refuse_once = set(refuse_once)  # send_batch itself raises

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def partitions_for(self, topic: str) -> set[int]:
        self.sends += 1
        return set(range(PARTITIONS[topic]))

    def create_batch(self) -> FakeBuilder:
        return FakeBuilder(self.capacity)

    async def send_batch(
        self, batch: FakeBuilder, topic: str, *, partition: int
    ) -> asyncio.Future[object]:
        self.submitted.append((topic, partition, list(batch.values), batch.closed))
        if self.sends > 1:
            self.resent += batch.values
        refused = self._refuse_once.intersection(batch.values)
        if refused:
            self._refuse_once -= refused
            raise KafkaTimeoutError()
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        failed = self._fail_once.intersection(batch.values)
        if failed:
            self._fail_once -= failed
            future.set_exception(NotLeaderForPartitionError())
        else:
            future.set_result(object())
        return future


def record(topic: str, key: str, value: str) -> Record:
    """A record of ``key`` on ``topic``; its value names it (``a1`` is key a's first)."""
    return Record(topic, key.encode(), value.encode(), (), "state" if topic == "state" else "x")


def default_partition(topic: str, key: str) -> int:
    """Where a bare ``AIOKafkaProducer.send`` puts the key: aiokafka's default partitioner."""
    partitions = list(range(PARTITIONS[topic]))
    chosen: int = DefaultPartitioner()(key.encode(), partitions, partitions)
    return chosen


KEYS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]


def interleaved_records(per_key: int) -> list[Record]:
    """``per_key`` events of each key, the keys interleaved, as one burst of traffic."""
    return [record("events", k, f"{k}{n}") for n in range(per_key) for k in KEYS]


class TestBatches:
    """Records go as closed batches per partition, where the default partitioner puts them."""

    async def test_every_record_lands_on_the_default_partitioners_partition(self) -> None:
        """Each batch holds records of keys the default partitioner maps to its partition."""
        client = FakeClient()
        records = interleaved_records(4) + [record("state", k, f"s{k}") for k in KEYS]

        results = await Producer({}, client).send_all(records)

        assert results == [None] * len(records)
        sent = {v: (t, p) for t, p, values, _ in client.submitted for v in values}
        assert sent == {
            r.value: (r.topic, default_partition(r.topic, r.key.decode()))
            for r in records
            if r.key is not None
        }

    async def test_one_keys_records_keep_their_order_and_batches_are_closed(self) -> None:
        """Per partition the batches, read in submission order, list each key's records in order."""
        client = FakeClient(capacity=3)
        records = interleaved_records(5)

        await Producer({}, client).send_all(records)

        assert all(closed for *_, closed in client.submitted)
        assert all(len(values) <= 3 for _, _, values, _ in client.submitted)
        for key in KEYS:
            seen = [
                v
                for _, _, values, _ in client.submitted
                for v in values
                if v is not None and v.startswith(key.encode())
            ]
            assert seen == [f"{key}{n}".encode() for n in range(5)]

    async def test_partitions_take_turns(self) -> None:
        """A partition's second batch is submitted after every partition's first."""
        client = FakeClient(capacity=2)

        await Producer({}, client).send_all(interleaved_records(6))

        partitions = [p for _, p, _, _ in client.submitted]
        firsts = {p: partitions.index(p) for p in set(partitions)}
        second = min(i for i, p in enumerate(partitions) if i != firsts[p])
        assert second >= len(firsts)


class TestFailures:
    """A batch fails or succeeds whole: each of its records gets the batch's outcome."""

    async def test_a_failed_batch_fails_each_of_its_records_and_no_other(self) -> None:
        """Kafka refusing one batch: its records get a KafkaError, every other record None."""
        client = FakeClient(capacity=3, fail_once=[b"alpha1"])
        records = interleaved_records(3)

        results = await Producer({}, client).send_all(records)

        failed_batch = next(vals for _, _, vals, _ in client.submitted if b"alpha1" in vals)
        for r, result in zip(records, results, strict=True):
            if r.value in failed_batch:
                assert isinstance(result, KafkaError)
                assert "NotLeaderForPartitionError" in str(result)
            else:
                assert result is None

    async def test_a_batch_the_client_refuses_to_queue_fails_its_records(self) -> None:
        """send_batch raising (a full queue timing out) fails that batch's records only."""
        client = FakeClient(capacity=2, refuse_once=[b"bravo0"])
        records = interleaved_records(2)

        results = await Producer({}, client).send_all(records)

        refused = next(vals for _, _, vals, _ in client.submitted if b"bravo0" in vals)
        assert [r.value for r, e in zip(records, results, strict=True) if e] == refused
        assert all(isinstance(e, KafkaError) for e in results if e is not None)

    async def test_the_publisher_sends_a_failed_batch_again_whole_with_later_records(
        self,
    ) -> None:
        """Through the publisher: the failed batch and every later record of its keys, in order."""
        client = FakeClient(capacity=2, fail_once=[b"alpha0"])
        records = interleaved_records(3)

        await publish(Producer({}, client), records)

        failed = next(vals for _, _, vals, _ in client.submitted if b"alpha0" in vals)
        keys = {v[:-1] for v in failed if v is not None}
        assert keys  # the batch holds alpha's first record at least
        expected = [r.value for r in records if r.value is not None and r.value[:-1] in keys]
        assert sorted(v for v in client.resent if v) == sorted(expected)
        for key in keys:  # each key's records again, in their order
            again = [v for v in client.resent if v is not None and v[:-1] == key]
            assert again == [v for v in expected if v[:-1] == key]
