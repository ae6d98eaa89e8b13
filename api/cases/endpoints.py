"""Cases: the reference, the parties, and the contact ban's distances. Orders, zones, devices and enrollments
of a case have their own routers (orders.py, zones.py, devices.py, enrollments.py)."""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg
from fastapi import APIRouter

from api.privacy import audit
from api.auth import need_to_know as access
from api.platform.problems import conflict, field_error, not_found
from api.cases.devices import endpoints as devices
from api.cases.enrollments import endpoints as enrollments
from api.cases.orders import endpoints as orders
from api.cases.zones import endpoints as zones
from api.cases.devices.endpoints import device_out
from api.cases.devices.repository import fetch_devices
from api.cases.orders.endpoints import order_out
from api.cases.orders.repository import fetch_orders
from api.cases.service import case_or_404, changed
from api.platform.staff_common import Ctx, Limit, ReadStaff, WriteStaff, decode_cursor, next_cursor
from api.cases.zones.endpoints import zone_out
from api.cases.zones.repository import fetch_zones
from api.cases.schemas import CaseCreate, CaseDetail, CaseOut, CasePage, CasePatch

router = APIRouter(prefix="/v1/cases", tags=["cases"])

_SELECT = """
SELECT c.id, c.reference, c.warn_m, c.alert_m, c.status, c.created_at,
       v.display_name AS victim_name, v.language AS victim_language, o.display_name AS offender_name
FROM cases c
JOIN parties v ON v.case_id = c.id AND v.role = 'victim'
JOIN parties o ON o.case_id = c.id AND o.role = 'offender'
"""


def case_out(row: asyncpg.Record) -> CaseOut:
    return CaseOut(
        id=row["id"],
        reference=row["reference"],
        proximity=_proximity(row["warn_m"], row["alert_m"]),
        victim={"display_name": row["victim_name"], "language": row["victim_language"]},
        offender={"display_name": row["offender_name"]},
        status=row["status"],
        created_at=row["created_at"],
    )


def _proximity(warn_m: float | None, alert_m: float | None) -> dict[str, float] | None:
    return None if warn_m is None else {"warn_m": warn_m, "alert_m": alert_m}


@router.post("", status_code=201, response_model=CaseOut)
async def create_case(body: CaseCreate, ctx: Ctx, staff: WriteStaff) -> CaseOut:
    cid = uuid.uuid4()
    warn, alert = (body.proximity.warn_m, body.proximity.alert_m) if body.proximity else (None, None)
    async with ctx.pool.acquire() as conn, conn.transaction():
        try:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO cases (id, reference, warn_m, alert_m, created_by) VALUES ($1, $2, $3, $4, $5)",
                    cid, body.reference, warn, alert, staff.actor,
                )
        except asyncpg.UniqueViolationError:
            raise conflict(f"a case with reference {body.reference} already exists") from None
        await conn.executemany(
            "INSERT INTO parties (id, case_id, role, display_name, language) VALUES ($1, $2, $3, $4, $5)",
            [(uuid.uuid4(), cid, "victim", body.victim.display_name, body.victim.language),
             (uuid.uuid4(), cid, "offender", body.offender.display_name, "nl")],
        )
        # Names stay out of the audit detail: the parties table is where personal data lives.
        await changed(conn, staff, "case.create", cid, {"reference": body.reference, "proximity": _proximity(warn, alert)})
        if staff.role == "case_director":  # the creator owns the case (need-to-know, api/auth/need_to_know.py)
            await access.grant(conn, cid, staff.sub, "case_director", by=staff.actor, reason="created the case")
        row = await conn.fetchrow(_SELECT + " WHERE c.id = $1", cid)
    return case_out(row)


@router.get("", response_model=CasePage)
async def list_cases(ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None,
                     status: Literal["active", "closed"] | None = None) -> CasePage:
    """Oldest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    after_at, after_id = decode_cursor(cursor)
    # Only the cases the caller may reach (need-to-know, api/auth/need_to_know.py); admin sees all.
    rows = await ctx.pool.fetch(
        _SELECT + " WHERE ($1::text IS NULL OR c.status = $1)"
        " AND ($2::timestamptz IS NULL OR (c.created_at, c.id) > ($2, $3))"
        " AND ($5 = 'admin' OR staff_may_reach(c.id, $6, $5, $7::float8)) ORDER BY c.created_at, c.id LIMIT $4",
        status, after_at, after_id, limit + 1, staff.role, staff.sub, ctx.settings.operator_grace_s,
    )
    await audit.record(ctx.pool, actor=staff.actor, role=staff.role, action="case.list",
                       detail={"cases": [str(r["id"]) for r in rows[:limit]]})
    return CasePage(items=[case_out(r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))


@router.get("/{case_id}", response_model=CaseDetail)
async def get_case(case_id: str, ctx: Ctx, staff: ReadStaff) -> CaseDetail:
    """The case with all its orders, zones and devices (with their last contact and battery)."""
    async with ctx.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        cid = await case_or_404(conn, case_id)
        row = await conn.fetchrow(_SELECT + " WHERE c.id = $1", cid)
        orders, zones, devices = await fetch_orders(conn, cid), await fetch_zones(conn, cid), await fetch_devices(conn, cid)
    # The victim's name and her zones are personal data: the read is audited before it is answered.
    await audit.record(ctx.pool, actor=staff.actor, role=staff.role, action="case.read", case_id=cid)
    return CaseDetail(
        **case_out(row).model_dump(),
        orders=[order_out(r) for r in orders],
        zones=[zone_out(r) for r in zones],
        devices=[device_out(r) for r in devices],
    )


@router.patch("/{case_id}", response_model=CaseOut)
async def update_case(case_id: str, body: CasePatch, ctx: Ctx, staff: WriteStaff) -> CaseOut:
    """Change the contact ban's distances; ``proximity: null`` lifts them. The engine reloads the case at once."""
    if "proximity" not in body.model_fields_set:
        raise field_error(["proximity"], "nothing to change: send proximity (null lifts the distances)")
    warn, alert = (body.proximity.warn_m, body.proximity.alert_m) if body.proximity else (None, None)
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id)
        before = await conn.fetchrow("SELECT warn_m, alert_m FROM cases WHERE id = $1 FOR UPDATE", cid)
        if before is None:
            raise not_found("case")
        await conn.execute("UPDATE cases SET warn_m = $2, alert_m = $3 WHERE id = $1", cid, warn, alert)
        await changed(conn, staff, "case.update", cid, {
            "proximity": {"from": _proximity(before["warn_m"], before["alert_m"]), "to": _proximity(warn, alert)},
        }, reason=body.reason)
        row = await conn.fetchrow(_SELECT + " WHERE c.id = $1", cid)
    return case_out(row)


# The per-case resources live under /v1/cases/{case_id}/…; mounting them here keeps app.py's router list short.
for _sub in (orders.router, zones.router, devices.router, enrollments.router):
    router.include_router(_sub)
