"""A TLS relay for tests: accepts TLS on a loopback port and pipes it, in plain TCP, to a target.

Tansu 0.6 cannot serve TLS itself (its ``--cert`` leaves the listener plaintext), so Kafka over
TLS is tested through this relay, with the broker advertising the relay's address so clients
come back through it. The relay counts what it saw, so a test can prove TLS was really used:
connections, completed and failed handshakes, the client certificates presented, bytes piped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field

from bridge.embedded_broker import free_port

_CHUNK = 65536


@dataclass
class RelayCounts:
    """What the relay saw; every field only grows."""

    connections: int = 0
    handshakes: int = 0
    failed_handshakes: int = 0
    client_names: list[str] = field(default_factory=list)
    bytes_up: int = 0  # client -> target
    bytes_down: int = 0  # target -> client


class TlsRelay:
    """Serves TLS with ``context`` on 127.0.0.1 and relays each connection to ``target_port``."""

    def __init__(self, context: ssl.SSLContext, target_port: int, port: int | None = None) -> None:
        self._context = context
        self._target_port = target_port
        self.port = port or free_port()
        self.counts = RelayCounts()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        """``host:port`` for Kafka's bootstrap servers."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        # The handshake is done in the handler (start_tls), not by the server, so a refused
        # handshake is seen and counted instead of vanishing inside asyncio.
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Stop listening and cut every relayed connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def __aenter__(self) -> TlsRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self.counts.connections += 1
        try:
            await self._relay(reader, writer)
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.start_tls(self._context)
        except (ssl.SSLError, OSError):
            self.counts.failed_handshakes += 1
            return
        self.counts.handshakes += 1
        self.counts.client_names.extend(_common_names(writer))
        target_reader, target_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        try:
            async with asyncio.TaskGroup() as pipes:
                pipes.create_task(self._pipe(reader, target_writer, up=True))
                pipes.create_task(self._pipe(target_reader, writer, up=False))
        finally:
            target_writer.close()
            with contextlib.suppress(Exception):
                await target_writer.wait_closed()

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, up: bool
    ) -> None:
        """Copy until the source ends or either side fails, then close the sink."""
        try:
            while chunk := await source.read(_CHUNK):
                if up:
                    self.counts.bytes_up += len(chunk)
                else:
                    self.counts.bytes_down += len(chunk)
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, ssl.SSLError):
            pass  # one side went away: closing the other below is all there is to do
        finally:
            sink.close()


def _common_names(writer: asyncio.StreamWriter) -> list[str]:
    """The common names in the client certificate presented on this connection, if any."""
    peer = writer.get_extra_info("peercert")
    if not peer:
        return []
    return [value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"]
