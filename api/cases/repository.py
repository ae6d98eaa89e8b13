"""All SQL of the case itself: the case row and its parties, and the wake-up that makes the engine reload a case."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg


_SELECT = """
SELECT c.id, c.reference, c.warn_m, c.alert_m, c.status, c.created_at,
       v.display_name AS victim_name, v.language AS victim_language, o.display_name AS offender_name
FROM cases c
JOIN parties v ON v.case_id = c.id AND v.role = 'victim'
JOIN parties o ON o.case_id = c.id AND o.role = 'offender'
"""


async def case_exists(conn: asyncpg.Connection, case_id: uuid.UUID, *, lock: bool = False) -> bool:
    # FOR SHARE: a change to a case's orders/zones/devices must not interleave with a change of the case itself.
    sql = "SELECT id FROM cases WHERE id = $1" + (" FOR SHARE" if lock else "")
    return await conn.fetchval(sql, case_id) is not None


async def insert_case(conn: asyncpg.Connection, case_id: uuid.UUID, reference: str, warn_m: float | None,
                      alert_m: float | None, created_by: str) -> None:
    await conn.execute(
        "INSERT INTO cases (id, reference, warn_m, alert_m, created_by) VALUES ($1, $2, $3, $4, $5)",
        case_id, reference, warn_m, alert_m, created_by,
    )


async def insert_parties(conn: asyncpg.Connection, case_id: uuid.UUID, victim_name: str, victim_language: str,
                         offender_name: str) -> None:
    await conn.executemany(
        "INSERT INTO parties (id, case_id, role, display_name, language) VALUES ($1, $2, $3, $4, $5)",
        [(uuid.uuid4(), case_id, "victim", victim_name, victim_language),
         (uuid.uuid4(), case_id, "offender", offender_name, "nl")],
    )


async def fetch_case(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_SELECT + " WHERE c.id = $1", case_id)


async def fetch_reachable_cases(conn: asyncpg.Connection | asyncpg.Pool, *, status: str | None,
                                after_at: datetime | None, after_id: uuid.UUID | None, limit: int, role: str, sub: str,
                                operator_grace_s: float) -> list[asyncpg.Record]:
    """Oldest first, ``limit + 1`` rows; only the cases the caller may reach (need-to-know); admin sees all."""
    return await conn.fetch(
        _SELECT + " WHERE ($1::text IS NULL OR c.status = $1)"
        " AND ($2::timestamptz IS NULL OR (c.created_at, c.id) > ($2, $3))"
        " AND ($5 = 'admin' OR staff_may_reach(c.id, $6, $5, $7::float8)) ORDER BY c.created_at, c.id LIMIT $4",
        status, after_at, after_id, limit + 1, role, sub, operator_grace_s,
    )


async def lock_distances(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT warn_m, alert_m FROM cases WHERE id = $1 FOR UPDATE", case_id)


async def fetch_distances(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT warn_m, alert_m FROM cases WHERE id = $1", case_id)


async def set_distances(conn: asyncpg.Connection, case_id: uuid.UUID, warn_m: float | None,
                        alert_m: float | None) -> None:
    await conn.execute("UPDATE cases SET warn_m = $2, alert_m = $3 WHERE id = $1", case_id, warn_m, alert_m)


async def victim_exists(conn: asyncpg.Connection, case_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM parties WHERE case_id = $1 AND role = 'victim')",
                                    case_id))
