"""Compare what the state topics say with what the simulator knows to be true, field by field.

The expectation is the simulator's world (its own truth, independent of the bridge) shaped by the
README's event contract (tests/shapes.py); the state topics' last record per key is compared
with it on EVERY field of the state. Nothing here imports `bridge.core`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from bridge.settings import Settings
from bridge.simulator import Simulator
from bridge.simulator.messages import ALERTING
from bridge.simulator.scenario import LivelyScenario
from tests.shapes import (
    AGGREGATES,
    alerting_state,
    assistance_state,
    history_state,
    published_state,
    status_state,
)

Table = dict[str, dict[str, Any]]


def subscribed_attributes(sim: Simulator, user: str) -> list[str]:
    """The `attributeNames` of `user`'s live alerting subscription (what ICWS sends it)."""
    for session in sim.sessions.values():
        if session.user == user and ALERTING in session.subscriptions:
            return list(session.subscriptions[ALERTING].get("attributeNames") or ())
    raise AssertionError(f"{user} has no live alerting subscription: pass attribute_names")


def simulator_truth(
    sim: Simulator, user: str, attribute_names: Sequence[str] | None = None
) -> dict[str, Table]:
    """The live entities per aggregate, as full event states, keyed as the state topics are."""
    names = subscribed_attributes(sim, user) if attribute_names is None else attribute_names
    return {
        "status_messages": {
            sid.casefold(): status_state(s) for sid, s in sim.world.status_messages.items()
        },
        "alerting": {iid: alerting_state(a, names) for iid, a in sim.world.alerting(user).items()},
        "history": {iid: history_state(h) for iid, h in sim.world.history(user).items()},
        "assistance": {
            aid: assistance_state(r)
            for aid, r in sim.world.assistance.items()
            if r["initiator"] == user and r["state"] != 2
        },
    }


def state_topic_aggregates(settings: Settings) -> dict[str, str]:
    """State topic name -> aggregate (the settings name it `<aggregate>_state`)."""
    return {getattr(settings.topics, f"{a}_state"): a for a in AGGREGATES}


def state_topic_truth(records: list[Any], settings: Settings) -> dict[str, Table]:
    """The last state record per key in each state topic (tombstones drop the key), in full."""
    topics = state_topic_aggregates(settings)
    latest: dict[str, dict[str, Any]] = {name: {} for name in topics.values()}
    for record in records:
        if record.topic in topics:
            latest[topics[record.topic]][record.key.decode()] = record.value
    return {
        aggregate: {
            key: published_state(aggregate, json.loads(value)["state"])
            for key, value in values.items()
            if value is not None
        }
        for aggregate, values in latest.items()
    }


def state_topics(settings: Settings) -> list[str]:
    """Every state topic."""
    return list(state_topic_aggregates(settings))


def event_topic_aggregates(settings: Settings) -> dict[str, str]:
    """Event topic name -> aggregate (the settings name it after the aggregate)."""
    return {getattr(settings.topics, a): a for a in AGGREGATES}


def event_topics(settings: Settings) -> list[str]:
    """Every entity event topic."""
    return list(event_topic_aggregates(settings))


def entity_and_lifecycle_topics(settings: Settings) -> list[str]:
    """Every event topic, every state topic and the lifecycle topic."""
    return event_topics(settings) + state_topics(settings) + [settings.topics.lifecycle]


async def steps(scenario: LivelyScenario, count: int, pause: float = 0.005) -> None:
    """Advance the scenario, letting the bridge read between steps."""
    for _ in range(count):
        scenario.step()
        await asyncio.sleep(pause)


def sequences_are_clean(events: list[dict[str, Any]]) -> list[str]:
    """Problems in per-key sequences: each key's sequences must be 1, 2, 3... once each."""
    by_key: dict[tuple[str, str], list[int]] = {}
    ids: dict[str, dict[str, Any]] = {}
    owners: dict[tuple[str, str, int], str] = {}
    problems = []
    for event in events:
        slot = (event["type"].split(".")[-3], event["subject"], event["sequence"])
        if owners.setdefault(slot, event["id"]) != event["id"]:
            problems.append(f"{slot}: sequence claimed by two different events")
        aggregate = event["type"].split(".")[-3]
        by_key.setdefault((aggregate, event["subject"]), []).append(event["sequence"])
        if event["id"] in ids and ids[event["id"]]["data"] != event["data"]:
            problems.append(f"id {event['id']} reused for different data")
        ids[event["id"]] = event
    for key, sequence in by_key.items():
        unique = sorted(set(sequence))
        if unique != list(range(unique[0], unique[0] + len(unique))):
            problems.append(f"{key}: gap in sequences {sequence}")
        if sequence != sorted(sequence):
            problems.append(f"{key}: out of order {sequence}")
    return problems


def difference(expected: dict[str, Table], actual: dict[str, Table]) -> str:
    """A readable account of where two truths differ."""
    lines = []
    for aggregate in expected:
        want, have = expected[aggregate], actual.get(aggregate, {})
        for key in sorted(want.keys() | have.keys()):
            if want.get(key) != have.get(key):
                lines.append(f"{aggregate}/{key}: {_fields_apart(want.get(key), have.get(key))}")
    return "; ".join(lines) or "no difference"


def _fields_apart(want: dict[str, Any] | None, have: dict[str, Any] | None) -> str:
    """Only the fields that differ, so a long state does not hide the one that matters."""
    if want is None or have is None:
        return f"truth {want} != topic {have}"
    names = sorted(want.keys() | have.keys())
    apart = {n: (want.get(n), have.get(n)) for n in names if want.get(n) != have.get(n)}
    return f"(truth, topic) differ in {apart}"


async def wait_until_state_is_truth(kafka: Any, sim: Simulator, settings: Settings) -> None:
    """Read until the state topics equal the simulator's truth; say where they differ if not."""
    truth = simulator_truth(sim, settings.icws.username)
    await kafka.wait_for(
        lambda records: state_topic_truth(records, settings) == truth,
        20,
        lambda records: difference(truth, state_topic_truth(records, settings)),
    )
