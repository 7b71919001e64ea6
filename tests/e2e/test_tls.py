"""End to end over real TLS: ICWS over HTTPS against the simulator, Kafka over TLS through a relay.

Certificates come from throwaway CAs made by ``trustme``. The ICWS side proves that verification
is on by default (an unknown CA is refused, clearly, without a crash loop), that ``ca_file`` makes
it work and that ``verify_tls=false`` does too. The Kafka side runs Tansu behind
:class:`tests.tls_relay.TlsRelay` (Tansu cannot serve TLS itself) with the broker advertising the
relay, and proves the bridge's ``security_protocol=SSL`` with ``ssl_cafile`` (and, when the relay
demands one, a client certificate) really carries events and commands, and that an unknown CA
is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bridge.embedded_broker import EmbeddedBroker, free_port
from bridge.settings import Settings
from bridge.simulator import Simulator, SimulatorConfig
from bridge.simulator.cli import tls_from_args
from tests.conftest import PASSWORD, USER, RunningBridge, bridge_settings
from tests.e2e.test_commands import FAST_COMMANDS, command
from tests.tls_relay import TlsRelay

pytestmark = pytest.mark.e2e

BRIDGE_NAME = "icws-bridge.test"  # the bridge's client certificate
TEST_CLIENT_NAME = "test-client.test"  # the test's own Kafka clients' certificate


@dataclass(frozen=True)
class Pki:
    """A trusted CA, an unrelated one, and PEM files of what the bridge and servers use."""

    ca: trustme.CA
    ca_file: Path
    other_ca_file: Path
    server: trustme.LeafCert  # for 127.0.0.1, signed by ``ca``
    bridge_cert: Path
    bridge_key: Path


@pytest.fixture(name="pki")
def fixture_pki(tmp_path: Path) -> Pki:
    """A fresh CA (and an unrelated one) with a server and a client certificate on disk."""
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    other.cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    client = ca.issue_cert(BRIDGE_NAME, common_name=BRIDGE_NAME)
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "bridge.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "bridge.key"))
    return Pki(
        ca=ca,
        ca_file=tmp_path / "ca.pem",
        other_ca_file=tmp_path / "other-ca.pem",
        server=ca.issue_cert("127.0.0.1"),
        bridge_cert=tmp_path / "bridge.pem",
        bridge_key=tmp_path / "bridge.key",
    )


@pytest.fixture(name="https_simulator")
async def fixture_https_simulator(pki: Pki, tmp_path: Path) -> AsyncIterator[Simulator]:
    """The simulator serving HTTPS with a certificate of ``pki.ca``, set up as its CLI does."""
    pem = tmp_path / "server.pem"
    pki.server.private_key_and_cert_chain_pem.write_to_path(str(pem))
    tls = tls_from_args(argparse.Namespace(tls_cert=str(pem), tls_key=None))
    sim = Simulator(SimulatorConfig(users={USER: PASSWORD}, sse_keepalive_seconds=0.5))
    await sim.start(host="127.0.0.1", port=0, tls=tls)
    try:
        yield sim
    finally:
        await sim.stop()


def counted(running: RunningBridge, name: str, **labels: str) -> float:
    """A sample of one of the bridge's own metrics."""
    value = running.bridge.metrics.registry.get_sample_value(f"icws_bridge_{name}", labels)
    return value or 0.0


async def readyz(running: RunningBridge) -> tuple[int, dict[str, Any]]:
    """The bridge's /readyz answer, fetched over HTTP as Kubernetes would."""
    url = f"http://127.0.0.1:{running.bridge.health_port}/readyz"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


