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


async def needing_attention(conn: asyncpg.Connection, now: datetime, offender_silent_s: float, victim_silent_s: float,
                            battery_below_pct: float, viewer_sub: str, viewer_role: str, grace_s: float,
                            after_at: datetime | None, after_id: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    """Active devices of active cases the viewer may reach that are silent (never seen, or not for longer than the
    engine's silence limit of their role), low on battery, or have an open device alert (tamper, battery, GPS,
    offline): oldest device first, ``limit + 1`` rows."""
    return await conn.fetch(
        "SELECT x.*, c.reference AS case_reference FROM ("
        " SELECT f.*, (f.last_seen_at IS NULL OR f.last_seen_at < $1::timestamptz - make_interval(secs =>"
        "   CASE WHEN f.role = 'offender_tag' THEN $2::float8 ELSE $3::float8 END)) AS silent,"
        "  (f.last_battery_pct IS NOT NULL AND f.last_battery_pct < $4) AS battery_low,"
        "  ARRAY(SELECT DISTINCT a.detail->>'family' FROM alerts a WHERE a.device_id = f.id"
        "   AND a.kind = 'device_event' AND a.status <> 'resolved' ORDER BY 1) AS open_alerts"
        " FROM (" + _SELECT + " WHERE d.revoked_at IS NULL) f) x"
        " JOIN cases c ON c.id = x.case_id"
        " WHERE c.status = 'active' AND (x.silent OR x.battery_low OR cardinality(x.open_alerts) > 0)"
        " AND ($6 = 'admin' OR staff_may_reach(x.case_id, $5, $6, $7::float8))"
        " AND ($8::timestamptz IS NULL OR (x.created_at, x.id) > ($8, $9::uuid))"
        " ORDER BY x.created_at, x.id LIMIT $10",
        now, offender_silent_s, victim_silent_s, battery_below_pct, viewer_sub, viewer_role, grace_s,
        after_at, after_id, limit + 1)
