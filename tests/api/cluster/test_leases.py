"""Leases with fencing (api/cluster/leases.py), on a real PostgreSQL: one holder at a time, a stale holder's write
refused, takeover after expiry, and the partitions shared evenly among live processes."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from api.cluster import repository
from api.cluster.leases import Lease, LeaseKeeper, LeaseLost, Member
from api.cluster.partitioning import partition_lease, partition_of
from api.platform.database import create_pool


class RecordingDuty:
    """A duty that only records what the keeper asked of it (the keeper is what is tested)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.running = False
        self.starts = 0
        self.handovers: list[bool] = []

    @property
    def ready(self) -> bool:
        return self.running

    async def start(self, lease: Lease) -> None:
        self.running, self.starts = True, self.starts + 1

    async def stop(self, *, handover: bool) -> None:
        self.running = False
        self.handovers.append(handover)


async def _pool(url: str) -> asyncpg.Pool:
    return await create_pool(url, 1, 4, 5.0)


async def _session(url: str, member_id: str) -> asyncpg.Connection:
    """A process's presence in the database, as its LeaseKeeper keeps it: a session named by its member id."""
    return await asyncpg.connect(url, server_settings={"application_name": member_id})


async def test_python_and_sql_agree_on_every_cases_partition(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        ids = [uuid.uuid4() for _ in range(300)] + [uuid.UUID("ffffffff-ffff-4fff-bfff-ffffffffffff"),
                                                     uuid.UUID("00000000-0000-4000-8000-000000000000")]
        for partitions in (1, 7, 16):
            rows = await conn.fetch("SELECT id, afstand_partition(id, $2) AS p FROM unnest($1::uuid[]) AS id",
                                    ids, partitions)
            assert {r["id"]: r["p"] for r in rows} == {i: partition_of(i, partitions) for i in ids}
        spread = [sum(1 for i in ids[:300] if partition_of(i, 16) == p) for p in range(16)]
        assert min(spread) > 0  # random ids reach every partition
    finally:
        await conn.close()


async def test_a_lease_is_held_by_one_process_until_it_expires_then_taken_over(database_url: str) -> None:
    pool = await _pool(database_url)
    sessions = [await _session(database_url, name) for name in "abc"]
    try:
        await repository.ensure_leases(pool, ["relay"])
        assert await repository.acquire(pool, "relay", "a", 0.6) == (1, None)
        assert await repository.acquire(pool, "relay", "b", 0.6) is None
        assert await repository.renew(pool, "a", {"relay": 1}, 0.6) == {"relay"}
        await asyncio.sleep(0.8)
        assert await repository.renew(pool, "a", {"relay": 1}, 0.6) == set()  # expired: not renewed
        assert await repository.acquire(pool, "relay", "b", 5) == (2, "a")
        await repository.release(pool, "b", ["relay"])
        assert await repository.acquire(pool, "relay", "c", 5) == (3, None)
    finally:
        for conn in sessions:
            await conn.close()
        await pool.close()


async def test_a_lease_whose_owner_left_the_database_is_free_before_it_expires(database_url: str) -> None:
    """A killed process's sessions end at once; its leases need not wait for their expiry."""
    pool = await _pool(database_url)
    owner = await _session(database_url, "killed")
    try:
        await repository.ensure_leases(pool, ["engine"])
        assert await repository.acquire(pool, "engine", "killed", 60) == (1, None)
        assert await repository.acquire(pool, "engine", "next", 60) is None  # alive: held
        owner.terminate()
        await asyncio.sleep(0.2)
        assert await repository.acquire(pool, "engine", "next", 60) == (2, "killed")
    finally:
        await pool.close()


async def test_a_stale_holders_write_is_refused_by_the_store(database_url: str) -> None:
    """Fencing: the old holder still believes it holds the lease (its local clock says so), but once another took
    it over, the check inside its transaction refuses."""
    pool = await _pool(database_url)
    sessions = [await _session(database_url, name) for name in ("old", "new")]
    try:
        await repository.ensure_leases(pool, ["partition:000"])
        epoch, _ = await repository.acquire(pool, "partition:000", "old", 0.3)
        stale = Lease("partition:000", "old", epoch, valid_until=time.monotonic() + 60)
        async with pool.acquire() as conn, conn.transaction():
            await stale.check(conn)  # still ours
        await asyncio.sleep(0.5)
        assert await repository.acquire(pool, "partition:000", "new", 5) is not None
        async with pool.acquire() as conn:
            with pytest.raises(LeaseLost):
                async with conn.transaction():
                    await stale.check(conn)
    finally:
        for session in sessions:
            await session.close()
        await pool.close()


async def test_a_taker_waits_for_the_holders_transaction_in_flight(database_url: str) -> None:
    """A write checked under the lease commits before the lease can change hands, never after."""
    pool = await _pool(database_url)
    holder = await _session(database_url, "holder")
    try:
        await repository.ensure_leases(pool, ["engine"])
        epoch, _ = await repository.acquire(pool, "engine", "holder", 0.3)
        lease = Lease("engine", "holder", epoch, valid_until=time.monotonic() + 60)
        async with pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await lease.check(conn)
            await asyncio.sleep(0.5)  # expired meanwhile, but the transaction holds the row
            taker = asyncio.create_task(repository.acquire(pool, "engine", "taker", 5))
            await asyncio.sleep(0.3)
            assert not taker.done()
            await tx.commit()
        assert (await taker)[0] == epoch + 1
    finally:
        await holder.close()
        await pool.close()


async def test_processes_share_the_partitions_evenly_and_take_over_a_dead_ones(database_url: str) -> None:
    pool = await _pool(database_url)
    duties: dict[str, dict[int, RecordingDuty]] = {}

    def keeper(name: str) -> LeaseKeeper:
        duties[name] = {}

        def duty(p: int) -> RecordingDuty:
            duties[name][p] = RecordingDuty(f"{name}-{p}")
            return duties[name][p]

        relay = RecordingDuty(f"{name}-relay")
        return LeaseKeeper(database_url, pool, Member.this_process("engine", True), singles=[("relay", relay)],
                           partitions=16, partition_duty=duty, ttl_s=1.0, round_s=0.1, margin_s=0.2)

    def owned(k: LeaseKeeper) -> set[str]:
        return {n for n in k.held if n.startswith("partition:")}

    async def until(what, timeout: float) -> float:  # type: ignore[no-untyped-def]
        started = time.monotonic()
        while not what():
            assert time.monotonic() - started < timeout, "not within the time allowed"
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    a, b, c = keeper("a"), keeper("b"), keeper("c")
    try:
        await a.start()
        assert len(owned(a)) == 16 and a.holds("relay")
        await b.start()
        await c.start()
        await until(lambda: sorted(len(owned(k)) for k in (a, b, c)) in ([4, 6, 6], [5, 5, 6]), 5)
        assert set().union(*(owned(k) for k in (a, b, c))) == {partition_lease(p) for p in range(16)}
        assert not owned(a) & owned(b) and not owned(b) & owned(c) and not owned(a) & owned(c)
        # a handed partitions over cleanly when the others joined
        assert any(h == [True] for h in (d.handovers for d in duties["a"].values()))
        # c hangs (its session stays, its rounds stop): its partitions are taken once its leases expire
        c._task.cancel()  # type: ignore[union-attr]
        lost = owned(c)
        took = await until(lambda: lost <= owned(a) | owned(b), 5)
        assert took < 1.0 + 0.1 + 1.0  # the lease period, a round, and some slack for this busy machine
        assert not owned(a) & owned(b)
        # b is killed (its session ends with it): a takes everything long before b's leases expire
        b.ttl_s = 60.0
        await asyncio.sleep(0.3)  # a round at the long ttl
        b._task.cancel()  # type: ignore[union-attr]
        b._conn.terminate()  # type: ignore[union-attr]
        took = await until(lambda: len(owned(a)) == 16, 5)
        assert took < 2.0
    finally:
        await a.stop()
        await pool.close()