class TestIcwsOverHttps:
    """ICWS over HTTPS: verification on by default, an extra CA by ``ca_file``, or off."""

    async def test_unknown_ca_is_refused_clearly_without_a_crash_loop(
        self,
        broker: EmbeddedBroker,
        https_simulator: Simulator,
        start_bridge: Any,
        log_lines: Any,
    ) -> None:
        """Unknown CA: never ready, readyz and the log say the certificate failed, backoff holds."""
        running = start_bridge(bridge_settings(broker, https_simulator.url))

        def failed() -> float:
            return counted(running, "logins_total", result="unavailable")

        loop = asyncio.get_running_loop()

        await running.until(lambda: failed() >= 1)
        first = loop.time()
        await running.until(lambda: failed() >= 6)
        # Five waits of the backoff (0.05 s doubling, capped at 0.5 s) take at least 1.25 s; a
        # crash loop or a retry without backoff would make six attempts in milliseconds.
        assert loop.time() - first >= 1.0
        assert not running.task.done()
        assert not running.bridge.ready()

        status, body = await readyz(running)
        detail = body["checks"]["icws_sessions"]["detail"]
        assert status == 503
        assert body["checks"]["icws_sessions"]["ok"] is False
        assert "certificate verify failed" in detail
        assert "127.0.0.1" in detail
        logged = [json.loads(line) for line in log_lines.getvalue().splitlines()]
        failures = [e for e in logged if e.get("event") == "icws.login.failed"]
        assert failures
        assert all("certificate verify failed" in e["error"] for e in failures)
        # The refused handshake never reaches the simulator's login handler.
        assert https_simulator.counters["loginAttempts"] == 0
        assert PASSWORD not in log_lines.getvalue()
        assert PASSWORD not in json.dumps(body)

    @pytest.mark.parametrize("trust", ["ca_file", "verify_off"])
    async def test_trusted_or_unverified_server_carries_events(
        self,
        trust: str,
        pki: Pki,
        broker: EmbeddedBroker,
        https_simulator: Simulator,
        start_bridge: Any,
        reader: Any,
    ) -> None:
        """With ``ca_file`` naming the CA, or verification off, events flow from ICWS to Kafka."""
        https_simulator.world.add_status_message("Available", messageText="Available")
        icws = {"ca_file": str(pki.ca_file)} if trust == "ca_file" else {"verify_tls": False}
        settings = bridge_settings(broker, https_simulator.url, icws=icws)
        running = start_bridge(settings)
        await running.ready()
        topic = settings.topics.status_messages
        async with reader([topic]) as kafka:
            await kafka.wait_for(lambda _: len(kafka.events(topic)) >= 1)
        assert kafka.events(topic)[0]["subject"] == "available"
        assert https_simulator.logins >= 1


# ---- Kafka over TLS -----------------------------------------------------------------------


@dataclass
class TlsBroker:
    """Tansu behind a TLS relay that it advertises; ``mutual`` relays demand client certs."""

    broker: EmbeddedBroker
    relay: TlsRelay
    mutual: bool


