"""The health server of a running bridge: probes, named readiness checks, real /metrics."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from bridge.embedded_broker import EmbeddedBroker
from bridge.simulator import Simulator
from tests.conftest import USER, bridge_settings
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
        assert set(body["checks"]) >= {"icws_session", "icws_subscriptions", "kafka_producer"}
        assert all(check["ok"] for check in body["checks"].values())
        status, _, exposition = await get(port, "/metrics")
        assert status == 200
        assert 'icws_bridge_session_state{state="up"} 1.0' in exposition
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
        """Bad credentials: /readyz is 503 naming icws_session; /livez stays 200."""
        simulator.set_password(USER, "not-the-configured-one")
        running = start_bridge(bridge_settings(broker, simulator.url))
        await running.until(lambda: running.bridge.session.health.state == "bad_credentials")
        port = running.bridge.health_port
        status, body, _ = await get(port, "/readyz")
        assert status == 503
        assert body["checks"]["icws_session"] == {
            "ok": False,
            "detail": "ICWS rejected the credentials",
        }
        assert body["checks"]["kafka_producer"]["ok"] is True
        assert (await get(port, "/livez"))[0] == 200
        await running.shutdown()
