"""From ICWS messages to Kafka records: parse, apply to state, build events, hand to the publisher.

The pump is the session's sink. ``deliver`` runs the pure core over a batch of messages the
session has parsed (each raw message is parsed once, there) and waits for buffer space in the
publisher; while it waits, the session reads nothing more (back-pressure). It also
marks the session's life on the lifecycle topic: ``session.up``, ``session.down`` with a
``gap.possible`` (messages may be lost until the snapshots are reconciled), and one
``resync.completed`` per aggregate once its first snapshot after a (re)subscription is applied.
A subscription the server suspended or faulted (``subscription_lost``) gets the same, for its
aggregate alone: a ``gap.possible`` whose subject is the aggregate, then its resync.

There is one pump per ICWS account (``user``), with that user's states: every record it makes
names the user (keys, ``data.userId``, ``icwsuser``) except the status catalogue's. The catalogue
is the same for every user and published once, by the one pump with ``catalogue=True`` (its
session alone subscribes it); any other pump drops status messages, should any come. A batch's
records go to the shared publisher in bounded chunks, yielding between them, so one account's
huge snapshot cannot hold the buffer while other accounts wait.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from bridge.core import events, messages
from bridge.core.encoding import Stamp
from bridge.core.events import Contract, Record, Scope
from bridge.core.messages import Aggregate, Message
from bridge.core.state import AggregateState
from bridge.events.publisher import Publisher
from bridge.icws.session import SessionInfo
from bridge.logs import get_logger
from bridge.metrics import Metrics

Clock = Callable[[], float]

# Records handed to the publisher at once: small against the buffer (pipeline.buffer_size,
# 10,000 by default), so the accounts sharing it take turns; large enough to cost nothing.
PUT_CHUNK = 500


class _ByLabel:
    """One labelled counter's children by label value, each made once.

    ``Counter.labels()`` costs more than the rest of counting a record; the pump counts every
    message and event, so it keeps the children it has made.
    """

    def __init__(self, family: Counter, label: str) -> None:
        self._family = family
        self._label = label
        self._children: dict[str, Counter] = {}

    def __getitem__(self, value: str) -> Counter:
        child = self._children.get(value)
        if child is None:
            child = self._children[value] = self._family.labels(**{self._label: value})
        return child


class Pump:
    """Turns each batch of ICWS messages into records and queues them for Kafka."""

    def __init__(
        self,
        contract: Contract,
        states: Mapping[Aggregate, AggregateState],
        publisher: Publisher,
        metrics: Metrics,
        *,
        user: str,
        catalogue: bool,
        clock: Clock = time.time,
    ) -> None:
        self.user = user
        self.catalogue = catalogue
        self._contract = contract
        self._states = states
        self._publisher = publisher
        self._metrics = metrics
        self._clock = clock
        self._log = get_logger("bridge.events.pump")
        self._read = _ByLabel(metrics.messages_read, "type")
        self._built = _ByLabel(metrics.events, "type")
        self._reported: set[str] = set()
        self.resync_pending: set[str] = set()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def session_up(self, info: SessionInfo) -> None:
        """A new session: its subscriptions will each start with a snapshot to reconcile."""
        self.resync_pending = set(info.subscribed)
        data = {
            "host": info.host,
            "server": info.server,
            "version": info.version,
            "transport": info.transport,
            "subscriptions": list(info.subscribed),
        }
        await self._lifecycle("bridge.session.up", "session", data)

    async def session_down(self, reason: str) -> None:
        """The session ended: anything ICWS said from now until the next resync may be lost."""
        now = events.timestamp(self._now())
        await self._lifecycle("bridge.session.down", "session", {"reason": reason})
        await self.gap(reason, since=now)

    async def gap(self, reason: str, since: str | None, subject: Scope = "session") -> None:
        """Publish ``gap.possible``: a span in which ICWS messages may have been missed."""
        data = {"reason": reason, "since": since}
        await self._lifecycle("bridge.gap.possible", subject, data)

    async def subscription_lost(self, aggregate: Aggregate, reason: str) -> None:
        """One subscription stopped (and is being re-created): its next snapshot resyncs it."""
        self.resync_pending.add(aggregate)
        await self.gap(reason, since=events.timestamp(self._now()), subject=aggregate)

    async def _lifecycle(self, name: str, subject: Scope, data: dict[str, Any]) -> None:
        record = events.lifecycle_record(
            self._contract, name, subject, data, self._now(), user=self.user
        )
        self._built[name].inc()
        await self._publisher.put([record], self._clock())

    async def deliver(self, batch: Sequence[Message], read_at: float) -> None:
        """Run one parsed batch through the core and queue its records (waits when full)."""
        records: list[Record] = []
        recorded = Stamp.of(datetime.fromtimestamp(read_at, UTC))  # formatted once per batch
        for message in batch:
            records += self._one(message, recorded)
        # Counted once per batch and label: an increment costs more than building a record's
        # headers, and nothing reads the counters before the batch is handed on.
        for kind, count in collections.Counter(m.kind for m in batch).items():
            self._read[kind].inc(count)
        for label, count in collections.Counter(r.label for r in records).items():
            if label != "state":
                self._built[label].inc(count)
        for start in range(0, len(records), PUT_CHUNK):
            if start:
                await asyncio.sleep(0)  # let other accounts' pumps put theirs in between
            await self._publisher.put(records[start : start + PUT_CHUNK], read_at)

    def _one(self, message: Message, recorded: Stamp) -> list[Record]:
        if not isinstance(message, messages.Update):  # the rare case first, in one test
            self._not_an_update(message)
            return []
        if message.aggregate == "status_messages" and not self.catalogue:
            self._problem(message.kind, "status catalogue published by another account")
            return []
        changes, resync = self._states[message.aggregate].apply(message)
        for problem in message.problems:  # after apply: a big message's are found by it
            self._problem(message.kind, problem)
        records: list[Record] = []
        for change in changes:
            records += events.change_records(self._contract, change, recorded, user=self.user)
        if resync is not None and message.aggregate in self.resync_pending:
            self.resync_pending.discard(message.aggregate)
            records.append(events.resync_record(self._contract, resync, recorded, user=self.user))
            self._log.info(
                "icws.resync.completed",
                aggregate=resync.aggregate,
                added=resync.added,
                changed=resync.changed,
                removed=resync.removed,
                unchanged=resync.unchanged,
            )
        return records

    def _not_an_update(self, message: Message) -> None:
        if isinstance(message, messages.Ignored):
            self._problem(message.kind, message.reason)
        elif isinstance(message, messages.SubscriptionState) and not message.lost:
            # Only Suspended and Faulted call for action (the session's); say that others came.
            self._log.info(
                "icws.subscription.state_ignored",
                subscription=message.subscription or message.family,
                state=message.state,
                error=message.error,
            )
        # Otherwise a connection change or a lost subscription: the session acts on it.

    def _problem(self, kind: str, reason: str) -> None:
        # Counted every time, logged once per kind and reason so a flood cannot drown the log.
        self._metrics.message_problems.labels(type=kind).inc()
        key = f"{kind}:{reason}"
        if key not in self._reported and len(self._reported) < 1000:
            self._reported.add(key)
            self._log.warning("icws.message.problem", type=kind, reason=reason)
