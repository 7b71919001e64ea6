"""Partition ownership as the command pipeline sees it: the :class:`Gate` and :class:`Revoked`.

The consumer holds one gate per partition it owns; the runner writes a command's ``started``
entry only through it, so giving a partition up and starting a command never overlap.
"""

from __future__ import annotations

import asyncio


class Gate:
    """Whether the bridge still owns a partition; held while a ``started`` entry is written.

    Closing it (partition revoked, shutdown) waits for a start being written, so a new owner
    that then reads the journal sees it, and keeps any later command from starting.
    """

    def __init__(self) -> None:
        self.owned = True
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        self.owned = False
        async with self._lock:
            pass

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        if not self.owned:
            self._lock.release()
            raise Revoked

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()


class Revoked(Exception):
    """The partition was given up before the command started: its new owner handles it."""
