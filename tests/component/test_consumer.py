"""The command consumer against a fake group member: pausing, revoke before start, ownership."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from bridge.commands.consumer import CommandConsumer
from bridge.commands.handler import Incoming
from bridge.commands.ownership import Gate
from bridge.kafka import GroupConsumer, Message, Partition
from bridge.settings import CommandSettings, KafkaSettings

TOPIC = "commands"
TOTAL = 6  # partitions of the command topic
P0 = Partition(TOPIC, 0)

Rebalanced = Callable[[list[Partition]], Awaitable[None]]


@dataclass(frozen=True)
class FakeMessage:
    """A command record as the group member hands it over."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = b"k"
    value: bytes | None = b"{}"
    headers: Sequence[tuple[str, bytes]] = ()
    timestamp: int = 1_700_000_000_000


def records(*offsets: int) -> dict[Partition, list[Message]]:
    """A fetched batch: the records of partition 0 at these offsets."""
    return {P0: [FakeMessage(TOPIC, 0, offset) for offset in offsets]}


class FakeGroup:
    """A group member playing a script: each fetch takes the next batch or rebalance from it."""

    def __init__(self, log: list[str], assignment: list[Partition]) -> None:
        self.log = log
        self.script: asyncio.Queue[Mapping[Partition, Sequence[Message]] | list[Partition]]
        self.script = asyncio.Queue()
        self.paused = asyncio.Event()
        self.committed: dict[Partition, int] = {}
        self._assignment = assignment
        self._revoked: Rebalanced | None = None
        self._assigned: Rebalanced | None = None
        self.revoke_began = asyncio.Event()
        self.revoke_returned = asyncio.Event()
        self.note_leaving = False
        self.generation_now = 7

    def subscribe(self, topic: str, revoked: Rebalanced, assigned: Rebalanced) -> None:
        assert topic == TOPIC
        self._revoked, self._assigned = revoked, assigned

    async def start(self) -> None:
        assert self._assigned is not None, "subscribe before start"
        await self._assigned(list(self._assignment))

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> Mapping[Partition, Sequence[Message]]:
        try:
            step = await asyncio.wait_for(self.script.get(), timeout_ms / 1000)
        except TimeoutError:
            return {}
        if isinstance(step, list):  # like aiokafka, the listener runs inside the fetch
            assert self._revoked is not None
            self.revoke_began.set()
            await self._revoked(step)
            self.log.append("revoke returned")
            self.revoke_returned.set()
            return {}
        return step

    def pause(self, partition: Partition) -> None:
        self.log.append(f"pause {partition.partition}")
        self.paused.set()

    def resume(self, partition: Partition) -> None:
        self.log.append(f"resume {partition.partition}")

    async def commit(self, partition: Partition, offset: int) -> None:
        self.committed[partition] = offset

    def partition_count(self, topic: str) -> int | None:
        return TOTAL if topic == TOPIC else None

    def generation(self) -> int:
        return self.generation_now

    async def stop(self) -> None:
        if self.note_leaving:
            self.log.append("left the group")


class FakeJournal:
    """A journal with nothing new on it."""

    async def catch_up(self) -> int:
        return 0


class Handler:
    """Notes each record handed to it; waits at ``hold`` offsets until ``release`` is set."""

    def __init__(self, log: list[str], hold: int | None = None) -> None:
        self.log = log
        self.hold = hold
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.handled = asyncio.Condition()
        self.count = 0

    async def handle(self, incoming: Incoming, gate: Gate) -> None:
        self.log.append(f"handle {incoming.offset}")
        if incoming.offset == self.hold:
            self.holding.set()
            await self.release.wait()
        async with self.handled:
            self.count += 1
            self.handled.notify_all()


class StartingHandler(Handler):
    """Like the runner: writes ``started`` for the held record while holding the gate."""

    async def handle(self, incoming: Incoming, gate: Gate) -> None:
        self.log.append(f"handle {incoming.offset}")
        if incoming.offset == self.hold:
            async with gate:
                self.holding.set()
                await self.release.wait()
                self.log.append("start finished")


async def run_ready_tasks() -> None:
    """Let every task that can run do so until it blocks (loop turns, no clock involved)."""
    for _ in range(100):
        await asyncio.sleep(0)


class InFlightHandler(Handler):
    """Like a command already sent to ICWS: holds after its start, then says it finished."""

    async def handle(self, incoming: Incoming, gate: Gate) -> None:
        await super().handle(incoming, gate)
        self.log.append(f"finished {incoming.offset}")


