"""Zones of a case (mounted under /v1/cases by api/cases/endpoints.py)."""

from __future__ import annotations

import asyncpg
from fastapi import APIRouter, Response

from api.cases.zones.schemas import ZoneCreate, ZoneOut, ZonePage
from api.cases.zones import service
from api.platform.staff_common import Ctx, Limit, ReadStaff, WriteStaff, next_cursor

router = APIRouter(tags=["zones"])


def zone_out(row: asyncpg.Record) -> ZoneOut:
    return ZoneOut(**dict(row))


@router.post("/{case_id}/zones", status_code=201, response_model=ZoneOut)
async def create_zone(case_id: str, body: ZoneCreate, ctx: Ctx, staff: WriteStaff) -> ZoneOut:
    return zone_out(await service.create_zone(ctx.pool, ctx.settings, staff, case_id, body))


@router.get("/{case_id}/zones", response_model=ZonePage)
async def list_zones(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None) -> ZonePage:
    rows = await service.list_zones(ctx.pool, case_id, limit, cursor)
    return ZonePage(items=[zone_out(r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))


@router.delete("/{case_id}/zones/{zone_id}", status_code=204)
async def delete_zone(case_id: str, zone_id: str, ctx: Ctx, staff: WriteStaff) -> Response:
    """Remove a zone entered by mistake. A zone that has raised an alert is evidence of what was enforced
    when it fired, so it stays (409); end its order instead."""
    await service.delete_zone(ctx.pool, staff, case_id, zone_id)
    return Response(status_code=204)
