"""Fixed contact persons and case ownership: staff members, their assignment per case and agency, orphaned cases
after a deactivation, contact agreements with the victim and the overdue list, and each staff member's notices
(order reminders, expiries, daily digests recorded by api/order_reminders.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends

from api import audit
from api.auth import Staff, StaffDep, require_staff
from api.problems import conflict, field_error, not_found
from api.routers.staff_common import Ctx, Limit, ReadStaff, WriteStaff, case_or_404, decode_cursor, next_cursor, parse_id
from api.routers.timeline import add_event
from api.schemas.case_status import (
    VICTIM_AGENCIES, AgreementIn, AgreementList, AgreementOut, AssignmentIn, AssignmentList, AssignmentOut, ContactIn,
    Deactivate, DeactivateOut, NoticeList, NoticeOut, OrphanedCase, OrphanedList, OverdueGroup, OverdueItem,
    OverdueList, StaffMemberCreate, StaffMemberOut, StaffMemberPage, StaffMemberPatch,
)

router = APIRouter(tags=["contact persons"])

AdminStaff = Annotated[Staff, Depends(require_staff())]  # admin only
InformStaff = Annotated[Staff, Depends(require_staff("case_director", "contact_person"))]

_STAFF_COLUMNS = "id, sub, display_name, agency, role_title, phone, email, sash_trained, active, deactivated_at, created_at"
_ASSIGNMENT_SELECT = """
SELECT a.id, a.case_id, a.agency, a.function, a.staff_id, s.display_name AS staff_name, s.active AS staff_active,
       a.how_to_reach, a.when_to_reach, a.assigned_at, a.assigned_by
FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id
"""
_AGREEMENT_COLUMNS = "id, case_id, agency, every_days, channel, next_due_at, last_contact_at, active, created_at"


def _audit(conn: asyncpg.Connection, staff: Staff, action: str, case_id: uuid.UUID | None, detail: dict[str, Any],
           reason: str | None = None):  # type: ignore[no-untyped-def]
    return audit.record(conn, actor=staff.actor, role=staff.role, action=action, case_id=case_id, reason=reason,
                        detail=detail)


async def staff_member_for(conn: asyncpg.Connection | asyncpg.Pool, staff: Staff) -> asyncpg.Record | None:
    """The staff member record behind a token, if the person is registered."""
    return await conn.fetchrow(f"SELECT {_STAFF_COLUMNS} FROM staff_members WHERE sub = $1", staff.sub)


# ---------------------------------------------------------------- staff members

@router.post("/v1/staff", status_code=201, response_model=StaffMemberOut, tags=["staff members"])
async def create_staff_member(body: StaffMemberCreate, ctx: Ctx, staff: AdminStaff) -> StaffMemberOut:
    async with ctx.pool.acquire() as conn, conn.transaction():
        try:
            async with conn.transaction():
                row = await conn.fetchrow(
                    f"INSERT INTO staff_members (id, sub, display_name, agency, role_title, phone, email, sash_trained,"
                    f" created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_STAFF_COLUMNS}",
                    uuid.uuid4(), body.sub, body.display_name, body.agency, body.role_title, body.phone, body.email,
                    body.sash_trained, staff.actor,
                )
        except asyncpg.UniqueViolationError:
            raise conflict(f"a staff member with sub {body.sub} already exists") from None
        await _audit(conn, staff, "staff.create", None, {"staff_id": str(row["id"]), "sub": body.sub,
                                                          "agency": body.agency, "sash_trained": body.sash_trained})
    return StaffMemberOut(**dict(row))


@router.get("/v1/staff", response_model=StaffMemberPage, tags=["staff members"])
async def list_staff(ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None,
                     active: bool | None = None) -> StaffMemberPage:
    after_at, after_id = decode_cursor(cursor)
    rows = await ctx.pool.fetch(
        f"SELECT {_STAFF_COLUMNS} FROM staff_members WHERE ($1::bool IS NULL OR active = $1)"
        " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4",
        active, after_at, after_id, limit + 1,
    )
    return StaffMemberPage(items=[StaffMemberOut(**dict(r)) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))


@router.patch("/v1/staff/{staff_id}", response_model=StaffMemberOut, tags=["staff members"])
async def update_staff_member(staff_id: str, body: StaffMemberPatch, ctx: Ctx, staff: AdminStaff) -> StaffMemberOut:
    """Change contact details or mark SASH training. Only the fields sent change."""
    sid = parse_id(staff_id, "staff member")
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise field_error(["body"], "nothing to change")
    async with ctx.pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT id FROM staff_members WHERE id = $1 FOR UPDATE", sid) is None:
            raise not_found("staff member")
        for column, value in changes.items():  # column names come from the model, never from the client
            await conn.execute(f"UPDATE staff_members SET {column} = $2 WHERE id = $1", sid, value)
        row = await conn.fetchrow(f"SELECT {_STAFF_COLUMNS} FROM staff_members WHERE id = $1", sid)
        await _audit(conn, staff, "staff.update", None, {"staff_id": str(sid), "fields": sorted(changes),
                                                          **({"sash_trained": changes["sash_trained"]}
                                                             if "sash_trained" in changes else {})})
    return StaffMemberOut(**dict(row))


@router.post("/v1/staff/{staff_id}/deactivate", response_model=DeactivateOut, tags=["staff members"])
async def deactivate_staff_member(staff_id: str, body: Deactivate, ctx: Ctx, staff: AdminStaff) -> DeactivateOut:
    """The person leaves. Their assignments stay in place and are listed as orphaned (here and under
    ``GET /v1/contact/orphaned``) until someone is assigned instead: a case never silently loses its owner."""
    sid = parse_id(staff_id, "staff member")
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE staff_members SET active = false, deactivated_at = coalesce(deactivated_at, now())"
            f" WHERE id = $1 RETURNING {_STAFF_COLUMNS}", sid)
        if row is None:
            raise not_found("staff member")
        orphaned = await conn.fetch(_ASSIGNMENT_SELECT + " WHERE a.staff_id = $1 AND a.ended_at IS NULL"
                                    " ORDER BY a.assigned_at, a.id", sid)
        await _audit(conn, staff, "staff.deactivate", None, {
            "staff_id": str(sid), "orphaned_assignments": [str(a["id"]) for a in orphaned],
            "orphaned_cases": sorted({str(a["case_id"]) for a in orphaned})}, reason=body.reason)
    return DeactivateOut(staff=StaffMemberOut(**dict(row)), orphaned=[AssignmentOut(**dict(a)) for a in orphaned])


# ---------------------------------------------------------------- assignments

@router.put("/v1/cases/{case_id}/assignments", response_model=AssignmentOut, tags=["contact persons"])
async def assign(case_id: str, body: AssignmentIn, ctx: Ctx, staff: WriteStaff) -> AssignmentOut:
    """Make ``staff_id`` the case's contact person or case director for ``agency``, replacing whoever held it.
    A change of person is recorded on the timeline (victim-visible for a contact person of the victim's four
    agencies: she learns she has someone new)."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        member = await conn.fetchrow("SELECT id, agency, active, display_name FROM staff_members WHERE id = $1",
                                     body.staff_id)
        if member is None:
            raise field_error(["staff_id"], "no staff member with this id")
        if not member["active"]:
            raise field_error(["staff_id"], "this staff member is deactivated and cannot take on cases")
        if member["agency"] != body.agency:
            raise field_error(["agency"], f"this staff member works for {member['agency']}, not {body.agency}")
        current = await conn.fetchrow(
            "SELECT id, staff_id FROM case_assignments WHERE case_id = $1 AND agency = $2 AND function = $3"
            " AND ended_at IS NULL FOR UPDATE", cid, body.agency, body.function)
        if current is not None and current["staff_id"] == body.staff_id:
            await conn.execute("UPDATE case_assignments SET how_to_reach = $2, when_to_reach = $3 WHERE id = $1",
                               current["id"], body.how_to_reach, body.when_to_reach)
            assignment_id, action = current["id"], "assignment.update"
        else:
            if current is not None:
                await conn.execute(
                    "UPDATE case_assignments SET ended_at = now(), ended_by = $2, ended_reason = $3 WHERE id = $1",
                    current["id"], staff.actor, body.reason)
            assignment_id, action = uuid.uuid4(), "assignment.assign"
            await conn.execute(
                "INSERT INTO case_assignments (id, case_id, agency, function, staff_id, how_to_reach, when_to_reach,"
                " assigned_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                assignment_id, cid, body.agency, body.function, body.staff_id, body.how_to_reach, body.when_to_reach,
                staff.actor)
            visible = body.function == "contact_person" and body.agency in VICTIM_AGENCIES
            await add_event(conn, cid, "contact_reassigned", visibility="victim" if visible else "internal",
                            actor=staff.actor, note=body.reason if not visible else None, detail={
                                "agency": body.agency, "function": body.function, "staff_id": str(body.staff_id),
                                "previous_staff_id": str(current["staff_id"]) if current else None})
        await _audit(conn, staff, action, cid, {
            "assignment_id": str(assignment_id), "agency": body.agency, "function": body.function,
            "staff_id": str(body.staff_id), "previous_staff_id": str(current["staff_id"]) if current else None,
        }, reason=body.reason)
        row = await conn.fetchrow(_ASSIGNMENT_SELECT + " WHERE a.id = $1", assignment_id)
    return AssignmentOut(**dict(row))


