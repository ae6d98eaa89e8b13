"""The message thread between the victim and her contact persons, with read receipts both ways.

Victim side under ``/v1/me/messages``, staff side under ``/v1/cases/{case_id}/messages``. A staff message is
recorded with ``push_status = 'pending'``: the push itself is the notifications outbox's job (it has no generic
enqueue for non-alert messages yet, so the pending rows are its work list). A victim's message becomes a
``victim_message`` notice for each of the case's active contact persons.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends

from api import audit
from api.auth import Staff, VictimDep, require_staff
from api.problems import Problem, not_found
from api.routers.staff_common import Ctx, Limit, ReadStaff, case_or_404, decode_cursor, next_cursor, parse_id
from api.schemas.case_status import MessageIn, MessageOut, MessagePage

victim_router = APIRouter(prefix="/v1/me", tags=["victim app"])
staff_router = APIRouter(prefix="/v1/cases", tags=["messages"])

InformStaff = Annotated[Staff, Depends(require_staff("case_director", "contact_person"))]

_SELECT = """
SELECT m.id, m.case_id, m.sender, m.author, s.agency, m.body, m.created_at, m.read_by_victim_at, m.read_by_staff_at,
       m.push_status
FROM case_messages m LEFT JOIN staff_members s ON s.id = m.staff_id
"""


def message_out(row: asyncpg.Record) -> MessageOut:
    return MessageOut(**{k: v for k, v in dict(row).items() if k != "case_id"})


async def _page(conn: asyncpg.Connection | asyncpg.Pool, case_id: uuid.UUID, limit: int, cursor: str | None) -> MessagePage:
    """Oldest first, keyset on (created_at, id)."""
    after_at, after_id = decode_cursor(cursor)
    rows = await conn.fetch(
        _SELECT + " WHERE m.case_id = $1 AND ($2::timestamptz IS NULL OR (m.created_at, m.id) > ($2, $3))"
        " ORDER BY m.created_at, m.id LIMIT $4", case_id, after_at, after_id, limit + 1)
    return MessagePage(items=[message_out(r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))


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
        contacts = await conn.fetch(
            "SELECT DISTINCT a.staff_id FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id"
            " WHERE a.case_id = $1 AND a.function = 'contact_person' AND a.ended_at IS NULL AND s.active", dev.case_id)
        await conn.executemany(
            "INSERT INTO staff_notices (id, staff_id, case_id, kind, dedupe_key, payload)"
            " VALUES ($1, $2, $3, 'victim_message', $4, $5) ON CONFLICT (dedupe_key) DO NOTHING",
            [(uuid.uuid4(), c["staff_id"], dev.case_id, f"msg:{row['id']}:{c['staff_id']}",
              {"message_id": str(row["id"])}) for c in contacts])
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
        return await _page(conn, cid, limit, cursor)


@staff_router.post("/{case_id}/messages", status_code=201, response_model=MessageOut)
async def post_message(case_id: str, body: MessageIn, ctx: Ctx, staff: InformStaff) -> MessageOut:
    """Write to the victim. Only a registered, active staff member may: the victim must see who writes."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        me = await conn.fetchrow("SELECT id, display_name, agency, active FROM staff_members WHERE sub = $1", staff.sub)
        if me is None or not me["active"]:
            raise Problem(403, "Forbidden", "only a registered, active staff member may write to the victim "
                                            "(POST /v1/staff registers one)")
        row = await conn.fetchrow(
            "INSERT INTO case_messages (id, case_id, sender, staff_id, author, body, push_status)"
            " VALUES ($1, $2, 'staff', $3, $4, $5, 'pending') RETURNING id",
            uuid.uuid4(), cid, me["id"], me["display_name"], body.body)
        await audit.record(conn, actor=staff.actor, role=staff.role, action="message.staff", case_id=cid,
                           detail={"message_id": str(row["id"]), "staff_id": str(me["id"])})
        out = await conn.fetchrow(_SELECT + " WHERE m.id = $1", row["id"])
    return message_out(out)


@staff_router.post("/{case_id}/messages/{message_id}/read", response_model=MessagePage)
async def staff_read(case_id: str, message_id: str, ctx: Ctx, staff: InformStaff) -> MessagePage:
    """Staff have read this victim message (and every earlier one); the victim sees ``read_by_staff_at``."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id)
        await _mark_read(conn, cid, message_id, by_victim=False, reader=staff.actor)
    return await _page(ctx.pool, cid, 500, None)

