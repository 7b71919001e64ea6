"""End to end: login answers as real servers and proxies send them, and web-proxy addressing.

Each test sets one realism option of the simulator (docs/icws-protocol.md §10): bad credentials
with errorCode only, a 403 naming an errorId, a 302 sign-in page, a path-prefixed web proxy
whose IC servers switch over, and a proxy behind which the alternate cannot be reached. The
bridge must stay up, say why it is not ready, never storm the server, and heal by itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bridge.embedded_broker import EmbeddedBroker
from bridge.settings import Settings
from bridge.simulator import Simulator, SimulatorConfig
from tests.conftest import PASSWORD, SIM_VERSION, USER, RunningBridge, bridge_settings

pytestmark = pytest.mark.e2e

Start = Callable[[Settings], RunningBridge]
LICENCE = "error.request.accessDenied.license"


async def flows(running: RunningBridge, sim: Simulator, kafka: Any, topic: str, tag: str) -> None:
    """A status message added now reaches Kafka: events flow on the current session."""
    await running.ready()
    sim.world.add_status_message(tag)
    await kafka.wait_for(lambda _: any(e["subject"] == tag.casefold() for e in kafka.events(topic)))


def log_events(log_lines: Any, event: str) -> list[dict[str, Any]]:
    """The JSON log lines with this event name."""
    return [
        line
        for line in (json.loads(text) for text in log_lines.getvalue().splitlines())
        if line["event"] == event
    ]


def logins_posted(sim: Simulator) -> int:
    """How many logins (POST .../icws/connection) the simulator answered, on any path."""
    return sum(
        1
        for method, path, _ in sim.requests
        if method == "POST" and path.endswith("/icws/connection")
    )


def state(running: RunningBridge, name: str) -> float | None:
    """The accounts in state ``name`` (the one account: 1 when it is its current state)."""
    return running.bridge.metrics.registry.get_sample_value("icws_bridge_accounts", {"state": name})


@asynccontextmanager
async def realistic(**config: Any) -> AsyncIterator[Simulator]:
    """A simulator with the realism options given, on a free loopback port."""
    sim = Simulator(SimulatorConfig(users={USER: PASSWORD}, sse_keepalive_seconds=0.5, **config))
    await sim.start(host="127.0.0.1", port=0)
    try:
        yield sim
    finally:
        await sim.stop()


class TestLoginAnswers:
    """Refusals keep the process up and not ready; redirects are other hosts, not pages."""

    async def test_bad_credentials_with_error_code_only(
        self, broker: EmbeddedBroker, start_bridge: Start, reader: Any
    ) -> None:
        """A 400 with errorCode -2147221503 and no errorId: bad_credentials, alive, then healed."""
        async with realistic(bad_credentials_body="error-code-only") as sim:
            sim.set_password(USER, "changed-elsewhere")
            settings = bridge_settings(broker, sim.url)
            running = start_bridge(settings)
            await running.until(lambda: logins_posted(sim) >= 2, 10)  # a slow retry came round
            assert running.session.health.state == "bad_credentials"
            assert state(running, "bad_credentials") == 1
            assert not running.task.done()
            assert not running.bridge.ready()
            sim.set_password(USER, PASSWORD)
            topic = settings.topics.status_messages
            async with reader([topic]) as kafka:
                await flows(running, sim, kafka, topic, "Healed")
            await running.shutdown()

    async def test_403_with_an_error_id_is_named_and_retried_slowly(
        self, broker: EmbeddedBroker, start_bridge: Start, reader: Any, log_lines: Any
    ) -> None:
        """403 with an errorId: state rejected naming it, one log line, a slow retry, recovery."""
        async with realistic(login_status=403, login_error_id=LICENCE) as sim:
            settings = bridge_settings(broker, sim.url)  # bad_credentials_retry_seconds=1
            running = start_bridge(settings)
            await running.until(lambda: running.session.health.state == "rejected")
            await asyncio.sleep(2.5)  # observing the pace: about one retry a second, no more
            assert 2 <= logins_posted(sim) <= 5
            check = running.bridge.checks()["icws_sessions"]
            assert not check.ok
            assert f"HTTP 403 {LICENCE}: The login was refused (403)." in check.detail
            assert state(running, "rejected") == 1
            [line] = log_events(log_lines, "icws.login.refused")
            assert (line["status"], line["error_id"]) == (403, LICENCE)
            assert PASSWORD not in log_lines.getvalue()
            sim.configure(login_status=None)
            topic = settings.topics.status_messages
            async with reader([topic]) as kafka:
                await flows(running, sim, kafka, topic, "Licensed")
            await running.shutdown()

    async def test_302_is_like_a_503_and_never_followed(
        self, broker: EmbeddedBroker, start_bridge: Start, reader: Any
    ) -> None:
        """A 302 sign-in page: tried again at the normal backoff, the page never fetched."""
        async with realistic(login_status=302, login_location="/icws/sign-in") as sim:
            settings = bridge_settings(broker, sim.url)
            running = start_bridge(settings)
            await running.until(lambda: logins_posted(sim) >= 3, 10)
            assert running.session.health.state == "connecting"
            assert "login: HTTP 302" in running.bridge.checks()["icws_sessions"].detail
            unavailable = running.bridge.metrics.registry.get_sample_value(
                "icws_bridge_logins_total", {"result": "unavailable"}
            )
            assert unavailable is not None
            assert unavailable >= 3
            sim.configure(login_status=None)
            topic = settings.topics.status_messages
            async with reader([topic]) as kafka:
                await flows(running, sim, kafka, topic, "AfterRedirects")
            await running.shutdown()
            assert not [r for r in sim.requests if r[1] == "/icws/sign-in"]


class TestWebProxy:
    """ICWS behind a path-prefixed web proxy: ``/api/<icserver>/icws/...`` (§10)."""

    async def test_switchover_follows_the_alternate_icserver(
        self, broker: EmbeddedBroker, start_bridge: Start, reader: Any
    ) -> None:
        """ic1 stops accepting and names ic2: the bridge moves to /api/ic2 and reconciles."""
        async with realistic(proxy_names=["ic1", "ic2"]) as sim:
            settings = bridge_settings(broker, f"{sim.url}/api/ic1")
            running = start_bridge(settings)
            topic, lifecycle = settings.topics.status_messages, settings.topics.lifecycle
            async with reader([topic, lifecycle]) as kafka:
                await flows(running, sim, kafka, topic, "OnIc1")
                sim.configure(proxy_primary="ic2")
                sim.faults.expire_session()
                await running.until(lambda: on_proxy_name(sim, "ic2"), 20)
                await flows(running, sim, kafka, topic, "OnIc2")
                await kafka.wait_for(lambda _: resyncs(kafka, lifecycle) >= 8)  # 4 aggregates x 2
                before = [e for e in kafka.events(topic) if e["subject"] == "onic1"]
                assert len(before) == 1, "the new session's snapshot republished a known entity"
            # The simulator announces this version; the one account now counts on ic2.
            labels = {"host": f"{sim.url}/api/ic2", "icws_version": SIM_VERSION}
            host = running.bridge.metrics.registry.get_sample_value(
                "icws_bridge_icws_hosts", labels
            )
            assert host == 1
            await running.shutdown()

    async def test_no_login_storm_when_the_alternate_cannot_be_reached(
        self, broker: EmbeddedBroker, start_bridge: Start
    ) -> None:
        """ic1 says 503 naming ic2, whose logins time out: logins keep the backoff's pace."""
        async with realistic(proxy_names=["ic1", "ic2"], proxy_primary="ic2") as sim:
            sim.faults.delay_requests(30, path_regex=r"^/api/ic2/icws/connection$")
            icws = {
                "request_timeout_seconds": 1,
                "backoff_initial_seconds": 3,
                "backoff_max_seconds": 3,
                "probe_interval_seconds": 0.1,
            }
            running = start_bridge(bridge_settings(broker, f"{sim.url}/api/ic1", icws=icws))
            await running.until(lambda: sim.counters["loginAttempts"] >= 1)
            start = sim.counters["loginAttempts"]
            window = 8.0
            await asyncio.sleep(window)  # observing the pace over a fixed window
            # Each round asks ic1 and ic2 once, takes at least the 1 s timeout and is followed
            # by a wait of at least backoff_initial_seconds: at most 1 + 8 / 4 rounds start.
            rounds = 1 + int(window // (1 + 3))
            assert sim.counters["loginAttempts"] - start <= 2 * rounds
            probes = [r for r in sim.requests if r[1].endswith("/icws/connection/features")]
            assert probes == []
            assert running.session.health.state == "connecting"
            await running.shutdown()


def resyncs(kafka: Any, topic: str) -> int:
    """How many resync-completed lifecycle events were published."""
    return sum(e["type"].endswith("bridge.resync.completed.v1") for e in kafka.events(topic))


def on_proxy_name(sim: Simulator, name: str) -> bool:
    """Whether every subscription was PUT successfully on a session behind ``/api/<name>``."""
    puts = [
        path
        for method, path, status in sim.requests
        if method == "PUT" and status in (200, 204) and path.startswith(f"/api/{name}/icws/")
    ]
    return (
        sum(path.endswith("/messaging/subscriptions/status/status-messages") for path in puts) >= 1
    )