@router.get("/v1/cases/{case_id}/assignments", response_model=AssignmentList, tags=["contact persons"])
async def list_assignments(case_id: str, ctx: Ctx, staff: ReadStaff) -> AssignmentList:
    """The current assignments (one per agency and function at most)."""
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        rows = await conn.fetch(_ASSIGNMENT_SELECT + " WHERE a.case_id = $1 AND a.ended_at IS NULL"
                                " ORDER BY a.agency, a.function", cid)
    return AssignmentList(items=[AssignmentOut(**dict(r)) for r in rows])


@router.get("/v1/contact/orphaned", response_model=OrphanedList, tags=["contact persons"])
async def orphaned_cases(ctx: Ctx, staff: WriteStaff) -> OrphanedList:
    """Cases with an assignment held by a deactivated staff member, oldest assignment first."""
    rows = await ctx.pool.fetch(
        _ASSIGNMENT_SELECT.replace("SELECT", "SELECT c.reference AS case_reference,", 1)
        + " JOIN cases c ON c.id = a.case_id WHERE a.ended_at IS NULL AND NOT s.active ORDER BY a.assigned_at, a.id")
    owned = {r["case_id"] for r in await ctx.pool.fetch(
        "SELECT DISTINCT a.case_id FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id"
        " WHERE a.ended_at IS NULL AND a.function = 'case_director' AND s.active")}
    by_case: dict[uuid.UUID, OrphanedCase] = {}
    for r in rows:
        item = by_case.setdefault(r["case_id"], OrphanedCase(
            case_id=r["case_id"], case_reference=r["case_reference"], assignments=[],
            missing_owner=r["case_id"] not in owned))
        item.assignments.append(AssignmentOut(**{k: v for k, v in dict(r).items() if k != "case_reference"}))
    return OrphanedList(items=list(by_case.values()))


# ---------------------------------------------------------------- contact agreements

@router.post("/v1/cases/{case_id}/contact-agreements", status_code=201, response_model=AgreementOut,
             tags=["contact persons"])
async def create_agreement(case_id: str, body: AgreementIn, ctx: Ctx, staff: InformStaff) -> AgreementOut:
    """"We update you every N days by channel X", as agreed with the victim. It is kept by whoever is the agency's
    contact person on the case, so a reassignment carries it over."""
    now = datetime.now(timezone.utc)
    due = body.first_due_at.astimezone(timezone.utc) if body.first_due_at else now + timedelta(days=body.every_days)
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        row = await conn.fetchrow(
            f"INSERT INTO contact_agreements (id, case_id, agency, every_days, channel, next_due_at, created_by)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_AGREEMENT_COLUMNS}",
            uuid.uuid4(), cid, body.agency, body.every_days, body.channel, due, staff.actor)
        await _audit(conn, staff, "contact_agreement.create", cid, {
            "agreement_id": str(row["id"]), "agency": body.agency, "every_days": body.every_days,
            "channel": body.channel, "next_due_at": due.isoformat()})
    return AgreementOut(**dict(row))


@router.get("/v1/cases/{case_id}/contact-agreements", response_model=AgreementList, tags=["contact persons"])
async def list_agreements(case_id: str, ctx: Ctx, staff: ReadStaff) -> AgreementList:
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        rows = await conn.fetch(f"SELECT {_AGREEMENT_COLUMNS} FROM contact_agreements WHERE case_id = $1"
                                " ORDER BY created_at, id", cid)
    return AgreementList(items=[AgreementOut(**dict(r)) for r in rows])


async def _agreement(conn: asyncpg.Connection, case_id: str, agreement_id: str) -> tuple[uuid.UUID, asyncpg.Record]:
    cid = await case_or_404(conn, case_id, lock=True)
    row = await conn.fetchrow(f"SELECT {_AGREEMENT_COLUMNS} FROM contact_agreements WHERE id = $1 AND case_id = $2"
                              " FOR UPDATE", parse_id(agreement_id, "contact agreement"), cid)
    if row is None:
        raise not_found("contact agreement")
    return cid, row


@router.post("/v1/cases/{case_id}/contact-agreements/{agreement_id}/contacts", response_model=AgreementOut,
             tags=["contact persons"])
