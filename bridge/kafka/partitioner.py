"""Which partition a key lands on: Kafka's default partitioner, as every producer applies it.

Accounts are spread over replicas by the command topic's partitions, so a replica must compute an
account's partition exactly as the producers of commands keyed by that user id do. aiokafka's
``DefaultPartitioner`` (like the Java client's) is murmur2 of the key bytes, made positive, modulo
the partition count; this uses aiokafka's own murmur2 so the two cannot drift apart.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the default partitioner gives ``key`` in a topic of ``partitions``."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions
