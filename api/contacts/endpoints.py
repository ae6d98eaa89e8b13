"""Fixed contact persons and case ownership: staff members, their assignment per case and agency, orphaned cases
after a deactivation, contact agreements with the victim and the overdue list, and each staff member's notices
(order reminders, expiries, daily digests recorded by api/contacts/reminders.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends

from api.privacy import audit
from api.auth.principals import Staff, StaffDep, require_staff
from api.platform.context import Context
from api.platform.problems import conflict, field_error, not_found
from api.cases.service import case_or_404
from api.cases.timeline.service import add_event
from api.platform.staff_common import Ctx, Limit, ReadStaff, WriteStaff, decode_cursor, next_cursor, parse_id
from api.contacts.schemas import (
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
       a.how_to_reach, a.how_to_reach_i18n AS how_to_reach_by_language, a.when_to_reach, a.assigned_at, a.assigned_by
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
            await conn.execute("UPDATE case_assignments SET how_to_reach = $2, when_to_reach = $3,"
                               " how_to_reach_i18n = $4 WHERE id = $1",
                               current["id"], body.how_to_reach, body.when_to_reach, body.how_to_reach_by_language)
            assignment_id, action = current["id"], "assignment.update"
        else:
            if current is not None:
                await conn.execute(
                    "UPDATE case_assignments SET ended_at = now(), ended_by = $2, ended_reason = $3 WHERE id = $1",
                    current["id"], staff.actor, body.reason)
            assignment_id, action = uuid.uuid4(), "assignment.assign"
            await conn.execute(
                "INSERT INTO case_assignments (id, case_id, agency, function, staff_id, how_to_reach, when_to_reach,"
                " assigned_by, how_to_reach_i18n) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                assignment_id, cid, body.agency, body.function, body.staff_id, body.how_to_reach, body.when_to_reach,
                staff.actor, body.how_to_reach_by_language)
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


# Need-to-know for items without an owner (orphaned assignments, the agency queue): admins, and case directors
# who reach the case or work for the agency the item belongs to (someone there has to pick it up).
_OWNERLESS_VISIBLE = ("($2 = 'admin' OR ($2 = 'case_director' AND ({agency} = $3"
                      " OR staff_may_reach({case}, $1, $2, $4::float8))))")


_HAS_DIRECTOR = ("EXISTS (SELECT 1 FROM case_assignments d JOIN staff_members ds ON ds.id = d.staff_id"
                 " WHERE d.case_id = {case} AND d.function = 'case_director' AND d.ended_at IS NULL AND ds.active)")


async def _viewer(conn: asyncpg.Connection, ctx: Context, staff: Staff) -> tuple[str, str, str | None, float]:
    """The query parameters $1-$4 of ``_OWNERLESS_VISIBLE``: sub, role, the caller's agency, operator grace."""
    agency = await conn.fetchval("SELECT agency FROM staff_members WHERE sub = $1 AND active", staff.sub)
    return staff.sub, staff.role, agency, ctx.settings.operator_grace_s


@router.get("/v1/contact/orphaned", response_model=OrphanedList, tags=["contact persons"])
async def orphaned_cases(ctx: Ctx, staff: WriteStaff, limit: Limit = 100, cursor: str | None = None) -> OrphanedList:
    """Cases with an assignment held by a deactivated staff member, or with notices in an agency's queue because
    no case director is left, oldest first. A case director sees those of cases they reach and those of their own
    agency; an admin sees all."""
    after_at, after_id = decode_cursor(cursor)
    async with ctx.pool.acquire() as conn:
        viewer = await _viewer(conn, ctx, staff)
        cases = await conn.fetch(
            "WITH items AS ("
            " SELECT a.case_id, a.agency, a.assigned_at AS since FROM case_assignments a"
            " JOIN staff_members s ON s.id = a.staff_id WHERE a.ended_at IS NULL AND NOT s.active"
            " UNION ALL SELECT n.case_id, n.agency, n.created_at FROM staff_notices n"
            " WHERE n.staff_id IS NULL AND n.case_id IS NOT NULL AND NOT " + _HAS_DIRECTOR.format(case="n.case_id") + ")"
            " SELECT i.case_id, i.case_id AS id, min(i.since) AS created_at, c.reference"
            " FROM items i JOIN cases c ON c.id = i.case_id"
            " WHERE " + _OWNERLESS_VISIBLE.format(agency="i.agency", case="i.case_id") +
            " GROUP BY i.case_id, c.reference"
            " HAVING $5::timestamptz IS NULL OR (min(i.since), i.case_id) > ($5, $6)"
            " ORDER BY min(i.since), i.case_id LIMIT $7", *viewer, after_at, after_id, limit + 1)
        shown = [r["case_id"] for r in cases[:limit]]
        assignments = await conn.fetch(
            _ASSIGNMENT_SELECT + " WHERE a.case_id = ANY($1::uuid[]) AND a.ended_at IS NULL AND NOT s.active"
            " ORDER BY a.assigned_at, a.id", shown)
        queued = await conn.fetch(
            "SELECT n.id, n.kind, n.case_id, n.payload, n.created_at, n.delivery, n.agency FROM staff_notices n"
            " WHERE n.case_id = ANY($1::uuid[]) AND n.staff_id IS NULL ORDER BY n.created_at, n.id", shown)
        owned = {r["case_id"] for r in await conn.fetch(
            "SELECT DISTINCT a.case_id FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id"
            " WHERE a.case_id = ANY($1::uuid[]) AND a.ended_at IS NULL AND a.function = 'case_director' AND s.active",
            shown)}
    by_case = {r["case_id"]: OrphanedCase(case_id=r["case_id"], case_reference=r["reference"], assignments=[],
                                          notices=[], missing_owner=r["case_id"] not in owned) for r in cases[:limit]}
    for a in assignments:
        by_case[a["case_id"]].assignments.append(AssignmentOut(**dict(a)))
    for n in queued:
        by_case[n["case_id"]].notices.append(NoticeOut(**dict(n)))
    return OrphanedList(items=list(by_case.values()), next_cursor=next_cursor(cases, limit))


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
    """The victim was contacted as agreed: the next contact is due ``every_days`` after this one; a one-off
    promise is kept and ends."""
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
            f" next_due_at = CASE WHEN every_days IS NULL THEN next_due_at"
            f"                    ELSE $2::timestamptz + make_interval(days => every_days) END,"
            f" active = every_days IS NOT NULL"
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


