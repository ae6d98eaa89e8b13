"""The case timeline for staff: every event, victim-visible or internal. The victim's view (only victim-visible
events, in her language) is ``GET /v1/me/timeline`` in victim_case.py. Other routers and the order scheduler
record their events through :func:`add_event`."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends

from api.privacy import audit
from api.auth.principals import Staff, require_staff
from api.platform.staff_common import Ctx, Limit, ReadStaff, case_or_404, decode_cursor, encode_cursor
from api.contacts.schemas import EventIn, EventOut, EventPage

router = APIRouter(prefix="/v1/cases", tags=["timeline"])

# Posting updates is what contact persons do; case directors and admins may too.
InformStaff = Annotated[Staff, Depends(require_staff("case_director", "contact_person"))]

EVENT_COLUMNS = "id, case_id, kind, visibility, occurred_at, note, detail, created_at, created_by"


async def add_event(
    conn: asyncpg.Connection,
    case_id: uuid.UUID,
    kind: str,
    *,
    visibility: str,
    actor: str,
    occurred_at: datetime | None = None,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> asyncpg.Record:
    """Record an event; call inside the change's transaction. ``detail`` holds ids and codes the victim's view
    renders from the catalogues (``order_kind``, ``until``, ``agency``), never free text meant for staff only."""
    return await conn.fetchrow(
        f"INSERT INTO timeline_events (id, case_id, kind, visibility, occurred_at, note, detail, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {EVENT_COLUMNS}",
        uuid.uuid4(), case_id, kind, visibility, occurred_at or datetime.now(timezone.utc), note, detail or {}, actor,
    )


def event_cursor(rows: list[asyncpg.Record], limit: int) -> str | None:
    """Newest-first keyset on (occurred_at, id); rows fetched with ``limit + 1``."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(last["occurred_at"], last["id"])


async def fetch_events(conn: asyncpg.Connection | asyncpg.Pool, case_id: uuid.UUID, limit: int, cursor: str | None,
                       *, victim_only: bool) -> list[asyncpg.Record]:
    before_at, before_id = decode_cursor(cursor)
    return await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM timeline_events WHERE case_id = $1"
        " AND (NOT $2 OR visibility = 'victim')"
        " AND ($3::timestamptz IS NULL OR (occurred_at, id) < ($3, $4))"
        " ORDER BY occurred_at DESC, id DESC LIMIT $5",
        case_id, victim_only, before_at, before_id, limit + 1,
    )


@router.post("/{case_id}/timeline", status_code=201, response_model=EventOut)
async def post_event(case_id: str, body: EventIn, ctx: Ctx, staff: InformStaff) -> EventOut:
    """Add an event. ``visibility: victim`` shows it (with its note) in the victim's app; ``internal`` never does."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        row = await add_event(conn, cid, body.kind, visibility=body.visibility, actor=staff.actor,
                              occurred_at=body.occurred_at.astimezone(timezone.utc), note=body.note)
        # The note may hold personal detail; the audit log keeps what and when, the timeline keeps the text.
        await audit.record(conn, actor=staff.actor, role=staff.role, action="timeline.add", case_id=cid,
                           detail={"event_id": str(row["id"]), "kind": body.kind, "visibility": body.visibility})
    return EventOut(**dict(row))


@router.get("/{case_id}/timeline", response_model=EventPage)
async def list_events(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None) -> EventPage:
    """Newest first, internal and victim-visible alike."""
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        rows = await fetch_events(conn, cid, limit, cursor, victim_only=False)
    return EventPage(items=[EventOut(**dict(r)) for r in rows[:limit]], next_cursor=event_cursor(rows, limit))
