"""The benchmark's ICWS traffic: realistic world actions, each producing a known number of messages.

A *call* is what a contact centre mostly does: it starts alerting, is answered and ends (the
alerting stops and a history item is recorded), then the agent writes a note on it. Every 25th
call a status in the catalogue changes. Each world action queues exactly one message per
subscribed session, with exactly one entry, and every entry is a real change for the bridge, so
one message is one entity event: this is what lets the latency benchmark pair every message the
simulator wrote with the Kafka acknowledgement of its event.

At most ``OPEN_CALLS`` calls alert at once, as for an agent with a few lines. Entity ids come
from the world's own counter, so the same run always produces the same ids.

Runs inside the simulator's process (``bench.simproc``); it touches only the public world API.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator
from functools import partial

from bridge.simulator.scenario import CALLERS, NOTES, TYPES
from bridge.simulator.world import World

WRITTEN_NOTES = tuple(note for note in NOTES if note)

OPEN_CALLS = 3
STATUS_EVERY = 25


Action = Callable[[], int]  # performs one world change; returns the messages it queued


class CallWorkload:
    """An endless, seeded stream of world actions for one user."""

    def __init__(self, world: World, user: str, seed: int = 1) -> None:
        self._world = world
        self._user = user
        self._rng = random.Random(seed)
        self._alerting: deque[str] = deque()
        self._calls = 0
        world.seed_default_catalogue()
        self._statuses = sorted(world.status_messages)
        self._selectable = dict.fromkeys(self._statuses, True)

    def actions(self) -> Iterator[Action]:
        """Actions in the order a busy agent's day produces them."""
        while True:
            yield self._start_call
            if len(self._alerting) > OPEN_CALLS - 1:
                interaction_id = self._alerting.popleft()
                yield partial(self._end_call, interaction_id)
                yield partial(self._write_note, interaction_id)
            if self._calls % STATUS_EVERY == 0:
                yield self._toggle_status

    def _start_call(self) -> int:
        name, address = self._rng.choice(CALLERS)
        interaction_id = self._world.start_alerting(
            self._user,
            interactionType=self._rng.choice(TYPES),
            name=name,
            address=address,
            monitoredQueue={"queueType": 2, "queueName": "Support"},
        )
        self._alerting.append(interaction_id)
        self._calls += 1
        return 1

    def _end_call(self, interaction_id: str) -> int:
        self._world.end_call(self._user, interaction_id)
        return 2  # the alerting stops, a history item is recorded

    def _write_note(self, interaction_id: str) -> int:
        note = f"{self._rng.choice(WRITTEN_NOTES)} Ticket {self._calls}."
        self._world.change_history(self._user, interaction_id, notes=note)
        return 1

    def _toggle_status(self) -> int:
        status_id = self._statuses[(self._calls // STATUS_EVERY) % len(self._statuses)]
        self._selectable[status_id] = not self._selectable[status_id]
        self._world.change_status_message(status_id, isSelectableStatus=self._selectable[status_id])
        return 1


def run_messages(actions: Iterator[Action], count: int) -> int:
    """Perform actions until at least ``count`` messages are queued; how many were."""
    queued = 0
    while queued < count:
        queued += next(actions)()
    return queued


def populate(world: World, user: str, alerting: int, history: int, seed: int = 2) -> None:
    """Give ``user`` many live entities at once (no session needs to watch)."""
    rng = random.Random(seed)
    for _ in range(alerting):
        name, address = rng.choice(CALLERS)
        world.start_alerting(
            user,
            interactionType=rng.choice(TYPES),
            name=name,
            address=address,
            monitoredQueue={"queueType": 2, "queueName": "Support"},
        )
    for number in range(history):
        name, address = rng.choice(CALLERS)
        world.add_history(
            user,
            remoteName=name,
            remoteAddress=address,
            remoteId=address,
            notes=f"{rng.choice(WRITTEN_NOTES)} Ticket {number}.",
        )
