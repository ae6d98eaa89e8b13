"""All SQL of the cluster: leases (their only writer), cluster members, and the reads `afstand cluster status`
makes. Expiry is always judged by the database's clock (``clock_timestamp()``), never a process's.

A lease also ends when its owner has no session left: each keeper holds its connection open under its member id
as ``application_name`` (api/cluster/leases.py), and a killed process's sessions end at once. Taking such a lease
before it expires is safe because every write under a lease checks owner and epoch in its own transaction."""

from __future__ import annotations

import asyncpg

Db = asyncpg.Connection | asyncpg.Pool

# A lease is held while it has an owner, has not expired, and its owner still has a session.
_LIVE = ("({lease}.owner IS NOT NULL AND {lease}.expires_at > clock_timestamp()"
         " AND EXISTS (SELECT 1 FROM pg_stat_activity s WHERE s.application_name = {lease}.owner))")


async def ensure_leases(conn: Db, names: list[str]) -> None:
    await conn.execute("INSERT INTO leases (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING", names)


async def acquire(conn: Db, name: str, owner: str, ttl_s: float) -> tuple[int, str | None] | None:
    """Take the lease if it is free, expired or its owner is gone: ``(epoch, previous owner)`` (the previous
    owner is None when it was released), or None when another process holds it."""
    row = await conn.fetchrow(
        "UPDATE leases l SET owner = $2, epoch = l.epoch + 1, granted_at = clock_timestamp(),"
        " expires_at = clock_timestamp() + make_interval(secs => $3)"
        " FROM (SELECT name, owner FROM leases WHERE name = $1 FOR UPDATE) prev"
        " WHERE l.name = prev.name AND NOT " + _LIVE.format(lease="l")
        + " RETURNING l.epoch, prev.owner AS previous",
        name, owner, ttl_s,
    )
    return None if row is None else (row["epoch"], row["previous"])


async def renew(conn: Db, owner: str, held: dict[str, int], ttl_s: float) -> set[str]:
    """Extend the leases ``{name: epoch}`` still ours and not expired; the names renewed."""
    names = list(held)
    rows = await conn.fetch(
        "UPDATE leases l SET expires_at = clock_timestamp() + make_interval(secs => $4)"
        " FROM unnest($2::text[], $3::bigint[]) AS h(name, epoch)"
        " WHERE l.name = h.name AND l.epoch = h.epoch AND l.owner = $1 AND l.expires_at > clock_timestamp()"
        " RETURNING l.name",
        owner, names, [held[n] for n in names], ttl_s,
    )
    return {r["name"] for r in rows}


async def release(conn: Db, owner: str, names: list[str]) -> None:
    await conn.execute(
        "UPDATE leases SET owner = NULL, expires_at = '-infinity' WHERE owner = $1 AND name = ANY($2::text[])",
        owner, names,
    )


async def holds(conn: asyncpg.Connection, name: str, owner: str, epoch: int) -> bool:
    """Inside a writer's transaction: the lease is still ours. FOR SHARE makes a taker wait for this transaction,
    so nothing it commits lands after the lease changed hands."""
    return bool(await conn.fetchval(
        "SELECT true FROM leases WHERE name = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp()"
        " FOR SHARE",
        name, owner, epoch,
    ))


async def heartbeat(conn: Db, member_id: str, role: str, takes_partitions: bool, host: str, pid: int) -> None:
    await conn.execute(
        "INSERT INTO cluster_members (member_id, role, takes_partitions, host, pid) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (member_id) DO UPDATE SET seen_at = clock_timestamp()",
        member_id, role, takes_partitions, host, pid,
    )


async def partition_takers(conn: Db, within_s: float) -> int:
    """How many live processes share the partitions (seen within ``within_s``)."""
    return await conn.fetchval(
        "SELECT count(*) FROM cluster_members m WHERE takes_partitions"
        " AND seen_at > clock_timestamp() - make_interval(secs => $1)"
        " AND EXISTS (SELECT 1 FROM pg_stat_activity s WHERE s.application_name = m.member_id)",
        within_s,
    )


async def leave(conn: Db, member_id: str, forget_before_s: float) -> None:
    """This member is gone; members silent for ``forget_before_s`` are forgotten too."""
    await conn.execute(
        "DELETE FROM cluster_members WHERE member_id = $1"
        " OR seen_at < clock_timestamp() - make_interval(secs => $2)",
        member_id, forget_before_s,
    )


async def leases(conn: Db) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT name, owner, epoch, " + _LIVE.format(lease="leases") + " AS live,"
        + " (extract(epoch FROM expires_at) - extract(epoch FROM clock_timestamp()))::float8 AS expires_in_s"
        " FROM leases ORDER BY name"
    )


async def members(conn: Db) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT member_id, role, takes_partitions, host, pid, started_at,"
        " extract(epoch FROM clock_timestamp() - seen_at)::float8 AS seen_s_ago FROM cluster_members ORDER BY started_at"
    )


async def partition_progress(conn: Db, partitions: int) -> list[asyncpg.Record]:
    """Per partition: its engine's position, and how many committed entries of the log (fixes and encounters) of
    its cases lie beyond it and how old the oldest of them is."""
    return await conn.fetch(
        "SELECT p.partition, coalesce(e.last_seq, 0) AS last_seq, e.updated_at,"
        " (SELECT count(*) FROM engine_log x WHERE x.seq > coalesce(e.last_seq, 0)"
        "    AND afstand_partition(x.case_id, $1) = p.partition) AS behind_fixes,"
        " extract(epoch FROM clock_timestamp() - (SELECT min(x.received_at) FROM engine_log x"
        "    WHERE x.seq > coalesce(e.last_seq, 0) AND afstand_partition(x.case_id, $1) = p.partition))::float8"
        "   AS behind_s"
        " FROM generate_series(0, $1 - 1) AS p(partition)"
        " LEFT JOIN engine_progress e ON e.engine_id = 'partition-' || lpad(p.partition::text, 3, '0')"
        " ORDER BY p.partition",
        partitions,
    )
