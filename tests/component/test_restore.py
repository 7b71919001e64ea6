"""Restore loads the state of the users asked for only, from keys that name them; no broker.

The records are what the bridge writes (``change_records``) for several users and the status
catalogue; a fake reader hands them to :func:`~bridge.events.restore.restore` as the Kafka
adapter's ``read_to_end`` would. Keys are as README "Topics and events" writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.core import events
from bridge.core.events import Record
from bridge.core.messages import Aggregate
from bridge.core.state import Change, new_states
from bridge.events.publisher import CHUNK
from bridge.events.restore import Restoring, restore, states_of
from bridge.kafka import Message, Partition
from bridge.settings import KafkaSettings

from .test_pump import CONTRACT

RECORDED = datetime(2024, 1, 5, tzinfo=UTC)
ALERT = {"interactionId": "1001", "name": "John Smith"}
STATUS = {"statusId": "Available", "messageText": "Available"}


@dataclass(frozen=True)
class Consumed:
    """A record as read back from a topic."""

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp: int
    partition: int = 0
    offset: int = 0
    headers: Sequence[tuple[str, bytes]] = ()


class FakeTopics:
    """Topics holding records in order; reads them to the end as ``read_to_end`` does."""

    def __init__(self) -> None:
        self.records: list[Consumed] = []

    def write(self, record: Record, at_ms: int) -> None:
        offset = sum(1 for r in self.records if r.topic == record.topic)  # one partition each
        self.records.append(Consumed(record.topic, record.key, record.value, at_ms, 0, offset))

    async def read(
        self,
        kafka: KafkaSettings,
        topics: Iterable[str],
        visit: Callable[[Message], None],
        *,
        what: str,
        positions: Mapping[Partition, int] | None = None,
        last: int | None = None,
    ) -> None:
        wanted, start = set(topics), dict(positions or {})
        if positions is None and last is not None:  # each topic's last records (one partition)
            for topic in wanted:
                ends = sum(1 for r in self.records if r.topic == topic)
                start[Partition(topic, 0)] = max(ends - last, 0)
        for record in self.records:
            if record.topic in wanted and record.offset >= start.get(Partition(record.topic, 0), 0):
                visit(record)


def change(aggregate: Aggregate, key: str, state: dict[str, Any], sequence: int) -> Change:
    return Change(aggregate, key, "changed", state, tuple(state), sequence, "delta")


def published(topics: FakeTopics, made: Change, user: str, at_ms: int, state: bool = True) -> None:
    """Both records of a change, as the publisher writes them (or the event alone: a crash)."""
    event, checkpoint = events.change_records(CONTRACT, made, RECORDED, user=user)
    topics.write(event, at_ms)
    if state:
        topics.write(checkpoint, at_ms)


class TestRestorePerUser:
    """Each key's user decides whose states it fills; users not asked for are left alone."""

    async def test_only_the_users_asked_for_are_loaded(self) -> None:
        """a/b's alerting is loaded into a/b's states, the other user's is not read into any."""
        topics = FakeTopics()
        published(topics, change("alerting", "1001", ALERT, 3), "a/b", 5_000)
        published(topics, change("alerting", "1001", ALERT, 7), "other", 9_000)
        mine = new_states()
        restored = await restore(
            KafkaSettings(), CONTRACT, states_of({"a/b": mine}), read=topics.read
        )
        assert mine["alerting"].entities["1001"].sequence == 3
        assert restored.users == {"a/b": 5.0}
        assert restored.entities == {"alerting": 1}
        assert restored.repairs == []

    async def test_the_catalogue_goes_to_the_catalogue_states_only_when_asked(self) -> None:
        """Status keys name no user: loaded into the catalogue's states if given, else skipped."""
        topics = FakeTopics()
        published(topics, change("status_messages", "available", STATUS, 2), "a/b", 1_000)
        shared = new_states()
        mine = new_states(shared={"status_messages": shared["status_messages"]})
        await restore(KafkaSettings(), CONTRACT, states_of({"a/b": mine}), read=topics.read)
        assert mine["status_messages"].entities == {}
        await restore(KafkaSettings(), CONTRACT, states_of({"a/b": mine}, shared), read=topics.read)
        assert mine["status_messages"].entities["available"].sequence == 2

    async def test_a_key_without_a_user_is_counted_and_skipped(self) -> None:
        """An alerting key with no user part (written before #14) fills nobody's state."""
        topics = FakeTopics()
        checkpoint = events.state_record(CONTRACT, "alerting", b"1001", ALERT, 4, "t.x.v1")
        topics.write(checkpoint, 1_000)
        mine = new_states()
        restored = await restore(
            KafkaSettings(), CONTRACT, states_of({"1001": mine}, mine), read=topics.read
        )
        assert mine["alerting"].entities == {}
        assert restored.unowned == 1

    async def test_an_event_without_its_checkpoint_is_repaired_under_its_users_key(self) -> None:
        """A crash left a/b's event unchecked: sequence continued, state re-written keyed a%2Fb/."""
        topics = FakeTopics()
        published(topics, change("alerting", "1001", ALERT, 1), "a/b", 1_000)
        published(topics, change("alerting", "1001", ALERT, 2), "a/b", 2_000, state=False)
        published(topics, change("alerting", "1001", ALERT, 5), "other", 2_000, state=False)
        mine = new_states()
        restored = await restore(
            KafkaSettings(), CONTRACT, states_of({"a/b": mine}), read=topics.read
        )
        assert mine["alerting"].entities["1001"].sequence == 2
        [repair] = restored.repairs
        assert (repair.topic, repair.key) == ("st.alerting", b"a%2Fb/1001")
        assert (
            repair
            == events.change_records(
                CONTRACT, change("alerting", "1001", ALERT, 2), RECORDED, user="a/b"
            )[1]
        )


