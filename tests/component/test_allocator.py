"""Giving freed C heap memory back to the system (bridge.events.allocator), on glibc."""

from __future__ import annotations

from bridge.events import allocator


class TestReleaseFreeMemory:
    """``release_free_memory`` trims the C heap where the C library can."""

    def test_pages_freed_below_a_live_block_are_released(self) -> None:
        """Megabytes of freed blocks under one still-live block: release reports pages returned."""
        # Blocks over 512 bytes come from malloc, not from Python's small-object allocator.
        freed = [bytes(1500) for _ in range(4000)]
        live = bytes(1500)
        del freed

        assert allocator.release_free_memory() is True
        assert len(live) == 1500
