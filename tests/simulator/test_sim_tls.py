"""The simulator over HTTPS: `--tls-cert`/`--tls-key`, or a server context given to `start`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import ssl
from pathlib import Path

import aiohttp
import pytest
import trustme

from bridge.simulator.cli import add_arguments, run, tls_from_args


def parse(*argv: str) -> argparse.Namespace:
    """Parse argv with the simulator's options."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


class TestHttps:
    """The simulator serves HTTPS with a certificate given on its command line."""

    def test_plain_http_by_default(self) -> None:
        """Without --tls-cert there is no TLS context: the simulator serves plain HTTP."""
        assert tls_from_args(parse()) is None

    def test_key_without_certificate_is_a_usage_error(self) -> None:
        """--tls-key alone is refused rather than silently serving plain HTTP."""
        with pytest.raises(SystemExit):
            tls_from_args(parse("--tls-key", "key.pem"))

    async def test_run_serves_https_with_separate_key(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With cert and key files run() serves HTTPS: the CA's clients get answers, others not."""
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1")
        server.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
        server.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
        caplog.set_level(logging.INFO, logger="bridge.simulator.cli")
        args = parse(
            "--port", "0", "--no-lively",
            "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"),
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(run(args, stop))
        try:
            url = await announced_url(caplog)
            trusting = ssl.create_default_context()
            ca.configure_trust(trusting)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{url}/_sim/state", ssl=trusting) as reply:
                    assert reply.status == 200
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    await http.get(f"{url}/_sim/state", ssl=ssl.create_default_context())
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)


async def announced_url(caplog: pytest.LogCaptureFixture) -> str:
    """The https URL the CLI logged once it was listening."""
    async with asyncio.timeout(5):
        while True:
            for record in caplog.records:
                match = re.search(r"https://\S+", record.getMessage())
                if match:
                    return match.group(0)
            await asyncio.sleep(0.005)
