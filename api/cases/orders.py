"""Orders of a case: the legal basis (contact ban, zone bans, behavioural order, …) and its term."""

from __future__ import annotations

import uuid
from datetime import timezone

import asyncpg
from fastapi import APIRouter

from api.cases.service import case_or_404, changed
from api.platform.staff_common import Ctx, Limit, ReadStaff, WriteStaff, decode_cursor, next_cursor
from api.cases.timeline.service import add_event
from api.cases.schemas import OrderCreate, OrderOut, OrderPage

router = APIRouter(tags=["orders"])  # mounted under /v1/cases by cases.py

_COLUMNS = ("id, case_id, kind, reference, valid_from, valid_until, created_at, created_by, legal_basis, extension_count,"
            " let_go_at, let_go_reason")


def order_out(row: asyncpg.Record) -> OrderOut:
    return OrderOut(**dict(row))


async def fetch_orders(conn: asyncpg.Connection, case_id: uuid.UUID, limit: int | None = None,
                       cursor: str | None = None) -> list[asyncpg.Record]:
    after_at, after_id = decode_cursor(cursor)
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM orders WHERE case_id = $1"
        " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4",
        case_id, after_at, after_id, None if limit is None else limit + 1,
    )


@router.post("/{case_id}/orders", status_code=201, response_model=OrderOut)
async def create_order(case_id: str, body: OrderCreate, ctx: Ctx, staff: WriteStaff) -> OrderOut:
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        row = await conn.fetchrow(
            f"INSERT INTO orders (id, case_id, kind, reference, valid_from, valid_until, created_by, legal_basis)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}",
            uuid.uuid4(), cid, body.kind, body.reference, body.valid_from.astimezone(timezone.utc),
            body.valid_until.astimezone(timezone.utc) if body.valid_until else None, staff.actor, body.legal_basis,
        )
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
    return order_out(row)


@router.get("/{case_id}/orders", response_model=OrderPage)
async def list_orders(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None) -> OrderPage:
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        rows = await fetch_orders(conn, cid, limit, cursor)
    return OrderPage(items=[order_out(r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))
