"""An order's term after it is imposed: extensions, and the deliberate decision to let it lapse.

An extension moves the order's ``valid_until`` in place (its zones stay attached to it) and is kept as a row of
``order_extensions``. A behavioural order (gedragsaanwijzing) runs at most 90 days per period and can be
extended at most three times; anything else is refused with a 422 that says why. Letting an order go records
the reason and stops the expiry reminders (api/contacts/reminders.py); the order still runs to its end.

The victim is told of either decision by a notice in her language from a template (which order, until when,
whom to contact); the staff's reason stays with staff.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from fastapi import APIRouter

from api.contacts.reminders import tell_victim_about_order
from api.platform.problems import conflict, field_error, not_found
from api.cases.orders import _COLUMNS as ORDER_COLUMNS
from api.cases.orders import order_out
from api.platform.staff_common import Ctx, ReadStaff, WriteStaff, case_or_404, changed, parse_id
from api.cases.timeline import add_event
from api.contacts.schemas import ExtensionIn, ExtensionList, ExtensionOut, LetGoIn
from api.cases.schemas import BEHAVIOURAL_ORDER_MAX, OrderOut
from notifications.outbox import Outbox

router = APIRouter(prefix="/v1/cases", tags=["orders"])

MAX_EXTENSIONS = {"behavioural_order": 3}
MAX_PERIOD = {"behavioural_order": BEHAVIOURAL_ORDER_MAX}
_EXT_COLUMNS = "id, order_id, n, previous_until, valid_until, reference, created_at, created_by"


def _lapsed(order: asyncpg.Record, now: datetime) -> bool:
    """Past its end, or already ended by the scheduler (operator and victim told): either way it is over."""
    until = order["valid_until"]
    return until is not None and (until <= now or order["expiry_handled_until"] == until)


async def _order(conn: asyncpg.Connection, case_id: str, order_id: str) -> tuple[uuid.UUID, asyncpg.Record]:
    cid = await case_or_404(conn, case_id, lock=True)
    row = await conn.fetchrow(f"SELECT {ORDER_COLUMNS}, expiry_handled_until FROM orders WHERE id = $1 AND case_id = $2"
                              " FOR UPDATE",
                              parse_id(order_id, "order"), cid)
    if row is None:
        raise not_found("order")
    return cid, row


async def _tell_victim(conn: asyncpg.Connection, outbox: Outbox, order: Any, kind: str, key: str,
                       urgency: str) -> None:
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM parties WHERE case_id = $1 AND role = 'victim')",
                           order["case_id"]):
        await tell_victim_about_order(conn, outbox, order, kind, key, urgency)


def _days(delta: timedelta) -> str:
    return f"{delta / timedelta(days=1):.1f}"


@router.post("/{case_id}/orders/{order_id}/extensions", status_code=201, response_model=ExtensionOut)
async def extend_order(case_id: str, order_id: str, body: ExtensionIn, ctx: Ctx, staff: WriteStaff) -> ExtensionOut:
    new_until = body.valid_until.astimezone(timezone.utc)
    now = datetime.now(timezone.utc)
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid, order = await _order(conn, case_id, order_id)
        current = order["valid_until"]
        kind = order["kind"]
        if current is None:
            raise field_error(["valid_until"], "this order runs until further notice: there is nothing to extend")
        if _lapsed(order, now):
            raise field_error(["valid_until"], f"this order expired at {current.isoformat()}; a lapsed order cannot be"
                                               " extended: impose a new one")
        if new_until <= current:
            raise field_error(["valid_until"], f"an extension must end after the current end ({current.isoformat()})")
        limit = MAX_EXTENSIONS.get(kind)
        if limit is not None and order["extension_count"] >= limit:
            raise field_error(["valid_until"], f"a {kind.replace('_', ' ')} can be extended at most {limit} times;"
                                               f" this one has been extended {order['extension_count']} times")
        period = MAX_PERIOD.get(kind)
        if period is not None and new_until - current > period:
            raise field_error(["valid_until"], f"a {kind.replace('_', ' ')} runs at most {period.days} days per period;"
                                               f" this extension runs {_days(new_until - current)} days")
        n = order["extension_count"] + 1
        ext = await conn.fetchrow(
            f"INSERT INTO order_extensions (id, order_id, n, previous_until, valid_until, reference, created_by)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_EXT_COLUMNS}",
            uuid.uuid4(), order["id"], n, current, new_until, body.reference, staff.actor)
        # A granted extension overrides an earlier decision to let the order go.
        await conn.execute("UPDATE orders SET valid_until = $2, extension_count = $3, let_go_at = NULL,"
                           " let_go_by = NULL, let_go_reason = NULL WHERE id = $1", order["id"], new_until, n)
        await add_event(conn, cid, "order_extended", visibility="victim", actor=staff.actor, detail={
            "order_id": str(order["id"]), "order_kind": kind, "until": new_until.isoformat()})
        await _tell_victim(conn, ctx.outbox, {**dict(order), "valid_until": new_until}, "order_extended",
                           f"ext:{ext['id']}", "update")
        # The engine enforces by valid_until: reload the case so the new end takes effect at once.
        await changed(conn, staff, "order.extend", cid, {
            "order_id": str(order["id"]), "n": n, "previous_until": current.isoformat(),
            "valid_until": new_until.isoformat(), "reference": body.reference})
    return ExtensionOut(**dict(ext))


@router.get("/{case_id}/orders/{order_id}/extensions", response_model=ExtensionList)
async def list_extensions(case_id: str, order_id: str, ctx: Ctx, staff: ReadStaff) -> ExtensionList:
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        oid = parse_id(order_id, "order")
        if await conn.fetchval("SELECT id FROM orders WHERE id = $1 AND case_id = $2", oid, cid) is None:
            raise not_found("order")
        rows = await conn.fetch(f"SELECT {_EXT_COLUMNS} FROM order_extensions WHERE order_id = $1 ORDER BY n", oid)
    return ExtensionList(items=[ExtensionOut(**dict(r)) for r in rows])


@router.post("/{case_id}/orders/{order_id}/let-go", response_model=OrderOut)
async def let_go(case_id: str, order_id: str, body: LetGoIn, ctx: Ctx, staff: WriteStaff) -> OrderOut:
    """Decide not to extend: the reminders stop, the reason is kept, the order runs to its end and then expires
    as any other (operator and victim are told)."""
    now = datetime.now(timezone.utc)
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid, order = await _order(conn, case_id, order_id)
        if order["valid_until"] is None:
            raise field_error(["order_id"], "this order runs until further notice: it has no end to let pass")
        if _lapsed(order, now):
            raise conflict("this order has already expired")
        row = await conn.fetchrow(
            f"UPDATE orders SET let_go_at = now(), let_go_by = $2, let_go_reason = $3 WHERE id = $1"
            f" RETURNING {ORDER_COLUMNS}", order["id"], staff.actor, body.reason)
        # Victim-visible without a note: she learns the decision, never the staff's reason (kept on the order
        # and in the audit log).
        await add_event(conn, cid, "order_let_go", visibility="victim", actor=staff.actor, detail={
            "order_id": str(order["id"]), "order_kind": order["kind"], "until": order["valid_until"].isoformat()})
        await _tell_victim(conn, ctx.outbox, order, "order_will_lapse",
                           f"let_go:{order['id']}:{order['valid_until'].isoformat()}", "important")
        await changed(conn, staff, "order.let_go", cid, {"order_id": str(order["id"])}, reason=body.reason)
    return order_out(row)