async def record_contact(case_id: str, agreement_id: str, body: ContactIn, ctx: Ctx, staff: InformStaff) -> AgreementOut:
    """The victim was contacted as agreed: the next contact is due ``every_days`` after this one."""
    at = body.contacted_at.astimezone(timezone.utc)
    if at > datetime.now(timezone.utc) + timedelta(minutes=5):
        raise field_error(["contacted_at"], "a contact cannot be recorded before it happened")
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid, agreement = await _agreement(conn, case_id, agreement_id)
        if not agreement["active"]:
            raise conflict("this contact agreement has ended")
        last = max(filter(None, (agreement["last_contact_at"], at)))
        await conn.execute(
            "INSERT INTO contact_log (id, agreement_id, contacted_at, channel, note, created_by)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            uuid.uuid4(), agreement["id"], at, body.channel or agreement["channel"], body.note, staff.actor)
        row = await conn.fetchrow(
            f"UPDATE contact_agreements SET last_contact_at = $2::timestamptz,"
            f" next_due_at = $2::timestamptz + make_interval(days => every_days)"
            f" WHERE id = $1 RETURNING {_AGREEMENT_COLUMNS}", agreement["id"], last)
        await _audit(conn, staff, "contact_agreement.contact", cid, {
            "agreement_id": str(agreement["id"]), "contacted_at": at.isoformat(),
            "channel": body.channel or agreement["channel"], "next_due_at": row["next_due_at"].isoformat()})
    return AgreementOut(**dict(row))


@router.post("/v1/cases/{case_id}/contact-agreements/{agreement_id}/end", response_model=AgreementOut,
             tags=["contact persons"])
async def end_agreement(case_id: str, agreement_id: str, ctx: Ctx, staff: InformStaff) -> AgreementOut:
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid, agreement = await _agreement(conn, case_id, agreement_id)
        row = await conn.fetchrow(f"UPDATE contact_agreements SET active = false WHERE id = $1"
                                  f" RETURNING {_AGREEMENT_COLUMNS}", agreement["id"])
        await _audit(conn, staff, "contact_agreement.end", cid, {"agreement_id": str(agreement["id"])})
    return AgreementOut(**dict(row))


async def fetch_overdue(conn: asyncpg.Connection | asyncpg.Pool, now: datetime,
                        staff_id: uuid.UUID | None = None) -> list[OverdueGroup]:
    """Active agreements past their next contact date, grouped per the agency's current, active contact person
    (``staff_id`` null: nobody), each group oldest first, groups by their oldest item."""
    rows = await conn.fetch(
        """
        SELECT g.id AS agreement_id, g.case_id, c.reference AS case_reference, g.agency, g.every_days, g.channel,
               g.next_due_at, s.id AS staff_id, s.display_name AS staff_name
        FROM contact_agreements g
        JOIN cases c ON c.id = g.case_id
        LEFT JOIN case_assignments a ON a.case_id = g.case_id AND a.agency = g.agency
             AND a.function = 'contact_person' AND a.ended_at IS NULL
        LEFT JOIN staff_members s ON s.id = a.staff_id AND s.active
        WHERE g.active AND c.status = 'active' AND g.next_due_at < $1 AND ($2::uuid IS NULL OR s.id = $2)
        ORDER BY g.next_due_at, g.id
        """, now, staff_id)
    groups: dict[uuid.UUID | None, OverdueGroup] = {}
    for r in rows:
        group = groups.setdefault(r["staff_id"], OverdueGroup(staff_id=r["staff_id"], staff_name=r["staff_name"], items=[]))
        group.items.append(OverdueItem(
            agreement_id=r["agreement_id"], case_id=r["case_id"], case_reference=r["case_reference"],
            agency=r["agency"], every_days=r["every_days"], channel=r["channel"], next_due_at=r["next_due_at"],
            overdue_days=round((now - r["next_due_at"]) / timedelta(days=1), 2)))
    return list(groups.values())


@router.get("/v1/contact/overdue", response_model=OverdueList, tags=["contact persons"])
async def overdue(ctx: Ctx, staff: InformStaff) -> OverdueList:
    """Follow-ups whose agreed date has passed, per contact person, oldest first. A contact person sees their own;
    case directors and admins see everyone's, including agreements nobody holds."""
    async with ctx.pool.acquire() as conn:
        only: uuid.UUID | None = None
        if staff.role == "contact_person":
            me = await staff_member_for(conn, staff)
            if me is None:
                return OverdueList(items=[])
            only = me["id"]
        groups = await fetch_overdue(conn, datetime.now(timezone.utc), only)
    return OverdueList(items=groups)


@router.get("/v1/contact/notices", response_model=NoticeList, tags=["contact persons"])
async def my_notices(ctx: Ctx, staff: StaffDep, limit: Limit = 100) -> NoticeList:
    """What the scheduler recorded for the calling staff member: order reminders, expiries, daily digests."""
    rows = await ctx.pool.fetch(
        "SELECT n.id, n.kind, n.case_id, n.payload, n.created_at, n.delivery FROM staff_notices n"
        " JOIN staff_members s ON s.id = n.staff_id WHERE s.sub = $1 ORDER BY n.created_at DESC, n.id LIMIT $2",
        staff.sub, limit)
    return NoticeList(items=[NoticeOut(**dict(r)) for r in rows])
