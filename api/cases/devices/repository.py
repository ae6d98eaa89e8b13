"""All SQL of the staff side of devices."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

# Never push_token, installation_id or refresh-token hashes: staff have no use for them.
# devices holds the supplier, not the key: the current (newest unrevoked) key stands in for it on reads.
_SELECT = """
SELECT d.id, d.case_id, d.role, d.serial, d.supplier_id, s.name AS supplier_name, d.platform, d.created_at,
       d.revoked_at, d.last_seen_at, d.last_battery_pct, d.ble_key_enc IS NOT NULL AS ble_key_set,
       (SELECT k.key_id FROM supplier_keys k WHERE k.supplier_id = d.supplier_id
        ORDER BY k.revoked_at IS NULL DESC, k.created_at DESC LIMIT 1) AS supplier_key_id
FROM devices d LEFT JOIN suppliers s ON s.id = d.supplier_id
"""


async def fetch_devices(conn: asyncpg.Connection, case_id: uuid.UUID, limit: int | None = None,
                        after_at: datetime | None = None, after_id: uuid.UUID | None = None) -> list[asyncpg.Record]:
    """Oldest first; with a ``limit``, ``limit + 1`` rows after the (created_at, id) a page ended at."""
    return await conn.fetch(
        _SELECT + " WHERE d.case_id = $1 AND ($2::timestamptz IS NULL OR (d.created_at, d.id) > ($2, $3))"
        " ORDER BY d.created_at, d.id LIMIT $4",
        case_id, after_at, after_id, None if limit is None else limit + 1,
    )


async def fetch_device(conn: asyncpg.Connection, device_id: uuid.UUID) -> asyncpg.Record:
    return await conn.fetchrow(_SELECT + " WHERE d.id = $1", device_id)


async def active_supplier(conn: asyncpg.Connection, key_id: str) -> uuid.UUID | None:
    return await conn.fetchval("SELECT supplier_id FROM supplier_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id)


async def serial_active(conn: asyncpg.Connection, supplier_id: uuid.UUID, serial: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT 1 FROM devices WHERE supplier_id = $1 AND serial = $2 AND role = 'offender_tag' AND revoked_at IS NULL",
        supplier_id, serial,
    ))


async def insert_device(conn: asyncpg.Connection, device_id: uuid.UUID, case_id: uuid.UUID, role: str,
                        supplier_id: uuid.UUID, serial: str, ble_key_enc: bytes | None = None) -> None:
    await conn.execute(
        "INSERT INTO devices (id, case_id, role, supplier_id, serial, ble_key_enc) VALUES ($1, $2, $3, $4, $5, $6)",
        device_id, case_id, role, supplier_id, serial, ble_key_enc,
    )


async def lock_device(conn: asyncpg.Connection, device_id: uuid.UUID, case_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT role, serial, revoked_at FROM devices WHERE id = $1 AND case_id = $2 FOR UPDATE", device_id, case_id
    )


async def revoke(conn: asyncpg.Connection, device_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE devices SET revoked_at = now(), refresh_token_hash = NULL, refresh_expires_at = NULL WHERE id = $1",
        device_id,
    )
