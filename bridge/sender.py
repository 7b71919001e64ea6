"""The command side's Kafka producer: each send awaited, acks=all, retried until Kafka takes it.

Journal entries, results and dead letters are sent one at a time and awaited, because the next
step depends on each: no ICWS call before ``started`` is acknowledged, no result before
``finished``, no offset commit before the result. (The event pipeline's publisher, by contrast,
buffers and batches.) aiokafka's exceptions stop here.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError as AioKafkaError

from bridge import errors
from bridge.core.events import Record
from bridge.logs import get_logger
from bridge.publisher import client_options
from bridge.settings import KafkaSettings


class Sender:
    """An acks=all producer whose sends are awaited and retried until Kafka takes them."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._producer: AIOKafkaProducer | None = None
        self._failing = False
        self._log = get_logger("bridge.executor")

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            **client_options(self._kafka),
            acks="all",  # the journal must survive a broker loss, whatever events use
            enable_idempotence=self._kafka.enable_idempotence,
            compression_type=None
            if self._kafka.compression_type == "none"
            else self._kafka.compression_type,
        )
        try:
            await producer.start()
        except (AioKafkaError, OSError) as exc:
            await producer.stop()
            raise errors.KafkaError(
                f"command producer cannot start: {type(exc).__name__}"
            ) from None
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, record: Record) -> None:
        """Send and wait for the acknowledgement, retrying for as long as it takes."""
        assert self._producer is not None, "start() the sender first"
        delay = 0.2
        while True:
            try:
                await self._producer.send_and_wait(
                    record.topic, record.value, key=record.key, headers=list(record.headers)
                )
            except AioKafkaError as exc:
                if not self._failing:
                    self._failing = True
                    self._log.error("command.kafka.failing", error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self._failing:
                self._failing = False
                self._log.info("command.kafka.recovered")
            return
