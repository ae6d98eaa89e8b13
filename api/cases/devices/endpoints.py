"""Devices of a case (mounted under /v1/cases by api/cases/endpoints.py)."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import APIRouter, Query

from api.cases.devices import service
from api.cases.devices.schemas import AttentionDevice, AttentionPage, DeviceCreate, DeviceOut, DevicePage
from api.platform.staff_common import Ctx, Limit, ReadStaff, WriteStaff, next_cursor

router = APIRouter(tags=["devices"])
worklist_router = APIRouter(prefix="/v1/devices", tags=["devices"])


def device_out(row: asyncpg.Record, **override: object) -> DeviceOut:
    return DeviceOut(**{**dict(row), **override})


@router.post("/{case_id}/devices", status_code=201, response_model=DeviceOut)
async def register_device(case_id: str, body: DeviceCreate, ctx: Ctx, staff: WriteStaff) -> DeviceOut:
    row = await service.register_device(ctx.pool, ctx.key, staff, case_id, body)
    return device_out(row, supplier_key_id=body.supplier_key_id)


@router.get("/{case_id}/devices", response_model=DevicePage)
async def list_devices(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100,
                       cursor: str | None = None) -> DevicePage:
    rows = await service.list_devices(ctx.pool, case_id, limit, cursor)
    return DevicePage(items=[device_out(r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))


@router.post("/{case_id}/devices/{device_id}/revoke", response_model=DeviceOut)
async def revoke_device(case_id: str, device_id: str, ctx: Ctx, staff: WriteStaff) -> DeviceOut:
    """Take a device out of the case at once. Victim-app tokens die with it (auth checks ``revoked_at`` on every
    request) and its refresh token is wiped. Revoking twice is a no-op, so a retried request is safe."""
    return device_out(await service.revoke_device(ctx.pool, staff, case_id, device_id))


@worklist_router.get("/attention", response_model=AttentionPage)
async def devices_needing_attention(ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None,
                                    battery_below_pct: Annotated[float, Query(gt=0, le=100)] = 20) -> AttentionPage:
    """Work list: active devices on cases the caller may reach that are silent, below ``battery_below_pct`` or
    have an open device alert (tamper, battery, GPS, offline), oldest device first. No positions."""
    rows = await service.needing_attention(ctx.pool, ctx.settings, staff, ctx.clock.now(), battery_below_pct,
                                           limit, cursor)
    return AttentionPage(items=[AttentionDevice(**dict(r)) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))
