"""Can a ban be enforced? ``POST /v1/feasibility`` checks a draft; ``POST /v1/cases/{case_id}/feasibility`` checks a
case's stored rule, zones and orders together with proposed ones; ``PUT /v1/cases/{case_id}/addresses`` keeps the
parties' known addresses the checks use. Storing a zone runs the same check."""

from __future__ import annotations

from fastapi import APIRouter

from api.cases.feasibility import service
from api.contacts.schemas import Addresses, FeasibilityCaseRequest, FeasibilityDraft, FeasibilityOut
from api.platform.staff_common import Ctx, ReadStaff, WriteStaff

router = APIRouter(tags=["feasibility"])


@router.post("/v1/feasibility", response_model=FeasibilityOut)
async def check_draft(body: FeasibilityDraft, ctx: Ctx, staff: ReadStaff) -> FeasibilityOut:
    """Check a ban that is not stored anywhere yet: nothing is read or written."""
    return service.check_draft(ctx.settings, body)


@router.post("/v1/cases/{case_id}/feasibility", response_model=FeasibilityOut)
async def check_case(case_id: str, body: FeasibilityCaseRequest, ctx: Ctx, staff: ReadStaff) -> FeasibilityOut:
    """Check the case as it stands plus the proposal: stored zones and orders with the proposed ones; the stored
    proximity rule and addresses unless the request sends its own."""
    return await service.check_case(ctx.pool, ctx.settings, case_id, body)


@router.put("/v1/cases/{case_id}/addresses", response_model=Addresses, tags=["feasibility"])
async def put_addresses(case_id: str, body: Addresses, ctx: Ctx, staff: WriteStaff) -> Addresses:
    """The parties' known addresses as points (all four replaced; null for unknown). Personal data: the audit log
    records which addresses are known, never where."""
    await service.put_addresses(ctx.pool, staff, case_id, body)
    return body


@router.get("/v1/cases/{case_id}/addresses", response_model=Addresses, tags=["feasibility"])
async def get_addresses(case_id: str, ctx: Ctx, staff: WriteStaff) -> Addresses:
    return await service.read_addresses(ctx.pool, staff, case_id)
