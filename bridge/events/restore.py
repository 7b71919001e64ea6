"""Load the last-published state of the users asked for: the state topics, then event-topic tails.

The state topics are the checkpoint: read every partition to its high-water mark and keep the
last record per key (Tansu, like a lagging Kafka, may not have compacted yet), through the Kafka
adapter's :func:`~bridge.kafka.read_to_end`. Keys name their user (``<user>/<entity>``, read
back with :func:`~bridge.core.events.split_key`), and each record is loaded into the states of
its user, when ``states_for`` gives states for that user; the catalogue's keys name no user
(``states_for(None)``). So a fleet restores only the accounts it asks for. A key of a per-user
aggregate without a user was written before keys named users: it is counted and skipped (the
first snapshot publishes that user's entities afresh, under keys that name it).

The publisher writes a chunk's state records only after all its events are acknowledged (with
the next chunk's events), so a crash can leave events on Kafka whose checkpoint was never
written: at most two chunks per partition. Reading that much of each event partition's end and
taking any event newer than the checkpoint closes the gap: the restarted bridge continues those
entities' sequences instead of reusing them, republishes nothing it already published, and
re-writes the missing checkpoints (the *repairs*).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge.core.events import (
    Contract,
    Record,
    decode_event,
    decode_state,
    entity_key,
    per_user,
    split_key,
    state_record,
)
from bridge.core.messages import Aggregate
from bridge.core.state import AggregateState
from bridge.errors import KafkaError
from bridge.events.publisher import UNCHECKED
from bridge.kafka import Message, Partition, read_to_end
from bridge.logs import get_logger
from bridge.settings import KafkaSettings

StatesFor = Callable[[str | None], Mapping[Aggregate, AggregateState] | None]
"""The states to load a user's records into (None: the catalogue's), or None to skip them."""
Slot = tuple[Aggregate, str | None, str]  # (aggregate, user, entity)


class Reader(Protocol):
    """Reads topics to their ends, visiting each record (the adapter's ``read_to_end``)."""

    async def __call__(
        self,
        kafka: KafkaSettings,
        topics: Iterable[str],
        visit: Callable[[Message], None],
        *,
        what: str,
        positions: Mapping[Partition, int] | None = None,
        last: int | None = None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Restored:
    """What was loaded: live entities per aggregate, the newest record's time, and repairs.

    ``users``: each user with a record loaded (live or ended), with its newest record's time
    in seconds, so the caller can mark that user's gap since then. ``unowned``: records of a
    per-user aggregate whose key names no user, skipped.
    """

    entities: Mapping[Aggregate, int]
    last_written: float | None
    repairs: list[Record] = field(default_factory=list)
    users: Mapping[str, float] = field(default_factory=dict)
    unowned: int = 0


def states_of(
    users: Mapping[str, Mapping[Aggregate, AggregateState]],
    catalogue: Mapping[Aggregate, AggregateState] | None = None,
) -> StatesFor:
    """``states_for`` of these users' states, and the catalogue's if given; all else skipped."""

    def states_for(user: str | None) -> Mapping[Aggregate, AggregateState] | None:
        return catalogue if user is None else users.get(user)

    return states_for


class _Loader:
    """Collects checkpoints and tails, loading each into the states of its user."""

    def __init__(self, contract: Contract, states_for: StatesFor) -> None:
        self.states_for = states_for
        self.state_topics = {t: a for a, t in contract.state_topics.items()}
        self.event_topics = {t: a for a, t in contract.event_topics.items()}
        self.checkpoints: dict[Slot, int] = {}
        self.tails: dict[Slot, tuple[dict[str, Any] | None, int, str]] = {}
        self.written: dict[str | None, int] = {}  # each user's newest record (ms); None: catalogue
        self.loaded: dict[int, AggregateState] = {}  # by id: the catalogue's is shared
        self.positions: dict[Partition, int] = {}  # where the state topics' reading ended
        self.tail_positions: dict[Partition, int] = {}  # and the event topics'
        self.unowned = 0

    def narrow(
        self,
        users: Mapping[str, Mapping[Aggregate, AggregateState]],
        catalogue: Mapping[Aggregate, AggregateState] | None,
    ) -> None:
        """From now on load these users' states only, and forget what was read for others."""
        self.states_for = states_of(users, catalogue)
        kept = {id(s) for states in (*users.values(), catalogue or {}) for s in states.values()}
        self.loaded = {i: state for i, state in self.loaded.items() if i in kept}
        self.written = {u: at for u, at in self.written.items() if self.states_for(u) is not None}
        self.checkpoints = {
            slot: n for slot, n in self.checkpoints.items() if self.states_for(slot[1]) is not None
        }
        self.tails = {s: t for s, t in self.tails.items() if self.states_for(s[1]) is not None}

    def _slot(self, aggregate: Aggregate, key: bytes) -> tuple[Slot, AggregateState] | None:
        user, entity = split_key(aggregate, key)
        if user is None and per_user(aggregate):
            self.unowned += 1
            return None
        states = self.states_for(user)
        if states is None:
            return None
        state = self.loaded[id(states[aggregate])] = states[aggregate]
        return (aggregate, user, entity), state

    def checkpoint(self, record: Message) -> None:
        self.positions[Partition(record.topic, record.partition)] = record.offset + 1
        if record.key is None:
            return
        aggregate = self.state_topics[record.topic]
        found = self._slot(aggregate, record.key)
        if found is None:
            return
        slot, state = found
        props, sequence = decode_state(aggregate, record.value)
        state.load(slot[2], props, sequence)
        # A tombstone's own sequence is 0: its checkpoint is the removal's, which load() kept,
        # or the entity's ended event in the tails would look unchecked and be "repaired".
        self.checkpoints[slot] = sequence if props is not None else state.retired.get(slot[2], 0)
        self.written[slot[1]] = max(self.written.get(slot[1], 0), record.timestamp)

    def tail(self, record: Message) -> None:
        self.tail_positions[Partition(record.topic, record.partition)] = record.offset + 1
        if record.key is None or record.value is None:  # a tombstone carries no event
            return
        aggregate = self.event_topics[record.topic]
        user, entity = split_key(aggregate, record.key)
        if (user is None and per_user(aggregate)) or self.states_for(user) is None:
            return
        decoded = decode_event(aggregate, record.value)
        slot = (aggregate, user, entity)
        # Keep only what is newer than its checkpoint (usually nothing), not a decoded state for
        # each of the tails' entities. (Tails read early may still be overtaken by checkpoints
        # read later: repairs() looks again.)
        newest = max(self.checkpoints.get(slot, 0), self.tails.get(slot, (None, 0, ""))[1])
        if decoded[1] > newest:
            self.tails[slot] = decoded

    def repairs(self, contract: Contract) -> list[Record]:
        """Load the tails newer than their checkpoints; the state records that repair those."""
        repairs = []
        for slot, (props, sequence, event_type) in sorted(self.tails.items(), key=_order):
            aggregate, user, entity = slot
            states = self.states_for(user)
            if states is None or sequence <= self.checkpoints.get(slot, 0):
                continue
            state = self.loaded[id(states[aggregate])] = states[aggregate]
            state.load(entity, props, sequence)
            key = entity_key(user, aggregate, entity)
            repairs.append(state_record(contract, aggregate, key, props, sequence, event_type))
        return repairs


def _order(item: tuple[Slot, Any]) -> tuple[str, str, str]:
    aggregate, user, entity = item[0]
    return aggregate, user or "", entity


class Restoring:
    """A restore in two steps, so the first can run before it is known whose states are kept.

    :meth:`checkpoints` reads the state topics, each time from where the last reading ended (so
    reading them early, then again, loads what one later reading would), and :meth:`tails` the
    event topics' last chunk, then what came since; :meth:`narrow` keeps some of the users'
    states and drops the others'; :meth:`finish` reads the tails since and gives what was
    restored.
    """

    def __init__(self, contract: Contract, states_for: StatesFor) -> None:
        self._contract = contract
        self._loader = _Loader(contract, states_for)
        self._tailed = False

    def narrow(
        self,
        users: Mapping[str, Mapping[Aggregate, AggregateState]],
        catalogue: Mapping[Aggregate, AggregateState] | None = None,
    ) -> None:
        """Keep loading (and report) only these users' states, and the catalogue's if given."""
        self._loader.narrow(users, catalogue)

    async def checkpoints(self, kafka: KafkaSettings, read: Reader = read_to_end) -> None:
        """Load the state topics' records from where the last reading ended to their ends."""
        loader = self._loader
        with _decoding():
            await read(
                kafka,
                loader.state_topics,
                loader.checkpoint,
                what=WHAT,
                positions=dict(loader.positions) or None,  # None: from the beginning
            )

    async def tails(self, kafka: KafkaSettings, read: Reader = read_to_end) -> None:
        """Read the event topics' last chunk, or, read before, what came since."""
        loader = self._loader
        since = dict(loader.tail_positions) if self._tailed else None
        with _decoding():
            await read(
                kafka,
                loader.event_topics,
                loader.tail,
                what=WHAT,
                positions=since,
                last=None if self._tailed else UNCHECKED,
            )
        self._tailed = True

    async def finish(self, kafka: KafkaSettings, read: Reader = read_to_end) -> Restored:
        """Read the event topics' tails (since the last reading); what was restored, and repairs."""
        loader = self._loader
        await self.tails(kafka, read)
        repairs = loader.repairs(self._contract)
        counts: dict[Aggregate, int] = {}
        for state in loader.loaded.values():
            counts[state.aggregate] = counts.get(state.aggregate, 0) + len(state.entities)
        users = {u: at / 1000 for u, at in loader.written.items() if u is not None}
        get_logger("bridge.events.restore").info(
            "state.restored",
            entities=counts,
            users=len(users),
            repairs=len(repairs),
            unowned=loader.unowned,
        )
        newest = max(loader.written.values(), default=0)
        return Restored(counts, newest / 1000 if newest else None, repairs, users, loader.unowned)


WHAT = "cannot restore state"


@contextlib.contextmanager
def _decoding() -> Iterator[None]:
    try:
        yield
    except (ValueError, KeyError) as exc:
        raise KafkaError(f"{WHAT}: {type(exc).__name__}: {exc}") from None


async def restore(
    kafka: KafkaSettings, contract: Contract, states_for: StatesFor, read: Reader = read_to_end
) -> Restored:
    """Fill the states ``states_for`` gives from the state topics and the event topics' tails."""
    restoring = Restoring(contract, states_for)
    await restoring.checkpoints(kafka, read)
    return await restoring.finish(kafka, read)
