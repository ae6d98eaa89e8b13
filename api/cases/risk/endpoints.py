"""SASH stalking risk screening. Each screening proposes default contact-ban distances for its level; staff decide
and set the case's distances themselves (``PATCH /v1/cases/{case_id}``), so the proposal never changes enforcement
silently."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends

from api.auth.principals import Staff, require_staff
from api.cases.risk import service
from api.contacts.schemas import RISK_PROXIMITY, ProposedProximity, RiskIn, RiskList, RiskOut
from api.platform.staff_common import Ctx, ReadStaff

router = APIRouter(prefix="/v1/cases", tags=["risk screening"])

AssessStaff = Annotated[Staff, Depends(require_staff("case_director", "contact_person"))]


def risk_out(row: asyncpg.Record) -> RiskOut:
    warn, alert = RISK_PROXIMITY[row["level"]]
    return RiskOut(**dict(row), proposed_proximity=ProposedProximity(warn_m=warn, alert_m=alert))


@router.post("/{case_id}/risk-screenings", status_code=201, response_model=RiskOut)
async def record_screening(case_id: str, body: RiskIn, ctx: Ctx, staff: AssessStaff) -> RiskOut:
    return risk_out(await service.record_screening(ctx.pool, staff, case_id, body))


@router.get("/{case_id}/risk-screenings", response_model=RiskList)
async def list_screenings(case_id: str, ctx: Ctx, staff: ReadStaff) -> RiskList:
    """Newest screening first; the first item's ``proposed_proximity`` is the current proposal."""
    return RiskList(items=[risk_out(r) for r in await service.list_screenings(ctx.pool, case_id)])
