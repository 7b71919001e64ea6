"""Owner resolution as a table (who a command runs as, or why not), and the key partitioner."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from bridge.core import ownership
from bridge.core.ownership import LOOK_AGAIN_SECONDS, Reject, Routing, RunAs, Sight, Unsettled
from bridge.kafka import partition_for

A, B, C = "agent.a", "agent.b", "agent.c"
REQ = "req-1"
HERE = Routing(partition=3)
LATER = LOOK_AGAIN_SECONDS  # looked long enough: absence counts
AT_ONCE = 0.0
NOT_OPEN_FOR_A = Reject(f"request {REQ} is not open for user {A}")
NOBODY = Reject(f"no account of this fleet holds request {REQ}")
# murmur2 of these keys as Kafka's own test of its Java client states them (UtilsTest).
JAVA_MURMUR2 = {b"21": -973932308, b"foobar": -790332482, b"abc": 479470107}


class TestKeyedByAHeldUser:
    """A command keyed by a user this replica holds runs as that user, if that user has it."""

    @pytest.mark.parametrize(
        ("sights", "waited", "found"),
        [
            ({A: "open"}, AT_ONCE, RunAs(A)),
            ({A: "open", B: "open"}, AT_ONCE, RunAs(A)),  # the key decides, no ambiguity
            ({A: "absent", B: "open"}, LATER, NOT_OPEN_FOR_A),  # never B's session
            ({A: "absent"}, LATER, NOT_OPEN_FOR_A),
            (
                {A: "absent"},
                AT_ONCE,
                Unsettled(f"request {REQ} is not in the view of user {A} yet"),
            ),
            (
                {A: "unknown", B: "open"},
                LATER,
                Unsettled(f"the view of user {A} is not up to date"),
            ),
        ],
        ids=[
            "own-request",
            "own-request-others-too",
            "another-users-request",
            "gone",
            "not-yet-in-the-view",
            "view-not-up-to-date",
        ],
    )
    def test_keyed_by_user(
        self, sights: Mapping[str, Sight], waited: float, found: ownership.Resolution
    ) -> None:
        """The key's own view decides: open runs, absent (long enough) rejects, unknown waits."""
        assert ownership.resolve(A, REQ, sights, waited=waited, routing=HERE) == found


class TestKeyedByAnythingElse:
    """A command keyed otherwise (the assistance id, or no key) runs as the one user holding it."""

    @pytest.mark.parametrize(
        ("key", "sights", "waited", "found"),
        [
            (REQ, {A: "absent", B: "open"}, AT_ONCE, RunAs(B)),
            (None, {A: "open"}, AT_ONCE, RunAs(A)),
            (REQ, {A: "open", B: "unknown"}, AT_ONCE, RunAs(A)),
            (
                REQ,
                {C: "open", A: "open", B: "absent"},
                AT_ONCE,
                Reject(f"request {REQ} is ambiguous: users {A}, {C} all hold it"),
            ),
            (REQ, {A: "absent", B: "absent"}, LATER, NOBODY),
            (REQ, {}, AT_ONCE, NOBODY),
            (
                REQ,
                {A: "absent", B: "absent"},
                AT_ONCE,
                Unsettled(f"request {REQ} is in no account's view yet"),
            ),
            (
                REQ,
                {A: "absent", B: "unknown"},
                LATER,
                Unsettled(f"1 account(s) not up to date, e.g. {B}"),
            ),
        ],
        ids=[
            "one-owner",
            "no-key",
            "one-owner-others-unknown",
            "ambiguous",
            "nobody",
            "no-accounts",
            "nobody-yet",
            "nobody-among-up-to-date",
        ],
    )
    def test_search(
        self,
        key: str | None,
        sights: Mapping[str, Sight],
        waited: float,
        found: ownership.Resolution,
    ) -> None:
        """One holder runs; two are ambiguous (named, sorted); none rejects once known."""
        assert ownership.resolve(key, REQ, sights, waited=waited, routing=HERE) == found

    def test_a_user_key_on_the_wrong_partition_is_named(self) -> None:
        """A user's command on another partition than its key's says where it belongs."""
        found = ownership.resolve(
            C, REQ, {A: "absent"}, waited=LATER, routing=Routing(partition=3, key_partition=5)
        )
        assert found == Reject(
            f"no account of this fleet holds request {REQ} (its key '{C}' belongs on partition"
            " 5, but the record came on partition 3: was it sent with another partitioner?)"
        )

    def test_a_key_on_its_own_partition_adds_nothing(self) -> None:
        """When the key belongs where the record came, the reason is the plain one."""
        found = ownership.resolve(
            C, REQ, {A: "absent"}, waited=LATER, routing=Routing(partition=3, key_partition=3)
        )
        assert found == NOBODY


class TestVerdicts:
    """What the command's result says when it cannot run."""

    def test_reject_is_rejected(self) -> None:
        """A rejection's verdict is ``rejected`` with the reason as the error message."""
        verdict = NOT_OPEN_FOR_A.verdict
        assert verdict.outcome == "rejected"
        assert verdict.problem is not None
        assert verdict.problem.message == f"request {REQ} is not open for user {A}"

    def test_unsettled_at_the_deadline_is_expired(self) -> None:
        """Still unsettled at the deadline: ``expired``, saying why the owner was not known."""
        verdict = Unsettled("1 account(s) not up to date, e.g. agent.b").verdict
        assert verdict.outcome == "expired"
        assert verdict.problem is not None
        assert verdict.problem.message == (
            "the deadline passed before the owner was known: 1 account(s) not up to date, "
            "e.g. agent.b"
        )


class TestPartitionFor:
    """``partition_for`` puts every key where aiokafka's default partitioner puts it."""

    @given(key=st.binary(max_size=64), partitions=st.integers(min_value=1, max_value=200))
    def test_matches_the_default_partitioner(self, key: bytes, partitions: int) -> None:
        """For any key and partition count, the same partition as ``DefaultPartitioner``."""
        every = list(range(partitions))
        assert partition_for(key, partitions) == DefaultPartitioner()(key, every, every)

    @pytest.mark.parametrize(("key", "hashed"), JAVA_MURMUR2.items(), ids=str)
    @pytest.mark.parametrize("partitions", [1, 6, 7, 100])
    def test_as_the_java_client(self, key: bytes, hashed: int, partitions: int) -> None:
        """The Java client's partition, ``Utils.toPositive(murmur2(key)) % n``, from its hashes."""
        assert partition_for(key, partitions) == (hashed & 0x7FFFFFFF) % partitions

    def test_a_topic_has_partitions(self) -> None:
        """Zero partitions is a programming error, not a division by zero."""
        with pytest.raises(ValueError, match="at least one partition"):
            partition_for(b"a", 0)
