"""End to end: commands from Kafka run against the simulator once each, with exactly one result.

Every outcome is produced for real: the simulator answers (or is made to fail, stall, refuse
logins), the broker is real, and the bridge runs in-process or, where it must die hard, as a
child process killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bridge.core import commands
from bridge.core import journal_entries as journal
from bridge.embedded_broker import EmbeddedBroker
from bridge.kafka import ensure_topics
from bridge.settings import Settings
from bridge.simulator import Simulator
from tests.conftest import (
    USER,
    Reader,
    RunningBridge,
    bridge_process,
    bridge_settings,
    subscribed_sessions,
)
from tests.contract import check_record

pytestmark = pytest.mark.e2e

PREFIX = "com.pureconnect.icws"
UPDATE = f"{PREFIX}.command.assistance.update.v1"
COMPLETE = f"{PREFIX}.command.assistance.complete.v1"
FAST_COMMANDS = {
    "backoff_initial_seconds": 0.05,
    "backoff_max_seconds": 0.2,
    "recovery_seconds": 3,
    "shutdown_grace_seconds": 5,
}


def settings_for(
    broker: EmbeddedBroker, sim: Simulator, groups: dict[str, Any] | None = None, **commands_: Any
) -> Settings:
    """Test settings with a fast consumer group and fast command retries."""
    return bridge_settings(
        broker, sim.url, commands={**FAST_COMMANDS, **commands_}, **(groups or {})
    )


def command(
    kind: str,
    assistance_id: str,
    text: str | None = None,
    *,
    ident: str | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """A command CloudEvent as a sender writes it."""
    data: dict[str, Any] = {"assistanceId": assistance_id}
    if text is not None:
        data["text"] = text
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": ident or str(uuid.uuid4()),
        "source": "/tests/routing",
        "type": UPDATE if kind == "update" else COMPLETE,
        "datacontenttype": "application/json",
        "data": data,
    }
    if deadline is not None:
        event["deadline"] = commands.timestamp(deadline)
    return event


class Sender:
    """Writes records to the command topic, as a producing service would."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    async def send(self, value: dict[str, Any] | bytes | None, key: bytes | None = None) -> None:
        raw = json.dumps(value).encode() if isinstance(value, dict) else value
        if key is None and isinstance(value, dict):
            key = str(value.get("data", {}).get("assistanceId", "")).encode() or None
        await self._producer.send_and_wait(self.topic, raw, key=key, headers=[("trace", b"t-1")])


@pytest.fixture(name="producer")
async def fixture_producer(broker: EmbeddedBroker) -> AsyncIterator[AIOKafkaProducer]:
    """A plain producer on the test broker."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def results(kafka: Reader, settings: Settings, command_id: str) -> list[dict[str, Any]]:
    """Result events for one command id, in the order published."""
    return [
        check_record(r)
        for r in kafka.records
        if r.topic == settings.topics.command_results and r.key == command_id.encode()
    ]


async def result_of(kafka: Reader, settings: Settings, command_id: str) -> dict[str, Any]:
    """The (first) result of a command, waiting for it."""
    await kafka.wait_for(lambda _: bool(results(kafka, settings, command_id)), 20)
    return results(kafka, settings, command_id)[0]


def calls(sim: Simulator, assistance_id: str) -> list[tuple[str, int]]:
    """(method, status) of every request the simulator answered for one assistance request."""
    suffix = f"/interactions/agent-assistance/{assistance_id}"
    return [(m, s) for m, p, s in sim.requests if p.endswith(suffix) and "/subscriptions/" not in p]


def counted(running: RunningBridge, name: str, **labels: str) -> float:
    value = running.bridge.metrics.registry.get_sample_value(f"icws_bridge_{name}", labels)
    return value or 0.0


def command_path(assistance_id: str) -> str:
    """A regex for the command calls on one request (not its details subscription)."""
    return f"^/icws/\\d+/interactions/agent-assistance/{assistance_id}$"


async def rewind(broker: EmbeddedBroker, settings: Settings) -> None:
    """Commit offset 0 for every command partition in the bridge's group, as if never committed."""
    consumer = AIOKafkaConsumer(
        settings.topics.commands,
        bootstrap_servers=broker.bootstrap,
        group_id=settings.kafka.consumer_group,
        enable_auto_commit=False,
        session_timeout_ms=1500,
        heartbeat_interval_ms=300,
        rebalance_timeout_ms=1500,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(15):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)
        await consumer.commit(dict.fromkeys(consumer.assignment(), 0))
    finally:
        await consumer.stop()


