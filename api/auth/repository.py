"""All SQL of the auth domain: who may reach a case (the SQL function ``staff_may_reach``, migrations/0005),
grants (``case_access``), watch lists (``operator_watch``), suppliers' HMAC keys (``supplier_keys``), the
signatures already used (``hmac_seen``) and the device check of victim tokens. Functions take a connection
or the pool; the caller owns the transaction."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

Db = asyncpg.Connection | asyncpg.Pool


# ---------------------------------------------------------------- need-to-know

async def may_reach(db: Db, case_id: uuid.UUID, sub: str, role: str, grace_s: float) -> bool:
    return bool(await db.fetchval("SELECT staff_may_reach($1::uuid, $2::text, $3::text, $4::float8)",
                                  case_id, sub, role, grace_s))


async def reach_of_target(db: Db, what: str, target: uuid.UUID, sub: str, role: str,
                          grace_s: float) -> asyncpg.Record | None:
    """For the case (``what`` = "case") or the alert's case (``what`` = "alert") named ``target``: its case_id
    and whether the staff member may reach it (``ok``); None when there is no such case or alert."""
    return await db.fetchrow(
        "WITH target AS ("
        " SELECT id AS case_id FROM cases WHERE $5 = 'case' AND id = $1"
        " UNION ALL SELECT case_id FROM alerts WHERE $5 = 'alert' AND id = $1)"
        # An alert without a case (a supplier outage) is the monitoring room's: operators and admins reach it.
        " SELECT case_id, CASE WHEN case_id IS NULL THEN $3 IN ('admin', 'operator')"
        " ELSE staff_may_reach(case_id, $2, $3, $4::float8) END AS ok FROM target",
        target, sub, role, grace_s, what,
    )


async def reachable_cases(db: Db, sub: str, role: str, grace_s: float) -> list[uuid.UUID]:
    rows = await db.fetch("SELECT id FROM cases WHERE staff_may_reach(id, $1, $2, $3::float8)", sub, role, grace_s)
    return [r["id"] for r in rows]


async def reachable_among(db: Db, case_ids: set[uuid.UUID], sub: str, role: str, grace_s: float) -> set[uuid.UUID]:
    rows = await db.fetch(
        "SELECT id FROM unnest($1::uuid[]) AS id WHERE staff_may_reach(id, $2, $3, $4::float8)",
        list(case_ids), sub, role, grace_s,
    )
    return {r["id"] for r in rows}


# ---------------------------------------------------------------- grants and watch lists

async def current_grant(conn: asyncpg.Connection, case_id: uuid.UUID, staff_sub: str) -> asyncpg.Record | None:
    """The staff member's running grant on the case (id, relation), row-locked."""
    return await conn.fetchrow(
        "SELECT id, relation FROM case_access WHERE case_id = $1 AND staff_sub = $2 AND ended_at IS NULL FOR UPDATE",
        case_id, staff_sub)


async def change_relation(conn: asyncpg.Connection, grant_id: uuid.UUID, relation: str) -> None:
    await conn.execute("UPDATE case_access SET relation = $2 WHERE id = $1", grant_id, relation)


async def insert_grant(conn: asyncpg.Connection, grant_id: uuid.UUID, case_id: uuid.UUID, staff_sub: str,
                       relation: str, by: str, reason: str | None) -> None:
    await conn.execute(
        "INSERT INTO case_access (id, case_id, staff_sub, relation, granted_by, reason) VALUES ($1, $2, $3, $4, $5, $6)",
        grant_id, case_id, staff_sub, relation, by, reason)


async def end_grant(conn: asyncpg.Connection, case_id: uuid.UUID, staff_sub: str, by: str) -> uuid.UUID | None:
    """End the staff member's running grant on the case; its id, or None when there was none."""
    return await conn.fetchval(
        "UPDATE case_access SET ended_at = now(), ended_by = $3 WHERE case_id = $1 AND staff_sub = $2"
        " AND ended_at IS NULL RETURNING id", case_id, staff_sub, by)


