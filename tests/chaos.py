"""Chaos: a seeded run in which ICWS, Kafka and the bridge process fail at random, then a verdict.

A Tansu broker, one simulator listening on two addresses (a primary IC server and its
switchover partner, sharing one world) and a real ``bridge run`` process. While a seeded
scenario keeps ICWS busy and commands flow through Kafka, faults are injected one at a time at
random moments (in rounds of every kind, shuffled from the seed); after each, the run waits
for the bridge to recover and be ready again and notes how long that took. At the end it
checks, against the simulator's records:

* the state topics equal the simulator's truth, every field of every state (tests/truth.py);
* **events lost**: each entity's events include, in order, every step the messages ICWS
  delivered imply (tests/oracle.py, independent of bridge.core), except steps from messages
  delivered to a bridge process around the moment it was SIGKILLed (those are reconciled from
  the next snapshot instead; they are counted and reported, and may not be most of the run);
* **phantom duplicates**: no sequence of a key claimed by two different events, and no event
  that republishes a state without a change;
* **commands** (tests/chaos_checks.py): one outcome per command over all its result records, no
  command applied twice by ICWS (its call log), each outcome agreeing with what ICWS did, and
  not mostly expired; sends that timed out are tracked, not dropped;
* **faults**: every kind injected recovered every time (one that never does fails the run),
  each judged on a positive marker (tests/chaos_run.py); faults that end or spoil only a stream
  (a cut, silence, recycled streams, an SSE request that hangs or answers HTML, which the bridge
  answers by polling and then SSE again) cost no login.

``python -m tests.chaos --duration 600 --seed 1`` (``make chaos``); a short run is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bridge.embedded_broker import EmbeddedBroker
from bridge.settings import Settings
from bridge.simulator import Simulator, SimulatorConfig
from tests import chaos_checks as checks
from tests.chaos_checks import result_from_record
from tests.chaos_run import (
    BACKUP,
    LOGINLESS_FAULTS,
    PRIMARY,
    Run,
    chaos_env,
    fault_order,
    inject_one,
)
from tests.chaos_workload import activity, commanding
from tests.conftest import PASSWORD, USER, Reader, bridge_settings, topic_schemas
from tests.oracle import expected_steps, missing_steps, published_steps
from tests.truth import (
    difference,
    event_topic_aggregates,
    event_topics,
    simulator_truth,
    state_topic_truth,
    state_topics,
)


async def inject(run: Run, every: float, stop: asyncio.Event, order: Iterator[str]) -> None:
    """Inject faults one at a time, at random moments, in ``order``."""
    while not stop.is_set():
        await asyncio.sleep(run.rng.expovariate(1 / every))
        if stop.is_set():
            return
        await inject_one(run, next(order))


# --- verdict --------------------------------------------------------------------------------


def entity_events(kafka: Reader, settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """The events read from each aggregate's event topic, by aggregate."""
    return {a: kafka.events(t) for t, a in event_topic_aggregates(settings).items()}


def lost_steps(run: Run, kafka: Reader) -> list[str]:
    """Steps the delivered messages imply that are not on Kafka (forgiven ones aside)."""
    names = run.settings.subscriptions.alerting.attribute_names
    expected = expected_steps(run.sim.sent_messages, names)
    spans = [range(start, end) for start, end in run.forgiven]
    published = published_steps(entity_events(kafka, run.settings))
    return missing_steps(expected, published, lambda index: any(index in s for s in spans))


