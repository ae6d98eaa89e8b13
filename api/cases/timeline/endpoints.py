"""The case timeline for staff: every event, victim-visible or internal. The victim's view (only victim-visible
events, in her language) is ``GET /v1/me/timeline`` in api/victim/case_endpoints.py."""

from __future__ import annotations

from fastapi import APIRouter

from api.cases.timeline import service
from api.contacts.schemas import EventIn, EventOut, EventPage
from api.platform.staff_common import Ctx, InformStaff, Limit, ReadStaff

router = APIRouter(prefix="/v1/cases", tags=["timeline"])

# Posting updates is what contact persons do; case directors and admins may too.


@router.post("/{case_id}/timeline", status_code=201, response_model=EventOut)
async def post_event(case_id: str, body: EventIn, ctx: Ctx, staff: InformStaff) -> EventOut:
    """Add an event. ``visibility: victim`` shows it (with its note) in the victim's app; ``internal`` never does."""
    return EventOut(**dict(await service.post_event(ctx.pool, staff, case_id, body)))


@router.get("/{case_id}/timeline", response_model=EventPage)
async def list_events(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None) -> EventPage:
    """Newest first, internal and victim-visible alike."""
    rows = await service.list_events(ctx.pool, case_id, limit, cursor)
    return EventPage(items=[EventOut(**dict(r)) for r in rows[:limit]], next_cursor=service.event_cursor(rows, limit))
