"""The events the bridge should have published, derived independently of the code it judges.

The simulator records every message it handed to a client. This module reads those messages the
way the protocol reference describes them (a snapshot replaces what a subscription knew, a delta
merges the properties present) and applies the README's contract: each entity's events form a
sequence that starts with its begin event, grows by one per REAL change of its full state, and
ends with its end event when ICWS drops it (a delta that removes it, or a snapshot without it).
It never imports `bridge.core` or `bridge.app` (a misunderstanding must not hide on both sides);
states are shaped by tests/shapes.py.

The result is, per entity, the ordered list of (kind, state) steps: kind is `begin`, `change` or
`end` (an end is compared by kind only: which state an ended entity carries is not the point).
Comparing per-entity sequences, not sets, makes a lost A in A -> B -> A show.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from bridge.simulator.wire import AlertAction, Urn
from tests.shapes import (
    State,
    alerting_state,
    assistance_state,
    history_state,
    published_state,
    status_state,
)

Entity = tuple[str, str]  # (aggregate, key)

# README "Topics and events": the event names of each aggregate, by step kind.
EVENT_KINDS: dict[str, dict[str, str]] = {
    "alerting": {"started": "begin", "changed": "change", "stopped": "end"},
    "history": {"recorded": "begin", "updated": "change"},
    "status_messages": {"added": "begin", "changed": "change", "removed": "end"},
    "assistance": {"opened": "begin", "updated": "change", "closed": "end"},
}


@dataclass(frozen=True)
class Step:
    """One event an entity must get: its kind, its full state (None for an end), and its cause.

    `index` is the position, in the simulator's sent-message log, of the message implying it.
    """

    kind: str
    state: State | None
    index: int


class _Aggregate:
    """What one aggregate's subscription has told the client, as raw ICWS entities by key."""

    name = ""

    def __init__(self, shape: Callable[[Mapping[str, Any]], State]) -> None:
        self.raw: dict[str, dict[str, Any]] = {}
        self.shown: dict[str, State] = {}
        self._shape = shape

    def settle(self, key: str, index: int, out: list[tuple[Entity, Step]]) -> None:
        """Emit a begin or a change for `key` when its shaped state really changed."""
        state = self._shape(self.raw[key])
        before = self.shown.get(key)
        if before == state:
            return
        self.shown[key] = state
        step = Step("begin" if before is None else "change", state, index)
        out.append(((self.name, key), step))

    def end(self, key: str, index: int, out: list[tuple[Entity, Step]]) -> None:
        """Forget `key`; emit its end if it had begun."""
        self.raw.pop(key, None)
        if self.shown.pop(key, None) is not None:
            out.append(((self.name, key), Step("end", None, index)))

    def replace(self, items: dict[str, dict[str, Any]], index: int, out: list[Any]) -> None:
        """A snapshot: what it lacks ended, the rest is now exactly as it says."""
        for key in sorted(self.raw.keys() - items.keys()):
            self.end(key, index, out)
        for key, item in items.items():
            self.raw[key] = copy.deepcopy(item)
            self.settle(key, index, out)


def _merge(raw: dict[str, Any], delta: Mapping[str, Any], nested: Collection[str] = ()) -> None:
    for name, value in delta.items():
        if name in nested and isinstance(raw.get(name), dict):
            raw[name].update(value)
        else:
            raw[name] = copy.deepcopy(value)


class Oracle:
    """Feeds the sent messages in order; collects each entity's expected steps."""

    def __init__(self, attribute_names: Collection[str]) -> None:
        self.steps: dict[Entity, list[Step]] = defaultdict(list)
        self._status = self._make("status_messages", status_state)
        self._alerting = self._make("alerting", lambda r: alerting_state(r, attribute_names))
        self._history = self._make("history", history_state)
        self._assistance = self._make("assistance", assistance_state)
        self._readers: dict[str, Callable[[Mapping[str, Any], int, list[Any]], None]] = {
            Urn.STATUS_MESSAGES: self._on_status,
            Urn.ALERTING: self._on_alerting,
            Urn.HISTORY: self._on_history,
            Urn.ASSISTANCE_LIST: self._on_assistance_list,
            Urn.ASSISTANCE_DETAILS: self._on_assistance_details,
        }

    @staticmethod
    def _make(name: str, shape: Callable[[Mapping[str, Any]], State]) -> _Aggregate:
        aggregate = _Aggregate(shape)
        aggregate.name = name
        return aggregate

    def feed(self, sent: Iterable[tuple[str, Mapping[str, Any]]]) -> Oracle:
        """Read every (session, message) in order; returns self."""
        for index, (_session, message) in enumerate(sent):
            reader = self._readers.get(message.get("__type", ""))
            if reader is not None:
                out: list[tuple[Entity, Step]] = []
                reader(message, index, out)
                for entity, step in out:
                    self.steps[entity].append(step)
        return self

    def _on_status(self, message: Mapping[str, Any], index: int, out: list[Any]) -> None:
        agg = self._status
        added = {s["statusId"].casefold(): s for s in message.get("statusMessagesAdded") or ()}
        if not message["isDelta"]:
            agg.replace(added, index, out)
            return
        for key, item in added.items():
            agg.raw[key] = copy.deepcopy(item)
            agg.settle(key, index, out)
        for item in message.get("statusMessagesChanged") or ():
            key = item["statusId"].casefold()
            agg.raw[key] = copy.deepcopy(item)
            agg.settle(key, index, out)
        for status_id in message.get("statusMessagesRemoved") or ():
            agg.end(status_id.casefold(), index, out)

    def _on_alerting(self, message: Mapping[str, Any], index: int, out: list[Any]) -> None:
        agg = self._alerting
        entries = message.get("alertingInteractionDetails") or ()
        if not message["isDelta"]:
            agg.replace({e["interactionId"]: e for e in entries}, index, out)
            return
        for entry in entries:
            key = entry["interactionId"]
            if entry.get("alertAction") == AlertAction.STOP_ALERTING:
                agg.end(key, index, out)
                continue
            _merge(agg.raw.setdefault(key, {}), entry, nested=("attributes",))
            agg.settle(key, index, out)

    def _on_history(self, message: Mapping[str, Any], index: int, out: list[Any]) -> None:
        agg = self._history
        for item in message.get("interactionHistory") or ():
            # History items never end: a snapshot only adds to or corrects what is known.
            _merge(agg.raw.setdefault(item["interactionId"], {}), item)
            agg.settle(item["interactionId"], index, out)

    def _on_assistance_list(self, message: Mapping[str, Any], index: int, out: list[Any]) -> None:
        added = set(message.get("requestsAdded") or ())
        gone = set(message.get("requestsRemoved") or ())
        if not message["isDelta"]:
            gone = set(self._assistance.raw) - added
        for key in sorted(gone):
            self._assistance.end(key, index, out)
        for key in sorted(added - self._assistance.raw.keys()):
            # Listed is known to exist: opened with what is known of it until its details come.
            self._assistance.raw[key] = _no_details(key)
            self._assistance.settle(key, index, out)

    def _on_assistance_details(
        self, message: Mapping[str, Any], index: int, out: list[Any]
    ) -> None:
        key = message["assistanceId"]
        raw = self._assistance.raw.get(key)
        if raw is None:
            return  # a request out of view (completed, or never listed) has no events
        if not message["isDelta"]:
            raw = self._assistance.raw[key] = _no_details(key)
        for name in ("interactionId", "state"):
            if name in message:
                raw[name] = message[name]
        raw["messages"].extend(copy.deepcopy(message.get("messagesAdded") or []))
        for participant in [
            *(message.get("participantsAdded") or ()),
            *(message.get("participantsChanged") or ()),
        ]:
            raw["participants"][participant["userId"]] = copy.deepcopy(participant)
        self._assistance.settle(key, index, out)


