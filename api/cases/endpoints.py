"""Cases: the reference, the parties, and the contact ban's distances. Orders, zones, devices and enrollments
of a case have their own sub-domains (api/cases/orders, zones, devices, enrollments), mounted here."""

from __future__ import annotations

from typing import Literal

import asyncpg
from fastapi import APIRouter

from api.cases import service
from api.cases.devices import endpoints as devices
from api.cases.enrollments import endpoints as enrollments
from api.cases.orders import endpoints as orders
from api.cases.schemas import CaseCreate, CaseDetail, CaseOut, CasePage, CasePatch
from api.cases.zones import endpoints as zones
from api.platform.problems import field_error
from api.platform.staff_common import Ctx, Limit, ReadStaff, WriteStaff, decode_cursor, next_cursor

router = APIRouter(prefix="/v1/cases", tags=["cases"])


def case_out(row: asyncpg.Record) -> CaseOut:
    return CaseOut(
        id=row["id"],
        reference=row["reference"],
        proximity=service.proximity_json(row["warn_m"], row["alert_m"]),
        victim={"display_name": row["victim_name"], "language": row["victim_language"]},
        offender={"display_name": row["offender_name"]},
        status=row["status"],
        created_at=row["created_at"],
    )


@router.post("", status_code=201, response_model=CaseOut)
async def create_case(body: CaseCreate, ctx: Ctx, staff: WriteStaff) -> CaseOut:
    return case_out(await service.create_case(ctx.pool, staff, body))


@router.get("", response_model=CasePage)
async def list_cases(ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None,
                     status: Literal["active", "closed"] | None = None) -> CasePage:
    """Oldest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    after_at, after_id = decode_cursor(cursor)
    rows = await service.list_cases(ctx.pool, staff, status=status, after_at=after_at, after_id=after_id,
                                    limit=limit, operator_grace_s=ctx.settings.operator_grace_s)
    return CasePage(items=[case_out(r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))


@router.get("/{case_id}", response_model=CaseDetail)
async def get_case(case_id: str, ctx: Ctx, staff: ReadStaff) -> CaseDetail:
    """The case with all its orders, zones and devices (with their last contact and battery)."""
    row, order_rows, zone_rows, device_rows = await service.read_case(ctx.pool, staff, case_id)
    return CaseDetail(
        **case_out(row).model_dump(),
        orders=[orders.order_out(r) for r in order_rows],
        zones=[zones.zone_out(r) for r in zone_rows],
        devices=[devices.device_out(r) for r in device_rows],
    )


@router.patch("/{case_id}", response_model=CaseOut)
async def update_case(case_id: str, body: CasePatch, ctx: Ctx, staff: WriteStaff) -> CaseOut:
    """Change the contact ban's distances; ``proximity: null`` lifts them. The engine reloads the case at once."""
    if "proximity" not in body.model_fields_set:
        raise field_error(["proximity"], "nothing to change: send proximity (null lifts the distances)")
    return case_out(await service.set_proximity(ctx.pool, staff, case_id, body.proximity, body.reason))


# The per-case resources live under /v1/cases/{case_id}/…; mounting them here keeps app.py's router list short.
for _sub in (orders.router, zones.router, devices.router, enrollments.router):
    router.include_router(_sub)
