"""The port through which an engine reads its ordered log of fixes, and its PostgreSQL adapter.

Two adapters read the same log: :class:`PostgresFixLog` reads ``positions`` itself (one engine for every case,
the default), and :class:`api.monitoring.jetstream.PartitionLog` reads one partition's subject on NATS JetStream,
to which the relay (api/monitoring/relay.py) publishes the committed rows. Either way a fix carries its
``positions.seq`` as its id, so an engine can skip what it has already evaluated whatever the transport repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import asyncpg

from api.monitoring import repository
from geofence.model import Encounter, Fix, Party

Wake = Callable[[], None]


@dataclass(frozen=True)
class LogPosition:
    seq: int = 0  # the last positions.seq evaluated
    stream_seq: int = 0  # where that was in the partition's JetStream stream (0 for the PostgreSQL log)


@dataclass
class LogBatch:
    fixes: list[Fix | Encounter] = field(default_factory=list)
    position: LogPosition = LogPosition()  # after the last fix of the batch
    caught_up: bool = True  # nothing more is waiting in the log right now
    pending: int = 0  # fixes known to be waiting beyond this batch


class FixLog(Protocol):
    async def open(self, after: LogPosition, wake: Wake) -> None:
        """Read from just after ``after``; call ``wake`` when new fixes may be there."""

    async def read(self, limit: int, after: LogPosition) -> LogBatch:
        """What is there now after ``after``, at most ``limit`` fixes, in log order; never waits for more."""

    async def close(self) -> None: ...


def fix_from_row(row: Mapping[str, Any]) -> Fix | Encounter:
    """A row of the log (or the relay's copy of one) as the engine's :class:`Fix`, or :class:`Encounter` for
    the phone's Bluetooth encounters (``source`` 'ble')."""
    if row["source"] == "ble":
        return Encounter(fix_id=str(row["seq"]), device_id=str(row["device_id"]), case_id=str(row["case_id"]),
                         tag_id=str(row["tag_id"]), recorded_at=row["recorded_at"], received_at=row["received_at"],
                         rssi=row["rssi"])
    return Fix(
        fix_id=str(row["seq"]),
        device_id=str(row["device_id"]),
        case_id=str(row["case_id"]),
        party=Party(row["party"]),
        recorded_at=row["recorded_at"],
        received_at=row["received_at"],
        lat=row["lat"],
        lon=row["lon"],
        accuracy_m=row["accuracy_m"],
        source=row["source"],
        speed_mps=row["speed_mps"],
    )


class PostgresFixLog:
    """``positions`` read directly; the FIXES notification (listened to by the runner's owner) wakes it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def open(self, after: LogPosition, wake: Wake) -> None:
        wake()

    async def read(self, limit: int, after: LogPosition) -> LogBatch:
        rows = await repository.positions_after(self.pool, after.seq, limit)
        position = LogPosition(rows[-1]["seq"]) if rows else after
        return LogBatch([fix_from_row(r) for r in rows], position, caught_up=len(rows) < limit)

    async def close(self) -> None:
        return None
