"""End to end: every session fault the bridge claims to survive, scripted in the simulator.

Each test injects one fault, then proves recovery the way a consumer would see it: a change
made in ICWS *after* the fault arrives on Kafka: on a fresh session with fresh subscriptions
when the session was lost, on the same session when only its SSE stream ended (issue #12).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from bridge.embedded_broker import EmbeddedBroker
from bridge.settings import Settings
from bridge.simulator import Simulator, SimulatorConfig
from tests.conftest import (
    PASSWORD,
    SIM_VERSION,
    SUBSCRIPTION_PATHS,
    USER,
    Reader,
    RunningBridge,
    bridge_settings,
    subscribed_sessions,
)

pytestmark = pytest.mark.e2e


async def flows(
    running: RunningBridge, sim: Simulator, kafka: Reader, topic: str, tag: str
) -> None:
    """A status message added now reaches Kafka: events flow on the current session."""
    await running.ready()
    sim.world.add_status_message(tag)
    await kafka.wait_for(lambda _: any(e["subject"] == tag.casefold() for e in kafka.events(topic)))


SEEN_SECRETS: set[str] = set()


def remember_secrets(sim: Simulator) -> None:
    """Note the CSRF tokens and cookie values of the live sessions, to look for them in logs."""
    for session in sim.sessions.values():
        SEEN_SECRETS.update({session.csrf_token, session.cookie_value})


async def recovered(
    running: RunningBridge, sim: Simulator, kafka: Reader, topic: str, tag: str, sessions: int
) -> None:
    """The bridge is on session number ``sessions``, fully subscribed, and events flow."""
    await running.until(lambda: len(subscribed_sessions(sim)) >= sessions, 20)
    await flows(running, sim, kafka, topic, tag)
    remember_secrets(sim)


Start = Callable[[Settings], RunningBridge]


@pytest.fixture(name="world")
async def fixture_world(
    broker: EmbeddedBroker, simulator: Simulator, start_bridge: Start, reader: Any, log_lines: Any
) -> Any:
    """A running bridge on the simulator; afterwards, no secret may be in any log line."""
    settings = bridge_settings(broker, simulator.url)
    running = start_bridge(settings)
    topic = settings.topics.status_messages
    SEEN_SECRETS.clear()
    async with reader([topic, settings.topics.lifecycle]) as kafka:
        await flows(running, simulator, kafka, topic, "Before")
        remember_secrets(simulator)
        yield running, simulator, kafka, topic
    await running.shutdown()
    text = log_lines.getvalue()
    assert len(SEEN_SECRETS) >= 2  # a session's token and cookie at least
    leaked = [secret for secret in [PASSWORD, *SEEN_SECRETS] if secret in text]
    assert not leaked, "a password, CSRF token or cookie reached the logs"


class TestSessionLoss:
    """A lost session leads to a new login, fresh subscriptions, and events flowing again."""

    async def test_expired_session(self, world: Any) -> None:
        """A session expired server-side (401 on the next call) is replaced."""
        running, sim, kafka, topic = world
        sim.faults.expire_session()
        await recovered(running, sim, kafka, topic, "AfterExpiry", sessions=2)
        reasons = (
            running.bridge.metrics.registry.get_sample_value(
                "icws_bridge_reconnects_total", {"reason": "session_lost"}
            )
            or 0
        )
        reasons += (
            running.bridge.metrics.registry.get_sample_value(
                "icws_bridge_reconnects_total", {"reason": "unauthorized"}
            )
            or 0
        )
        assert reasons >= 1

    async def test_down_message_with_should_reconnect(self, world: Any) -> None:
        """A connectionStateChangeMessage Down (shouldReconnect true) triggers a re-login."""
        running, sim, kafka, topic = world
        sim.faults.send_down(should_reconnect=True)
        await recovered(running, sim, kafka, topic, "AfterDown", sessions=2)
        assert (
            running.bridge.metrics.registry.get_sample_value(
                "icws_bridge_reconnects_total", {"reason": "down_message"}
            )
            == 1
        )

    async def test_down_message_without_should_reconnect(self, world: Any) -> None:
        """Down with shouldReconnect false: the bridge waits (not ready), then heals itself."""
        running, sim, kafka, topic = world
        sim.faults.send_down(should_reconnect=False)
        await running.until(lambda: not running.bridge.ready(), 5)
        assert "not to reconnect" in running.bridge.checks()["icws_sessions"].detail
        await recovered(running, sim, kafka, topic, "AfterAdminLogout", sessions=2)

    async def test_burst_of_server_errors(self, world: Any) -> None:
        """A burst of 500s (connection check, then login and subscribe) ends in a new session."""
        running, sim, kafka, topic = world
        sim.faults.fail_requests(4, status=500)
        await recovered(running, sim, kafka, topic, "After500", sessions=2)

    async def test_slow_answers_time_out(self, world: Any) -> None:
        """Answers slower than the request timeout count as a lost session and recover."""
        running, sim, kafka, topic = world
        sim.faults.delay_requests(4.0, count=1, path_regex=r"/connection$")
        await recovered(running, sim, kafka, topic, "AfterSlow", sessions=2)

    async def test_expired_session_then_cut_stream(self, world: Any) -> None:
        """Session gone, then the stream cut: a new login, a gap, and every aggregate resyncs."""
        running, sim, kafka, topic = world
        sim.faults.expire_session()
        sim.faults.cut_sse(mid_event=True)
        await recovered(running, sim, kafka, topic, "AfterExpiryAndCut", sessions=2)
        lifecycle = running.bridge.settings.topics.lifecycle

        def names() -> list[str]:
            return [e["type"].split(".", 3)[-1] for e in kafka.events(lifecycle)]

        # Two sessions, each resyncing every aggregate (order holds only per subject).
        await kafka.wait_for(
            lambda _: names().count("bridge.resync.completed.v1") == 2 * len(SUBSCRIPTION_PATHS)
        )
        session_events = [e["type"].split(".", 3)[-1] for e in kafka.events(lifecycle)]
        session_events = [n for n in session_events if not n.startswith("bridge.resync")]
        assert session_events == [
            "bridge.session.up.v1",
            "bridge.session.down.v1",
            "bridge.gap.possible.v1",
            "bridge.session.up.v1",
        ]
        assert sim.logins == 2


class TestStreamFaults:
    """A cut or silent stream is not a lost session: it is reopened on the same session."""

    async def test_sse_cut_mid_event(self, world: Any) -> None:
        """A stream cut mid-event is reopened on the same session; the cut change arrives once."""
        running, sim, kafka, topic = world
        sim.faults.cut_sse(mid_event=True)
        sim.world.add_status_message("DuringCut")
        await flows(running, sim, kafka, topic, "AfterCut")
        subjects = [e["subject"] for e in kafka.events(topic)]
        assert subjects.count("duringcut") == 1
        assert sim.logins == 1
        assert len(subscribed_sessions(sim)) == 1
        reopened = running.bridge.metrics.registry.get_sample_value(
            "icws_bridge_stream_reconnects_total", {"reason": "cut"}
        )
        assert reopened == 1

    async def test_silent_sse_stream(self, world: Any) -> None:
        """A stream gone silent is reopened; streams that stay silent fall back to polling."""
        running, sim, kafka, topic = world
        sim.faults.silence_sse()
        await running.until(
            lambda: (
                "polling: SSE failed 3 times" in running.bridge.checks()["icws_sessions"].detail
            ),
            30,
        )
        await flows(running, sim, kafka, topic, "WhileSilenced")
        assert sim.logins == 1
        assert len(subscribed_sessions(sim)) == 1
        registry = running.bridge.metrics.registry
        reasons = ("silent", "no_bytes")
        counts = [
            registry.get_sample_value("icws_bridge_stream_reconnects_total", {"reason": r})
            for r in reasons
        ]
        assert counts == [1, 3]


class TestLogin:
    """Logins that fail: bad credentials, switchover, unsupported features, old servers."""

    async def test_bad_credentials_reported_once_and_retried_slowly(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Start,
        reader: Any,
        log_lines: Any,
    ) -> None:
        """Rejected credentials: one clear log line, not ready with the reason, then recovery."""
        simulator.set_password(USER, "a-different-password")
        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        await running.until(
            lambda: (
                "ICWS rejected the credentials" in running.bridge.checks()["icws_sessions"].detail
            )
        )
        seen_rejected = asyncio.get_running_loop().time()
        # Two more rejected logins (a counter), then their pace: each waited the full second
        # (bad_credentials_retry_seconds=1); the normal backoff (<= 0.5 s) would take < 1 s.
        await running.until(
            lambda: sum(r[1] == "/icws/connection" for r in simulator.requests) >= 3, 30
        )
        assert asyncio.get_running_loop().time() - seen_rejected >= 1.0
        lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
        rejected = [line for line in lines if line["event"] == "icws.login.rejected"]
        assert len(rejected) == 1
        assert not running.bridge.ready()
        simulator.set_password(USER, PASSWORD)
        async with reader([settings.topics.status_messages]) as kafka:
            await flows(running, simulator, kafka, settings.topics.status_messages, "Healed")

    async def test_switchover_to_backup_host(
        self, broker: EmbeddedBroker, start_bridge: Start, reader: Any
    ) -> None:
        """A 503 with alternateHostList moves the session to the backup, same scheme and port."""
        primary = Simulator(SimulatorConfig(users={USER: PASSWORD}, server_name="ic-a"))
        await primary.start(host="127.0.0.1", port=0)
        backup = Simulator(SimulatorConfig(users={USER: PASSWORD}, server_name="ic-b"))
        await backup.start(host="127.0.0.2", port=primary.port)
        try:
            settings = bridge_settings(broker, primary.url)
            running = start_bridge(settings)
            topic = settings.topics.status_messages
            async with reader([topic]) as kafka:
                await flows(running, primary, kafka, topic, "OnPrimary")
                primary.faults.refuse_logins(alternates=["127.0.0.2"])
                primary.faults.expire_session()
                await running.until(lambda: len(subscribed_sessions(backup)) >= 1, 20)
                await flows(running, backup, kafka, topic, "OnBackup")
            # The simulator announces this version; the one account now counts on the backup.
            labels = {"host": f"http://127.0.0.2:{primary.port}", "icws_version": SIM_VERSION}
            host = running.bridge.metrics.registry.get_sample_value(
                "icws_bridge_icws_hosts", labels
            )
            assert host == 1
        finally:
            await running.shutdown()
            await backup.stop()
            await primary.stop()

    async def test_unsupported_feature_is_named_in_readiness(
        self, broker: EmbeddedBroker, start_bridge: Start, reader: Any
    ) -> None:
        """Interactions below 9: assistance is refused by name, the other subscriptions run."""
        sim = Simulator(
            SimulatorConfig(
                users={USER: PASSWORD},
                features={"connection": 11, "messaging": 2, "interactions": 8, "status": 1},
            )
        )
        await sim.start(host="127.0.0.1", port=0)
        try:
            settings = bridge_settings(broker, sim.url)
            running = start_bridge(settings)
            await running.until(lambda: running.session.up)
            check = running.bridge.checks()["icws_subscriptions"]
            assert not check.ok
            assert check.detail == (  # the fleet names the account
                f"{USER}: subscription assistance needs ICWS feature interactions >= 9, "
                "server has version 8"
            )
            puts = [p for m, p, _ in sim.requests if m == "PUT"]
            assert not any(p.endswith("agent-assistance") for p in puts)
            assert any(p.endswith("interaction-alerting") for p in puts)
            await running.shutdown()
        finally:
            await sim.stop()

    async def test_server_serving_no_subscription_is_unsupported(
        self, broker: EmbeddedBroker, start_bridge: Start, log_lines: Any
    ) -> None:
        """No feature version any subscription needs: state unsupported, named, retried slowly."""
        sim = Simulator(
            SimulatorConfig(
                users={USER: PASSWORD},
                features={"connection": 11, "messaging": 2, "interactions": 3},
            )
        )
        await sim.start(host="127.0.0.1", port=0)
        try:
            running = start_bridge(bridge_settings(broker, sim.url))
            # Two logins: the slow retry (bad_credentials_retry_seconds=1) came round.
            await running.until(
                lambda: sum(r[:2] == ("POST", "/icws/connection") for r in sim.requests) >= 2, 10
            )
            assert running.session.health.state == "unsupported"
            check = running.bridge.checks()["icws_sessions"]
            assert not check.ok
            assert "status >= 1, server has absent" in check.detail
            state = running.bridge.metrics.registry.get_sample_value(
                "icws_bridge_accounts", {"state": "unsupported"}
            )
            assert state == 1
            assert not [p for m, p, _ in sim.requests if m == "PUT"]
            assert sim.logouts >= 1
            lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
            named = [line for line in lines if line["event"] == "icws.session.unsupported"]
            assert "interactions >= 6" in " ".join(named[0]["missing"])
            await running.shutdown()
        finally:
            await sim.stop()

    async def test_messaging_version_1_uses_short_polling(
        self, broker: EmbeddedBroker, start_bridge: Start, reader: Any
    ) -> None:
        """A server without SSE (messaging 1) is short-polled, and events still flow."""
        sim = Simulator(
            SimulatorConfig(
                users={USER: PASSWORD},
                features={"connection": 11, "messaging": 1, "interactions": 9, "status": 1},
            )
        )
        await sim.start(host="127.0.0.1", port=0)
        try:
            settings = bridge_settings(broker, sim.url)
            running = start_bridge(settings)
            topic = settings.topics.lifecycle
            async with reader([settings.topics.status_messages, topic]) as kafka:
                await flows(running, sim, kafka, settings.topics.status_messages, "Polled")
                up = [e for e in kafka.events(topic) if e["type"].endswith("session.up.v1")]
                assert up[0]["data"]["transport"] == "poll"
            await running.shutdown()
        finally:
            await sim.stop()


class TestHosts:
    """Hosts that stop answering, and subscriptions that are gone."""

    async def test_dead_primary_moves_to_configured_backup(
        self, broker: EmbeddedBroker, start_bridge: Start, reader: Any
    ) -> None:
        """A primary that no longer accepts connections: the next configured host takes over."""
        primary = Simulator(SimulatorConfig(users={USER: PASSWORD}))
        await primary.start(host="127.0.0.1", port=0)
        backup = Simulator(SimulatorConfig(users={USER: PASSWORD}))
        await backup.start(host="127.0.0.1", port=0)
        settings = bridge_settings(broker, primary.url, backup.url)
        running = start_bridge(settings)
        topic = settings.topics.status_messages
        try:
            async with reader([topic]) as kafka:
                await flows(running, primary, kafka, topic, "OnPrimary")
                await primary.stop()
                await running.until(lambda: len(subscribed_sessions(backup)) >= 1, 20)
                await flows(running, backup, kafka, topic, "OnBackup")
        finally:
            await running.shutdown()
            await backup.stop()

    async def test_unreachable_server_back_is_logged_into_without_waiting_out_backoff(
        self, broker: EmbeddedBroker, start_bridge: Start, reader: Any
    ) -> None:
        """No host answers: a probe sees the server return and the login follows at once."""
        sim = Simulator(SimulatorConfig(users={USER: PASSWORD}))
        await sim.start(host="127.0.0.1", port=0)
        port = sim.port
        settings = bridge_settings(
            broker,
            sim.url,
            icws={
                "backoff_initial_seconds": 8,
                "backoff_max_seconds": 8,
                "probe_interval_seconds": 0.2,
            },
        )
        running = start_bridge(settings)
        topic = settings.topics.status_messages
        async with reader([topic]) as kafka:
            await flows(running, sim, kafka, topic, "BeforeOutage")
            await sim.stop()
            failed = running.bridge.metrics.registry
            await running.until(
                lambda: (
                    (
                        failed.get_sample_value(
                            "icws_bridge_logins_total", {"result": "unavailable"}
                        )
                        or 0
                    )
                    >= 1
                )
            )
            back = len(sim.requests)
            await sim.start(host="127.0.0.1", port=port)
            try:
                # The backoff alone would wait at least 8 s (8, plus jitter); 6 s is slack.
                await running.until(lambda: running.session.up, 6)
                # The login followed a sessionless probe that saw the server answer again.
                after = [(method, path) for method, path, _ in sim.requests[back:]]
                probe = after.index(("GET", "/icws/connection/features"))
                assert after.index(("POST", "/icws/connection")) > probe
                await flows(running, sim, kafka, topic, "AfterOutage")
            finally:
                await running.shutdown()
                await sim.stop()

    async def test_stop_is_prompt_while_waiting_after_rejected_credentials(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Start
    ) -> None:
        """A SIGTERM during the slow wait after rejected credentials does not wait it out."""
        simulator.set_password(USER, "rotated-elsewhere")
        settings = bridge_settings(
            broker, simulator.url, icws={"bad_credentials_retry_seconds": 300}
        )
        running = start_bridge(settings)
        await running.until(lambda: running.session.health.state == "bad_credentials")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await running.shutdown()
        assert loop.time() - started < 10

    async def test_gone_subscription_is_named_and_others_work(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Start, reader: Any
    ) -> None:
        """A subscription answering 410 is reported by name; the rest keep flowing."""
        simulator.faults.fail_requests(
            1, status=410, path_regex=r"interaction-history$", method="PUT"
        )
        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        topic = settings.topics.status_messages
        await running.until(lambda: running.session.up)
        check = running.bridge.checks()["icws_subscriptions"]
        assert not check.ok
        assert check.detail.startswith(f"{USER}: subscribe.history: HTTP 410")
        async with reader([topic]) as kafka:
            simulator.world.add_status_message("StillFlowing")
            await kafka.wait_for(lambda _: len(kafka.events(topic)) == 1)
        await running.shutdown()


class TestShutdown:
    """SIGTERM-style stop: unsubscribe, log out, bounded, and no secrets anywhere."""

    async def test_stop_unsubscribes_and_logs_out(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Start, log_lines: Any
    ) -> None:
        """After stop the simulator saw every subscription deleted and the session logged out."""
        running = start_bridge(bridge_settings(broker, simulator.url))
        await running.ready()
        session_id = subscribed_sessions(simulator)[0]
        await running.shutdown()
        deletes = [p for m, p, _ in simulator.requests if m == "DELETE"]
        assert f"/icws/{session_id}/connection" in deletes
        for sub in SUBSCRIPTION_PATHS:
            assert f"/icws/{session_id}/{sub}" in deletes
        assert simulator.logouts == 1
        text = log_lines.getvalue()
        assert PASSWORD not in text
        assert "icws_" + session_id + "=" not in text