class TestCrashGap:
    """Events a crash left without checkpoints are found in the event partitions' ends."""

    async def test_two_chunks_of_unchecked_events_are_all_repaired(self) -> None:
        """Entity x's lone event, then two chunks less one of others': x is still repaired."""
        topics = FakeTopics()
        published(topics, change("alerting", "x", ALERT, 1), "a/b", 1_000)
        published(topics, change("alerting", "x", ALERT, 2), "a/b", 2_000, state=False)
        # The publisher's send cycle: chunk N's state records go with chunk N+1's events, so a
        # crash may leave both chunks' events unchecked.
        for n in range(2 * CHUNK - 1):
            published(topics, change("alerting", f"o{n}", ALERT, 1), "a/b", 2_000, state=False)
        mine = new_states()
        restored = await restore(
            KafkaSettings(), CONTRACT, states_of({"a/b": mine}), read=topics.read
        )
        assert mine["alerting"].entities["x"].sequence == 2
        assert len(restored.repairs) == 2 * CHUNK

    async def test_an_entity_that_ended_cleanly_needs_no_repair(self) -> None:
        """Its ended event and tombstone were both written: nothing to re-write at start-up."""
        topics = FakeTopics()
        published(topics, change("alerting", "x", ALERT, 1), "a/b", 1_000)
        published(topics, Change("alerting", "x", "removed", ALERT, (), 2, "delta"), "a/b", 2_000)
        restored = await restore(
            KafkaSettings(), CONTRACT, states_of({"a/b": new_states()}), read=topics.read
        )
        assert restored.repairs == []


class TestRestoringInTwoSteps:
    """Checkpoints read early and again later, then narrowed: as one later restore would load."""

    async def test_an_early_and_a_later_reading_load_what_one_later_restore_loads(self) -> None:
        """a/b's entity changed and one ended after the early reading: the later ones count."""
        topics = FakeTopics()
        published(topics, change("alerting", "1001", ALERT, 1), "a/b", 1_000)
        published(topics, change("alerting", "1002", ALERT, 1), "a/b", 1_000)
        early = new_states()
        restoring = Restoring(CONTRACT, states_of({"a/b": early}))
        await restoring.checkpoints(KafkaSettings(), topics.read)
        assert early["alerting"].entities["1001"].sequence == 1
        published(topics, change("alerting", "1001", {**ALERT, "name": "Jane"}, 2), "a/b", 3_000)
        ended = Change("alerting", "1002", "removed", ALERT, (), 2, "delta")
        published(topics, ended, "a/b", 3_000)
        await restoring.checkpoints(KafkaSettings(), topics.read)
        restored = await restoring.finish(KafkaSettings(), topics.read)
        assert set(early["alerting"].entities) == {"1001"}
        assert early["alerting"].entities["1001"].sequence == 2
        assert restored.users == {"a/b": 3.0}

    async def test_narrowed_to_one_user_the_others_are_neither_reported_nor_repaired(
        self,
    ) -> None:
        """Read for a/b and other; kept a/b: other's user, entities and crash gap are dropped."""
        topics = FakeTopics()
        published(topics, change("alerting", "1001", ALERT, 1), "a/b", 1_000)
        published(topics, change("alerting", "1001", ALERT, 1), "other", 2_000)
        published(topics, change("alerting", "1001", ALERT, 2), "other", 2_000, state=False)
        mine, theirs = new_states(), new_states()
        restoring = Restoring(CONTRACT, states_of({"a/b": mine, "other": theirs}))
        await restoring.checkpoints(KafkaSettings(), topics.read)
        restoring.narrow({"a/b": mine})
        restored = await restoring.finish(KafkaSettings(), topics.read)
        assert restored.users == {"a/b": 1.0}
        assert restored.entities == {"alerting": 1}
        assert restored.repairs == []
        assert restored.last_written == 1.0

    async def test_tails_read_early_then_since_repair_only_what_no_checkpoint_covers(
        self,
    ) -> None:
        """1002's lone event was checkpointed after the early reading; 1001's came after it."""
        topics = FakeTopics()
        published(topics, change("alerting", "1001", ALERT, 1), "a/b", 1_000)
        published(topics, change("alerting", "1002", ALERT, 1), "a/b", 1_000, state=False)
        mine = new_states()
        restoring = Restoring(CONTRACT, states_of({"a/b": mine}))
        await restoring.checkpoints(KafkaSettings(), topics.read)
        await restoring.tails(KafkaSettings(), topics.read)
        late = change("alerting", "1002", ALERT, 1)
        topics.write(events.change_records(CONTRACT, late, RECORDED, user="a/b")[1], 2_000)
        published(topics, change("alerting", "1001", ALERT, 2), "a/b", 2_000, state=False)
        await restoring.checkpoints(KafkaSettings(), topics.read)
        restored = await restoring.finish(KafkaSettings(), topics.read)
        repaired = change("alerting", "1001", ALERT, 2)
        expected = events.change_records(CONTRACT, repaired, RECORDED, user="a/b")[1]
        assert restored.repairs == [expected]
        assert mine["alerting"].entities["1001"].sequence == 2
