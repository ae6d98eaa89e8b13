"""All SQL of the timeline: ``timeline_events``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

EVENT_COLUMNS = "id, case_id, kind, visibility, occurred_at, note, detail, created_at, created_by"


async def insert_event(conn: asyncpg.Connection, case_id: uuid.UUID, kind: str, *, visibility: str, actor: str,
                       occurred_at: datetime, note: str | None, detail: dict[str, Any]) -> asyncpg.Record:
    return await conn.fetchrow(
        f"INSERT INTO timeline_events (id, case_id, kind, visibility, occurred_at, note, detail, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {EVENT_COLUMNS}",
        uuid.uuid4(), case_id, kind, visibility, occurred_at, note, detail, actor,
    )


async def fetch_events(conn: asyncpg.Connection | asyncpg.Pool, case_id: uuid.UUID, limit: int,
                       before_at: datetime | None, before_id: uuid.UUID | None, *,
                       victim_only: bool) -> list[asyncpg.Record]:
    """Newest first, ``limit + 1`` rows, strictly before the (occurred_at, id) a page ended at."""
    return await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM timeline_events WHERE case_id = $1"
        " AND (NOT $2 OR visibility = 'victim')"
        " AND ($3::timestamptz IS NULL OR (occurred_at, id) < ($3, $4))"
        " ORDER BY occurred_at DESC, id DESC LIMIT $5",
        case_id, victim_only, before_at, before_id, limit + 1,
    )
