"""All SQL of zones."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

_COLUMNS = "id, case_id, order_id, name, kind, geometry, buffer_m, schedule, created_at, created_by, findings"


async def fetch_zones(conn: asyncpg.Connection, case_id: uuid.UUID, limit: int | None = None,
                      after_at: datetime | None = None, after_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
    """Oldest first; with a ``limit``, ``limit + 1`` rows after the (created_at, id) a page ended at."""
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM zones WHERE case_id = $1"
        " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4",
        case_id, after_at, after_id, None if limit is None else limit + 1,
    )


async def fetch_zone_shapes(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    """What the feasibility check needs of each stored zone, oldest first."""
    return await conn.fetch("SELECT id, name, kind, geometry, buffer_m, schedule FROM zones"
                            " WHERE case_id = $1 ORDER BY created_at, id", case_id)


async def insert_zone(conn: asyncpg.Connection, zone_id: uuid.UUID, case_id: uuid.UUID, order_id: uuid.UUID,
                      name: str, kind: str, geometry: dict[str, Any], buffer_m: float,
                      schedule: dict[str, Any] | None, created_by: str,
                      findings: list[dict[str, Any]]) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO zones (id, case_id, order_id, name, kind, geometry, buffer_m, schedule, created_by, findings)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_COLUMNS}",
        zone_id, case_id, order_id, name, kind, geometry, buffer_m, schedule, created_by, findings,
    )


async def lock_zone(conn: asyncpg.Connection, zone_id: uuid.UUID, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT name, kind FROM zones WHERE id = $1 AND case_id = $2 FOR UPDATE", zone_id, case_id)


async def has_alerts(conn: asyncpg.Connection, zone_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM alerts WHERE zone_id = $1)", zone_id))


async def delete_zone(conn: asyncpg.Connection, zone_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM zones WHERE id = $1", zone_id)