def phantoms(kafka: Reader, settings: Settings) -> list[str]:
    """Sequences claimed twice and unchanged republications, per (topic, user, subject)."""
    by_key: dict[tuple[str, str, str], dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    states: dict[tuple[str, str, str], list[tuple[int, str, str]]] = defaultdict(list)
    for topic in event_topics(settings):
        for event in kafka.events(topic):
            key = (topic, event["data"].get("userId", ""), event["subject"])
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
    have = state_topic_truth(records, settings, USER)
    return [
        key
        for aggregate, want in truth.items()
        for key in want.keys() | have[aggregate].keys()
        if want.get(key) != have[aggregate].get(key)
    ]


def command_results(kafka: Reader, settings: Settings) -> list[checks.Result]:
    """Every result record read (replays included)."""
    return [
        result_from_record(record.value)
        for record in kafka.records
        if record.topic == settings.topics.command_results and record.value
    ]


def command_problems(run: Run, kafka: Reader) -> dict[str, list[str]]:
    """The command checks, by name, over the results read and the simulator's call log."""
    results = command_results(kafka, run.settings)
    completed = [aid for aid, r in run.sim.world.assistance.items() if r["state"] == 2]
    calls = list(run.sim.calls)
    return {
        "results": checks.result_problems(run.commands, results),
        "executed_twice": checks.executed_twice(run.commands, calls),
        "outcomes": checks.outcome_problems(run.commands, results, calls, completed),
        "expiry": checks.expiry_problems(run.commands, results),
    }


def all_acked_have_results(run: Run, kafka: Reader) -> bool:
    """Whether every acknowledged command has at least one result record yet."""
    have = {r.command_id for r in command_results(kafka, run.settings)}
    return all(c.ident in have for c in run.commands if c.acked)


def verdict(run: Run, kafka: Reader, truth: dict[str, Any], settled: bool) -> dict[str, Any]:
    """The report: the state comparison, the event checks, the command checks, the faults."""
    settings = run.settings
    return {
        "state_topics_equal_truth": settled,
        "state_difference": ""
        if settled
        else difference(truth, state_topic_truth(kafka.records, settings, USER)),
        "explanation": {}
        if settled
        else explain(run, kafka, differing_keys(truth, kafka.records, settings)),
        **judged(run, kafka, lost_steps(run, kafka), {}),
    }


def judged(run: Run, kafka: Reader, lost: list[str], more: dict[str, list[str]]) -> dict[str, Any]:
    """The event, command and fault checks and counts (with ``more`` problems), for any run."""
    found = phantoms(kafka, run.settings)
    results = command_results(kafka, run.settings)
    decided = {r.command_id: r.outcome for r in results}
    forgiven = checks.forgiven_count(run.forgiven)
    problems = command_problems(run, kafka)
    problems["faults"] = checks.fault_problems(run.injected, run.recovered)
    problems["logins"] = checks.login_problems(run.windows, LOGINLESS_FAULTS)
    problems["forgiveness"] = checks.forgiveness_problems(forgiven, len(run.sim.sent_messages))
    problems.update(more)
    return {
        "events_lost": len(lost),
        "lost": lost[:20],
        "phantom_duplicates": len(found),
        "phantoms": found[:20],
        "commands_sent": len(run.commands),
        "commands_unacknowledged": sum(1 for c in run.commands if not c.acked),
        "command_outcomes": dict(sorted(Counter(decided.values()).items())),
        "result_records": len(results),
        "messages_from_icws": len(run.sim.sent_messages),
        "messages_forgiven": forgiven,
        "faults": checks.fault_matrix(run.injected, run.recovered, run.windows),
        "problems": {name: found[:20] for name, found in problems.items()},
        "problem_counts": {name: len(found) for name, found in problems.items()},
    }


async def chaos(
    duration: float,
    seed: int,
    rate: float = 20,
    fault_every: float = 8,
    first: Sequence[str] = (),
) -> dict[str, Any]:
    """Run the chaos for ``duration`` seconds (the ``first`` fault kinds first); the report."""
    sim = Simulator(SimulatorConfig(users={USER: PASSWORD}, sse_keepalive_seconds=0.5))
    await sim.start(host=PRIMARY, port=0, also=[BACKUP])
    broker = EmbeddedBroker(schema_registry=topic_schemas())
    await broker.start()
    primary = f"http://{PRIMARY}:{sim.port}"
    settings = bridge_settings(broker, primary)
    run = Run(random.Random(seed), sim, broker, settings, chaos_env(broker, primary))
    stop = asyncio.Event()
    started = time.monotonic()
    try:
        await run.spawn()
        await run.ready()
        async with (
            Reader(broker.bootstrap, [settings.topics.status_messages]) as run.marks,
            asyncio.TaskGroup() as group,
        ):
            group.create_task(activity(run, rate, stop))
            group.create_task(commanding(run, 2.0, stop))
            group.create_task(inject(run, fault_every, stop, fault_order(seed, first)))
            await asyncio.sleep(duration)
            stop.set()
        run.sim.faults.clear()
        report = await final_verdict(run)
        return {"seed": seed, "seconds": round(time.monotonic() - started, 1), **report}
    finally:
        await run.stop()
        await sim.stop()
        await broker.stop()


async def final_verdict(run: Run) -> dict[str, Any]:
    """Once the bridge is ready again: read every topic until settled, then judge."""
    ready = await ready_at_end(run)
    settings = run.settings
    async with Reader(run.broker.bootstrap, verdict_topics(settings)) as kafka:
        truth = simulator_truth(run.sim, USER, settings.subscriptions.alerting.attribute_names)
        settled = await read_until(
            run, kafka, lambda r: state_topic_truth(r, settings, USER) == truth
        )
        return {"ready_at_end": ready, **verdict(run, kafka, truth, settled)}


async def ready_at_end(run: Run) -> bool:
    """Whether the bridge is ready again (judged anyway if not: the report says what is missing)."""
    try:
        await run.ready()
    except TimeoutError:
        return False
    return True


def verdict_topics(settings: Settings) -> list[str]:
    return [*event_topics(settings), *state_topics(settings), settings.topics.command_results]


async def read_until(run: Run, kafka: Reader, equal: Callable[[list[Any]], bool]) -> bool:
    """Read until ``equal`` holds (False after 60 s), then until acked commands have results."""
    settled = True
    try:
        await kafka.wait_for(equal, 60)
    except AssertionError:
        settled = False
    await kafka.settle()
    with contextlib.suppress(AssertionError):
        await kafka.wait_for(lambda _: all_acked_have_results(run, kafka), 60)
    await kafka.settle()
    return settled


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
    parser.add_argument("--accounts", type=int, default=1, help="ICWS accounts (a fleet if >1)")
    parser.add_argument("--replicas", type=int, default=1, help="bridge processes (a fleet if >1)")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    if args.accounts > 1 or args.replicas > 1:
        from tests.chaos_fleet import fleet_chaos  # here: it imports this module

        run = fleet_chaos(
            args.duration, args.seed, args.accounts, args.replicas, args.rate, args.fault_every
        )
    else:
        run = chaos(args.duration, args.seed, args.rate, args.fault_every)
    report = asyncio.run(run)
    print(checks.table(report))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
    return 0 if checks.passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