class FakeOwnership:
    """The fleet: notes which partitions' accounts it starts and stops; a start may be held."""

    def __init__(self, log: list[str], held: bool = False) -> None:
        self.log = log
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.generations: list[tuple[str, int]] = []
        if not held:
            self.release.set()

    async def assigned(self, partitions: Sequence[int], total: int, generation: int) -> None:
        self.generations.append(("assigned", generation))
        self.log.append(f"accounts of {list(partitions)} of {total} starting")
        await self.release.wait()
        self.log.append("accounts started")
        self.started.set()

    async def revoked(self, partitions: Sequence[int], generation: int) -> None:
        self.generations.append(("revoked", generation))
        self.log.append(f"accounts of {list(partitions)} parked")

    async def released(self, partitions: Sequence[int]) -> None:
        self.log.append(f"accounts of {list(partitions)} stopped")


@contextlib.asynccontextmanager
async def consuming(
    group: FakeGroup,
    handler: Handler,
    max_queued: int = 100,
    ownership: FakeOwnership | None = None,
) -> AsyncIterator[CommandConsumer]:
    """A command consumer running on ``group`` until the block ends."""

    def factory(kafka: KafkaSettings) -> GroupConsumer:
        return group

    consumer = CommandConsumer(
        KafkaSettings(),
        TOPIC,
        CommandSettings(max_queued_records=max_queued, shutdown_grace_seconds=5),
        handler,
        FakeJournal(),
        factory,
        ownership=ownership,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        consumer.stop()
        handler.release.set()
        async with asyncio.timeout(10):
            await task


class TestPausing:
    """A partition whose worker falls behind is paused, and resumed once it caught up half way."""

    async def test_paused_at_max_queued_and_resumed_at_half(self) -> None:
        """Max 4: three queued do not pause, four do; two left in the queue resume."""
        log: list[str] = []
        group = FakeGroup(log, [P0])
        handler = Handler(log, hold=0)
        async with consuming(group, handler, max_queued=4):
            group.script.put_nowait(records(0, 1, 2))  # three queued; then 0 is taken
            await handler.holding.wait()
            group.script.put_nowait(records(3, 4))  # 1, 2, 3, 4: four queued
            await group.paused.wait()
            handler.release.set()
            async with handler.handled:
                await handler.handled.wait_for(lambda: handler.count == 5)
        # Taking 1 leaves three queued (still paused); taking 2 leaves two: resumed.
        assert log == [
            "handle 0",
            "pause 0",
            "handle 1",
            "resume 0",
            "handle 2",
            "handle 3",
            "handle 4",
        ]
        assert group.committed == {P0: 5}

    async def test_never_paused_below_max_queued(self) -> None:
        """Fewer queued records than the maximum: the partition is never paused."""
        log: list[str] = []
        group = FakeGroup(log, [P0])
        handler = Handler(log, hold=0)
        async with consuming(group, handler, max_queued=4):
            group.script.put_nowait(records(0, 1, 2))
            await handler.holding.wait()
            group.script.put_nowait(records(3))  # 1, 2, 3: three queued
            handler.release.set()
            async with handler.handled:
                await handler.handled.wait_for(lambda: handler.count == 4)
        assert "pause 0" not in log
        assert group.committed == {P0: 4}


async def revoke_while_starting(group: FakeGroup, handler: Handler) -> None:
    """Queue records 0 to 2, and revoke partition 0 while record 0's start is being written."""
    group.script.put_nowait(records(0, 1, 2))
    await handler.holding.wait()
    group.script.put_nowait([P0])
    await group.revoke_began.wait()


class TestRevokeBeforeStart:
    """A revoke waits for a start being written, and the partition's queued records are left."""

    async def test_revoke_waits_for_a_start_in_progress(self) -> None:
        """The revoke returns only after the command holding the gate finished starting."""
        log: list[str] = []
        group = FakeGroup(log, [P0])
        handler = StartingHandler(log, hold=0)
        async with consuming(group, handler):
            await revoke_while_starting(group, handler)
            await run_ready_tasks()
            assert "revoke returned" not in log, "the revoke did not wait for the start"
            handler.release.set()
            await group.revoke_returned.wait()
        assert log.index("start finished") < log.index("revoke returned")

    async def test_queued_records_of_a_revoked_partition_are_never_handled(self) -> None:
        """Records 1 and 2, queued when partition 0 is revoked, never reach the handler."""
        log: list[str] = []
        group = FakeGroup(log, [P0])
        handler = StartingHandler(log, hold=0)
        async with consuming(group, handler):
            await revoke_while_starting(group, handler)
            handler.release.set()
        # Leaving the block stopped the consumer and waited for every worker to end.
        assert [line for line in log if line.startswith("handle")] == ["handle 0"]
        assert group.committed == {}, "a revoked partition's offsets are the next owner's"


class TestOwnership:
    """The consumer hands its partitions' accounts to the fleet and takes them back in order."""

    async def test_records_wait_until_the_accounts_started(self) -> None:
        """Assigned partitions start their accounts first; no record is handled before that."""
        log: list[str] = []
        group = FakeGroup(log, [P0, Partition(TOPIC, 3)])
        ownership = FakeOwnership(log, held=True)
        handler = Handler(log)
        async with consuming(group, handler, ownership=ownership):
            group.script.put_nowait(records(0))
            await run_ready_tasks()
            assert "handle 0" not in log, "a record ran before its owner could be known"
            ownership.release.set()
            async with handler.handled:
                await handler.handled.wait_for(lambda: handler.count == 1)
        assert log[:3] == ["accounts of [0, 3] of 6 starting", "accounts started", "handle 0"]

    async def test_revoke_waits_for_commands_in_flight_then_parks_the_accounts(self) -> None:
        """A revoke returns after the command in flight finished and then the accounts parked."""
        log: list[str] = []
        group = FakeGroup(log, [P0])
        handler = InFlightHandler(log, hold=0)
        async with consuming(group, handler, ownership=FakeOwnership(log)):
            group.script.put_nowait(records(0))
            await handler.holding.wait()
            group.script.put_nowait([P0])
            await group.revoke_began.wait()
            await run_ready_tasks()
            assert "accounts of [0] parked" not in log, "accounts parked under a command"
            handler.release.set()
            await group.revoke_returned.wait()
        order = ["finished 0", "accounts of [0] parked", "revoke returned"]
        assert [line for line in log if line in order] == order

    async def test_a_revoke_does_not_wait_for_a_start_in_progress(self) -> None:
        """The accounts' start is held; a revoke still parks them and returns meanwhile."""
        log: list[str] = []
        group = FakeGroup(log, [P0])
        ownership = FakeOwnership(log, held=True)
        async with consuming(group, Handler(log), ownership=ownership):
            await run_ready_tasks()
            group.script.put_nowait([P0])
            async with asyncio.timeout(5):
                await group.revoke_returned.wait()
            ownership.release.set()
        assert log.index("accounts of [0] parked") < log.index("accounts started")

    async def test_the_accounts_hear_the_group_generation_of_each_rebalance(self) -> None:
        """Assigned in generation 7; evicted (-1) when revoked: the fleet hears both numbers."""
        log: list[str] = []
        group = FakeGroup(log, [P0])
        ownership = FakeOwnership(log)
        async with consuming(group, Handler(log), ownership=ownership):
            await ownership.started.wait()
            group.generation_now = -1  # aiokafka resets it when the group forgot the member
            group.script.put_nowait([P0])
            await group.revoke_returned.wait()
        assert ownership.generations == [("assigned", 7), ("revoked", -1)]

    async def test_leaving_the_group_stops_the_accounts_first(self) -> None:
        """At stop, the accounts still held stop before the member leaves the group."""
        log: list[str] = []
        group = FakeGroup(log, [P0])
        group.note_leaving = True
        ownership = FakeOwnership(log)
        async with consuming(group, Handler(log), ownership=ownership):
            await ownership.started.wait()
        assert log[-2:] == ["accounts of [0] stopped", "left the group"]

    async def test_without_ownership_a_revoke_does_not_wait_for_commands(self) -> None:
        """No fleet given: as before, a command in flight finishes after the revoke returned."""
        log: list[str] = []
        group = FakeGroup(log, [P0])
        handler = InFlightHandler(log, hold=0)
        async with consuming(group, handler):
            group.script.put_nowait(records(0))
            await handler.holding.wait()
            group.script.put_nowait([P0])
            await group.revoke_returned.wait()
            handler.release.set()
        assert log.index("revoke returned") < log.index("finished 0")


class TestCheck:
    """The consumer's own readiness check: ready only with partitions assigned."""

    async def test_ready_once_assigned_and_not_after_stop(self) -> None:
        """Not ready before joining; ready naming the partitions once handled; not ready stopped."""
        log: list[str] = []
        group = FakeGroup(log, [P0])
        handler = Handler(log, hold=0)
        async with consuming(group, handler) as consumer:
            assert not consumer.check().ok
            group.script.put_nowait(records(0))
            await handler.holding.wait()  # a record is handled: the partition is assigned
            check = consumer.check()
            assert check.ok
            assert "1 partition(s)" in check.detail
            consumer.stop()
            assert not consumer.check().ok
