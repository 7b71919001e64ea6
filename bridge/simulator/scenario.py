"""The lively scenario: seeded, plausible contact-centre activity on a simulator's world.

Calls start alerting and end up in history (or are missed), notes get written, the status
catalogue changes now and then, and agents ask supervisors for help. Every decision comes from
one `random.Random(seed)` and the world's own state, so a seed always replays the same story;
only the wall-clock timestamps differ between runs.

For a contact centre of many users each step picks one user (at random, or with
`spread="cycle"` every user once per round, in a seeded order) and acts on that user's calls,
history or assistance requests, so the step's changes belong to that user; `touched` counts the
steps that changed each user's truth. The status catalogue is shared: its steps touch nobody,
and their weight is divided by the number of users (one user's story is unchanged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, deque
from collections.abc import Callable, Sequence

from .server import Simulator
from .wire import AlertType, AssistanceState, QueueType
from .world import World

log = logging.getLogger(__name__)

CALLERS = (
    ("John Smith", "+13175550100"),
    ("Maria Garcia", "+13175550123"),
    ("Wei Chen", "+13175550188"),
    ("Fatima Khan", "+13175550142"),
    ("Liam O'Brien", "+13175550177"),
    ("Aiko Tanaka", "+13175550199"),
)
TYPES = ("Call", "Call", "Call", "Chat", "Email", "Callback")
_ALERT_TYPES = (AlertType.ACD_USER, AlertType.ACD_USER, AlertType.USER, AlertType.WORKGROUP)
NOTES = ("Customer asked for a refund.", "Escalated to billing.", "Address updated.", "")
_HELP = ("Customer is asking for a manager.", "Can you approve a refund?", "Caller is abusive.")
_SUPERVISOR = ("supervisor.sam", "Sam Supervisor")
_EXTRA_STATUS = "Team Meeting"
_MAX_ALERTING = 3
_MAX_OPEN_HELP = 2
SPREADS = ("random", "cycle")
# A run that fell this far behind its schedule (a stalled loop) starts a new one, not a burst.
_MAX_LAG_SECONDS = 1.0


class LivelyScenario:
    """Random activity for `users`; each `step()` performs one action and describes it."""

    def __init__(
        self, world: World, users: Sequence[str], seed: int, spread: str = "random"
    ) -> None:
        if not users:
            raise ValueError("the lively scenario needs at least one user")
        if spread not in SPREADS:
            raise ValueError(f"spread must be one of {', '.join(SPREADS)}, not {spread!r}")
        self._world = world
        self._users = list(users)
        self._spread = spread
        self._round: deque[str] = deque()
        self._rng = random.Random(seed)
        self.touched: Counter[str] = Counter()
        self.steps = 0
        world.seed_default_catalogue()
        self._shared = {self._toggle_status, self._extra_status}
        # (action, weight); an action answers None when it cannot apply, then a call starts.
        # The catalogue is shared by all and changes rarely: its chance per step shrinks with
        # the users, or a centre would fan out a catalogue change every few steps.
        shared = 1 / len(self._users)
        self._actions: list[tuple[Callable[[str], str | None], float]] = [
            (self._start_call, 30),
            (self._end_call, 20),
            (self._miss_call, 5),
            (self._update_alert, 8),
            (self._write_note, 8),
            (self._toggle_status, 4 * shared),
            (self._extra_status, 2 * shared),
            (self._ask_for_help, 8),
            (self._supervisor_accepts, 6),
            (self._help_message, 10),
            (self._finish_help, 6),
        ]

    def step(self) -> str:
        """Perform one seeded action and return what happened."""
        self.steps += 1
        user = self._next_user()
        actions, weights = zip(*self._actions, strict=True)
        action: Callable[[str], str | None] = self._rng.choices(actions, weights)[0]
        done = action(user)
        if done is None:
            action, done = self._start_call, self._start_call(user)
        if done is None:
            return f"{user}: nothing to do"
        if action not in self._shared:
            self.touched[user] += 1
        return done

    def _next_user(self) -> str:
        if self._spread == "random":
            return self._rng.choice(self._users)
        if not self._round:
            self._round.extend(self._rng.sample(self._users, len(self._users)))
        return self._round.popleft()

    def _pick(self, ids: Sequence[str]) -> str | None:
        return self._rng.choice(sorted(ids)) if ids else None

    def _start_call(self, user: str) -> str | None:
        if len(self._world.alerting(user)) >= _MAX_ALERTING:
            return None
        name, address = self._rng.choice(CALLERS)
        alert_type = self._rng.choice(_ALERT_TYPES)
        queue = (
            {"queueType": int(QueueType.WORKGROUP), "queueName": "Support"}
            if alert_type == AlertType.WORKGROUP
            else {"queueType": int(QueueType.USER), "queueName": user}
        )
        interaction_id = self._world.start_alerting(
            user,
            interactionType=self._rng.choice(TYPES),
            name=name,
            address=address,
            alertType=int(alert_type),
            monitoredQueue=queue,
        )
        return f"{user}: {interaction_id} starts alerting"

    def _end_call(self, user: str) -> str | None:
        interaction_id = self._pick(list(self._world.alerting(user)))
        if interaction_id is None:
            return None
        self._world.end_call(user, interaction_id)
        return f"{user}: {interaction_id} ends"

    def _miss_call(self, user: str) -> str | None:
        interaction_id = self._pick(list(self._world.alerting(user)))
        if interaction_id is None:
            return None
        self._world.stop_alerting(user, interaction_id)
        return f"{user}: {interaction_id} stops alerting unanswered"

    def _update_alert(self, user: str) -> str | None:
        interaction_id = self._pick(list(self._world.alerting(user)))
        if interaction_id is None:
            return None
        state = self._rng.choice(("Alerting", "Offering", "Held"))
        self._world.change_alerting(user, interaction_id, attributes={"Eic_State": state})
        return f"{user}: {interaction_id} is {state}"

    def _write_note(self, user: str) -> str | None:
        interaction_id = self._pick(list(self._world.history(user)))
        if interaction_id is None:
            return None
        self._world.change_history(user, interaction_id, notes=self._rng.choice(NOTES))
        return f"{user}: notes on {interaction_id}"

    def _toggle_status(self, user: str) -> str | None:
        status_id = self._pick(list(self._world.status_messages))
        if status_id is None:
            return None
        selectable = self._world.status_messages[status_id]["isSelectableStatus"]
        self._world.change_status_message(status_id, isSelectableStatus=not selectable)
        return f"status {status_id!r} selectable={not selectable}"

    def _extra_status(self, user: str) -> str:
        if _EXTRA_STATUS in self._world.status_messages:
            self._world.remove_status_message(_EXTRA_STATUS)
            return f"status {_EXTRA_STATUS!r} removed"
        self._world.add_status_message(_EXTRA_STATUS, groupTag="Away", canHaveTime=True)
        return f"status {_EXTRA_STATUS!r} added"

    def _open_help(self, user: str) -> list[str]:
        return self._world.open_assistance(user)

    def _ask_for_help(self, user: str) -> str | None:
        interactions = list(self._world.alerting(user)) + list(self._world.history(user))
        interaction_id = self._pick(interactions)
        if interaction_id is None or len(self._open_help(user)) >= _MAX_OPEN_HELP:
            return None
        text = self._rng.choice(_HELP)
        assistance_id = self._world.create_assistance(user, interaction_id, text)
        return f"{user}: asks for help on {interaction_id} ({assistance_id})"

    def _supervisor_accepts(self, user: str) -> str | None:
        waiting = [
            assistance_id
            for assistance_id in self._open_help(user)
            if self._world.assistance_request(assistance_id)["state"] == AssistanceState.NONE
        ]
        assistance_id = self._pick(waiting)
        if assistance_id is None:
            return None
        self._world.accept_assistance(assistance_id, *_SUPERVISOR)
        return f"{_SUPERVISOR[0]} accepts {assistance_id}"

    def _help_message(self, user: str) -> str | None:
        assistance_id = self._pick(self._open_help(user))
        if assistance_id is None:
            return None
        request = self._world.assistance_request(assistance_id)
        speaker = self._rng.choice(sorted(request["participants"]))
        self._world.add_assistance_message(assistance_id, speaker, self._rng.choice(_HELP))
        return f"{speaker} writes on {assistance_id}"

    def _finish_help(self, user: str) -> str | None:
        assistance_id = self._pick(self._open_help(user))
        if assistance_id is None:
            return None
        self._world.complete_assistance(assistance_id)
        return f"{assistance_id} completed"


async def run_lively(
    sim: Simulator,
    users: Sequence[str],
    rate_per_second: float,
    seed: int,
    stop: asyncio.Event | None = None,
    duration: float | None = None,
    max_steps: int | None = None,
    spread: str = "random",
) -> LivelyScenario:
    """Run the scenario at `rate_per_second` steps until stopped, timed out or done.

    Steps keep to a schedule (step n at start + n / rate), so the rate holds at hundreds of
    steps a second; returns the scenario, whose `touched` says which users changed.
    """
    if rate_per_second <= 0:
        raise ValueError("rate_per_second must be positive")
    scenario = LivelyScenario(sim.world, users, seed, spread)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = None if duration is None else start + duration
    steps = 0
    while not stop.is_set() and (max_steps is None or steps < max_steps):
        if deadline is not None and loop.time() >= deadline:
            break
        log.debug("lively: %s", scenario.step())
        steps += 1
        now = loop.time()
        if now - (start + steps / rate_per_second) > _MAX_LAG_SECONDS:
            start, steps = now, 0
        pause = start + steps / rate_per_second - now
        if deadline is not None:
            pause = min(pause, deadline - now)
        await _pause(stop, pause)
    return scenario


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds` unless `stop` is set first; when behind, only let others run."""
    if seconds <= 0:
        await asyncio.sleep(0)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
