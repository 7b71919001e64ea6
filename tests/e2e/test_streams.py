"""End to end: SSE streams are not sessions (issue #12 items 1, 2, 7), against the simulator.

Each test sets one stream behaviour of a real server or proxy (recycled streams, a long ping
interval, a stream that hangs, an HTML page, a heartbeat) and proves it through the simulator's
counters and what reaches Kafka: no extra login, no re-subscription, no gap marker, and every
change delivered once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bridge.embedded_broker import EmbeddedBroker
from bridge.settings import IcwsSettings, Settings
from bridge.simulator import Simulator
from tests.conftest import USER, Reader, RunningBridge, bridge_settings

pytestmark = pytest.mark.e2e

# The literal figures: a stream recycled every 10 s for a minute; a minute of silence
# with a 60 s ping interval (and the bridge's default 45 s idle limit).
RECYCLE_SECONDS = 10.0
RECYCLE_RETRY_MS = 500
RECYCLE_MINUTE = 60.0
CHANGE_EVERY = 2.0
PING_SECONDS = 60.0
SILENT_MINUTE = 60.0
DEFAULT_IDLE_SECONDS = IcwsSettings.model_fields["sse_idle_timeout_seconds"].default

Start = Callable[[Settings], RunningBridge]


def counter(sim: Simulator, name: str) -> int:
    """One of the simulator's `/_sim/state` counters."""
    return sim.counters[name]


def metric(running: RunningBridge, name: str, **labels: str) -> float:
    return running.bridge.metrics.registry.get_sample_value(name, labels) or 0


def lifecycle_after_first_up(kafka: Reader, topic: str) -> list[str]:
    """Lifecycle event names published after the first session.up."""
    names = [e["type"].split(".", 3)[-1] for e in kafka.events(topic)]
    first_up = names.index("bridge.session.up.v1")
    return names[first_up + 1 :]


def icws_ready(running: RunningBridge) -> bool:
    """The ICWS side of readiness (Kafka's part is judged by other tests)."""
    return all(c.ok for name, c in running.bridge.checks().items() if name.startswith("icws_"))


async def delivered(kafka: Reader, topic: str, tags: list[str]) -> None:
    """Every tagged status message is on Kafka; fail naming what never came."""
    wanted = {tag.casefold() for tag in tags}

    def seen() -> set[str]:
        return {e["subject"] for e in kafka.events(topic)} & wanted

    await kafka.wait_for(
        lambda _: seen() == wanted, 30, explain=lambda _: f"missing {sorted(wanted - seen())}"
    )


def once_each(kafka: Reader, topic: str, tags: list[str]) -> None:
    """Each tagged status message was added exactly once on Kafka."""
    subjects = [e["subject"] for e in kafka.events(topic)]
    counts = {tag: subjects.count(tag.casefold()) for tag in tags}
    assert set(counts.values()) == {1}, counts


async def started(
    start_bridge: Start, broker: EmbeddedBroker, sim: Simulator, **icws: Any
) -> tuple[RunningBridge, Settings]:
    """A bridge on ``sim`` with the test settings (and ``icws`` overrides), once ready."""
    settings = bridge_settings(broker, sim.url, icws=icws)
    running = start_bridge(settings)
    await running.ready(30)
    return running, settings


class TestStreamsAreNotSessions:
    """Streams that a server ends or keeps quiet are reopened on the same session."""

    async def test_recycled_streams_cost_no_login_subscription_or_gap(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Start, reader: Any
    ) -> None:
        """Streams recycled every 10 s for a minute: one login and PUT set, no gap, all once."""
        simulator.configure(sse_recycle_seconds=RECYCLE_SECONDS, sse_retry_ms=RECYCLE_RETRY_MS)
        running, settings = await started(start_bridge, broker, simulator)
        topic, lifecycle = settings.topics.status_messages, settings.topics.lifecycle
        puts = counter(simulator, "subscriptionPuts")
        tags: list[str] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + RECYCLE_MINUTE
        while loop.time() < end:
            tags.append(f"Recycled{len(tags)}")
            simulator.world.add_status_message(tags[-1])
            await asyncio.sleep(CHANGE_EVERY)  # the pace of changes, not a synchronisation
        async with reader([topic, lifecycle]) as kafka:
            await delivered(kafka, topic, tags)
            await kafka.settle()
            once_each(kafka, topic, tags)
            assert "bridge.gap.possible.v1" not in lifecycle_after_first_up(kafka, lifecycle)
        recycled = counter(simulator, "streamsRecycled")
        assert recycled >= RECYCLE_MINUTE // RECYCLE_SECONDS - 1
        assert counter(simulator, "logins") == 1
        assert counter(simulator, "subscriptionPuts") == puts
        reopened = metric(running, "icws_bridge_stream_reconnects_total", reason="closed")
        assert reopened >= recycled - 1
        await running.shutdown()

    async def test_a_minute_of_silence_with_a_long_ping_is_no_relogin(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Start, reader: Any
    ) -> None:
        """A 60 s ping and the default idle limit: a quiet minute costs no login and no gap."""
        simulator.configure(sse_keepalive_seconds=PING_SECONDS)
        running, settings = await started(
            start_bridge, broker, simulator, sse_idle_timeout_seconds=DEFAULT_IDLE_SECONDS
        )
        topic, lifecycle = settings.topics.status_messages, settings.topics.lifecycle
        await asyncio.sleep(SILENT_MINUTE)  # the silence under test
        simulator.world.add_status_message("AfterSilence")
        async with reader([topic, lifecycle]) as kafka:
            await delivered(kafka, topic, ["AfterSilence"])
            assert "bridge.gap.possible.v1" not in lifecycle_after_first_up(kafka, lifecycle)
        assert counter(simulator, "logins") == 1
        # The idle limit (45 s) ran out before the first ping (60 s): one stream reopened.
        assert metric(running, "icws_bridge_stream_reconnects_total", reason="silent") == 1
        assert icws_ready(running)
        await running.shutdown()


