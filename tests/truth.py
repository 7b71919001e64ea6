"""Compare what the state topics say with what the simulator knows to be true."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bridge.settings import Settings
from bridge.simulator import Simulator
from bridge.simulator.scenario import LivelyScenario
from tests.conftest import USER

Table = dict[str, dict[str, Any]]


def simulator_truth(sim: Simulator, user: str) -> dict[str, Table]:
    """The live entities per aggregate, with the fields the comparison looks at."""
    open_requests = {
        aid: {"messages": len(r["messages"]), "interactionId": r["interactionId"]}
        for aid, r in sim.world.assistance.items()
        if r["initiator"] == user and r["state"] != 2
    }
    return {
        "status_messages": {
            sid.casefold(): {"statusId": sid, "messageText": s["messageText"]}
            for sid, s in sim.world.status_messages.items()
        },
        "alerting": {
            iid: {"interactionId": iid, "name": a["name"]}
            for iid, a in sim.world.alerting(user).items()
        },
        "history": {
            iid: {"interactionId": iid, "notes": h.get("notes", "")}
            for iid, h in sim.world.history(user).items()
        },
        "assistance": open_requests,
    }


def state_topic_truth(records: list[Any], settings: Settings) -> dict[str, Table]:
    """The last state record per key in each state topic, tombstones dropping the key."""
    t = settings.topics
    topics = {
        t.status_messages_state: "status_messages",
        t.alerting_state: "alerting",
        t.history_state: "history",
        t.assistance_state: "assistance",
    }
    latest: dict[str, dict[str, Any]] = {name: {} for name in topics.values()}
    for record in records:
        if record.topic in topics:
            latest[topics[record.topic]][record.key.decode()] = record.value
    result: dict[str, Table] = {}
    for aggregate, values in latest.items():
        table: Table = {}
        for key, value in values.items():
            if value is None:
                continue
            state = json.loads(value)["state"]
            table[key] = _fields(aggregate, state)
        result[aggregate] = table
    return result


def _fields(aggregate: str, state: dict[str, Any]) -> dict[str, Any]:
    if aggregate == "status_messages":
        return {"statusId": state["statusId"], "messageText": state["messageText"]}
    if aggregate == "alerting":
        return {"interactionId": state["interactionId"], "name": state["name"]}
    if aggregate == "history":
        return {"interactionId": state["interactionId"], "notes": state.get("notes", "")}
    return {"messages": len(state["messages"]), "interactionId": state.get("interactionId")}


def state_topics(settings: Settings) -> list[str]:
    t = settings.topics
    return [t.status_messages_state, t.alerting_state, t.history_state, t.assistance_state]


def event_topics(settings: Settings) -> list[str]:
    t = settings.topics
    return [t.status_messages, t.alerting, t.history, t.assistance]


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
                lines.append(f"{aggregate}/{key}: truth {want.get(key)} != topic {have.get(key)}")
    return "; ".join(lines) or "no difference"


async def wait_until_state_is_truth(kafka: Any, sim: Simulator, settings: Settings) -> None:
    """Read until the state topics equal the simulator's truth; say where they differ if not."""
    truth = simulator_truth(sim, USER)
    await kafka.wait_for(
        lambda records: state_topic_truth(records, settings) == truth,
        20,
        lambda records: difference(truth, state_topic_truth(records, settings)),
    )
