"""Fixed contact persons and case ownership over HTTP: staff members, their assignment per case and agency,
orphaned cases after a deactivation, contact agreements with the victim and the overdue list, and each staff
member's notices (order reminders, expiries, daily digests recorded by api/contacts/reminders.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth.principals import Staff, StaffDep, require_staff
from api.contacts import service
from api.contacts.schemas import (
    AgreementIn, AgreementList, AgreementOut, AssignmentIn, AssignmentList, AssignmentOut, ContactIn, Deactivate,
    DeactivateOut, NoticeList, OrphanedList, OverdueList, StaffMemberCreate, StaffMemberOut, StaffMemberPage,
    StaffMemberPatch,
)
from api.platform.staff_common import Ctx, InformStaff, Limit, ReadStaff, WriteStaff

router = APIRouter(tags=["contact persons"])

AdminStaff = Annotated[Staff, Depends(require_staff())]  # admin only


# ---------------------------------------------------------------- staff members

@router.post("/v1/staff", status_code=201, response_model=StaffMemberOut, tags=["staff members"])
async def create_staff_member(body: StaffMemberCreate, ctx: Ctx, staff: AdminStaff) -> StaffMemberOut:
    return await service.create_staff_member(ctx.pool, staff, body)


@router.get("/v1/staff", response_model=StaffMemberPage, tags=["staff members"])
async def list_staff(ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None,
                     active: bool | None = None) -> StaffMemberPage:
    return await service.list_staff(ctx.pool, limit, cursor, active)


@router.patch("/v1/staff/{staff_id}", response_model=StaffMemberOut, tags=["staff members"])
async def update_staff_member(staff_id: str, body: StaffMemberPatch, ctx: Ctx, staff: AdminStaff) -> StaffMemberOut:
    """Change contact details or mark SASH training. Only the fields sent change."""
    return await service.update_staff_member(ctx.pool, staff, staff_id, body.model_dump(exclude_unset=True))


@router.post("/v1/staff/{staff_id}/deactivate", response_model=DeactivateOut, tags=["staff members"])
async def deactivate_staff_member(staff_id: str, body: Deactivate, ctx: Ctx, staff: AdminStaff) -> DeactivateOut:
    """The person leaves. Their assignments stay in place and are listed as orphaned (here and under
    ``GET /v1/contact/orphaned``) until someone is assigned instead: a case never silently loses its owner."""
    return await service.deactivate_staff_member(ctx.pool, staff, staff_id, body.reason)


# ---------------------------------------------------------------- assignments

@router.put("/v1/cases/{case_id}/assignments", response_model=AssignmentOut, tags=["contact persons"])
async def assign(case_id: str, body: AssignmentIn, ctx: Ctx, staff: WriteStaff) -> AssignmentOut:
    """Make ``staff_id`` the case's contact person or case director for ``agency``, replacing whoever held it.
    A change of person is recorded on the timeline (victim-visible for a contact person of the victim's four
    agencies: she learns she has someone new)."""
    return await service.assign(ctx.pool, staff, case_id, body)


@router.get("/v1/cases/{case_id}/assignments", response_model=AssignmentList, tags=["contact persons"])
async def list_assignments(case_id: str, ctx: Ctx, staff: ReadStaff) -> AssignmentList:
    """The current assignments (one per agency and function at most)."""
    return AssignmentList(items=await service.list_assignments(ctx.pool, case_id))


@router.get("/v1/contact/orphaned", response_model=OrphanedList, tags=["contact persons"])
async def orphaned_cases(ctx: Ctx, staff: WriteStaff, limit: Limit = 100, cursor: str | None = None) -> OrphanedList:
    """Cases with an assignment held by a deactivated staff member, or with notices in an agency's queue because
    no case director is left, oldest first. A case director sees those of cases they reach and those of their own
    agency; an admin sees all."""
    return await service.orphaned_cases(ctx.pool, staff, ctx.settings.operator_grace_s, limit, cursor)


# ---------------------------------------------------------------- contact agreements

@router.post("/v1/cases/{case_id}/contact-agreements", status_code=201, response_model=AgreementOut,
             tags=["contact persons"])
async def create_agreement(case_id: str, body: AgreementIn, ctx: Ctx, staff: InformStaff) -> AgreementOut:
    """"We update you every N days by channel X", as agreed with the victim. It is kept by whoever is the agency's
    contact person on the case, so a reassignment carries it over."""
    return await service.create_agreement(ctx.pool, staff, case_id, body)


@router.get("/v1/cases/{case_id}/contact-agreements", response_model=AgreementList, tags=["contact persons"])
async def list_agreements(case_id: str, ctx: Ctx, staff: ReadStaff) -> AgreementList:
    return AgreementList(items=await service.list_agreements(ctx.pool, case_id))


@router.post("/v1/cases/{case_id}/contact-agreements/{agreement_id}/contacts", response_model=AgreementOut,
             tags=["contact persons"])
async def record_contact(case_id: str, agreement_id: str, body: ContactIn, ctx: Ctx, staff: InformStaff) -> AgreementOut:
    """The victim was contacted as agreed: the next contact is due ``every_days`` after this one; a one-off
    promise is kept and ends."""
    return await service.record_contact(ctx.pool, staff, case_id, agreement_id, body)


@router.post("/v1/cases/{case_id}/contact-agreements/{agreement_id}/end", response_model=AgreementOut,
             tags=["contact persons"])
async def end_agreement(case_id: str, agreement_id: str, ctx: Ctx, staff: InformStaff) -> AgreementOut:
    return await service.end_agreement(ctx.pool, staff, case_id, agreement_id)


@router.get("/v1/contact/overdue", response_model=OverdueList, tags=["contact persons"])
async def overdue(ctx: Ctx, staff: InformStaff, limit: Limit = 100, cursor: str | None = None) -> OverdueList:
    """Follow-ups whose agreed date has passed, per contact person, oldest first, only for cases the caller may
    reach. A contact person sees their own; case directors see everyone's on their cases, including agreements
    nobody holds; admins see all. Paginated by agreement (a page groups its own items)."""
    groups, more = await service.overdue_for(ctx.pool, staff, ctx.clock.now(), ctx.settings.operator_grace_s,
                                             limit, cursor)
    return OverdueList(items=groups, next_cursor=more)


@router.get("/v1/contact/notices", response_model=NoticeList, tags=["contact persons"])
async def my_notices(ctx: Ctx, staff: StaffDep, limit: Limit = 100, cursor: str | None = None) -> NoticeList:
    """What was recorded for the calling staff member (order reminders, expiries, daily digests, victims'
    messages) and, for case directors and admins, the agency queue: notices of cases without a case director
    (``queue: true``), as the orphaned list shows them. Newest first; only cases the caller may reach."""
    items, more = await service.staff_notices(ctx.pool, staff, ctx.settings.operator_grace_s, limit, cursor)
    return NoticeList(items=items, next_cursor=more)