def _no_details(assistance_id: str) -> dict[str, Any]:
    return {"assistanceId": assistance_id, "messages": [], "participants": {}}


def expected_steps(
    sent: Iterable[tuple[str, Mapping[str, Any]]], attribute_names: Collection[str]
) -> dict[Entity, list[Step]]:
    """Per entity, the steps the sent messages imply, in order."""
    return dict(Oracle(attribute_names).feed(sent).steps)


Published = dict[Entity, list[tuple[int, str, State | None]]]


def published_steps(events: Mapping[str, Iterable[Mapping[str, Any]]]) -> Published:
    """Per entity, (sequence, kind, state) of the events on Kafka, replays dropped, in order.

    `events` maps each aggregate to the events read from its topic. A replay is a second record
    with a sequence already seen for the entity (the first one read stands).
    """
    found: dict[Entity, dict[int, tuple[str, State | None]]] = defaultdict(dict)
    for aggregate, items in events.items():
        for event in items:
            kind = EVENT_KINDS[aggregate][event["type"].rsplit(".", 2)[-2]]
            state = None if kind == "end" else published_state(aggregate, event["data"]["state"])
            found[(aggregate, event["subject"])].setdefault(event["sequence"], (kind, state))
    return {
        entity: [(seq, kind, state) for seq, (kind, state) in sorted(by_seq.items())]
        for entity, by_seq in found.items()
    }


def sequence_differences(expected: Mapping[Entity, list[Step]], published: Published) -> list[str]:
    """Entities whose published (kind, state) sequence is not exactly the expected one."""
    problems = []
    for entity in sorted(expected.keys() | published.keys()):
        want = [(s.kind, s.state) for s in expected.get(entity, ())]
        have = [(kind, state) for _seq, kind, state in published.get(entity, ())]
        if want != have:
            at = next(i for i, (a, b) in enumerate(zip_longest(want, have)) if a != b)
            problems.append(
                f"{entity} step {at + 1}: expected {_at(want, at)}, published {_at(have, at)} "
                f"({len(want)} expected, {len(have)} published)"
            )
    return problems


def missing_steps(
    expected: Mapping[Entity, list[Step]],
    published: Published,
    forgiven: Callable[[int], bool] = lambda _index: False,
) -> list[str]:
    """Required steps that do not appear, in order, among the entity's published steps.

    A step whose message is `forgiven` (delivered to a process around its SIGKILL) may be
    missing: the next snapshot reconciles it instead. Every other step must be published, in
    order, each after the one before it, so a lost A in A -> B -> A is found.
    """
    problems = []
    for entity, steps in sorted(expected.items()):
        have = iter((kind, state) for _seq, kind, state in published.get(entity, ()))
        for step in steps:
            if forgiven(step.index):
                continue
            if (step.kind, step.state) not in have:  # consumes `have` up to the match
                problems.append(f"{entity}: {step.kind} from message #{step.index} not published")
                break
    return problems


def _at(steps: list[tuple[str, State | None]], index: int) -> str:
    return str(steps[index]) if index < len(steps) else "nothing"


def step_count(expected: Mapping[Entity, list[Step]]) -> int:
    """How many events the expectation holds in all."""
    return sum(len(steps) for steps in expected.values())


def published(events_: list[dict[str, Any]]) -> tuple[list[str], dict[str, list[int]]]:
    """Event ids as read (duplicates kept), and the sequences seen per key."""
    per_key: dict[str, list[int]] = {}
    for event in events_:
        per_key.setdefault(event["type"].split(".")[-3] + "/" + event["subject"], []).append(
            event["sequence"]
        )
    return [e["id"] for e in events_], per_key
