"""A running bridge's health server: probes, readiness checks, /metrics, and /schemas/."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from bridge.embedded_broker import EmbeddedBroker
from bridge.simulator import Simulator
from tests.conftest import USER, Reader, bridge_settings
from tests.ops.conftest import run_tool

pytestmark = pytest.mark.e2e


async def get(port: int, path: str) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as r:
        text = await r.text()
        body = await r.json() if r.content_type == "application/json" else None
        return r.status, body, text


class TestProbes:
    """/livez, /readyz and /metrics as Kubernetes and Prometheus see them."""

    async def test_ready_bridge_answers_every_probe(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, promtool: str
    ) -> None:
        """Ready: 200s, each check named and ok, and /metrics passes promtool check metrics."""
        running = start_bridge(bridge_settings(broker, simulator.url))
        await running.ready()
        simulator.world.add_status_message("Available")
        await running.until(
            lambda: (
                (
                    running.bridge.metrics.registry.get_sample_value(
                        "icws_bridge_records_published_total", {"kind": "event"}
                    )
                    or 0
                )
                >= 1
            )
        )
        port = running.bridge.health_port
        assert (await get(port, "/livez"))[0] == 200
        status, body, _ = await get(port, "/readyz")
        assert status == 200
        assert body["status"] == "ready"
        assert set(body["checks"]) >= {"icws_sessions", "icws_subscriptions", "kafka_producer"}
        assert all(check["ok"] for check in body["checks"].values())
        status, _, exposition = await get(port, "/metrics")
        assert status == 200
        assert 'icws_bridge_accounts{state="up"} 1.0' in exposition
        assert "icws_bridge_delivery_latency_seconds_bucket" in exposition
        age = next(
            float(line.split()[-1])
            for line in exposition.splitlines()
            if line.startswith("icws_bridge_icws_seconds_since_last_message ")
        )
        assert 0 <= age < 5  # SSE keep-alives arrive every 0.5 s in the test simulator
        checked = run_tool([promtool, "check", "metrics"], stdin=exposition)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        await running.shutdown()

    async def test_not_ready_names_the_failing_check_and_stays_alive(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any
    ) -> None:
        """Bad credentials: /readyz is 503 naming icws_sessions and the account; /livez is 200."""
        simulator.set_password(USER, "not-the-configured-one")
        running = start_bridge(bridge_settings(broker, simulator.url))
        await running.until(lambda: running.session.health.state == "bad_credentials")
        port = running.bridge.health_port
        status, body, _ = await get(port, "/readyz")
        assert status == 503
        assert body["checks"]["icws_sessions"] == {
            "ok": False,
            "detail": f"1 bad_credentials; not up: {USER} (ICWS rejected the credentials)",
        }
        assert body["checks"]["kafka_producer"]["ok"] is True
        assert (await get(port, "/livez"))[0] == 200
        await running.shutdown()


SHIPPED = Path(__file__).resolve().parents[2] / "bridge" / "schemas"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def fetch_json(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, response.content_type, await response.read()


class TestSchemas:
    """A consumer fetches each event's dataschema from the bridge that published it."""

    async def test_published_events_validate_against_their_fetched_schema(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Callable[[list[str]], Reader],
    ) -> None:
        """The dataschema URL of real status and lifecycle events, fetched as-is, validates them."""
        port = free_port()
        base = f"http://127.0.0.1:{port}/schemas"
        settings = bridge_settings(
            broker, simulator.url, health={"port": port}, events={"schema_base_url": base}
        )
        running = start_bridge(settings)
        await running.ready()
        simulator.world.add_status_message("Available")
        topics = [settings.topics.status_messages, settings.topics.lifecycle]
        async with reader(topics) as kafka:
            await kafka.wait_for(lambda _: all(kafka.events(topic) for topic in topics))
            events = [kafka.events(topic)[0] for topic in topics]
        for event in events:
            assert event["dataschema"].startswith(f"{base}/")
            status, content_type, body = await fetch_json(event["dataschema"])
            assert (status, content_type) == (200, "application/schema+json")
            assert body == (SHIPPED / event["dataschema"].rsplit("/", 1)[1]).read_bytes()
            schema = json.loads(body)
            jsonschema.Draft202012Validator.check_schema(schema)
            validator = jsonschema.Draft202012Validator(
                schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
            validator.validate(event)
            with pytest.raises(jsonschema.ValidationError):
                validator.validate({**event, "data": {}})
        status, _, body = await fetch_json(f"{base}/")
        assert status == 200
        assert "asyncapi.json" in json.loads(body).values()
        await running.shutdown()
