"""The message thread between the victim and her contact persons, with read receipts both ways.

Victim side under ``/v1/me/messages``, staff side under ``/v1/cases/{case_id}/messages``. A staff message is
stored in the thread and, in the same transaction, its push is enqueued as the victim's channel, quiet hours and
the case policy allow (api/contacts/notices.py); the lock screen says only who wrote, never what. Staff see each
message's ``push_status`` and its ``deliveries`` (push, SMS). An operator's message to the victim from an alert
(api/alerts/action_endpoints.py) lands in the same thread. A victim's message becomes a ``victim_message`` notice
for each of the case's active contact persons, or its case directors, or its agency's queue.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends

from api import messages
from api.privacy import audit
from api.contacts import notices
from api.auth.principals import Staff, VictimDep, require_staff
from api.platform.problems import Problem, not_found
from api.platform.staff_common import Ctx, Limit, ReadStaff, case_or_404, decode_cursor, next_cursor, parse_id
from api.victim.case_endpoints import fetch_notices
from api.contacts.schemas import MessageIn, MessageOut, MessagePage, StaffVictimNotice, StaffVictimNoticePage
from notifications import outbox
from notifications.outbox import Outbox

victim_router = APIRouter(prefix="/v1/me", tags=["victim app"])
staff_router = APIRouter(prefix="/v1/cases", tags=["messages"])

InformStaff = Annotated[Staff, Depends(require_staff("case_director", "contact_person"))]

_SELECT = """
SELECT m.id, m.case_id, m.sender, m.author, s.agency, m.body, m.created_at, m.read_by_victim_at, m.read_by_staff_at,
       m.push_status, m.push_detail, m.message_key
FROM case_messages m LEFT JOIN staff_members s ON s.id = m.staff_id
"""


def message_out(row: asyncpg.Record, deliveries: list[dict] | None = None) -> MessageOut:
    return MessageOut(**{k: v for k, v in dict(row).items() if k not in ("case_id", "message_key")},
                      deliveries=deliveries)


async def _page(conn: asyncpg.Connection | asyncpg.Pool, case_id: uuid.UUID, limit: int, cursor: str | None,
                *, for_staff: bool = False) -> MessagePage:
    """Oldest first, keyset on (created_at, id). Staff also see how each message to the victim was delivered."""
    after_at, after_id = decode_cursor(cursor)
    rows = await conn.fetch(
        _SELECT + " WHERE m.case_id = $1 AND ($2::timestamptz IS NULL OR (m.created_at, m.id) > ($2, $3))"
        " ORDER BY m.created_at, m.id LIMIT $4", case_id, after_at, after_id, limit + 1)
    shown = rows[:limit]
    if not for_staff:
        return MessagePage(items=[message_out(r) for r in shown], next_cursor=next_cursor(rows, limit))
    sent = await outbox.deliveries_by_message(conn, [r["message_key"] for r in shown if r["message_key"]])
    return MessagePage(items=[message_out(r, sent.get(r["message_key"], []) if r["sender"] == "staff" else None)
                              for r in shown], next_cursor=next_cursor(rows, limit))


async def _push_message(conn: asyncpg.Connection, outbox: Outbox, case_id: uuid.UUID, message_id: uuid.UUID,
                        agency: str) -> None:
    """Push a stored staff message as her preferences allow, and record on it what happened."""
    language = messages.resolve(await notices.victim_language(conn, case_id))
    sender = messages.text(language, f"agency.{agency}")
    status, why = await notices.push_to_victim(
        conn, outbox, case_id, message_key=message_id, purpose="message", urgency="important",
        title=messages.text(language, "notice.new_message.title"),
        body=messages.text(language, "notice.new_message.body", agency=sender), language=language,
        data={"message_id": str(message_id), "kind": "message"})
    await conn.execute("UPDATE case_messages SET push_status = $2, push_detail = $3 WHERE id = $1",
                       message_id, status, why)


async def _mark_read(conn: asyncpg.Connection, case_id: uuid.UUID, message_id: str, *, by_victim: bool,
                     reader: str) -> datetime:
    """Mark the message and every earlier one from the other side as read; returns the message's created_at."""
    mid = parse_id(message_id, "message")
    other = "staff" if by_victim else "victim"
    created = await conn.fetchval("SELECT created_at FROM case_messages WHERE id = $1 AND case_id = $2 AND sender = $3",
                                  mid, case_id, other)
    if created is None:
        raise not_found("message")
    if by_victim:
        await conn.execute("UPDATE case_messages SET read_by_victim_at = now() WHERE case_id = $1 AND sender = 'staff'"
                           " AND read_by_victim_at IS NULL AND created_at <= $2", case_id, created)
    else:
        await conn.execute("UPDATE case_messages SET read_by_staff_at = now(), read_by_staff = $3 WHERE case_id = $1"
                           " AND sender = 'victim' AND read_by_staff_at IS NULL AND created_at <= $2",
                           case_id, created, reader)
    return created


