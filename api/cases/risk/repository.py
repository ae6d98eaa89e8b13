"""All SQL of risk screenings."""

from __future__ import annotations

import uuid
from datetime import date

import asyncpg

_SELECT = """
SELECT r.id, r.case_id, r.level, r.screened_on, r.assessor_id, s.display_name AS assessor_name, r.notes, r.created_at
FROM risk_screenings r JOIN staff_members s ON s.id = r.assessor_id
"""


async def assessor(conn: asyncpg.Connection, sub: str) -> asyncpg.Record | None:
    """The staff member behind a login, with whether they may screen (active, SASH-trained)."""
    return await conn.fetchrow("SELECT id, active, sash_trained FROM staff_members WHERE sub = $1", sub)


async def insert_screening(conn: asyncpg.Connection, case_id: uuid.UUID, level: str, screened_on: date,
                           assessor_id: uuid.UUID, notes: str | None) -> uuid.UUID:
    return await conn.fetchval(
        "INSERT INTO risk_screenings (id, case_id, level, screened_on, assessor_id, notes)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id", uuid.uuid4(), case_id, level, screened_on, assessor_id, notes)


async def fetch_screening(conn: asyncpg.Connection, screening_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(_SELECT + " WHERE r.id = $1", screening_id)


async def fetch_screenings(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    """Newest screening first."""
    return await conn.fetch(_SELECT + " WHERE r.case_id = $1 ORDER BY r.screened_on DESC, r.created_at DESC", case_id)
