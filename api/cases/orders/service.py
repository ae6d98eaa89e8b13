"""Order use cases: impose an order, list a case's orders, and its term after it is imposed.

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

from notifications.outbox import Outbox
from api.auth.principals import Staff
from api.cases import repository as cases
from api.cases.orders import repository
from api.cases.orders.schemas import BEHAVIOURAL_ORDER_MAX, OrderCreate
from api.cases.service import case_or_404, changed, page_of_parts
from api.cases.timeline.service import add_event
from api.contacts.reminders import tell_victim_about_order
from api.contacts.schemas import ExtensionIn, LetGoIn
from api.platform.problems import conflict, field_error, not_found
from api.platform.staff_common import decode_cursor, parse_id

MAX_EXTENSIONS = {"behavioural_order": 3}
MAX_PERIOD = {"behavioural_order": BEHAVIOURAL_ORDER_MAX}


async def create_order(pool: asyncpg.Pool, staff: Staff, case_id: str, body: OrderCreate) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        row = await repository.insert_order(
            conn, cid, body.kind, body.reference, body.valid_from.astimezone(timezone.utc),
            body.valid_until.astimezone(timezone.utc) if body.valid_until else None, staff.actor, body.legal_basis)
        # On her timeline from the day it takes effect: which protection, until when (rendered in her language).
        await add_event(conn, cid, "order_imposed", visibility="victim", actor=staff.actor,
                        occurred_at=row["valid_from"], detail={
                            "order_id": str(row["id"]), "order_kind": row["kind"],
                            **({"until": row["valid_until"].isoformat()} if row["valid_until"] else {})})
        await changed(conn, staff, "order.create", cid, {
            "order_id": str(row["id"]), "kind": body.kind, "reference": body.reference,
            "valid_from": row["valid_from"].isoformat(),
            "valid_until": row["valid_until"].isoformat() if row["valid_until"] else None,
            "legal_basis": body.legal_basis,
        })
        return row


async def list_orders(pool: asyncpg.Pool, case_id: str, limit: int, cursor: str | None) -> list[asyncpg.Record]:
    return await page_of_parts(pool, case_id, repository.fetch_orders, limit, cursor)


async def ending(pool: asyncpg.Pool, staff: Staff, now: datetime, within: timedelta, grace_s: float, limit: int,
                 cursor: str | None) -> list[dict[str, Any]]:
    """The work list of orders ending within ``within`` (need-to-know filtered), each with what was decided:
    extended (within the same span), let go (with the reason), or nothing yet; ``limit + 1`` rows."""
    after_at, after_id = decode_cursor(cursor)
    async with pool.acquire() as conn:
        rows = await repository.orders_ending(conn, now, within.total_seconds(), staff.sub, staff.role, grace_s,
                                              after_at, after_id, limit)
    out = []
    for r in rows:
        extended = r["extended_at"] is not None and r["extended_at"] > now - within
        limit_n = MAX_EXTENSIONS.get(r["kind"])
        out.append({**dict(r), "decision": "let_go" if r["let_go_at"] else "extended" if extended else None,
                    "extended_at": r["extended_at"] if extended else None,
                    "extension_reference": r["extension_reference"] if extended else None,
                    "extensions_left": None if limit_n is None else max(0, limit_n - r["extension_count"])})
    return out


def _lapsed(order: asyncpg.Record, now: datetime) -> bool:
    """Past its end, or already ended by the scheduler (operator and victim told): either way it is over."""
    until = order["valid_until"]
    return until is not None and (until <= now or order["expiry_handled_until"] == until)


async def _order(conn: asyncpg.Connection, case_id: str, order_id: str) -> tuple[uuid.UUID, asyncpg.Record]:
    cid = await case_or_404(conn, case_id, lock=True)
    row = await repository.lock_order(conn, parse_id(order_id, "order"), cid)
    if row is None:
        raise not_found("order")
    return cid, row


async def _tell_victim(conn: asyncpg.Connection, outbox: Outbox, order: Any, kind: str, key: str, urgency: str) -> None:
    if await cases.victim_exists(conn, order["case_id"]):
        await tell_victim_about_order(conn, outbox, order, kind, key, urgency)


def _days(delta: timedelta) -> str:
    return f"{delta / timedelta(days=1):.1f}"


def _check_extension(order: asyncpg.Record, new_until: datetime, now: datetime) -> None:
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


async def extend_order(pool: asyncpg.Pool, outbox: Outbox, staff: Staff, case_id: str, order_id: str,
                       body: ExtensionIn) -> asyncpg.Record:
    new_until = body.valid_until.astimezone(timezone.utc)
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn, conn.transaction():
        cid, order = await _order(conn, case_id, order_id)
        _check_extension(order, new_until, now)
        current = order["valid_until"]
        n = order["extension_count"] + 1
        ext = await repository.insert_extension(conn, order["id"], n, current, new_until, body.reference, staff.actor)
        await repository.extend(conn, order["id"], new_until, n)
        await add_event(conn, cid, "order_extended", visibility="victim", actor=staff.actor, detail={
            "order_id": str(order["id"]), "order_kind": order["kind"], "until": new_until.isoformat()})
        await _tell_victim(conn, outbox, {**dict(order), "valid_until": new_until}, "order_extended", f"ext:{ext['id']}",
                           "update")
        # The engine enforces by valid_until: reload the case so the new end takes effect at once.
        await changed(conn, staff, "order.extend", cid, {
            "order_id": str(order["id"]), "n": n, "previous_until": current.isoformat(),
            "valid_until": new_until.isoformat(), "reference": body.reference})
        return ext


async def list_extensions(pool: asyncpg.Pool, case_id: str, order_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        oid = parse_id(order_id, "order")
        if await repository.order_kind(conn, oid, cid) is None:
            raise not_found("order")
        return await repository.fetch_extensions(conn, oid)


async def let_go(pool: asyncpg.Pool, outbox: Outbox, staff: Staff, case_id: str, order_id: str, body: LetGoIn) -> asyncpg.Record:
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn, conn.transaction():
        cid, order = await _order(conn, case_id, order_id)
        if order["valid_until"] is None:
            raise field_error(["order_id"], "this order runs until further notice: it has no end to let pass")
        if _lapsed(order, now):
            raise conflict("this order has already expired")
        row = await repository.let_go(conn, order["id"], staff.actor, body.reason)
        # Victim-visible without a note: she learns the decision, never the staff's reason (kept on the order
        # and in the audit log).
        await add_event(conn, cid, "order_let_go", visibility="victim", actor=staff.actor, detail={
            "order_id": str(order["id"]), "order_kind": order["kind"], "until": order["valid_until"].isoformat()})
        await _tell_victim(conn, outbox, order, "order_will_lapse", f"let_go:{order['id']}:{order['valid_until'].isoformat()}",
                           "important")
        await changed(conn, staff, "order.let_go", cid, {"order_id": str(order["id"])}, reason=body.reason)
        return row
