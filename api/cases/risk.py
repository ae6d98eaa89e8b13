"""SASH stalking risk screening: level, date, assessor. Only a registered, active staff member marked as trained
may record one. Each screening proposes default contact-ban distances for its level; staff decide and set the
case's distances themselves (``PATCH /v1/cases/{case_id}``), so the proposal never changes enforcement silently."""

from __future__ import annotations

import uuid
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends

from api.privacy import audit
from api.auth.principals import Staff, require_staff
from api.platform.problems import Problem
from api.cases.service import case_or_404
from api.platform.staff_common import Ctx, ReadStaff
from api.contacts.schemas import RISK_PROXIMITY, ProposedProximity, RiskIn, RiskList, RiskOut

router = APIRouter(prefix="/v1/cases", tags=["risk screening"])

AssessStaff = Annotated[Staff, Depends(require_staff("case_director", "contact_person"))]

_SELECT = """
SELECT r.id, r.case_id, r.level, r.screened_on, r.assessor_id, s.display_name AS assessor_name, r.notes, r.created_at
FROM risk_screenings r JOIN staff_members s ON s.id = r.assessor_id
"""


def risk_out(row: asyncpg.Record) -> RiskOut:
    warn, alert = RISK_PROXIMITY[row["level"]]
    return RiskOut(**dict(row), proposed_proximity=ProposedProximity(warn_m=warn, alert_m=alert))


@router.post("/{case_id}/risk-screenings", status_code=201, response_model=RiskOut)
async def record_screening(case_id: str, body: RiskIn, ctx: Ctx, staff: AssessStaff) -> RiskOut:
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        me = await conn.fetchrow("SELECT id, active, sash_trained FROM staff_members WHERE sub = $1", staff.sub)
        if me is None or not me["active"] or not me["sash_trained"]:
            raise Problem(403, "Forbidden", "only active staff members marked as SASH-trained may record a risk screening")
        row = await conn.fetchrow(
            "INSERT INTO risk_screenings (id, case_id, level, screened_on, assessor_id, notes)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id", uuid.uuid4(), cid, body.level, body.screened_on, me["id"],
            body.notes)
        await audit.record(conn, actor=staff.actor, role=staff.role, action="risk.screen", case_id=cid, detail={
            "screening_id": str(row["id"]), "level": body.level, "screened_on": body.screened_on.isoformat()})
        out = await conn.fetchrow(_SELECT + " WHERE r.id = $1", row["id"])
    return risk_out(out)


@router.get("/{case_id}/risk-screenings", response_model=RiskList)
async def list_screenings(case_id: str, ctx: Ctx, staff: ReadStaff) -> RiskList:
    """Newest screening first; the first item's ``proposed_proximity`` is the current proposal."""
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        rows = await conn.fetch(_SELECT + " WHERE r.case_id = $1 ORDER BY r.screened_on DESC, r.created_at DESC", cid)
    return RiskList(items=[risk_out(r) for r in rows])
