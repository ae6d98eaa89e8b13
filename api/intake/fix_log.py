"""Group commit of the fix log: the fixes of concurrent intake requests appended in one statement.

Every writer of ``positions`` holds the fix-log lock from its INSERT to its commit, so that ``seq`` values
become visible in commit order (a reader of ``positions ORDER BY seq`` never sees a later-committed row with a
lower seq than one it saw; the engine and any log relay read ``seq > last``). Held per request, that lock made
every intake transaction, its commit and WAL flush included, wait for the one before it. Here one writer task
per process takes every request queued meanwhile and appends them all with one call of
``intake_append_fixes`` (migrations/0012_intake_append.sql) in autocommit: one round trip, one lock, one
commit for the group, however many requests it holds. While a group commits the next one gathers, so the
groups grow with the load. Several processes still take the same lock, one group at a time each.

A request is answered only after its group committed (2xx = committed). Members the statement does not write
('unknown' serial, a device with an open offline alert) are answered with that status and take the
per-request transaction of api/intake/service.py. When a group fails on its data (a PostgreSQL data,
integrity or transaction-rollback error), each member is tried alone, so one request's fault is its own; when
the database fails, every member gets that error.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from api.intake import repository

MAX_GROUP_FIXES = 5_000  # bounds one statement's size and time; a larger queue is written in several groups
_RETRY_ALONE = ("22", "23", "40")  # SQLSTATE classes of a fault in the data (or a deadlock), not the database


@dataclass
class Member:
    """One request's fixes. Supplier: ``supplier_id`` and each fix's serial; app: ``device_id`` and the issue
    time of the token its request carried."""

    received_at: datetime
    fixes: list[PendingFix]
    supplier_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    issued_at: datetime | None = None

    def keys(self) -> set[tuple[Any, ...]]:
        owner = self.supplier_id or self.device_id
        return {(owner, f.serial, f.recorded_at) for f in self.fixes}


@dataclass
class Appended:
    """What the group did with a member: ``ok`` (``seqs``: the member's fix positions that were stored, each with
    its seq; the others were in the log already), ``revoked``, ``unknown`` or ``offline`` (nothing written)."""

    status: str
    seqs: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingFix:
    """A checked, not yet stored fix of a member; ``serial`` names a supplier's tag, None for the app's own."""

    serial: str | None
    recorded_at: datetime
    lat: float
    lon: float
    accuracy_m: float
    source: str
    speed_mps: float | None = None
    heading_deg: float | None = None
    battery_pct: float | None = None


class FixLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queue: deque[tuple[Member, asyncio.Future[Appended]]] = deque()
        self._writer: asyncio.Task[None] | None = None

    async def append(self, member: Member) -> Appended:
        """Append the member's fixes (no two with the same device and time) with the next group; returns once
        that group has committed."""
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._queue.append((member, future))
        if self._writer is None or self._writer.done():
            # A task of its own, not the request's: a client that hangs up must not cancel other requests' group.
            self._writer = asyncio.create_task(self._write(), name="fix-log-group-commit")
        return await future

    async def _write(self) -> None:
        while self._queue:
            group = self._next_group()
            if group:
                await self._commit(group)

    def _next_group(self) -> list[tuple[Member, asyncio.Future[Appended]]]:
        """Queued members, in order, up to MAX_GROUP_FIXES fixes; a member naming a fix another member of the
        group names waits for the next group, so each stored fix maps back to one request."""
        group: list[tuple[Member, asyncio.Future[Appended]]] = []
        keys: set[tuple[Any, ...]] = set()
        size = 0
        waiting: list[tuple[Member, asyncio.Future[Appended]]] = []
        while self._queue and size < MAX_GROUP_FIXES:
            member, future = self._queue.popleft()
            if future.done():
                continue  # its request was cancelled before the group formed: nothing to write
            mine = member.keys()
            if keys & mine:
                waiting.append((member, future))
                continue
            keys |= mine
            size += len(member.fixes)
            group.append((member, future))
        self._queue.extendleft(reversed(waiting))
        return group

    async def _commit(self, group: list[tuple[Member, asyncio.Future[Appended]]]) -> None:
        try:
            results = await self._append([m for m, _ in group])
        except asyncpg.PostgresError as e:
            if len(group) > 1 and (e.sqlstate or "")[:2] in _RETRY_ALONE:
                for one in group:
                    await self._commit([one])
                return
            _fail(group, e)
        except Exception as e:  # the database or the connection failed: every member's request gets it
            _fail(group, e)
        else:
            for (_, future), result in zip(group, results):
                if not future.done():
                    future.set_result(result)

    async def _append(self, members: list[Member]) -> list[Appended]:
        rows: list[tuple[int, PendingFix]] = []  # (1-based member, fix)
        owner: list[tuple[int, int]] = []  # per row: (member, the fix's position in the member's list)
        for m, member in enumerate(members):
            for k, f in enumerate(member.fixes):
                rows.append((m + 1, f))
                owner.append((m, k))
        async with self._pool.acquire() as conn:
            records = await repository.append_group(conn, members, rows)
        results = [Appended("ok") for _ in members]
        for r in records:
            if r["out_fix"] is None:
                results[r["out_member"] - 1].status = r["out_status"]
            else:
                m, k = owner[r["out_fix"] - 1]
                results[m].seqs[k] = r["out_seq"]
        return results


def _fail(group: list[tuple[Member, asyncio.Future[Appended]]], error: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(error)
