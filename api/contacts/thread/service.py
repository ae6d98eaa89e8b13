"""The thread's use cases. A staff message is stored and, in the same transaction, its push is enqueued as the
victim's channel, quiet hours and the case policy allow (api/contacts/notices); the lock screen says only who
wrote, never what. Staff see each message's ``push_status`` and its ``deliveries`` (push, SMS). A victim's
message becomes a ``victim_message`` notice for each of the case's active contact persons, or its case directors,
or its agency's queue.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from notifications.outbox import Outbox
from api import messages
from api.auth.principals import Staff, VictimDevice
from api.contacts import repository as contacts
from api.contacts.notices import service as notices
from api.contacts.thread import repository
from api.contacts.thread.schemas import MessageOut, MessagePage
from api.platform.problems import Problem, not_found
from api.cases.service import case_or_404
from api.platform.staff_common import decode_cursor, next_cursor, parse_id
from api.privacy import audit
from notifications.outbox import deliveries_by_message

READ_PAGE = 500  # a read receipt answers with the thread, up to this many messages


def message_out(row: asyncpg.Record, deliveries: list[dict] | None = None) -> MessageOut:
    return MessageOut(**{k: v for k, v in dict(row).items() if k not in ("case_id", "message_key")},
                      deliveries=deliveries)


async def _page(conn: asyncpg.Connection | asyncpg.Pool, case_id: uuid.UUID, limit: int, cursor: str | None,
                *, for_staff: bool = False) -> MessagePage:
    """Oldest first. Staff also see how each message to the victim was delivered."""
    after_at, after_id = decode_cursor(cursor)
    rows = await repository.page(conn, case_id, limit, after_at, after_id)
    shown = rows[:limit]
    if not for_staff:
        return MessagePage(items=[message_out(r) for r in shown], next_cursor=next_cursor(rows, limit))
    sent = await deliveries_by_message(conn, [r["message_key"] for r in shown if r["message_key"]])
    return MessagePage(items=[message_out(r, sent.get(r["message_key"], []) if r["sender"] == "staff" else None)
                              for r in shown], next_cursor=next_cursor(rows, limit))


async def _push_message(conn: asyncpg.Connection, outbox: Outbox, case_id: uuid.UUID, message_id: uuid.UUID, agency: str) -> None:
    """Push a stored staff message as her preferences allow, and record on it what happened."""
    language = messages.resolve(await notices.victim_language(conn, case_id))
    sender = messages.text(language, f"agency.{agency}")
    status, why = await notices.push_to_victim(
        conn, outbox, case_id, message_key=message_id, purpose="message", urgency="important",
        title=messages.text(language, "notice.new_message.title"),
        body=messages.text(language, "notice.new_message.body", agency=sender), language=language,
        data={"message_id": str(message_id), "kind": "message"})
    await repository.set_push(conn, message_id, status, why)


async def _mark_read(conn: asyncpg.Connection, case_id: uuid.UUID, message_id: str, *, by_victim: bool,
                     reader: str) -> datetime:
    """Mark the message and every earlier one from the other side as read; returns the message's created_at."""
    mid = parse_id(message_id, "message")
    created = await repository.created_at(conn, case_id, mid, "staff" if by_victim else "victim")
    if created is None:
        raise not_found("message")
    if by_victim:
        await repository.mark_read_by_victim(conn, case_id, created)
    else:
        await repository.mark_read_by_staff(conn, case_id, created, reader)
    return created


# ---------------------------------------------------------------- the victim's side

async def victim_thread(pool: asyncpg.Pool, victim: VictimDevice, limit: int, cursor: str | None) -> MessagePage:
    return await _page(pool, victim.case_id, limit, cursor)


async def send_from_victim(pool: asyncpg.Pool, outbox: Outbox, victim: VictimDevice, body: str) -> MessageOut:
    async with pool.acquire() as conn, conn.transaction():
        message_id = await repository.insert_from_victim(conn, victim.case_id, body)
        for staff_id, agency in await notices.recipients(conn, victim.case_id, "contact_person"):
            await notices.tell_staff(conn, outbox, staff_id, victim.case_id, "victim_message", f"msg:{message_id}",
                                     {"message_id": str(message_id)}, agency=agency)
        await audit.record(conn, actor=victim.actor, role="victim_app", action="message.victim",
                           case_id=victim.case_id, detail={"message_id": str(message_id)})
        out = await repository.one(conn, message_id)
    return message_out(out)


async def read_by_victim(pool: asyncpg.Pool, victim: VictimDevice, message_id: str) -> MessagePage:
    async with pool.acquire() as conn, conn.transaction():
        await _mark_read(conn, victim.case_id, message_id, by_victim=True, reader="victim")
    return await _page(pool, victim.case_id, READ_PAGE, None)


# ---------------------------------------------------------------- the monitoring room

async def record_from_monitoring_room(conn: asyncpg.Connection, case_id: uuid.UUID, alert_id: uuid.UUID,
                                      author: str, body: str, message_key: uuid.UUID) -> None:
    """An operator's message from an alert, already pushed (or not) with the alert's change: it lands in her
    thread too, linked to that push by ``message_key``, so she reads it even when the push failed."""
    pushed = await repository.enqueued(conn, message_key)
    await repository.insert_from_monitoring_room(
        conn, case_id, alert_id, author, body, "enqueued" if pushed else "not_pushed",
        None if pushed else "case_policy_no_victim_notifications", message_key)


# ---------------------------------------------------------------- the staff side

async def staff_thread(pool: asyncpg.Pool, case_id: str, limit: int, cursor: str | None) -> MessagePage:
    async with pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        return await _page(conn, cid, limit, cursor, for_staff=True)


async def send_from_staff(pool: asyncpg.Pool, outbox: Outbox, staff: Staff, case_id: str, body: str) -> MessageOut:
    """Only a registered, active staff member may write: the victim must see who writes."""
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        me = await contacts.staff_member_by_sub(conn, staff.sub)
        if me is None or not me["active"]:
            raise Problem(403, "Forbidden", "only a registered, active staff member may write to the victim "
                                            "(POST /v1/staff registers one)")
        mid = uuid.uuid4()
        await repository.insert_from_staff(conn, mid, cid, me["id"], me["display_name"], body)
        await _push_message(conn, outbox, cid, mid, me["agency"])
        await audit.record(conn, actor=staff.actor, role=staff.role, action="message.staff", case_id=cid,
                           detail={"message_id": str(mid), "staff_id": str(me["id"])})
        out = await repository.one(conn, mid)
        sent = await deliveries_by_message(conn, [mid])
    return message_out(out, sent.get(mid, []))


async def read_by_staff(pool: asyncpg.Pool, staff: Staff, case_id: str, message_id: str) -> MessagePage:
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id)
        await _mark_read(conn, cid, message_id, by_victim=False, reader=staff.actor)
    return await _page(pool, cid, READ_PAGE, None, for_staff=True)
