"""Leases: at most one process does each duty at a time, and another takes over within seconds when it dies.

A :class:`LeaseKeeper` runs in every process that may hold a duty. Each round (``round_s``) it heartbeats its
membership, renews what it holds, and takes what is free or expired: the single duties it was given (the relay,
the schedulers, the engine over the whole log) and its fair share of the engine partitions, ``ceil(P / live
partition takers)``. A process holding more than its share (another joined) hands the extra partitions over:
it stops deciding, saves where it is, and releases them, so the newcomer starts at once.

Why leases in PostgreSQL and not JetStream KV or advisory locks: the store that must refuse a stale owner's
decision is PostgreSQL, and a lease row there can be checked inside the very transaction that writes the
decision (:meth:`Lease.check`, FOR SHARE), which makes fencing exact. An advisory lock would be released the
moment its session ended, but it cannot fence a process that lost its session yet still has a transaction in
flight on another; a KV lease in NATS would need a second system's clock and a check that is not atomic with the
write. Expiry is judged by the database's clock alone.

Failover is quicker than the lease period when a process dies outright: each keeper keeps its own connection open
under its member id (``application_name``), and a lease whose owner has no session left is free at once (a
SIGKILL closes the sessions). That is safe because of the fencing above.

A process stops deciding before its lease can be taken by expiry: it trusts a renewal for ``ttl_s - margin_s`` from the
moment it *sent* it (the database counts ``ttl_s`` from when it *ran* it), and each duty checks
:meth:`Lease.valid` before it writes, besides the check inside the transaction.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import asyncpg

from api.cluster import repository
from api.cluster.partitioning import partition_lease
from api.platform import background, metrics

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """A duty's lease is no longer its own: whatever it was about to write must not be written."""


@dataclass
class Lease:
    name: str
    owner: str
    epoch: int
    valid_until: float  # time.monotonic() up to which this process may act on the lease

    def valid(self) -> bool:
        return time.monotonic() < self.valid_until

    async def check(self, conn: asyncpg.Connection) -> None:
        """Inside the writer's transaction, before its first write: refuse unless the lease is still ours."""
        if not self.valid() or not await repository.holds(conn, self.name, self.owner, self.epoch):
            raise LeaseLost(self.name)


class Duty(Protocol):
    """Work done under a lease: started when it is granted, stopped when it is lost or handed over."""

    async def start(self, lease: Lease) -> None:
        """Begin (spawn the work; return at once)."""

    async def stop(self, *, handover: bool) -> None:
        """End the work. ``handover``: the lease is still held, save what helps the next holder (a snapshot);
        otherwise it is already lost and nothing may be written."""

    @property
    def ready(self) -> bool:
        """Doing its work (caught up, where that applies)."""


@dataclass(frozen=True)
class Member:
    member_id: str
    role: str
    takes_partitions: bool
    host: str
    pid: int

    @classmethod
    def this_process(cls, role: str, takes_partitions: bool) -> "Member":
        host, pid = socket.gethostname()[:40], os.getpid()  # the id is an application_name: 63 bytes at most
        return cls(f"{host}:{pid}:{secrets.token_hex(3)}", role, takes_partitions, host, pid)


@dataclass
class _Held:
    lease: Lease
    duty: Duty


