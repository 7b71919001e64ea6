"""Chaos: a seeded run in which ICWS, Kafka and the bridge process fail at random, then a verdict.

A Tansu broker, one simulator listening on two addresses (a primary IC server and its
switchover partner, sharing one world) and a real ``bridge run`` process. While a seeded
scenario keeps ICWS busy and commands flow through Kafka, faults are injected one at a time at
random moments; after each, the run waits for the bridge to be ready again and notes how long
that took. At the end it checks, against the simulator's records:

* the state topics equal the simulator's truth;
* **events lost**: every entity state the messages ICWS delivered imply is on Kafka, except
  for messages delivered to a bridge process around the moment it was SIGKILLed (those are
  reconciled from the next snapshot instead);
* **phantom duplicates**: no sequence of a key claimed by two different events, and no event
  that republishes a state without a change;
* **commands executed twice** and **commands without exactly one result**.

``python -m tests.chaos --duration 600 --seed 1`` (``make chaos``); a short run is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import signal
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from bridge.app import contract_from
from bridge.core import events as core_events
from bridge.core import messages
from bridge.core.state import new_states
from bridge.embedded_broker import EmbeddedBroker
from bridge.settings import Settings
from bridge.simulator import Simulator, SimulatorConfig
from bridge.simulator.scenario import LivelyScenario
from tests.conftest import PASSWORD, USER, Reader, bridge_env, bridge_settings
from tests.truth import difference, event_topics, simulator_truth, state_topic_truth, state_topics

PRIMARY, BACKUP = "127.0.0.1", "127.0.0.2"
KILL_GRACE = 3.0  # seconds before a SIGKILL whose messages are reconciled, not counted


@dataclass
class Run:
    """Everything one chaos run drives, and what it saw."""

    rng: random.Random
    sim: Simulator
    broker: EmbeddedBroker
    settings: Settings
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    host: str = PRIMARY
    matrix: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    forgiven: list[tuple[int, int]] = field(default_factory=list)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    timeline: list[tuple[float, int]] = field(default_factory=list)

    async def spawn(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bridge",
            "run",
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def ready(self, timeout: float = 60.0) -> float:
        """Seconds until /readyz says ready (raises TimeoutError)."""
        started = time.monotonic()
        url = f"http://127.0.0.1:{self.env['BRIDGE_HEALTH__PORT']}/readyz"
        async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(url) as answer:
                        if answer.status == 200:
                            return time.monotonic() - started
                await asyncio.sleep(0.1)

    def sent_index_at(self, moment: float) -> int:
        """How many messages the simulator had sent by ``moment`` (from the sampled timeline)."""
        index = 0
        for when, count in self.timeline:
            if when > moment:
                break
            index = count
        return index


# --- faults: each injects one failure and undoes it; the run then waits for readiness --------


async def expire(run: Run) -> None:
    run.sim.faults.expire_session()


async def down(run: Run) -> None:
    run.sim.faults.send_down(should_reconnect=True)


async def down_no_reconnect(run: Run) -> None:
    run.sim.faults.send_down(should_reconnect=False)


async def switchover(run: Run) -> None:
    other = BACKUP if run.host == PRIMARY else PRIMARY
    run.sim.faults.refuse_logins(alternates=[other], on_host=run.host)
    run.sim.faults.expire_session()
    run.host = other
    await asyncio.sleep(3)
    run.sim.faults.accept_logins()


async def server_errors(run: Run) -> None:
    run.sim.faults.fail_requests(4, status=500)


async def slow_answers(run: Run) -> None:
    run.sim.faults.delay_requests(4.0, count=1, path_regex=r"/connection$")


async def sse_cut(run: Run) -> None:
    run.sim.faults.cut_sse(mid_event=True)


async def sse_silence(run: Run) -> None:
    run.sim.faults.silence_sse()
    await asyncio.sleep(4)
    run.sim.faults.clear()


async def broker_pause(run: Run) -> None:
    run.broker.pause()
    try:
        await asyncio.sleep(run.rng.uniform(2, 5))
    finally:
        run.broker.resume()


async def bridge_kill(run: Run) -> None:
    assert run.process is not None
    killed_at = time.monotonic()
    run.process.send_signal(signal.SIGKILL)
    await run.process.wait()
    await asyncio.sleep(run.rng.uniform(0.5, 2))
    start = run.sent_index_at(killed_at - KILL_GRACE)
    await run.spawn()
    await run.ready()
    run.forgiven.append((start, len(run.sim.sent_messages)))


# Faults that end the ICWS session: recovery is counted until a new login is ready.
SESSION_FAULTS = {
    "session expiry",
    "Down message",
    "Down, no reconnect",
    "switchover",
    "500 burst",
    "slow answers",
    "SSE cut mid-event",
    "SSE silence",
}

FAULTS: dict[str, Callable[[Run], Awaitable[None]]] = {
    "session expiry": expire,
    "Down message": down,
    "Down, no reconnect": down_no_reconnect,
    "switchover": switchover,
    "500 burst": server_errors,
    "slow answers": slow_answers,
    "SSE cut mid-event": sse_cut,
    "SSE silence": sse_silence,
    "broker pause": broker_pause,
    "bridge SIGKILL": bridge_kill,
}


# --- workload -------------------------------------------------------------------------------


async def activity(run: Run, rate: float, stop: asyncio.Event) -> None:
    scenario = LivelyScenario(run.sim.world, [USER], seed=run.rng.randrange(1 << 30))
    while not stop.is_set():
        scenario.step()
        run.timeline.append((time.monotonic(), len(run.sim.sent_messages)))
        await asyncio.sleep(run.rng.expovariate(rate))


async def commanding(run: Run, every: float, stop: asyncio.Event) -> None:
    """Send assistance commands (mostly updates, some completes) to the command topic."""
    producer = AIOKafkaProducer(bootstrap_servers=run.broker.bootstrap, enable_idempotence=False)
    await producer.start()
    completed: set[str] = set()
    prefix = run.settings.events.type_prefix
    try:
        while not stop.is_set():
            await asyncio.sleep(run.rng.expovariate(1 / every))
            open_ids = sorted(
                aid
                for aid, r in run.sim.world.assistance.items()
                if r["initiator"] == USER and r["state"] != 2 and aid not in completed
            )
            if not open_ids:
                continue
            target = run.rng.choice(open_ids)
            ident = str(uuid.UUID(int=run.rng.getrandbits(128)))
            kind = "complete" if run.rng.random() < 0.2 else "update"
            data: dict[str, Any] = {"assistanceId": target}
            if kind == "update":
                data["text"] = f"chaos {ident}"
            else:
                completed.add(target)
            event = {
                "specversion": "1.0",
                "id": ident,
                "source": "/chaos",
                "type": f"{prefix}.command.assistance.{kind}.v1",
                "datacontenttype": "application/json",
                "data": data,
            }
            run.commands[ident] = {"kind": kind, **data}
            with contextlib.suppress(Exception):  # a paused broker: the command is not sent
                await asyncio.wait_for(
                    producer.send_and_wait(
                        run.settings.topics.commands,
                        json.dumps(event).encode(),
                        key=target.encode(),
                        headers=[("content-type", b"application/cloudevents+json")],
                    ),
                    10,
                )
                continue
            run.commands.pop(ident)
            completed.discard(target)
    finally:
        await producer.stop()


async def inject(run: Run, every: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(run.rng.expovariate(1 / every))
        if stop.is_set():
            return
        name = run.rng.choice(sorted(FAULTS))
        logins = run.sim.logins
        injected = time.monotonic()
        try:
            await FAULTS[name](run)
            if name in SESSION_FAULTS:
                await run.sim.wait_for(lambda before=logins: run.sim.logins > before, 60)
            await run.ready()
            run.matrix[name].append(time.monotonic() - injected)
        except TimeoutError:
            run.failed[name] += 1


# --- verdict --------------------------------------------------------------------------------


def expected_states(run: Run) -> set[tuple[str, str, str]]:
    """(aggregate, key, state JSON) of every entity event the delivered messages imply."""
    contract = contract_from(run.settings.events, run.settings.topics)
    states = new_states()
    forgiven = [range(a, b) for a, b in run.forgiven]
    wanted = set()
    for index, (_session, raw) in enumerate(run.sim.sent_messages):
        message = messages.parse(raw)
        if not isinstance(message, messages.Update):
            continue
        changes, _ = states[message.aggregate].apply(message)
        if any(index in span for span in forgiven):
            continue
        for change in changes:
            shown = core_events.PRESENT[change.aggregate](change.state)
            kind = "removed" if change.kind == "removed" else "state"
            name = json.dumps(shown, sort_keys=True) if kind == "state" else kind
            wanted.add((contract.event_topics[change.aggregate], change.key, name))
    return wanted


def published_states(kafka: Reader, settings: Settings) -> set[tuple[str, str, str]]:
    seen = set()
    for record in kafka.records:
        if record.topic in event_topics(settings) and record.value is not None:
            event = json.loads(record.value)
            removed = event["type"].rsplit(".", 1)[0].endswith(core_events.ENDING_NAMES)
            state = "removed" if removed else json.dumps(event["data"]["state"], sort_keys=True)
            seen.add((record.topic, event["subject"], state))
    return seen


def phantoms(kafka: Reader, settings: Settings) -> list[str]:
    by_key: dict[tuple[str, str], dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    states: dict[tuple[str, str], list[tuple[int, str, str]]] = defaultdict(list)
    for topic in event_topics(settings):
        for event in kafka.events(topic):
            key = (topic, event["subject"])
            by_key[key][event["sequence"]].add(event["id"])
            kind = event["type"].rsplit(".", 2)[-2]
            states[key].append((event["sequence"], kind, json.dumps(event["data"]["state"])))
    found = [f"{k}#{s}" for k, seqs in by_key.items() for s, ids in seqs.items() if len(ids) > 1]
    for key, items in states.items():
        ordered = sorted(set(items))
        for (_, _, before), (seq, kind, after) in itertools.pairwise(ordered):
            if kind in ("changed", "updated") and before == after:
                found.append(f"{key}#{seq} republished unchanged")
    return found


def explain(run: Run, kafka: Reader, keys: list[str]) -> dict[str, Any]:
    """For keys that differ: the events published and the ICWS messages that mention them."""
    story: dict[str, Any] = {}
    for key in keys:
        published = [
            (
                e["sequence"],
                e["type"].rsplit(".", 2)[-2],
                e["data"]["cause"],
                e["data"]["changedFields"],
                len(e["data"]["state"].get("messages") or ()),
            )
            for t in event_topics(run.settings)
            for e in kafka.events(t)
            if e["subject"] == key
        ]
        sent = [
            (
                session,
                raw.get("__type", "").rsplit(":", 1)[-1],
                raw.get("isDelta"),
                [m.get("text") for m in raw.get("messagesAdded") or ()],
            )
            for session, raw in run.sim.sent_messages
            if key in json.dumps(raw)
        ]
        story[key] = {"published": published, "sent": sent}
    return story


def differing_keys(truth: dict[str, Any], records: list[Any], settings: Settings) -> list[str]:
    have = state_topic_truth(records, settings)
    return [
        key
        for aggregate, want in truth.items()
        for key in want.keys() | have[aggregate].keys()
        if want.get(key) != have[aggregate].get(key)
    ]


def command_verdict(run: Run, kafka: Reader) -> tuple[int, int]:
    """(commands executed twice, commands without exactly one result)."""
    texts: dict[str, int] = defaultdict(int)
    for request in run.sim.world.assistance.values():
        for message in request["messages"]:
            texts[message["text"]] += 1
    twice = sum(1 for c in run.commands.values() if texts.get(c.get("text", ""), 0) > 1)
    results: dict[str, set[str]] = defaultdict(set)
    for record in kafka.records:
        if record.topic == run.settings.topics.command_results and record.value:
            event = json.loads(record.value)
            results[event["subject"]].add(event["id"])
    wrong = sum(1 for ident in run.commands if len(results.get(ident, ())) != 1)
    return twice, wrong


async def chaos(
    duration: float, seed: int, rate: float = 20, fault_every: float = 8
) -> dict[str, Any]:
    """Run the chaos for ``duration`` seconds; return the report."""
    rng = random.Random(seed)
    sim = Simulator(SimulatorConfig(users={USER: PASSWORD}, sse_keepalive_seconds=0.5))
    await sim.start(host=PRIMARY, port=0, also=[BACKUP])
    broker = EmbeddedBroker()
    await broker.start()
    primary = f"http://{PRIMARY}:{sim.port}"
    settings = bridge_settings(broker, primary)
    env = bridge_env(
        broker,
        primary,
        BRIDGE_ICWS__BAD_CREDENTIALS_RETRY_SECONDS="1",
        BRIDGE_ICWS__SSE_IDLE_TIMEOUT_SECONDS="2",
        BRIDGE_ICWS__CONNECTION_CHECK_SECONDS="1",
        BRIDGE_ICWS__REQUEST_TIMEOUT_SECONDS="3",
        BRIDGE_ICWS__BACKOFF_MAX_SECONDS="1",
        BRIDGE_KAFKA__REQUEST_TIMEOUT_MS="3000",
        BRIDGE_KAFKA__CONSUMER_SESSION_TIMEOUT_MS="2000",
        BRIDGE_KAFKA__CONSUMER_HEARTBEAT_INTERVAL_MS="300",
        BRIDGE_KAFKA__CONSUMER_REBALANCE_TIMEOUT_MS="2000",
    )
    run = Run(rng, sim, broker, settings, env)
    stop = asyncio.Event()
    started = time.monotonic()
    try:
        await run.spawn()
        await run.ready()
        async with asyncio.TaskGroup() as group:
            group.create_task(activity(run, rate, stop))
            group.create_task(commanding(run, 2.0, stop))
            group.create_task(inject(run, fault_every, stop))
            await asyncio.sleep(duration)
            stop.set()
        run.sim.faults.clear()
        await run.ready()
        topics = [
            *event_topics(settings),
            *state_topics(settings),
            settings.topics.command_results,
        ]
        async with Reader(broker.bootstrap, topics) as kafka:
            truth = simulator_truth(sim, USER)
            settled = True
            try:
                await kafka.wait_for(lambda r: state_topic_truth(r, settings) == truth, 60)
            except AssertionError:
                settled = False
            await kafka.settle(2.0)
            with contextlib.suppress(AssertionError):
                await kafka.wait_for(lambda _: command_verdict(run, kafka)[1] == 0, 60)
            lost = expected_states(run) - published_states(kafka, settings)
            twice, without_one_result = command_verdict(run, kafka)
            return {
                "seed": seed,
                "seconds": round(time.monotonic() - started, 1),
                "state_topics_equal_truth": settled,
                "state_difference": ""
                if settled
                else difference(truth, state_topic_truth(kafka.records, settings)),
                "explanation": {}
                if settled
                else explain(run, kafka, differing_keys(truth, kafka.records, settings)),
                "events_lost": len(lost),
                "phantom_duplicates": len(phantoms(kafka, settings)),
                "phantoms": phantoms(kafka, settings)[:20],
                "commands_sent": len(run.commands),
                "commands_executed_twice": twice,
                "commands_without_exactly_one_result": without_one_result,
                "messages_from_icws": len(sim.sent_messages),
                "faults": {
                    name: {
                        "injected": len(times) + run.failed.get(name, 0),
                        "recovered": len(times),
                        "max_recovery_seconds": round(max(times), 2) if times else None,
                    }
                    for name, times in sorted(run.matrix.items())
                },
            }
    finally:
        if run.process is not None and run.process.returncode is None:
            run.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(run.process.wait(), 30)
            except TimeoutError:
                run.process.kill()
        await sim.stop()
        await broker.stop()


def table(report: dict[str, Any]) -> str:
    """The fault matrix and the zeros, for people."""
    lines = [f"{'fault':22} {'injected':>8} {'recovered':>9} {'max recovery s':>15}"]
    for name, row in report["faults"].items():
        lines.append(
            f"{name:22} {row['injected']:>8} {row['recovered']:>9} "
            f"{row['max_recovery_seconds'] if row['max_recovery_seconds'] is not None else '-':>15}"
        )
    lines.append("")
    for key in (
        "state_topics_equal_truth",
        "events_lost",
        "phantom_duplicates",
        "commands_sent",
        "commands_executed_twice",
        "commands_without_exactly_one_result",
        "messages_from_icws",
    ):
        lines.append(f"{key:40} {report[key]}")
    return "\n".join(lines)


def passed(report: dict[str, Any]) -> bool:
    """The zeros the run promises, and every fault recovered from."""
    return (
        report["state_topics_equal_truth"]
        and report["events_lost"] == 0
        and report["phantom_duplicates"] == 0
        and report["commands_executed_twice"] == 0
        and report["commands_without_exactly_one_result"] == 0
        and all(row["injected"] == row["recovered"] for row in report["faults"].values())
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of chaos")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=20.0, help="ICWS changes per second")
    parser.add_argument(
        "--fault-every", type=float, default=8.0, help="mean seconds between faults"
    )
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    report = asyncio.run(chaos(args.duration, args.seed, args.rate, args.fault_every))
    print(table(report))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
    return 0 if passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
