"""Device use cases: register an offender tag, list a case's devices, revoke a device."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from api.auth.principals import Staff
from api.cases.devices import repository
from api.cases.devices.schemas import DeviceCreate
from api.cases.service import case_or_404, changed, locked_part_or_404, page_of_parts
from api.platform import secrets
from api.platform.problems import conflict, field_error
from api.platform.settings import Settings
from api.platform.staff_common import decode_cursor, parse_id


def _serial_taken(serial: str) -> Exception:
    return conflict(f"serial {serial} is already active for this supplier; revoke that device first")


async def register_device(pool: asyncpg.Pool, key: bytes, staff: Staff, case_id: str,
                          body: DeviceCreate) -> asyncpg.Record:
    """``key`` is the server key: a tag's Bluetooth key is stored encrypted with it, as supplier secrets are."""
    ble_key_enc = None if body.ble_key is None else secrets.encrypt(key, body.ble_key.lower(), secrets.BLE_KEYS)
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        supplier_id = await repository.active_supplier(conn, body.supplier_key_id)
        if supplier_id is None:
            raise field_error(["supplier_key_id"], "no active supplier key with this id")
        # Ingestion finds a device by (supplier, serial): two active devices with one serial would be ambiguous.
        if await repository.serial_active(conn, supplier_id, body.serial):
            raise _serial_taken(body.serial)
        device_id = uuid.uuid4()
        try:
            async with conn.transaction():  # savepoint: a racing registration loses on the unique index
                await repository.insert_device(conn, device_id, cid, body.role, supplier_id, body.serial,
                                               ble_key_enc)
        except asyncpg.UniqueViolationError:
            raise _serial_taken(body.serial) from None
        await changed(conn, staff, "device.register", cid, {
            "device_id": str(device_id), "role": body.role, "serial": body.serial,
            "supplier_key_id": body.supplier_key_id, "ble_key_set": body.ble_key is not None,
        })
        return await repository.fetch_device(conn, device_id)


async def list_devices(pool: asyncpg.Pool, case_id: str, limit: int, cursor: str | None) -> list[asyncpg.Record]:
    return await page_of_parts(pool, case_id, repository.fetch_devices, limit, cursor)


async def revoke_device(pool: asyncpg.Pool, staff: Staff, case_id: str, device_id: str) -> asyncpg.Record:
    """Revoking twice is a no-op, so a retried request is safe."""
    did = parse_id(device_id, "device")
    async with pool.acquire() as conn, conn.transaction():
        cid, current = await locked_part_or_404(conn, case_id, did, "device", repository.lock_device)
        if current["revoked_at"] is None:
            await repository.revoke(conn, did)
            await changed(conn, staff, "device.revoke", cid, {
                "device_id": str(did), "role": current["role"], "serial": current["serial"],
            })
        return await repository.fetch_device(conn, did)


async def needing_attention(pool: asyncpg.Pool, settings: Settings, staff: Staff, now: datetime,
                            battery_below_pct: float, limit: int, cursor: str | None) -> list[asyncpg.Record]:
    """Silent, low or tampered devices on the cases ``staff`` may reach; silence is judged by the same limits the
    engine raises its silence alerts at, so the list and the alerts agree."""
    after_at, after_id = decode_cursor(cursor)
    async with pool.acquire() as conn:
        return await repository.needing_attention(
            conn, now, settings.offender_silent_s, settings.victim_silent_s, battery_below_pct, staff.sub, staff.role,
            settings.operator_grace_s, after_at, after_id, limit)
