"""Producers: the one place that sets acks, idempotence, compression and linger.

:class:`Producer` serves both sides. The event publisher sends a list of records at once and
learns, per record, whether Kafka acknowledged it (:meth:`Producer.send_all`); the command side
awaits each record (:class:`AwaitedProducer`) and always with ``acks=all``, whatever events use,
since the command journal must survive a broker loss.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

from bridge import retries
from bridge.core.events import Record
from bridge.errors import KafkaError
from bridge.kafka.batches import Batch, interleaved, pack
from bridge.kafka.clients import TRANSLATED, client_options, translate, translated
from bridge.kafka.partitioner import partition_for
from bridge.logs import get_logger
from bridge.settings import KafkaSettings


class RecordSender(Protocol):
    """What the pipelines need of a producer; component tests hand in a fake."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send_all(self, records: Sequence[Record]) -> list[BaseException | None]:
        """Send the records in order; per record None once acknowledged, or the error."""
        ...

    async def send_and_wait(self, record: Record) -> None:
        """Send one record and wait for its acknowledgement; KafkaError if it failed."""
        ...


class ProducerFactory(Protocol):
    """Builds a producer; ``awaited`` asks for the command side's one (acks=all, no linger)."""

    def __call__(self, kafka: KafkaSettings, *, awaited: bool = False) -> RecordSender: ...


def producer_options(kafka: KafkaSettings, *, awaited: bool = False) -> dict[str, Any]:
    """Every option of a bridge producer: connection, acks, idempotence, compression, linger."""
    options = client_options(kafka) | {
        "enable_idempotence": kafka.enable_idempotence,
        "compression_type": None if kafka.compression_type == "none" else kafka.compression_type,
    }
    if awaited:
        # Each send is awaited alone: lingering would only delay it.
        return options | {"acks": "all"}
    return options | {
        "acks": "all" if kafka.acks == "all" else int(kafka.acks),
        "linger_ms": kafka.linger_ms,
    }


# Keys whose partition is remembered. murmur2 is pure Python in aiokafka and cost as much as
# the rest of a batch send (BENCHMARKS.md, issue #15). What recurs is a key within moments: a
# change's event and state record, a call's few events. A memo entry costs ~250 B, so 2**16 of
# them held 16 MB once 100,000 entities had sent, a third of the state cache itself; 2**12 hold
# 1 MB and still catch those repeats.
PARTITION_MEMO = 2**12


class Producer:
    """An aiokafka producer taking the bridge's records and raising the bridge's errors."""

    def __init__(self, options: dict[str, Any], client: Any = None) -> None:
        # ``client``: an AIOKafkaProducer made elsewhere (component tests hand in a fake one).
        self._client = AIOKafkaProducer(**options) if client is None else client
        self._partition_of = functools.lru_cache(maxsize=PARTITION_MEMO)(partition_for)

    async def start(self) -> None:
        """Connect; KafkaError (and nothing left running) while Kafka cannot be reached."""
        try:
            with translated("producer cannot start"):
                await self._client.start()
        except KafkaError:
            await self._client.stop()
            raise

    async def stop(self) -> None:
        await self._client.stop()

    async def send(self, record: Record) -> asyncio.Future[Any]:
        """Queue one record; the future resolves when Kafka acknowledges it (or fails)."""
        future: asyncio.Future[Any] = await self._client.send(
            record.topic, record.value, key=record.key, headers=list(record.headers)
        )
        return future

    async def send_all(self, records: Sequence[Record]) -> list[BaseException | None]:
        """Send the records in order; per record None once acknowledged, or the error.

        Sent as batches per partition (:mod:`bridge.kafka.batches`): one future per batch, not
        per record. A batch that fails fails each of its records, so the caller's per-key
        retry sends it again whole, with the later records of its keys.
        """
        results: list[BaseException | None] = [None] * len(records)
        try:
            with translated("send failed"):
                partitions = {
                    topic: sorted(await self._client.partitions_for(topic))
                    for topic in {record.topic for record in records}
                }
        except KafkaError as exc:
            return [exc] * len(records)
        batches = pack(records, partitions, self._client.create_batch, self._partition_of)
        submitted: list[tuple[Batch, asyncio.Future[Any]]] = []
        for batch in interleaved(batches):
            try:
                future = await self._submit(batch, records)
            except TRANSLATED as exc:
                future = _failed(exc)
            submitted.append((batch, future))
        outcomes = await asyncio.gather(*(f for _, f in submitted), return_exceptions=True)
        for (batch, _), outcome in zip(submitted, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                error = translate(outcome, "send failed")
                for index in batch.indices:
                    results[index] = error
        return results

    async def _submit(self, batch: Batch, records: Sequence[Record]) -> asyncio.Future[Any]:
        """Queue one closed batch; the future resolves when Kafka acknowledges it (or fails)."""
        future: asyncio.Future[Any] = await self._client.send_batch(
            batch.builder, batch.topic, partition=batch.partition
        )
        return future

    async def send_and_wait(self, record: Record) -> None:
        with translated("send failed"):
            await (await self.send(record))


def new_producer(kafka: KafkaSettings, *, awaited: bool = False) -> RecordSender:
    """The producer the bridge uses (the benchmark swaps this factory for a timed one)."""
    return Producer(producer_options(kafka, awaited=awaited))


def _failed(exc: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


class AwaitedProducer:
    """An acks=all producer whose sends are awaited and retried until Kafka takes them."""

    def __init__(self, kafka: KafkaSettings, producers: ProducerFactory | None = None) -> None:
        self._kafka = kafka
        self._producers = producers
        self._producer: RecordSender | None = None
        self._failing = False
        self._log = get_logger("bridge.commands.handler")

    async def start(self) -> None:
        producer = (self._producers or new_producer)(self._kafka, awaited=True)
        try:
            await producer.start()
        except KafkaError as exc:
            raise KafkaError(f"command {exc}") from None
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, record: Record) -> None:
        """Send and wait for the acknowledgement, retrying (stamina) for as long as it takes."""
        producer = self._producer
        assert producer is not None, "start() the producer first"
        async for attempt in retries.forever(self._failing_now, retries.KAFKA):
            with attempt:
                await producer.send_and_wait(record)
        if self._failing:
            self._failing = False
            self._log.info("command.kafka.recovered")

    def _failing_now(self, exc: Exception) -> bool:
        """Kafka trouble is retried (said once until it recovers); anything else is a bug."""
        if not isinstance(exc, KafkaError):
            return False
        if not self._failing:
            self._failing = True
            self._log.error("command.kafka.failing", error=str(exc))
        return True
