"""Orders of a case (mounted under /v1/cases by api/cases/endpoints.py) and an order's term (``terms_router``:
extensions and letting an order go)."""

from __future__ import annotations

import asyncpg
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from api.cases.orders import service
from api.cases.orders.schemas import EndingOrder, EndingPage, OrderCreate, OrderOut, OrderPage
from api.contacts.schemas import ExtensionIn, ExtensionList, ExtensionOut, LetGoIn
from api.platform.staff_common import Ctx, InformStaff, Limit, ReadStaff, WriteStaff, next_cursor

router = APIRouter(tags=["orders"])
terms_router = APIRouter(prefix="/v1/cases", tags=["orders"])
worklist_router = APIRouter(prefix="/v1/orders", tags=["orders"])


def order_out(row: asyncpg.Record) -> OrderOut:
    return OrderOut(**dict(row))


@router.post("/{case_id}/orders", status_code=201, response_model=OrderOut)
async def create_order(case_id: str, body: OrderCreate, ctx: Ctx, staff: WriteStaff) -> OrderOut:
    return order_out(await service.create_order(ctx.pool, staff, case_id, body))


@router.get("/{case_id}/orders", response_model=OrderPage)
async def list_orders(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None) -> OrderPage:
    rows = await service.list_orders(ctx.pool, case_id, limit, cursor)
    return OrderPage(items=[order_out(r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))


@terms_router.post("/{case_id}/orders/{order_id}/extensions", status_code=201, response_model=ExtensionOut)
async def extend_order(case_id: str, order_id: str, body: ExtensionIn, ctx: Ctx, staff: InformStaff) -> ExtensionOut:
    """Record that an extension was granted. The prosecutor decides; the case director or a contact person of
    the case (the victim's fixed contact, or the prosecutor's victim coordinator) records it, as they are the
    ones reminded and the ones who tell the victim. Audited with who recorded it."""
    return ExtensionOut(**dict(await service.extend_order(ctx.pool, ctx.outbox, staff, case_id, order_id, body)))


@terms_router.get("/{case_id}/orders/{order_id}/extensions", response_model=ExtensionList)
async def list_extensions(case_id: str, order_id: str, ctx: Ctx, staff: ReadStaff) -> ExtensionList:
    rows = await service.list_extensions(ctx.pool, case_id, order_id)
    return ExtensionList(items=[ExtensionOut(**dict(r)) for r in rows])


@terms_router.post("/{case_id}/orders/{order_id}/let-go", response_model=OrderOut)
async def let_go(case_id: str, order_id: str, body: LetGoIn, ctx: Ctx, staff: InformStaff) -> OrderOut:
    """Record the decision not to extend (case director or a contact person of the case, as for an extension):
    the reminders stop, the reason is kept, the order runs to its end and then expires as any other (operator
    and victim are told)."""
    return order_out(await service.let_go(ctx.pool, ctx.outbox, staff, case_id, order_id, body))


@worklist_router.get("/ending", response_model=EndingPage)
async def orders_ending(ctx: Ctx, staff: InformStaff, limit: Limit = 100, cursor: str | None = None,
                        within_days: Annotated[int, Query(ge=1, le=90)] = 14) -> EndingPage:
    """Work list: orders ending within ``within_days`` on cases the caller may reach, soonest first, with what is
    decided about each (``extended``, ``let_go`` with the reason, or null). An order extended within that span
    stays on the list, at the end it was heading for, so the decision can be seen."""
    rows = await service.ending(ctx.pool, staff, ctx.clock.now(), timedelta(days=within_days),
                                ctx.settings.operator_grace_s, limit, cursor)
    return EndingPage(items=[EndingOrder(**r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))
