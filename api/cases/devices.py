"""Devices of a case: offender tags registered by staff, victim apps enrolled by code; both revocable."""

from __future__ import annotations

import uuid

import asyncpg
from fastapi import APIRouter

from api.platform.problems import conflict, field_error, not_found
from api.cases.service import case_or_404, changed
from api.platform.staff_common import Ctx, Limit, ReadStaff, WriteStaff, decode_cursor, next_cursor, parse_id
from api.cases.schemas import DeviceCreate, DeviceOut, DevicePage

router = APIRouter(tags=["devices"])  # mounted under /v1/cases by cases.py

# Never push_token, installation_id or refresh-token hashes: staff have no use for them.
# devices holds the supplier, not the key: the current (newest unrevoked) key stands in for it on reads.
_SELECT = """
SELECT d.id, d.case_id, d.role, d.serial, d.supplier_id, s.name AS supplier_name, d.platform, d.created_at,
       d.revoked_at, d.last_seen_at, d.last_battery_pct,
       (SELECT k.key_id FROM supplier_keys k WHERE k.supplier_id = d.supplier_id
        ORDER BY k.revoked_at IS NULL DESC, k.created_at DESC LIMIT 1) AS supplier_key_id
FROM devices d LEFT JOIN suppliers s ON s.id = d.supplier_id
"""


def device_out(row: asyncpg.Record, **override: object) -> DeviceOut:
    return DeviceOut(**{**dict(row), **override})


async def fetch_devices(conn: asyncpg.Connection, case_id: uuid.UUID, limit: int | None = None,
                        cursor: str | None = None) -> list[asyncpg.Record]:
    after_at, after_id = decode_cursor(cursor)
    return await conn.fetch(
        _SELECT + " WHERE d.case_id = $1 AND ($2::timestamptz IS NULL OR (d.created_at, d.id) > ($2, $3))"
        " ORDER BY d.created_at, d.id LIMIT $4",
        case_id, after_at, after_id, None if limit is None else limit + 1,
    )


def _serial_taken(serial: str) -> Exception:
    return conflict(f"serial {serial} is already active for this supplier; revoke that device first")


@router.post("/{case_id}/devices", status_code=201, response_model=DeviceOut)
async def register_device(case_id: str, body: DeviceCreate, ctx: Ctx, staff: WriteStaff) -> DeviceOut:
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        supplier_id = await conn.fetchval(
            "SELECT supplier_id FROM supplier_keys WHERE key_id = $1 AND revoked_at IS NULL", body.supplier_key_id
        )
        if supplier_id is None:
            raise field_error(["supplier_key_id"], "no active supplier key with this id")
        # Ingestion finds a device by (supplier, serial): two active devices with one serial would be ambiguous.
        if await conn.fetchval(
            "SELECT 1 FROM devices WHERE supplier_id = $1 AND serial = $2 AND role = 'offender_tag' AND revoked_at IS NULL",
            supplier_id, body.serial,
        ):
            raise _serial_taken(body.serial)
        device_id = uuid.uuid4()
        try:
            async with conn.transaction():  # savepoint: a racing registration loses on the unique index
                await conn.execute(
                    "INSERT INTO devices (id, case_id, role, supplier_id, serial) VALUES ($1, $2, $3, $4, $5)",
                    device_id, cid, body.role, supplier_id, body.serial,
                )
        except asyncpg.UniqueViolationError:
            raise _serial_taken(body.serial) from None
        await changed(conn, staff, "device.register", cid, {
            "device_id": str(device_id), "role": body.role, "serial": body.serial,
            "supplier_key_id": body.supplier_key_id,
        })
        row = await conn.fetchrow(_SELECT + " WHERE d.id = $1", device_id)
    return device_out(row, supplier_key_id=body.supplier_key_id)


@router.get("/{case_id}/devices", response_model=DevicePage)
async def list_devices(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100,
                       cursor: str | None = None) -> DevicePage:
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        rows = await fetch_devices(conn, cid, limit, cursor)
    return DevicePage(items=[device_out(r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))


@router.post("/{case_id}/devices/{device_id}/revoke", response_model=DeviceOut)
async def revoke_device(case_id: str, device_id: str, ctx: Ctx, staff: WriteStaff) -> DeviceOut:
    """Take a device out of the case at once. Victim-app tokens die with it (auth checks ``revoked_at`` on every
    request) and its refresh token is wiped. Revoking twice is a no-op, so a retried request is safe."""
    did = parse_id(device_id, "device")
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        current = await conn.fetchrow(
            "SELECT role, serial, revoked_at FROM devices WHERE id = $1 AND case_id = $2 FOR UPDATE", did, cid
        )
        if current is None:
            raise not_found("device")
        if current["revoked_at"] is None:
            await conn.execute(
                "UPDATE devices SET revoked_at = now(), refresh_token_hash = NULL, refresh_expires_at = NULL"
                " WHERE id = $1",
                did,
            )
            await changed(conn, staff, "device.revoke", cid, {
                "device_id": str(did), "role": current["role"], "serial": current["serial"],
            })
        row = await conn.fetchrow(_SELECT + " WHERE d.id = $1", did)
    return device_out(row)
