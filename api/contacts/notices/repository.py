"""The SQL of notices: ``victim_notices``, ``staff_notices`` and the reads that decide who is told."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg


async def victim_language(conn: asyncpg.Connection | asyncpg.Pool, case_id: Any) -> str | None:
    return await conn.fetchval("SELECT language FROM parties WHERE case_id = $1 AND role = 'victim'", case_id)


async def delivery_settings(conn: asyncpg.Connection, case_id: uuid.UUID) -> asyncpg.Record:
    """The case's notification policy and the victim's preferences (both may be null)."""
    return await conn.fetchrow(
        "SELECT np.policy, vp.channel, vp.quiet_start, vp.quiet_end, vp.update_frequency FROM cases c"
        " LEFT JOIN notification_policies np ON np.case_id = c.id LEFT JOIN victim_preferences vp ON vp.case_id = c.id"
        " WHERE c.id = $1", case_id)


async def last_update_push(conn: asyncpg.Connection, case_id: uuid.UUID) -> datetime | None:
    return await conn.fetchval(
        "SELECT max(o.next_attempt_at) FROM victim_notices n JOIN outbox o ON o.message_key = n.id"
        " WHERE n.case_id = $1 AND n.urgency = 'update' AND o.channel = 'push'", case_id)


async def insert_victim_notice(conn: asyncpg.Connection, case_id: uuid.UUID, kind: str, key: str, language: str,
                               title: str, body: str, urgency: str) -> uuid.UUID | None:
    """None when a notice with this dedupe key exists already."""
    return await conn.fetchval(
        "INSERT INTO victim_notices (id, case_id, kind, dedupe_key, language, title, body, urgency)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        uuid.uuid4(), case_id, kind, key, language, title, body, urgency)


async def set_victim_notice_push(conn: asyncpg.Connection, notice_id: uuid.UUID, status: str, why: str | None) -> None:
    await conn.execute("UPDATE victim_notices SET push_status = $2, push_detail = $3 WHERE id = $1",
                       notice_id, status, why)


async def fetch_victim_notices(conn: asyncpg.Connection | asyncpg.Pool, case_id: Any, limit: int,
                               before_at: datetime | None, before_id: uuid.UUID | None) -> list[asyncpg.Record]:
    """Newest first, keyset on (created_at, id), ``limit + 1`` rows."""
    return await conn.fetch(
        "SELECT id, kind, title, body, created_at, urgency, push_status, push_detail FROM victim_notices"
        " WHERE case_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))"
        " ORDER BY created_at DESC, id DESC LIMIT $4", case_id, before_at, before_id, limit + 1)


async def departed_director_agency(conn: asyncpg.Connection, case_id: uuid.UUID) -> str | None:
    """The agency of the case director who left most recently, if any."""
    return await conn.fetchval(
        "SELECT a.agency FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id WHERE a.case_id = $1"
        " AND a.function = 'case_director' AND (a.ended_at IS NOT NULL OR NOT s.active)"
        " ORDER BY coalesce(a.ended_at, s.deactivated_at) DESC NULLS LAST LIMIT 1", case_id)


async def active_holders(conn: asyncpg.Connection, case_id: uuid.UUID, function: str) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT a.staff_id FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id"
        " WHERE a.case_id = $1 AND a.function = $2 AND a.ended_at IS NULL AND s.active", case_id, function)
    return [r["staff_id"] for r in rows]


async def insert_staff_notice(conn: asyncpg.Connection, staff_id: uuid.UUID | None, case_id: uuid.UUID | None,
                              kind: str, dedupe_key: str, payload: dict[str, Any],
                              agency: str | None) -> uuid.UUID | None:
    """None when a notice with this dedupe key exists already."""
    return await conn.fetchval(
        "INSERT INTO staff_notices (id, staff_id, case_id, kind, dedupe_key, payload, agency)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        uuid.uuid4(), staff_id, case_id, kind, dedupe_key, payload, agency)


async def webhook_names(conn: asyncpg.Connection, staff_id: uuid.UUID | None,
                        case_id: uuid.UUID | None) -> asyncpg.Record:
    """The staff member's token subject and the case reference a staff webhook carries."""
    return await conn.fetchrow(
        "SELECT (SELECT sub FROM staff_members WHERE id = $1) AS sub,"
        " (SELECT reference FROM cases WHERE id = $2) AS reference", staff_id, case_id)


async def mark_staff_notice_enqueued(conn: asyncpg.Connection, notice_id: uuid.UUID) -> None:
    await conn.execute("UPDATE staff_notices SET delivery = 'enqueued' WHERE id = $1", notice_id)
