"""The partition of a case: all of one case's fixes go to one partition, so one engine sees them in order.

The first 32 bits of the case id modulo the number of partitions; ``afstand_partition()`` in
migrations/0010_cluster.sql computes the same in SQL (tests hold the two equal). Case ids are random UUIDs, so a
plain modulo spreads evenly and needs no hashing of its own.
"""

from __future__ import annotations

import uuid


def partition_of(case_id: str | uuid.UUID, partitions: int) -> int:
    return int(uuid.UUID(str(case_id)).hex[:8], 16) % partitions


def partition_lease(partition: int) -> str:
    """The lease that gives one engine process the partition."""
    return f"partition:{partition:03d}"


def partition_engine_id(partition: int) -> str:
    """The key of the partition's progress marker and snapshot (engine_progress, engine_snapshots)."""
    return f"partition-{partition:03d}"
