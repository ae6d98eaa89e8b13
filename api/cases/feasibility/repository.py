"""All SQL of feasibility: the parties' known addresses (``case_addresses``)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg


async def stored_addresses(conn: asyncpg.Connection, case_id: uuid.UUID) -> dict[str, Any]:
    return await conn.fetchval("SELECT addresses FROM case_addresses WHERE case_id = $1", case_id) or {}


async def put_addresses(conn: asyncpg.Connection, case_id: uuid.UUID, addresses: dict[str, Any], by: str) -> None:
    await conn.execute(
        "INSERT INTO case_addresses (case_id, addresses, updated_by) VALUES ($1, $2, $3)"
        " ON CONFLICT (case_id) DO UPDATE SET addresses = $2, updated_by = $3, updated_at = now()",
        case_id, addresses, by)