@pytest.fixture(name="tls_broker", params=["server_auth", "mutual"])
async def fixture_tls_broker(request: pytest.FixtureRequest, pki: Pki) -> AsyncIterator[TlsBroker]:
    """A broker reachable only through a TLS relay (mutual TLS in one variant)."""
    relay_port = free_port()
    broker = EmbeddedBroker(advertised=f"tcp://127.0.0.1:{relay_port}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    pki.server.configure_cert(context)
    mutual = request.param == "mutual"
    if mutual:
        pki.ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    relay = TlsRelay(context, broker.port, port=relay_port)
    await broker.start()
    try:
        async with relay:
            yield TlsBroker(broker, relay, mutual)
    finally:
        await broker.stop()


def tls_settings(tls: TlsBroker, pki: Pki, sim: Simulator, ca_file: Path, **kafka: Any) -> Settings:
    """Bridge settings that reach Kafka only through the relay, over SSL with ``ca_file``."""
    client = (
        {"ssl_certfile": str(pki.bridge_cert), "ssl_keyfile": str(pki.bridge_key)}
        if tls.mutual
        else {}
    )
    return bridge_settings(
        tls.broker,
        sim.url,
        kafka={
            "bootstrap_servers": [tls.relay.address],
            "security_protocol": "SSL",
            "ssl_cafile": str(ca_file),
            **client,
            **kafka,
        },
        commands=FAST_COMMANDS,
    )


def peer_options(tls: TlsBroker, pki: Pki) -> dict[str, Any]:
    """Options for the test's own Kafka clients: TLS through the relay, as another service."""
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    if tls.mutual:
        pki.ca.issue_cert(TEST_CLIENT_NAME, common_name=TEST_CLIENT_NAME).configure_cert(context)
    return {
        "bootstrap_servers": tls.relay.address,
        "security_protocol": "SSL",
        "ssl_context": context,
    }


async def records_until(
    consumer: AIOKafkaConsumer, predicate: Callable[[list[Any]], bool], timeout: float = 20.0
) -> list[Any]:
    """Every record read until ``predicate(records)`` holds."""
    records: list[Any] = []
    async with asyncio.timeout(timeout):
        while not predicate(records):
            batch = await consumer.getmany(timeout_ms=100)
            records.extend(r for rs in batch.values() for r in rs)
    return records


class TestKafkaOverTls:
    """The bridge's Kafka clients over TLS: events out, commands in, or refused when untrusted."""

    async def test_events_and_commands_flow_through_the_relay(
        self, tls_broker: TlsBroker, pki: Pki, simulator: Simulator, start_bridge: Any
    ) -> None:
        """With the CA (and a client cert for mutual TLS), events and a command cross the relay."""
        simulator.world.add_status_message("Available", messageText="Available")
        assistance_id = simulator.world.create_assistance(USER, "100123456780170101", "Help")
        settings = tls_settings(tls_broker, pki, simulator, pki.ca_file)
        running = start_bridge(settings)
        await running.ready(timeout=30)

        # Only the bridge has connected so far: whatever the relay saw is the bridge's TLS.
        seen = tls_broker.relay.counts
        assert seen.handshakes >= 1
        assert seen.failed_handshakes == 0
        assert seen.bytes_up > 0
        assert seen.bytes_down > 0
        if tls_broker.mutual:
            assert set(seen.client_names) == {BRIDGE_NAME}

        options = peer_options(tls_broker, pki)
        update = command("update", assistance_id, "Refund approved?")
        topics = (settings.topics.status_messages, settings.topics.command_results)
        consumer = AIOKafkaConsumer(*topics, auto_offset_reset="earliest", **options)
        producer = AIOKafkaProducer(**options)
        await consumer.start()
        await producer.start()
        try:
            key = assistance_id.encode()
            await producer.send_and_wait(
                settings.topics.commands, json.dumps(update).encode(), key=key
            )
            records = await records_until(
                consumer,
                lambda rs: (
                    any(r.topic == settings.topics.command_results for r in rs)
                    and any(r.topic == settings.topics.status_messages for r in rs)
                ),
            )
        finally:
            await producer.stop()
            await consumer.stop()

        results = [json.loads(r.value) for r in records if r.topic == topics[1]]
        assert [r["data"]["outcome"] for r in results] == ["succeeded"]
        assert [r["subject"] for r in results] == [update["id"]]
        texts = [m["text"] for m in simulator.world.assistance[assistance_id]["messages"]]
        assert texts == ["Help", "Refund approved?"]

    async def test_unknown_ca_is_refused_and_the_bridge_stays_not_ready(
        self,
        tls_broker: TlsBroker,
        pki: Pki,
        simulator: Simulator,
        start_bridge: Any,
        log_lines: Any,
    ) -> None:
        """A broker certificate from an unknown CA: no TLS session, not ready, a clear problem."""
        settings = tls_settings(tls_broker, pki, simulator, pki.other_ca_file)
        running = start_bridge(settings)
        seen = tls_broker.relay.counts

        await running.until(lambda: seen.failed_handshakes >= 3)
        assert seen.handshakes == 0
        assert seen.bytes_up == 0
        assert not running.task.done()
        status, body = await readyz(running)
        kafka = body["checks"]["kafka_producer"]
        assert status == 503
        assert kafka["ok"] is False
        assert "certificate verify failed" in kafka["detail"]
        assert tls_broker.relay.address in kafka["detail"]
        logged = [json.loads(line) for line in log_lines.getvalue().splitlines()]
        problems = [e["error"] for e in logged if e.get("event") == "kafka.unavailable"]
        assert any("certificate verify failed" in error for error in problems)