@dataclass
class LeaseKeeper:
    url: str
    pool: asyncpg.Pool
    member: Member
    singles: Sequence[tuple[str, Duty]] = ()
    partitions: int = 0  # 0: this process takes no partitions
    partition_duty: Callable[[int], Duty] | None = None
    ttl_s: float = 5.0
    round_s: float = 0.5
    margin_s: float = 0.5
    held: dict[str, _Held] = field(default_factory=dict)
    last_round: float | None = None  # time.monotonic() of the last round that reached the database
    _task: asyncio.Task[None] | None = None
    _conn: asyncpg.Connection | None = None  # this process's session, named by its member id

    async def start(self) -> None:
        names = [n for n, _ in self.singles] + [partition_lease(p) for p in range(self.partitions)]
        await repository.ensure_leases(self.pool, names)
        await self._round()  # the first grants before the process reports ready
        self._task = asyncio.create_task(self._run(), name="lease-keeper")

    async def stop(self) -> None:
        """Hand everything over: stop each duty with a final save, release its lease, leave the cluster."""
        await background.cancel(self._task)
        held = list(self.held.values())
        await asyncio.gather(*(h.duty.stop(handover=h.lease.valid()) for h in held), return_exceptions=True)
        self.held.clear()
        metrics.PARTITIONS_OWNED.set(0)
        try:
            await repository.release(self.pool, self.member.member_id, [h.lease.name for h in held])
            await repository.leave(self.pool, self.member.member_id, forget_before_s=3600)
        except (OSError, asyncpg.PostgresError) as e:  # the database is gone: the leases simply expire
            log.warning("leases not released; they expire by themselves", extra={"error": type(e).__name__})
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    def holds(self, name: str) -> bool:
        return name in self.held

    def duties(self) -> dict[str, Duty]:
        return {name: h.duty for name, h in self.held.items()}

    @property
    def healthy(self) -> bool:
        """Reaching the database often enough to keep what it holds."""
        return self.last_round is not None and time.monotonic() - self.last_round < self.ttl_s - self.margin_s

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.round_s)
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("lease round failed", extra={"error": type(e).__name__})
                if self._conn is not None:
                    self._conn.terminate()
                    self._conn = None
            # Whatever could not be renewed in time is lost, reachable database or not.
            for name in [n for n, h in self.held.items() if not h.lease.valid()]:
                await self._lose(name, "expired before it could be renewed")

    async def _session(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncio.wait_for(asyncpg.connect(
                self.url, server_settings={"application_name": self.member.member_id}), self.ttl_s)
        return self._conn

    async def _round(self) -> None:
        me = self.member
        conn = await self._session()
        sent = time.monotonic()
        await repository.heartbeat(conn, me.member_id, me.role, me.takes_partitions, me.host, me.pid)
        if self.held:
            renewed = await repository.renew(
                conn, me.member_id, {n: h.lease.epoch for n, h in self.held.items()}, self.ttl_s)
            for name in list(self.held):
                if name in renewed:
                    self.held[name].lease.valid_until = sent + self.ttl_s - self.margin_s
                    metrics.LEASE_RENEWALS.labels("renewed").inc()
                else:
                    metrics.LEASE_RENEWALS.labels("lost").inc()
                    await self._lose(name, "taken by another process")
        self.last_round = time.monotonic()
        table = {r["name"]: r for r in await repository.leases(conn)}
        free = {n for n, r in table.items() if not r["live"]}
        for name, duty in self.singles:
            if name not in self.held and name in free:
                await self._take(conn, name, duty, sent)
        if self.partitions and self.partition_duty is not None:
            await self._share_partitions(conn, free, sent)
        metrics.PARTITIONS_OWNED.set(sum(1 for n in self.held if n.startswith("partition:")))

    async def _share_partitions(self, conn: asyncpg.Connection, free: set[str], sent: float) -> None:
        takers = max(1, await repository.partition_takers(conn, self.ttl_s))
        share = math.ceil(self.partitions / takers)
        mine = sorted(n for n in self.held if n.startswith("partition:"))
        for name in mine[share:]:  # another process joined: hand the surplus over
            await self._hand_over(conn, name)
        wanted = share - len(mine)
        if wanted <= 0:
            return
        # Start the search at a place of our own, so processes starting together do not all race for partition 0.
        offset = int(self.member.member_id.rsplit(":", 1)[-1], 16) % self.partitions
        for i in range(self.partitions):
            p = (offset + i) % self.partitions
            name = partition_lease(p)
            if wanted and name not in self.held and name in free:
                assert self.partition_duty is not None
                if await self._take(conn, name, self.partition_duty(p), sent):
                    wanted -= 1

    async def _take(self, conn: asyncpg.Connection, name: str, duty: Duty, sent: float) -> bool:
        got = await repository.acquire(conn, name, self.member.member_id, self.ttl_s)
        if got is None:
            return False
        epoch, previous = got
        lease = Lease(name, self.member.member_id, epoch, sent + self.ttl_s - self.margin_s)
        if previous is not None and previous != self.member.member_id:
            metrics.FAILOVERS.labels(name.split(":")[0]).inc()
            log.warning("lease taken over from a process that stopped renewing it or left the database",
                        extra={"lease": name, "previous_owner": previous, "epoch": epoch})
        else:
            log.info("lease granted", extra={"lease": name, "epoch": epoch})
        self.held[name] = _Held(lease, duty)
        await duty.start(lease)
        return True

    async def _hand_over(self, conn: asyncpg.Connection, name: str) -> None:
        held = self.held.pop(name)
        await held.duty.stop(handover=held.lease.valid())
        await repository.release(conn, self.member.member_id, [name])
        log.info("lease handed over", extra={"lease": name})

    async def _lose(self, name: str, why: str) -> None:
        held = self.held.pop(name, None)
        if held is None:
            return
        log.error("lease lost; the duty stops at once", extra={"lease": name, "reason": why})
        await held.duty.stop(handover=False)