def open_request(sim: Simulator, text: str = "Please help") -> str:
    return sim.world.create_assistance(USER, "100123456780170101", text)


async def started(
    broker: EmbeddedBroker, simulator: Simulator, start_bridge: Any
) -> tuple[Settings, RunningBridge, str]:
    """A ready bridge, and an open assistance request of its user to command."""
    settings = settings_for(broker, simulator)
    running = start_bridge(settings)
    await running.ready()
    return settings, running, open_request(simulator)


def texts(sim: Simulator, assistance_id: str) -> list[str]:
    return [m["text"] for m in sim.world.assistance[assistance_id]["messages"]]


class TestOutcomes:
    """Each command gets the outcome ICWS's answer means."""

    async def test_update_adds_the_message(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """An update succeeds; the simulator's request has the message from the bridge's user."""
        settings, running, assistance_id = await started(broker, simulator, start_bridge)
        update = command("update", assistance_id, "Refund approved?")
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(update)
            result = await result_of(kafka, settings, update["id"])
        assert result["data"]["outcome"] == "succeeded"
        assert result["data"]["attempts"] == 1
        assert result["data"]["observed"] is False
        assert result["data"]["userId"] == USER  # keyed by the assistance id: its one owner
        assert result["subject"] == update["id"]
        assert texts(simulator, assistance_id) == ["Please help", "Refund approved?"]
        assert simulator.world.assistance[assistance_id]["messages"][-1]["participantId"] == USER
        assert calls(simulator, assistance_id) == [("POST", 204)]
        assert (
            counted(running, "commands_total", type="assistance_update", outcome="succeeded") == 1
        )
        await running.shutdown()

    async def test_complete_completes_the_request(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """A complete succeeds, and the simulator's request is completed (state 2)."""
        settings, running, assistance_id = await started(broker, simulator, start_bridge)
        complete = command("complete", assistance_id)
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(complete)
            result = await result_of(kafka, settings, complete["id"])
        assert (result["data"]["outcome"], result["data"]["attempts"]) == ("succeeded", 1)
        assert simulator.world.assistance[assistance_id]["state"] == 2
        assert calls(simulator, assistance_id) == [("DELETE", 204)]
        await running.shutdown()

    @pytest.mark.parametrize(
        ("key", "reason"),
        [
            (None, "no account of this fleet holds request no-such-request"),
            (USER.encode(), f"request no-such-request is not open for user {USER}"),
        ],
        ids=["keyed-by-the-request", "keyed-by-the-user"],
    )
    async def test_unknown_request_is_rejected_without_a_call(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
        key: bytes | None,
        reason: str,
    ) -> None:
        """A request the bridge's user does not have is ``rejected`` here: nothing sent to ICWS."""
        settings = settings_for(broker, simulator)
        running = start_bridge(settings)
        await running.ready()
        update = command("update", "no-such-request", "hello")
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(update, key=key)
            result = await result_of(kafka, settings, update["id"])
        error = result["data"]["error"]
        assert (result["data"]["outcome"], result["data"]["userId"]) == ("rejected", None)
        assert (error["status"], error["message"]) == (None, reason)
        assert calls(simulator, "no-such-request") == []
        await running.shutdown()

    async def test_keyed_by_the_owner_runs_as_the_owner(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """Keyed by the user id that owns the request, it runs; the result names that userId."""
        settings, running, assistance_id = await started(broker, simulator, start_bridge)
        update = command("update", assistance_id, "as the owner")
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(update, key=USER.encode())
            result = await result_of(kafka, settings, update["id"])
        assert (result["data"]["outcome"], result["data"]["userId"]) == ("succeeded", USER)
        assert calls(simulator, assistance_id) == [("POST", 204)]
        assert simulator.world.assistance[assistance_id]["messages"][-1]["participantId"] == USER
        # The partition count the fleet maps accounts with, as the broker has it.
        assert running.bridge.commands is not None
        assert running.bridge.commands.consumer.partitions == settings.topics.partitions
        await running.shutdown()

    async def test_gone_fails_without_retry(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """A 410 Gone is ``failed`` at once: one call, the status in the error."""
        settings, running, assistance_id = await started(broker, simulator, start_bridge)
        simulator.faults.fail_requests(5, status=410, path_regex=command_path(assistance_id))
        update = command("update", assistance_id, "hello")
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(update)
            result = await result_of(kafka, settings, update["id"])
        assert result["data"]["outcome"] == "failed"
        assert result["data"]["error"]["status"] == 410
        assert calls(simulator, assistance_id) == [("POST", 410)]
        assert texts(simulator, assistance_id) == ["Please help"]
        await running.shutdown()

    @pytest.mark.parametrize(
        ("max_attempts", "deadline_in", "sent"),
        # The deadline leaves a loaded machine ample time to read the command before it passes
        # (else it would be ``expired``), and still ends the retries long before 1000 attempts.
        [(3, 300.0, 3), (1000, 6.0, None)],
        ids=["attempt-cap", "deadline"],
    )
    async def test_persistent_server_errors_fail_when_retries_run_out(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
        max_attempts: int,
        deadline_in: float,
        sent: int | None,
    ) -> None:
        """500s are retried with backoff until the attempt cap or the deadline, then ``failed``."""
        settings = settings_for(broker, simulator, max_attempts=max_attempts)
        running = start_bridge(settings)
        await running.ready()
        assistance_id = open_request(simulator)
        simulator.faults.fail_requests(
            10_000,
            status=500,
            path_regex=command_path(assistance_id),
        )
        update = command("update", assistance_id, "hello", deadline=time.time() + deadline_in)
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(update)
            result = await result_of(kafka, settings, update["id"])
        made = calls(simulator, assistance_id)
        assert result["data"]["outcome"] == "failed"
        assert "HTTP 500" in result["data"]["error"]["message"]
        assert result["data"]["attempts"] == len(made)
        assert set(made) == {("POST", 500)}
        assert len(made) == sent if sent is not None else 2 <= len(made) < max_attempts
        assert texts(simulator, assistance_id) == ["Please help"]
        await running.shutdown()

    async def test_expired_command_is_never_sent(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """A command read after its deadline is ``expired`` and never reaches ICWS."""
        settings, running, assistance_id = await started(broker, simulator, start_bridge)
        update = command("update", assistance_id, "too late", deadline=time.time() - 1)
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(update)
            result = await result_of(kafka, settings, update["id"])
        assert (result["data"]["outcome"], result["data"]["attempts"]) == ("expired", 0)
        assert calls(simulator, assistance_id) == []
        assert texts(simulator, assistance_id) == ["Please help"]
        await running.shutdown()


class TestOnce:
    """One command id runs at most once, whatever comes again."""

    async def test_same_id_twice_runs_once(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """A duplicate id is not executed again; its one result is published again unchanged."""
        settings, running, assistance_id = await started(broker, simulator, start_bridge)
        update = command("update", assistance_id, "only once")
        sender = Sender(producer, settings.topics.commands)
        async with reader([settings.topics.command_results]) as kafka:
            await sender.send(update)
            await sender.send(update)
            await kafka.wait_for(lambda _: len(results(kafka, settings, update["id"])) == 2)
            await kafka.settle()
            published = results(kafka, settings, update["id"])
        assert len(published) == 2
        assert published[0] == published[1]  # the same event, same id, byte for byte
        assert published[0]["data"]["outcome"] == "succeeded"
        assert texts(simulator, assistance_id) == ["Please help", "only once"]
        assert calls(simulator, assistance_id) == [("POST", 204)]
        assert (
            counted(running, "commands_total", type="assistance_update", outcome="duplicate") == 1
        )
        assert (
            counted(running, "commands_total", type="assistance_update", outcome="succeeded") == 1
        )
        await running.shutdown()

    async def test_redelivered_after_a_restart_is_not_run_again(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """With the group's offsets rewound, a new bridge reads the command again and skips it."""
        settings = settings_for(broker, simulator)
        first = start_bridge(settings)
        await first.ready()
        assistance_id = open_request(simulator)
        complete = command("complete", assistance_id)
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(complete)
            original = await result_of(kafka, settings, complete["id"])
            await first.shutdown()
            await rewind(broker, settings)  # the offset as if the commit had been lost

            second = start_bridge(settings)
            await second.ready()
            await kafka.wait_for(lambda _: len(results(kafka, settings, complete["id"])) == 2)
            again = results(kafka, settings, complete["id"])[1]
        assert again == original
        assert calls(simulator, assistance_id) == [("DELETE", 204)]
        assert (
            counted(second, "commands_total", type="assistance_complete", outcome="duplicate") == 1
        )
        assert (
            counted(second, "commands_total", type="assistance_complete", outcome="succeeded") == 0
        )
        await second.shutdown()

    async def test_interrupted_without_evidence_is_unknown(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """A command an earlier bridge started but never finished is not re-sent: ``unknown``."""
        settings = settings_for(broker, simulator, recovery_seconds=1)
        await ensure_topics(settings.kafka, settings.topics)
        assistance_id = open_request(simulator)
        update = command("update", assistance_id, "in doubt", deadline=time.time() - 1)
        started = journal.Started(
            update["id"],
            commands.Position(settings.topics.commands, 0, 0),
            time.time() - 5,
            journal.Baseline(True, 0),
            "an-earlier-bridge",
        )
        record = journal.journal_record(settings.topics.command_journal, started)
        await producer.send_and_wait(record.topic, record.value, key=record.key)
        running = start_bridge(settings)
        await running.ready()
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(update)
            result = await result_of(kafka, settings, update["id"])
        assert result["data"]["outcome"] == "unknown"
        assert result["data"]["attempts"] is None
        assert "not sent again" in result["data"]["error"]["message"]
        assert calls(simulator, assistance_id) == []
        assert texts(simulator, assistance_id) == ["Please help"]
        await running.shutdown()


class TestSessionTrouble:
    """Commands wait for the ICWS session and run once it is back, within their deadline."""

    async def test_commands_wait_while_logins_are_refused(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """Sent while the session is down, a command runs once after the bridge logs in again."""
        settings, running, assistance_id = await started(broker, simulator, start_bridge)
        simulator.faults.refuse_logins()
        simulator.faults.expire_session()
        await running.until(lambda: not running.session.up)
        update = command("update", assistance_id, "after the outage")
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(update)
            refused = refused_logins(simulator)
            await running.until(lambda: refused_logins(simulator) >= refused + 3)
            await kafka.poll()
            assert results(kafka, settings, update["id"]) == []
            assert calls(simulator, assistance_id) == []
            simulator.faults.accept_logins()
            result = await result_of(kafka, settings, update["id"])
        assert (result["data"]["outcome"], result["data"]["attempts"]) == ("succeeded", 1)
        assert calls(simulator, assistance_id) == [("POST", 204)]
        await running.shutdown()

    async def test_expired_session_mid_command_is_retried_after_login(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """A 401 on the command's call makes the bridge log in again; the command then succeeds."""
        settings, running, assistance_id = await started(broker, simulator, start_bridge)
        simulator.faults.fail_requests(1, status=401, path_regex=command_path(assistance_id))
        update = command("update", assistance_id, "after a 401")
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(update)
            result = await result_of(kafka, settings, update["id"])
        assert (result["data"]["outcome"], result["data"]["attempts"]) == ("succeeded", 2)
        assert calls(simulator, assistance_id) == [("POST", 401), ("POST", 204)]
        assert texts(simulator, assistance_id) == ["Please help", "after a 401"]
        await running.shutdown()


class TestShutdown:
    """SIGTERM lets commands already sent finish and commits them; the rest run after a restart."""

    async def test_sent_command_finishes_and_is_committed(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """Stopped mid-call, the bridge publishes the result and commits: no redelivery after."""
        settings = settings_for(broker, simulator)
        first = start_bridge(settings)
        await first.ready()
        assistance_id = open_request(simulator)
        simulator.faults.delay_requests(1.0, count=1, path_regex=command_path(assistance_id))
        update = command("update", assistance_id, "finished while stopping")
        sender = Sender(producer, settings.topics.commands)
        topics = [settings.topics.command_results, settings.topics.command_journal]
        async with reader(topics) as kafka:
            await sender.send(update)
            await kafka.wait_for(lambda r: journaled(r, settings, update["id"], "started"))
            await first.shutdown()
            assert (await result_of(kafka, settings, update["id"]))["data"][
                "outcome"
            ] == "succeeded"

            second = start_bridge(settings)
            await second.ready()
            after = command("update", assistance_id, "next")  # same key, same partition, later
            await sender.send(after)
            await result_of(kafka, settings, after["id"])
        assert counted(second, "commands_total", type="assistance_update", outcome="duplicate") == 0
        assert calls(simulator, assistance_id) == [("POST", 204), ("POST", 204)]
        await second.shutdown()

    async def test_command_waiting_for_the_session_runs_after_a_restart(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """Stopped while ICWS is unreachable, a command is left uncommitted and runs next time."""
        settings = settings_for(broker, simulator)
        first = start_bridge(settings)
        await first.ready()
        assistance_id = open_request(simulator)
        simulator.faults.refuse_logins()
        simulator.faults.expire_session()
        await first.until(lambda: not first.session.up)
        update = command("update", assistance_id, "after the restart")
        async with reader([settings.topics.command_results]) as kafka:
            await Sender(producer, settings.topics.commands).send(update)
            refused = refused_logins(simulator)
            await first.until(lambda: refused_logins(simulator) >= refused + 2)
            await first.shutdown()
            await kafka.poll()
            assert results(kafka, settings, update["id"]) == []
            simulator.faults.accept_logins()

            second = start_bridge(settings)
            result = await result_of(kafka, settings, update["id"])
        assert (result["data"]["outcome"], result["data"]["attempts"]) == ("succeeded", 1)
        assert calls(simulator, assistance_id) == [("POST", 204)]
        await second.shutdown()


def refused_logins(sim: Simulator) -> int:
    return sum(
        1 for m, p, s in sim.requests if m == "POST" and p == "/icws/connection" and s == 503
    )


class TestDeadLetters:
    """Records that are not commands go to the dead-letter topic; the consumer carries on."""

    async def test_garbage_is_dead_lettered_and_a_valid_command_still_runs(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """Each kind of garbage is dead-lettered with its reason; the next command succeeds."""
        settings = settings_for(broker, simulator, max_record_bytes=2048)
        running = start_bridge(settings)
        await running.ready()
        assistance_id = open_request(simulator)
        invalid = command("update", "a\nb", "a control character in the id")
        garbage: list[tuple[bytes, bytes, str]] = [
            (b"g-1", b"\xff\x00 not json", "not_json"),
            (b"g-2", json.dumps({"hello": "world"}).encode(), "not_cloudevent"),
            (
                b"g-3",
                json.dumps({**command("update", "a"), "type": f"{PREFIX}.command.x.v1"}).encode(),
                "unknown_type",
            ),
            (b"g-4", json.dumps(command("update", assistance_id, "x" * 3000)).encode(), "oversize"),
            (b"g-5", json.dumps(invalid).encode(), "invalid_data"),
        ]
        valid = command("update", assistance_id, "still running")
        sender = Sender(producer, settings.topics.commands)
        topics = [settings.topics.command_results, settings.topics.dead_letter]
        async with reader(topics) as kafka:
            for key, value, _ in garbage:
                await sender.send(value, key=key)
            await sender.send(valid, key=b"g-1")  # same key: same partition, after the garbage
            await result_of(kafka, settings, valid["id"])
            await kafka.wait_for(lambda r: len(dead(r, settings)) == len(garbage))
            letters = {r.key: r for r in dead(kafka.records, settings)}
            rejected = await result_of(kafka, settings, invalid["id"])
        for key, value, reason in garbage:
            headers = dict(letters[key].headers)
            assert letters[key].value == value
            assert headers["dlq.reason"] == reason.encode()
            assert headers["dlq.topic"] == settings.topics.commands.encode()
            assert int(headers["dlq.offset"]) >= 0
            assert headers["trace"] == b"t-1"  # the original headers are kept
            assert counted(running, "dead_letters_total", reason=reason) == 1
        assert rejected["data"]["outcome"] == "rejected"
        assert rejected["data"]["error"]["message"].startswith("invalid_data: data.assistanceId")
        assert texts(simulator, assistance_id) == ["Please help", "still running"]
        assert [c for c in simulator.requests if "connection" in c[1] and c[0] == "DELETE"] == []
        await running.shutdown()


def dead(records: list[Any], settings: Settings) -> list[Any]:
    return [r for r in records if r.topic == settings.topics.dead_letter]


def journaled(records: list[Any], settings: Settings, command_id: str, phase: str) -> bool:
    """Whether the journal topic holds a ``phase`` entry for the command."""
    return any(
        r.topic == settings.topics.command_journal
        and r.key == command_id.encode()
        and json.loads(r.value)["phase"] == phase
        for r in records
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait until ``predicate()`` holds."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - the state belongs to the simulator
            await asyncio.sleep(0.02)


def command_env() -> dict[str, str]:
    """``FAST_COMMANDS`` for a bridge run as a child process."""
    return {f"BRIDGE_COMMANDS__{k.upper()}": str(v) for k, v in FAST_COMMANDS.items()}


class TestCrashesAndRebalances:
    """A command in flight when its bridge dies or its partition moves is not run twice."""

    async def test_killed_after_the_icws_call_before_the_result(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """SIGKILL once ICWS applied the update, before its result: no re-send, one result."""
        settings = settings_for(broker, simulator)
        text = "applied, then the bridge died"
        topics = [settings.topics.command_results, settings.topics.command_journal]
        async with bridge_process(broker, simulator.url, **command_env()) as process:
            await eventually(lambda: bool(subscribed_sessions(simulator)), 30)
            assistance_id = open_request(simulator)
            # The call waits in the simulator, so the test can freeze the bridge before the
            # answer: ICWS applies the update, but the bridge records neither outcome nor result.
            simulator.faults.delay_requests(2.0, count=1, path_regex=command_path(assistance_id))
            update = command("update", assistance_id, text)
            async with reader(topics) as kafka:
                await Sender(producer, settings.topics.commands).send(update)
                await kafka.wait_for(lambda r: journaled(r, settings, update["id"], "started"), 30)
                # The delay rule is used up once the call has reached the simulator.
                await eventually(lambda: not simulator.faults._delays)
                # Frozen, the bridge cannot read the answer ICWS gives when the delay ends.
                process.send_signal(signal.SIGSTOP)
                await eventually(lambda: text in texts(simulator, assistance_id))
                process.send_signal(signal.SIGKILL)
                await process.wait()
                await kafka.settle()
                assert not journaled(kafka.records, settings, update["id"], "finished")

                running = start_bridge(settings)
                result = await result_of(kafka, settings, update["id"])
                await kafka.settle()
                assert len(results(kafka, settings, update["id"])) == 1
        assert result["data"]["outcome"] == "succeeded"
        assert result["data"]["observed"] is True  # seen in ICWS, since no answer was recorded
        assert result["data"]["attempts"] is None
        assert calls(simulator, assistance_id) == [("POST", 204)]
        assert texts(simulator, assistance_id).count(text) == 1
        await running.shutdown()

    async def test_rebalance_mid_command(
        self,
        broker: EmbeddedBroker,
        simulator: Simulator,
        start_bridge: Any,
        reader: Any,
        producer: Any,
    ) -> None:
        """A second bridge joins the group while a command runs: it still runs once."""
        # One partition: after the rebalance exactly one of the two bridges holds it. The call
        # waits in the simulator for less than the request timeout, so it is not retried.
        groups = {"topics": {"partitions": 1}, "icws": {"request_timeout_seconds": 10}}
        settings = settings_for(broker, simulator, groups)
        first = start_bridge(settings)
        await first.ready()
        assistance_id = open_request(simulator)
        simulator.faults.delay_requests(5.0, count=1, path_regex=command_path(assistance_id))
        update = command("update", assistance_id, "during a rebalance")
        topics = [settings.topics.command_results, settings.topics.command_journal]
        async with reader(topics) as kafka:
            await Sender(producer, settings.topics.commands).send(update)
            await kafka.wait_for(lambda r: journaled(r, settings, update["id"], "started"))
            second = start_bridge(settings)
            await second.ready()  # joined: the partition was revoked from the first bridge
            await result_of(kafka, settings, update["id"])
            await eventually(lambda: "during a rebalance" in texts(simulator, assistance_id))
            await kafka.settle()
            published = results(kafka, settings, update["id"])
        holders = [b.bridge.commands.consumer.assigned for b in (first, second)]
        assert sorted(holders) == [0, 1]
        assert {e["id"] for e in published} == {published[0]["id"]}
        assert {e["data"]["outcome"] for e in published} == {"succeeded"}
        assert calls(simulator, assistance_id) == [("POST", 204)]
        assert texts(simulator, assistance_id).count("during a rebalance") == 1
        await second.shutdown()
        await first.shutdown()
