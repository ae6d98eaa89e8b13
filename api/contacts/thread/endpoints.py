"""The staff side of the message thread, and what the victim was told outside it (``/v1/cases/{case_id}/…``)."""

from __future__ import annotations

from fastapi import APIRouter

from api.contacts.notices import service as notices
from api.contacts.notices.schemas import StaffVictimNoticePage
from api.contacts.thread import service
from api.contacts.thread.schemas import MessageIn, MessageOut, MessagePage
from api.platform.staff_common import Ctx, InformStaff, Limit, ReadStaff

staff_router = APIRouter(prefix="/v1/cases", tags=["messages"])


@staff_router.get("/{case_id}/messages", response_model=MessagePage)
async def case_messages(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100,
                        cursor: str | None = None) -> MessagePage:
    return await service.staff_thread(ctx.pool, case_id, limit, cursor)


@staff_router.post("/{case_id}/messages", status_code=201, response_model=MessageOut)
async def post_message(case_id: str, body: MessageIn, ctx: Ctx, staff: InformStaff) -> MessageOut:
    """Write to the victim. Only a registered, active staff member may: the victim must see who writes."""
    return await service.send_from_staff(ctx.pool, ctx.outbox, staff, case_id, body.body)


@staff_router.post("/{case_id}/messages/{message_id}/read", response_model=MessagePage)
async def staff_read(case_id: str, message_id: str, ctx: Ctx, staff: InformStaff) -> MessagePage:
    """Staff have read this victim message (and every earlier one); the victim sees ``read_by_staff_at``."""
    return await service.read_by_staff(ctx.pool, staff, case_id, message_id)


@staff_router.get("/{case_id}/victim-notices", response_model=StaffVictimNoticePage)
async def victim_notices(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100,
                         cursor: str | None = None) -> StaffVictimNoticePage:
    """What the victim was told outside the thread, newest first, each with how it was delivered: pushed,
    waiting for her quiet hours, not pushed because of her channel, fallen back to SMS."""
    return await notices.victim_notices_for_staff(ctx.pool, case_id, limit, cursor)
