"""End to end: no silent loss when Kafka is slow, away or restarted, and at shutdown.

Each test compares, exactly, each entity's sequence of events on Kafka with the sequence the
messages the simulator actually sent imply under the README's contract (see tests/oracle.py,
which is independent of bridge.core).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from typing import Any

import pytest

from bridge.embedded_broker import EmbeddedBroker, free_port
from bridge.simulator import Simulator
from bridge.simulator.scenario import LivelyScenario
from tests.conftest import USER, Reader, bridge_process, bridge_settings, topic_schemas
from tests.oracle import (
    expected_steps,
    published,
    published_steps,
    sequence_differences,
    step_count,
)
from tests.truth import event_topic_aggregates, event_topics, steps

pytestmark = pytest.mark.e2e


def expected_count(simulator: Simulator, settings: Any) -> int:
    """How many entity events the messages the simulator sent imply."""
    names = settings.subscriptions.alerting.attribute_names
    return step_count(expected_steps(simulator.sent_messages, names))


def published_count(kafka: Any, settings: Any) -> int:
    """How many distinct entity events (entity, sequence) are on Kafka."""
    return len(
        {(t, e["subject"], e["sequence"]) for t in event_topics(settings) for e in kafka.events(t)}
    )


def assert_exactly_delivered(kafka: Any, simulator: Simulator, settings: Any) -> None:
    """Each entity's events are exactly the expected sequence (replays keep their id), in order."""
    expected = expected_steps(
        simulator.sent_messages, settings.subscriptions.alerting.attribute_names
    )
    by_aggregate = {a: kafka.events(t) for t, a in event_topic_aggregates(settings).items()}
    problems = sequence_differences(expected, published_steps(by_aggregate))
    assert not problems, f"{len(problems)} entities differ: {problems[:5]}"
    events = [e for t in event_topics(settings) for e in kafka.events(t)]
    ids, per_key = published(events)
    for key, sequences in per_key.items():
        deduped = [s for i, s in enumerate(sequences) if s not in sequences[:i]]
        assert deduped == sorted(deduped), f"{key} out of order: {sequences}"
    replays = sum(n - 1 for n in Counter(ids).values())
    assert replays <= len(ids) // 2, "more replays than an outage can explain"


class TestKafkaOutages:
    """The broker stops answering or restarts while ICWS keeps talking."""

    async def test_paused_broker_then_resumed(
        self, broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any, reader: Any
    ) -> None:
        """SIGSTOP longer than the request timeout: readiness drops, then everything arrives."""
        settings = bridge_settings(
            broker, simulator.url, pipeline={"buffer_size": 50, "outage_seconds": 1}
        )
        running = start_bridge(settings)
        await running.ready()
        scenario = LivelyScenario(simulator.world, [USER], seed=31)
        await steps(scenario, 30)
        broker.pause()
        try:
            await steps(scenario, 150, pause=0.02)  # well past the 3 s request timeout
            await running.until(lambda: not running.bridge.ready(), 10)
            assert running.bridge.checks()["kafka_producer"].ok is False
        finally:
            broker.resume()
        await steps(scenario, 30)
        await running.ready(30)
        async with reader(event_topics(settings)) as kafka:
            expected = expected_count(simulator, settings)
            await kafka.wait_for(lambda _: published_count(kafka, settings) >= expected, 30)
            await kafka.settle()
            assert_exactly_delivered(kafka, simulator, settings)
        blocked = running.bridge.metrics.registry.get_sample_value(
            "icws_bridge_pump_blocked_seconds_total"
        )
        assert blocked is not None
        assert blocked > 0
        await running.shutdown()

    async def test_bridge_started_before_the_broker(
        self, simulator: Simulator, start_bridge: Any
    ) -> None:
        """No broker yet: the bridge runs, is not ready and says why; then the broker comes."""
        broker = EmbeddedBroker(schema_registry=topic_schemas())
        settings = bridge_settings(broker, simulator.url)
        running = start_bridge(settings)
        await running.until(lambda: running.bridge.health_port is not None)
        # A failed attempt to reach Kafka is the marker: the check says so once it happened.
        await running.until(
            lambda: "producer cannot start" in running.bridge.checks()["kafka_producer"].detail, 30
        )
        check = running.bridge.checks()["kafka_producer"]
        assert not check.ok
        assert "producer cannot start" in check.detail
        assert simulator.logins == 0  # ICWS waits for Kafka: nothing read that cannot be kept
        await broker.start()
        try:
            await running.ready(30)
            await running.shutdown()
        finally:
            await broker.stop()


@pytest.fixture(name="persistent_broker")
async def fixture_persistent_broker() -> Any:
    """A Tansu broker storing in S3 on a local moto server, so data survives its restart."""
    import boto3

    port = free_port()
    moto = await asyncio.create_subprocess_exec(
        os.path.join(os.path.dirname(sys.executable), "moto_server"),
        "-p",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    async with asyncio.timeout(20):
        while True:
            try:
                await asyncio.to_thread(s3.create_bucket, Bucket="tansu")
                break
            except Exception:  # moto is still starting
                await asyncio.sleep(0.1)
    broker = EmbeddedBroker(storage="s3://tansu/", env=env, schema_registry=topic_schemas())
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()
        moto.terminate()
        await moto.wait()


class TestBrokerRestart:
    """A broker with persistent storage restarts mid-stream."""

    async def test_restart_with_persistent_storage(
        self,
        persistent_broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
    ) -> None:
        """Events read before, during and after the restart all arrive, in order per key."""
        broker = persistent_broker
        settings = bridge_settings(broker, simulator.url, pipeline={"buffer_size": 50})
        running = start_bridge(settings)
        await running.ready(30)
        scenario = LivelyScenario(simulator.world, [USER], seed=37)
        await steps(scenario, 40)
        await broker.stop()
        await steps(scenario, 40, pause=0.01)
        await broker.start()
        await steps(scenario, 40)
        await running.ready(30)
        async with Reader(broker.bootstrap, event_topics(settings)) as kafka:
            expected = expected_count(simulator, settings)
            await kafka.wait_for(lambda _: published_count(kafka, settings) >= expected, 30)
            await kafka.settle()
            assert_exactly_delivered(kafka, simulator, settings)
        await running.shutdown()


class TestShutdown:
    """SIGTERM mid-stream flushes everything already read from ICWS."""

    async def test_sigterm_mid_stream_loses_nothing(
        self, broker: EmbeddedBroker, simulator: Simulator, reader: Any
    ) -> None:
        """A bridge process stopped with SIGTERM exits 0 with every read message on Kafka."""
        settings = bridge_settings(broker, simulator.url)
        scenario = LivelyScenario(simulator.world, [USER], seed=41)
        spawn = bridge_process(
            broker, simulator.url, stderr=asyncio.subprocess.PIPE, BRIDGE_KAFKA__LINGER_MS="50"
        )
        async with spawn as process:
            await simulator.wait_for(lambda: simulator.logins >= 1, 30)
            await simulator.wait_for(lambda: len(simulator.sent_messages) >= 4, 30)
            await steps(scenario, 200, pause=0.001)
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 40)
            assert process.returncode == 0, stderr.decode()[-2000:]
            assert b"flush.incomplete" not in stderr
            assert simulator.logouts == 1
            async with reader(event_topics(settings)) as kafka:
                await kafka.settle()
                assert_exactly_delivered(kafka, simulator, settings)
