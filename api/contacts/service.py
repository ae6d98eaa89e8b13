"""The use cases of contact persons: staff members, their assignment per case and agency, orphaned cases after a
deactivation, contact agreements with the victim, the overdue list, and each staff member's notices."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable

import asyncpg

from api.auth.principals import Staff
from api.cases.timeline.service import add_event
from api.contacts import repository
from api.contacts.schemas import (
    VICTIM_AGENCIES, AgreementIn, AgreementOut, AssignmentIn, AssignmentOut, ContactIn, DeactivateOut, NoticeOut,
    OrphanedCase, OrphanedList, OverdueGroup, OverdueItem, StaffMemberCreate, StaffMemberOut, StaffMemberPage,
)
from api.platform.problems import conflict, field_error, not_found
from api.cases.service import case_or_404
from api.platform.staff_common import decode_cursor, next_cursor, parse_id
from api.privacy import audit


def _audit(conn: asyncpg.Connection, staff: Staff, action: str, case_id: uuid.UUID | None, detail: dict[str, Any],
           reason: str | None = None):  # type: ignore[no-untyped-def]
    return audit.record(conn, actor=staff.actor, role=staff.role, action=action, case_id=case_id, reason=reason,
                        detail=detail)


async def _viewer(conn: asyncpg.Connection, staff: Staff, grace_s: float) -> repository.Viewer:
    return staff.sub, staff.role, await repository.viewer_agency(conn, staff.sub), grace_s


# ---------------------------------------------------------------- staff members

async def create_staff_member(pool: asyncpg.Pool, staff: Staff, body: StaffMemberCreate) -> StaffMemberOut:
    async with pool.acquire() as conn, conn.transaction():
        try:
            async with conn.transaction():
                row = await repository.insert_staff_member(conn, body.model_dump(), staff.actor)
        except asyncpg.UniqueViolationError:
            raise conflict(f"a staff member with sub {body.sub} already exists") from None
        await _audit(conn, staff, "staff.create", None, {"staff_id": str(row["id"]), "sub": body.sub,
                                                          "agency": body.agency, "sash_trained": body.sash_trained})
    return StaffMemberOut(**dict(row))


async def list_staff(pool: asyncpg.Pool, limit: int, cursor: str | None, active: bool | None) -> StaffMemberPage:
    after_at, after_id = decode_cursor(cursor)
    rows = await repository.staff_page(pool, active, after_at, after_id, limit)
    return StaffMemberPage(items=[StaffMemberOut(**dict(r)) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))


async def update_staff_member(pool: asyncpg.Pool, staff: Staff, staff_id: str,
                              changes: dict[str, Any]) -> StaffMemberOut:
    sid = parse_id(staff_id, "staff member")
    if not changes:
        raise field_error(["body"], "nothing to change")
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.lock_staff_member(conn, sid):
            raise not_found("staff member")
        row = await repository.update_staff_member(conn, sid, changes)
        await _audit(conn, staff, "staff.update", None, {"staff_id": str(sid), "fields": sorted(changes),
                                                          **({"sash_trained": changes["sash_trained"]}
                                                             if "sash_trained" in changes else {})})
    return StaffMemberOut(**dict(row))


async def deactivate_staff_member(pool: asyncpg.Pool, staff: Staff, staff_id: str, reason: str) -> DeactivateOut:
    """Their assignments stay in place and are listed as orphaned until someone is assigned instead."""
    sid = parse_id(staff_id, "staff member")
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.deactivate_staff_member(conn, sid)
        if row is None:
            raise not_found("staff member")
        orphaned = await repository.open_assignments_of(conn, sid)
        await _audit(conn, staff, "staff.deactivate", None, {
            "staff_id": str(sid), "orphaned_assignments": [str(a["id"]) for a in orphaned],
            "orphaned_cases": sorted({str(a["case_id"]) for a in orphaned})}, reason=reason)
    return DeactivateOut(staff=StaffMemberOut(**dict(row)), orphaned=[AssignmentOut(**dict(a)) for a in orphaned])


# ---------------------------------------------------------------- assignments

async def assign(pool: asyncpg.Pool, staff: Staff, case_id: str, body: AssignmentIn) -> AssignmentOut:
    """A change of person is recorded on the timeline (victim-visible for a contact person of the victim's four
    agencies: she learns she has someone new)."""
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        member = await repository.staff_member_brief(conn, body.staff_id)
        if member is None:
            raise field_error(["staff_id"], "no staff member with this id")
        if not member["active"]:
            raise field_error(["staff_id"], "this staff member is deactivated and cannot take on cases")
        if member["agency"] != body.agency:
            raise field_error(["agency"], f"this staff member works for {member['agency']}, not {body.agency}")
        current = await repository.current_assignment(conn, cid, body.agency, body.function)
        if current is not None and current["staff_id"] == body.staff_id:
            await repository.update_reach(conn, current["id"], body.how_to_reach, body.when_to_reach,
                                          body.how_to_reach_by_language)
            assignment_id, action = current["id"], "assignment.update"
        else:
            if current is not None:
                await repository.end_assignment(conn, current["id"], staff.actor, body.reason)
            assignment_id = await repository.insert_assignment(conn, cid, body.model_dump(), staff.actor)
            action = "assignment.assign"
            visible = body.function == "contact_person" and body.agency in VICTIM_AGENCIES
            await add_event(conn, cid, "contact_reassigned", visibility="victim" if visible else "internal",
                            actor=staff.actor, note=body.reason if not visible else None, detail={
                                "agency": body.agency, "function": body.function, "staff_id": str(body.staff_id),
                                "previous_staff_id": str(current["staff_id"]) if current else None})
        await _audit(conn, staff, action, cid, {
            "assignment_id": str(assignment_id), "agency": body.agency, "function": body.function,
            "staff_id": str(body.staff_id), "previous_staff_id": str(current["staff_id"]) if current else None,
        }, reason=body.reason)
        row = await repository.assignment(conn, assignment_id)
    return AssignmentOut(**dict(row))


async def _of_case(pool: asyncpg.Pool, case_id: str,
                   read: Callable[[asyncpg.Connection, uuid.UUID], Awaitable[list[asyncpg.Record]]]) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await read(conn, await case_or_404(conn, case_id))


async def list_assignments(pool: asyncpg.Pool, case_id: str) -> list[AssignmentOut]:
    return [AssignmentOut(**dict(r)) for r in await _of_case(pool, case_id, repository.current_assignments)]


async def orphaned_cases(pool: asyncpg.Pool, staff: Staff, grace_s: float, limit: int,
                         cursor: str | None) -> OrphanedList:
    after_at, after_id = decode_cursor(cursor)
    async with pool.acquire() as conn:
        cases = await repository.orphaned_cases(conn, await _viewer(conn, staff, grace_s), after_at, after_id, limit)
        shown = [r["case_id"] for r in cases[:limit]]
        assignments = await repository.orphaned_assignments(conn, shown)
        queued = await repository.queued_notices(conn, shown)
        owned = await repository.cases_with_director(conn, shown)
    by_case = {r["case_id"]: OrphanedCase(case_id=r["case_id"], case_reference=r["reference"], assignments=[],
                                          notices=[], missing_owner=r["case_id"] not in owned) for r in cases[:limit]}
    for a in assignments:
        by_case[a["case_id"]].assignments.append(AssignmentOut(**dict(a)))
    for n in queued:
        by_case[n["case_id"]].notices.append(NoticeOut(**dict(n)))
    return OrphanedList(items=list(by_case.values()), next_cursor=next_cursor(cases, limit))


async def staff_notices(pool: asyncpg.Pool, staff: Staff, grace_s: float, limit: int,
                        cursor: str | None) -> tuple[list[NoticeOut], str | None]:
    before_at, before_id = decode_cursor(cursor)
    async with pool.acquire() as conn:
        rows = await repository.staff_notices_for(conn, await _viewer(conn, staff, grace_s), before_at, before_id,
                                                  limit)
    return [NoticeOut(**dict(r)) for r in rows[:limit]], next_cursor(rows, limit)


# ---------------------------------------------------------------- contact agreements

async def create_agreement(pool: asyncpg.Pool, staff: Staff, case_id: str, body: AgreementIn) -> AgreementOut:
    now = datetime.now(timezone.utc)
    due = body.first_due_at.astimezone(timezone.utc) if body.first_due_at else now + timedelta(days=body.every_days)
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        row = await repository.insert_agreement(conn, cid, body.agency, body.every_days, body.channel, due,
                                                staff.actor)
        await _audit(conn, staff, "contact_agreement.create", cid, {
            "agreement_id": str(row["id"]), "agency": body.agency, "every_days": body.every_days,
            "channel": body.channel, "next_due_at": due.isoformat()})
    return AgreementOut(**dict(row))


async def list_agreements(pool: asyncpg.Pool, case_id: str) -> list[AgreementOut]:
    return [AgreementOut(**dict(r)) for r in await _of_case(pool, case_id, repository.agreements)]


async def _agreement(conn: asyncpg.Connection, case_id: str, agreement_id: str) -> tuple[uuid.UUID, asyncpg.Record]:
    cid = await case_or_404(conn, case_id, lock=True)
    row = await repository.lock_agreement(conn, cid, parse_id(agreement_id, "contact agreement"))
    if row is None:
        raise not_found("contact agreement")
    return cid, row


async def record_contact(pool: asyncpg.Pool, staff: Staff, case_id: str, agreement_id: str,
                         body: ContactIn) -> AgreementOut:
    at = body.contacted_at.astimezone(timezone.utc)
    if at > datetime.now(timezone.utc) + timedelta(minutes=5):
        raise field_error(["contacted_at"], "a contact cannot be recorded before it happened")
    async with pool.acquire() as conn, conn.transaction():
        cid, agreement = await _agreement(conn, case_id, agreement_id)
        if not agreement["active"]:
            raise conflict("this contact agreement has ended")
        last = max(filter(None, (agreement["last_contact_at"], at)))
        await repository.log_contact(conn, agreement["id"], at, body.channel or agreement["channel"], body.note,
                                     staff.actor)
        row = await repository.advance_agreement(conn, agreement["id"], last)
        await _audit(conn, staff, "contact_agreement.contact", cid, {
            "agreement_id": str(agreement["id"]), "contacted_at": at.isoformat(),
            "channel": body.channel or agreement["channel"], "next_due_at": row["next_due_at"].isoformat()})
    return AgreementOut(**dict(row))


async def end_agreement(pool: asyncpg.Pool, staff: Staff, case_id: str, agreement_id: str) -> AgreementOut:
    async with pool.acquire() as conn, conn.transaction():
        cid, agreement = await _agreement(conn, case_id, agreement_id)
        row = await repository.end_agreement(conn, agreement["id"])
        await _audit(conn, staff, "contact_agreement.end", cid, {"agreement_id": str(agreement["id"])})
    return AgreementOut(**dict(row))


async def fetch_overdue(conn: asyncpg.Connection | asyncpg.Pool, now: datetime, staff_id: uuid.UUID | None = None,
                        *, viewer: Staff | None = None, grace_s: float = 0.0, limit: int | None = None,
                        cursor: str | None = None) -> tuple[list[OverdueGroup], str | None]:
    """Active agreements past their next contact date, oldest first, grouped per the agency's current, active
    contact person (``staff_id`` null: nobody), groups by their oldest item. With ``viewer``, only cases the
    viewer may reach (need-to-know); with ``limit``, one page of agreements and the cursor of the next."""
    after_at, after_id = decode_cursor(cursor)
    rows = await repository.overdue_agreements(conn, now, staff_id, viewer.sub if viewer else None,
                                               viewer.role if viewer else None, grace_s, after_at, after_id, limit)
    groups: dict[uuid.UUID | None, OverdueGroup] = {}
    for r in rows[:limit]:
        group = groups.setdefault(r["staff_id"], OverdueGroup(staff_id=r["staff_id"], staff_name=r["staff_name"], items=[]))
        group.items.append(OverdueItem(
            agreement_id=r["agreement_id"], case_id=r["case_id"], case_reference=r["case_reference"],
            agency=r["agency"], every_days=r["every_days"], channel=r["channel"], next_due_at=r["next_due_at"],
            overdue_days=round((now - r["next_due_at"]) / timedelta(days=1), 2)))
    return list(groups.values()), None if limit is None else next_cursor(rows, limit)


async def overdue_for(pool: asyncpg.Pool, staff: Staff, now: datetime, grace_s: float, limit: int,
                      cursor: str | None) -> tuple[list[OverdueGroup], str | None]:
    """A contact person sees their own (nothing when not registered); others all they may reach."""
    async with pool.acquire() as conn:
        only: uuid.UUID | None = None
        if staff.role == "contact_person":
            me = await repository.staff_member_by_sub(conn, staff.sub)
            if me is None:
                return [], None
            only = me["id"]
        return await fetch_overdue(conn, now, only, viewer=staff, grace_s=grace_s, limit=limit, cursor=cursor)
