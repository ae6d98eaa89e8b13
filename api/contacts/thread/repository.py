"""The SQL of the thread: ``case_messages``."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

_SELECT = """
SELECT m.id, m.case_id, m.sender, m.author, s.agency, m.body, m.created_at, m.read_by_victim_at, m.read_by_staff_at,
       m.push_status, m.push_detail, m.message_key
FROM case_messages m LEFT JOIN staff_members s ON s.id = m.staff_id
"""


async def page(conn: asyncpg.Connection | asyncpg.Pool, case_id: uuid.UUID, limit: int,
               after_at: datetime | None, after_id: uuid.UUID | None) -> list[asyncpg.Record]:
    """Oldest first, keyset on (created_at, id), ``limit + 1`` rows."""
    return await conn.fetch(
        _SELECT + " WHERE m.case_id = $1 AND ($2::timestamptz IS NULL OR (m.created_at, m.id) > ($2, $3))"
        " ORDER BY m.created_at, m.id LIMIT $4", case_id, after_at, after_id, limit + 1)


async def one(conn: asyncpg.Connection, message_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(_SELECT + " WHERE m.id = $1", message_id)


async def insert_from_victim(conn: asyncpg.Connection, case_id: uuid.UUID, body: str) -> uuid.UUID:
    return await conn.fetchval(
        "INSERT INTO case_messages (id, case_id, sender, author, body) VALUES ($1, $2, 'victim', 'victim', $3)"
        " RETURNING id", uuid.uuid4(), case_id, body)


async def insert_from_staff(conn: asyncpg.Connection, message_id: uuid.UUID, case_id: uuid.UUID,
                            staff_id: uuid.UUID, author: str, body: str) -> None:
    """A staff message waits for its push decision (``pending``); its id is its outbox message key."""
    await conn.execute(
        "INSERT INTO case_messages (id, case_id, sender, staff_id, author, body, push_status, message_key)"
        " VALUES ($1, $2, 'staff', $3, $4, $5, 'pending', $1)", message_id, case_id, staff_id, author, body)


async def enqueued(conn: asyncpg.Connection, message_key: uuid.UUID) -> bool:
    """Whether the outbox holds anything under this message key (read only: notifications/outbox.py writes it)."""
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox WHERE message_key = $1)", message_key)


async def insert_from_monitoring_room(conn: asyncpg.Connection, case_id: uuid.UUID, alert_id: uuid.UUID,
                                      author: str, body: str, push_status: str, push_detail: str | None,
                                      message_key: uuid.UUID) -> None:
    await conn.execute(
        "INSERT INTO case_messages (id, case_id, sender, author, body, push_status, push_detail, message_key,"
        " alert_id) VALUES ($1, $2, 'staff', $3, $4, $5, $6, $7, $8)",
        uuid.uuid4(), case_id, author, body, push_status, push_detail, message_key, alert_id)


async def set_push(conn: asyncpg.Connection, message_id: uuid.UUID, status: str, why: str | None) -> None:
    await conn.execute("UPDATE case_messages SET push_status = $2, push_detail = $3 WHERE id = $1",
                       message_id, status, why)


async def created_at(conn: asyncpg.Connection, case_id: uuid.UUID, message_id: uuid.UUID,
                     sender: str) -> datetime | None:
    return await conn.fetchval("SELECT created_at FROM case_messages WHERE id = $1 AND case_id = $2 AND sender = $3",
                               message_id, case_id, sender)


async def mark_read_by_victim(conn: asyncpg.Connection, case_id: uuid.UUID, upto: datetime) -> None:
    await conn.execute("UPDATE case_messages SET read_by_victim_at = now() WHERE case_id = $1 AND sender = 'staff'"
                       " AND read_by_victim_at IS NULL AND created_at <= $2", case_id, upto)


async def mark_read_by_staff(conn: asyncpg.Connection, case_id: uuid.UUID, upto: datetime, reader: str) -> None:
    await conn.execute("UPDATE case_messages SET read_by_staff_at = now(), read_by_staff = $3 WHERE case_id = $1"
                       " AND sender = 'victim' AND read_by_staff_at IS NULL AND created_at <= $2",
                       case_id, upto, reader)