class TestFallbackToPolling:
    """SSE that does not work through a proxy: short polling on the same session."""

    @pytest.mark.parametrize(
        ("fault", "reason"),
        [
            ("hang", "no_bytes"),
            ("html_200", "not_event_stream"),
            ("html_502", "refused"),
        ],
    )
    async def test_broken_sse_falls_back_to_polling(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Start,
        reader: Any,
        fault: str,
        reason: str,
    ) -> None:
        """SSE hangs or answers HTML: polling after 3 failures, ready saying so, one login."""
        if fault == "hang":
            simulator.faults.hang_sse()
        else:
            simulator.faults.html_sse(status=int(fault.removeprefix("html_")))
        running, settings = await started(start_bridge, broker, simulator)
        detail = running.bridge.checks()["icws_sessions"].detail
        assert f"{USER} up (polling: SSE failed 3 times: " in detail  # the fleet names it
        assert metric(running, "icws_bridge_transport", transport="poll") == 1
        assert metric(running, "icws_bridge_stream_reconnects_total", reason=reason) == 3
        topic = settings.topics.status_messages
        simulator.world.add_status_message("WhilePolling")
        async with reader([topic]) as kafka:
            await delivered(kafka, topic, ["WhilePolling"])
        assert counter(simulator, "logins") == 1
        await running.shutdown()

    async def test_not_ready_until_the_first_snapshots_arrive(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Start
    ) -> None:
        """Subscribed behind a proxy that holds the stream silent: not ready, naming the wait."""
        simulator.faults.hang_sse()
        settings = bridge_settings(broker, simulator.url, icws={"sse_idle_timeout_seconds": 60})
        running = start_bridge(settings)
        await running.until(lambda: running.session.up, 15)
        check = running.bridge.checks()["icws_snapshots"]
        assert not check.ok
        assert check.detail.startswith(f"{USER}: awaiting the first snapshot of ")
        assert "status_messages" in check.detail
        assert not running.bridge.ready()
        await running.shutdown()


class TestHeartbeat:
    """POST /messaging/heartbeat keeps the session alive, unless the server has none."""

    async def test_heartbeats_are_sent(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Start
    ) -> None:
        """With a short interval the simulator counts heartbeats on the one session."""
        running, _ = await started(start_bridge, broker, simulator, heartbeat_seconds=0.2)
        await running.until(lambda: counter(simulator, "heartbeats") >= 3, 10)
        assert counter(simulator, "logins") == 1
        await running.shutdown()

    async def test_heartbeat_404_is_turned_off_without_losing_the_session(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Start, log_lines: Any
    ) -> None:
        """A server answering 404: one heartbeat, then none; the session lives on."""
        simulator.configure(heartbeat_status=404)
        running, _ = await started(
            start_bridge, broker, simulator, heartbeat_seconds=0.2, connection_check_seconds=0.2
        )
        checks = sum(p.endswith("/connection") and m == "GET" for m, p, _ in simulator.requests)
        await running.until(
            lambda: (
                sum(p.endswith("/connection") and m == "GET" for m, p, _ in simulator.requests)
                >= checks + 5
            ),
            10,
        )
        assert counter(simulator, "heartbeats") == 1
        assert counter(simulator, "logins") == 1
        assert icws_ready(running)
        assert '"icws.heartbeat.unsupported"' in log_lines.getvalue()
        await running.shutdown()
