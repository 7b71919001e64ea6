"""Kafka client options, the bridge's own record and partition types, and error translation.

Every aiokafka client of the bridge is built from :func:`client_options`; every aiokafka
exception (and the ``OSError`` a lost connection raises) becomes a :class:`bridge.errors.KafkaError`
in :func:`translated`, so nothing above the adapter names aiokafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError as AioKafkaError
from aiokafka.helpers import create_ssl_context

from bridge.errors import KafkaError
from bridge.settings import KafkaSettings

# What the adapter translates: aiokafka's errors and the socket errors it lets through.
TRANSLATED: tuple[type[BaseException], ...] = (AioKafkaError, OSError)


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    """One partition of one topic (the adapter's stand-in for aiokafka's TopicPartition)."""

    topic: str
    partition: int


class Message(Protocol):
    """A consumed record, as the bridge reads it (aiokafka's ConsumerRecord has this shape)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...
    @property
    def timestamp(self) -> int: ...


def translate(exc: BaseException, what: str) -> BaseException:
    """The bridge's error for an aiokafka or socket error; any other exception unchanged."""
    if not isinstance(exc, TRANSLATED):
        return exc
    detail = f": {exc}" if str(exc) else ""
    return KafkaError(f"{what}: {type(exc).__name__}{detail}")


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Raise aiokafka and socket errors of the block as KafkaError, prefixed with ``what``."""
    try:
        yield
    except TRANSLATED as exc:
        raise translate(exc, what) from None


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection and security options shared by every Kafka client of the bridge."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
        "retry_backoff_ms": settings.retry_backoff_ms,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None,
            certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
            keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        )
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


async def diagnosed(exc: KafkaError, settings: KafkaSettings) -> KafkaError:
    """``exc``, naming the TLS failure behind it when a bootstrap server refuses the handshake.

    aiokafka reports a refused certificate only as "Unable to bootstrap" (the reason goes to its
    log), so with SSL configured one TLS handshake per bootstrap server finds the reason for
    readiness to show.
    """
    context = client_options(settings).get("ssl_context")
    if not isinstance(context, ssl.SSLContext):
        return exc
    for server in settings.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            async with asyncio.timeout(settings.request_timeout_ms / 1000):
                _, writer = await asyncio.open_connection(host.strip("[]"), int(port), ssl=context)
        except ssl.SSLCertVerificationError as failure:
            why = f"TLS certificate verify failed for {server} ({failure.verify_message})"
            return KafkaError(f"{exc}; {why}")
        except ssl.SSLError as failure:
            return KafkaError(f"{exc}; TLS handshake with {server} failed ({failure.reason})")
        except (OSError, TimeoutError, ValueError):
            continue  # not a TLS problem: the error as it is says enough
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return exc


def new_consumer(kafka: KafkaSettings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer that commits nothing by itself and starts at the earliest offset."""
    return AIOKafkaConsumer(
        *topics,
        **client_options(kafka),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **options,
    )


class TopicReader:
    """Reads topics from their beginning without a group (tooling: ``bridge demo``)."""

    def __init__(self, kafka: KafkaSettings, topics: Sequence[str], **options: Any) -> None:
        self._consumer = new_consumer(kafka, *topics, **options)

    async def start(self) -> None:
        with translated("cannot start a consumer"):
            await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def read(self, timeout_ms: int) -> list[Message]:
        """The records that arrive within ``timeout_ms`` (none if nothing does)."""
        with translated("cannot read"):
            batch = await self._consumer.getmany(timeout_ms=timeout_ms)
        return [record for records in batch.values() for record in records]