async def fetch_overdue(conn: asyncpg.Connection | asyncpg.Pool, now: datetime, staff_id: uuid.UUID | None = None,
                        *, viewer: Staff | None = None, grace_s: float = 0.0, limit: int | None = None,
                        cursor: str | None = None) -> tuple[list[OverdueGroup], str | None]:
    """Active agreements past their next contact date, oldest first, grouped per the agency's current, active
    contact person (``staff_id`` null: nobody), groups by their oldest item. With ``viewer``, only cases the
    viewer may reach (need-to-know); with ``limit``, one page of agreements and the cursor of the next."""
    after_at, after_id = decode_cursor(cursor)
    rows = await conn.fetch(
        """
        SELECT g.id AS agreement_id, g.case_id, c.reference AS case_reference, g.agency, g.every_days, g.channel,
               g.next_due_at, g.next_due_at AS created_at, g.id, s.id AS staff_id, s.display_name AS staff_name
        FROM contact_agreements g
        JOIN cases c ON c.id = g.case_id
        LEFT JOIN case_assignments a ON a.case_id = g.case_id AND a.agency = g.agency
             AND a.function = 'contact_person' AND a.ended_at IS NULL
        LEFT JOIN staff_members s ON s.id = a.staff_id AND s.active
        WHERE g.active AND c.status = 'active' AND g.next_due_at < $1 AND ($2::uuid IS NULL OR s.id = $2)
          AND ($3::text IS NULL OR $4 = 'admin' OR staff_may_reach(g.case_id, $3, $4, $5::float8))
          AND ($6::timestamptz IS NULL OR (g.next_due_at, g.id) > ($6, $7))
        ORDER BY g.next_due_at, g.id LIMIT $8
        """, now, staff_id, viewer.sub if viewer else None, viewer.role if viewer else None, grace_s,
        after_at, after_id, None if limit is None else limit + 1)
    groups: dict[uuid.UUID | None, OverdueGroup] = {}
    for r in rows[:limit]:
        group = groups.setdefault(r["staff_id"], OverdueGroup(staff_id=r["staff_id"], staff_name=r["staff_name"], items=[]))
        group.items.append(OverdueItem(
            agreement_id=r["agreement_id"], case_id=r["case_id"], case_reference=r["case_reference"],
            agency=r["agency"], every_days=r["every_days"], channel=r["channel"], next_due_at=r["next_due_at"],
            overdue_days=round((now - r["next_due_at"]) / timedelta(days=1), 2)))
    return list(groups.values()), None if limit is None else next_cursor(rows, limit)


@router.get("/v1/contact/overdue", response_model=OverdueList, tags=["contact persons"])
async def overdue(ctx: Ctx, staff: InformStaff, limit: Limit = 100, cursor: str | None = None) -> OverdueList:
    """Follow-ups whose agreed date has passed, per contact person, oldest first, only for cases the caller may
    reach. A contact person sees their own; case directors see everyone's on their cases, including agreements
    nobody holds; admins see all. Paginated by agreement (a page groups its own items)."""
    async with ctx.pool.acquire() as conn:
        only: uuid.UUID | None = None
        if staff.role == "contact_person":
            me = await staff_member_for(conn, staff)
            if me is None:
                return OverdueList(items=[], next_cursor=None)
            only = me["id"]
        groups, more = await fetch_overdue(conn, ctx.clock.now(), only, viewer=staff,
                                           grace_s=ctx.settings.operator_grace_s, limit=limit, cursor=cursor)
    return OverdueList(items=groups, next_cursor=more)


@router.get("/v1/contact/notices", response_model=NoticeList, tags=["contact persons"])
async def my_notices(ctx: Ctx, staff: StaffDep, limit: Limit = 100, cursor: str | None = None) -> NoticeList:
    """What was recorded for the calling staff member (order reminders, expiries, daily digests, victims'
    messages) and, for case directors and admins, the agency queue: notices of cases without a case director
    (``queue: true``), as the orphaned list shows them. Newest first; only cases the caller may reach."""
    before_at, before_id = decode_cursor(cursor)
    async with ctx.pool.acquire() as conn:
        viewer = await _viewer(conn, ctx, staff)
        rows = await conn.fetch(
            "SELECT n.id, n.kind, n.case_id, n.payload, n.created_at, n.delivery, n.agency FROM staff_notices n"
            " LEFT JOIN staff_members s ON s.id = n.staff_id"
            " WHERE ((s.sub = $1 AND (n.case_id IS NULL OR $2 = 'admin'"
            "        OR staff_may_reach(n.case_id, $1, $2, $4::float8)))"
            "     OR (n.staff_id IS NULL AND " + _OWNERLESS_VISIBLE.format(agency="n.agency", case="n.case_id") + "))"
            " AND ($5::timestamptz IS NULL OR (n.created_at, n.id) < ($5, $6))"
            " ORDER BY n.created_at DESC, n.id DESC LIMIT $7", *viewer, before_at, before_id, limit + 1)
    return NoticeList(items=[NoticeOut(**dict(r)) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))
