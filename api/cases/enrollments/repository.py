"""All SQL of issuing enrollment codes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg


async def expire_unused(conn: asyncpg.Connection, case_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE enrollments SET expires_at = now() WHERE case_id = $1 AND used_at IS NULL AND expires_at > now()",
        case_id,
    )


async def insert_code(conn: asyncpg.Connection, lookup: str, secret_hash: str, case_id: uuid.UUID, ttl: timedelta,
                      created_by: str) -> datetime:
    """The code's expiry; raises UniqueViolationError when the lookup is taken."""
    return await conn.fetchval(
        "INSERT INTO enrollments (lookup, secret_hash, case_id, expires_at, created_by)"
        " VALUES ($1, $2, $3, now() + $4::interval, $5) RETURNING expires_at",
        lookup, secret_hash, case_id, ttl, created_by,
    )
