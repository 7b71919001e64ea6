"""Giving memory freed after a backlog back to the system (glibc's heap keeps it otherwise).

A backlog (a burst of ICWS messages, an outage's buffered records) allocates record values and
producer batches by the megabyte through the C allocator. They are freed once Kafka has them,
but glibc returns only the top of its heap to the system: with one long-lived block above them
the freed pages stay resident. After 100,000 alerting changes that was 10-11 MB of the bridge's
RSS (BENCHMARKS.md, issue #15). ``malloc_trim(0)`` hands back every free page of the heap; it
takes milliseconds (6 ms to return 40 MB), so the publisher calls it only when a backlog drained.
Elsewhere (another C library, no ``malloc_trim``) releasing does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """The C library's ``malloc_trim``, or None where there is none (looked up when first used)."""
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    trim: Callable[[int], int] = function
    return trim


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; True if any were released."""
    trim = _malloc_trim()
    return trim is not None and trim(0) == 1