async def grants(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    """Who reaches the case by a grant or by the roster (staff_sub, relation, source, since, by)."""
    return await conn.fetch(
        "SELECT staff_sub, relation, 'grant' AS source, granted_at AS since, granted_by AS by FROM case_access"
        " WHERE case_id = $1 AND ended_at IS NULL"
        " UNION ALL"
        " SELECT m.sub, CASE WHEN a.function = 'contact_person' AND a.agency = 'prosecutor'"
        " THEN 'prosecutor_coordinator' ELSE a.function END, 'roster', a.assigned_at, a.assigned_by"
        " FROM case_assignments a JOIN staff_members m ON m.id = a.staff_id"
        " WHERE a.case_id = $1 AND a.ended_at IS NULL AND m.active ORDER BY 4, 1", case_id)


async def watchers(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT staff_sub, added_at AS since, added_by AS by FROM operator_watch"
                            " WHERE case_id = $1 ORDER BY added_at, staff_sub", case_id)


async def add_watcher(conn: asyncpg.Connection, case_id: uuid.UUID, staff_sub: str, by: str) -> bool:
    """Put the case on the watch list; False when it was there already."""
    return bool(await conn.fetchval(
        "INSERT INTO operator_watch (staff_sub, case_id, added_by) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true", staff_sub, case_id, by))


async def remove_watcher(conn: asyncpg.Connection, case_id: uuid.UUID, staff_sub: str) -> bool:
    return bool(await conn.fetchval(
        "DELETE FROM operator_watch WHERE case_id = $1 AND staff_sub = $2 RETURNING true", case_id, staff_sub))


# ---------------------------------------------------------------- suppliers' keys and signatures

_KEY_COLUMNS = "key_id, supplier_id, replaces, created_at, revoked_at"


async def active_key(db: Db, key_id: str) -> asyncpg.Record | None:
    """An active key (key_id, supplier_id, secret_enc), or None when unknown or revoked."""
    return await db.fetchrow(
        "SELECT key_id, supplier_id, secret_enc FROM supplier_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id)


async def upsert_supplier(conn: asyncpg.Connection, name: str) -> uuid.UUID:
    """The supplier named ``name``, created when new."""
    return await conn.fetchval(
        "INSERT INTO suppliers (id, name) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET name = $2 RETURNING id",
        uuid.uuid4(), name,
    )


async def lock_supplier(conn: asyncpg.Connection, supplier_id: uuid.UUID) -> None:
    await conn.execute("SELECT 1 FROM suppliers WHERE id = $1 FOR UPDATE", supplier_id)


async def count_active_keys(conn: asyncpg.Connection, supplier_id: uuid.UUID) -> int:
    return await conn.fetchval("SELECT count(*) FROM supplier_keys WHERE supplier_id = $1 AND revoked_at IS NULL",
                               supplier_id)


async def insert_key(conn: asyncpg.Connection, key_id: str, supplier_id: uuid.UUID, secret_enc: Any,
                     replaces: str | None = None) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO supplier_keys (key_id, supplier_id, secret_enc, replaces) VALUES ($1, $2, $3, $4)"
        f" RETURNING {_KEY_COLUMNS}", key_id, supplier_id, secret_enc, replaces)


async def revoke_key(conn: asyncpg.Connection, key_id: str) -> asyncpg.Record | None:
    """Revoke the key (a revoked key keeps its first revocation time); None when there is no such key."""
    return await conn.fetchrow(
        "UPDATE supplier_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1"
        f" RETURNING {_KEY_COLUMNS}", key_id)


async def claim_signature(db: Db, signature: str, key_id: str) -> bool:
    """Record a signature as used; False when it was used already (a replay)."""
    return bool(await db.fetchval(
        "INSERT INTO hmac_seen (signature, key_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        signature, key_id))


async def release_signature(db: Db, signature: str) -> None:
    await db.execute("DELETE FROM hmac_seen WHERE signature = $1", signature)


async def forget_signatures_older_than(db: Db, seconds: float) -> None:
    await db.execute("DELETE FROM hmac_seen WHERE seen_at < now() - make_interval(secs => $1::float8)", seconds)


# ---------------------------------------------------------------- victim devices

async def victim_device_case(db: Db, device_id: uuid.UUID, issued_at: float) -> uuid.UUID | None:
    """The case of an active victim app whose tokens issued at ``issued_at`` (UNIX seconds) still hold."""
    return await db.fetchval(
        "SELECT case_id FROM devices WHERE id = $1 AND role = 'victim_app' AND revoked_at IS NULL"
        " AND (tokens_revoked_at IS NULL OR tokens_revoked_at < to_timestamp($2))",
        device_id, issued_at,
    )