# ---------------------------------------------------------------- victim side

@victim_router.get("/messages", response_model=MessagePage)
async def my_messages(ctx: Ctx, dev: VictimDep, limit: Limit = 100, cursor: str | None = None) -> MessagePage:
    return await _page(ctx.pool, dev.case_id, limit, cursor)


@victim_router.post("/messages", status_code=201, response_model=MessageOut)
async def send_message(body: MessageIn, ctx: Ctx, dev: VictimDep) -> MessageOut:
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO case_messages (id, case_id, sender, author, body) VALUES ($1, $2, 'victim', 'victim', $3)"
            " RETURNING id", uuid.uuid4(), dev.case_id, body.body)
        for staff_id, agency in await notices.recipients(conn, dev.case_id, "contact_person"):
            await notices.tell_staff(conn, ctx.outbox, staff_id, dev.case_id, "victim_message", f"msg:{row['id']}",
                                     {"message_id": str(row["id"])}, agency=agency)
        await audit.record(conn, actor=dev.actor, role="victim_app", action="message.victim", case_id=dev.case_id,
                           detail={"message_id": str(row["id"])})
        out = await conn.fetchrow(_SELECT + " WHERE m.id = $1", row["id"])
    return message_out(out)


@victim_router.post("/messages/{message_id}/read", response_model=MessagePage)
async def victim_read(message_id: str, ctx: Ctx, dev: VictimDep) -> MessagePage:
    """The victim has read this staff message (and every earlier one); returns the thread."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        await _mark_read(conn, dev.case_id, message_id, by_victim=True, reader="victim")
    return await _page(ctx.pool, dev.case_id, 500, None)


# ---------------------------------------------------------------- staff side

@staff_router.get("/{case_id}/messages", response_model=MessagePage)
async def case_messages(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100,
                        cursor: str | None = None) -> MessagePage:
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        return await _page(conn, cid, limit, cursor, for_staff=True)


@staff_router.post("/{case_id}/messages", status_code=201, response_model=MessageOut)
async def post_message(case_id: str, body: MessageIn, ctx: Ctx, staff: InformStaff) -> MessageOut:
    """Write to the victim. Only a registered, active staff member may: the victim must see who writes."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        me = await conn.fetchrow("SELECT id, display_name, agency, active FROM staff_members WHERE sub = $1", staff.sub)
        if me is None or not me["active"]:
            raise Problem(403, "Forbidden", "only a registered, active staff member may write to the victim "
                                            "(POST /v1/staff registers one)")
        mid = uuid.uuid4()
        row = await conn.fetchrow(
            "INSERT INTO case_messages (id, case_id, sender, staff_id, author, body, push_status, message_key)"
            " VALUES ($1, $2, 'staff', $3, $4, $5, 'pending', $1) RETURNING id",
            mid, cid, me["id"], me["display_name"], body.body)
        await _push_message(conn, ctx.outbox, cid, mid, me["agency"])
        await audit.record(conn, actor=staff.actor, role=staff.role, action="message.staff", case_id=cid,
                           detail={"message_id": str(row["id"]), "staff_id": str(me["id"])})
        out = await conn.fetchrow(_SELECT + " WHERE m.id = $1", row["id"])
        sent = await outbox.deliveries_by_message(conn, [mid])
    return message_out(out, sent.get(mid, []))


@staff_router.post("/{case_id}/messages/{message_id}/read", response_model=MessagePage)
async def staff_read(case_id: str, message_id: str, ctx: Ctx, staff: InformStaff) -> MessagePage:
    """Staff have read this victim message (and every earlier one); the victim sees ``read_by_staff_at``."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id)
        await _mark_read(conn, cid, message_id, by_victim=False, reader=staff.actor)
    return await _page(ctx.pool, cid, 500, None, for_staff=True)



@staff_router.get("/{case_id}/victim-notices", response_model=StaffVictimNoticePage)
async def victim_notices(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100,
                         cursor: str | None = None) -> StaffVictimNoticePage:
    """What the victim was told outside the thread, newest first, each with how it was delivered: pushed,
    waiting for her quiet hours, not pushed because of her channel, fallen back to SMS."""
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        rows = await fetch_notices(conn, cid, limit, cursor)
        sent = await outbox.deliveries_by_message(conn, [r["id"] for r in rows[:limit]])
    return StaffVictimNoticePage(
        items=[StaffVictimNotice(**dict(r), deliveries=sent.get(r["id"], [])) for r in rows[:limit]],
        next_cursor=next_cursor(rows, limit))
