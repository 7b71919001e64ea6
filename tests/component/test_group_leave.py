"""The group consumer's leave on close, with a stand-in for aiokafka's coordinator.

aiokafka's coordinator leaves the group on close only above generation 0 (Kafka's first
generation is 1; Tansu's is 0). :func:`bridge.kafka.group.leave_at_every_generation` adds the
leave in generation 0, never for a static member, and leaves later generations to aiokafka.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.protocol.group import LeaveGroupRequest

from bridge.kafka.group import leave_at_every_generation


class FakeCoordinator:
    """aiokafka's GroupCoordinator as far as leaving goes: what it sent, and its own leave."""

    def __init__(self, generation: int, member_id: str, instance: str | None = None) -> None:
        self.group_id = "icws-bridge"
        self.generation = generation
        self.member_id = member_id
        self._group_instance_id = instance
        self.sent: list[Any] = []
        self.own_leaves = 0

    async def _send_req(self, request: Any) -> None:
        self.sent.append(request)

    async def _maybe_leave_group(self) -> None:
        self.own_leaves += 1  # aiokafka's: sends only above generation 0, then resets


class FakeConsumer:
    """An AIOKafkaConsumer's one attribute the hook uses."""

    def __init__(self, coordinator: FakeCoordinator | None) -> None:
        self._coordinator = coordinator


async def closed(coordinator: FakeCoordinator) -> FakeCoordinator:
    """The hook installed, then the leave aiokafka's close would call."""
    leave_at_every_generation(FakeConsumer(coordinator))  # type: ignore[arg-type]
    await coordinator._maybe_leave_group()
    return coordinator


async def test_generation_zero_sends_the_leave_then_aiokafkas_own() -> None:
    """Generation 0 with a member id: one LeaveGroup naming the group and member, then reset."""
    coordinator = await closed(FakeCoordinator(0, "member-1"))
    [request] = coordinator.sent
    assert isinstance(request, LeaveGroupRequest)
    assert vars(request) == {"_group": "icws-bridge", "_member_id": "member-1"}
    assert coordinator.own_leaves == 1


@pytest.mark.parametrize(
    ("generation", "member", "instance"),
    [(3, "member-1", None), (0, "", None), (0, "member-1", "pod-0"), (-1, "", None)],
)
async def test_otherwise_only_aiokafkas_own_leave_runs(
    generation: int, member: str, instance: str | None
) -> None:
    """Later generations, no member id, a static member, never joined: nothing extra sent."""
    coordinator = await closed(FakeCoordinator(generation, member, instance))
    assert coordinator.sent == []
    assert coordinator.own_leaves == 1


def test_a_consumer_never_started_is_left_alone() -> None:
    """No coordinator yet (start() never ran): the hook does nothing and raises nothing."""
    leave_at_every_generation(FakeConsumer(None))  # type: ignore[arg-type]
