"""Timeline use cases: record an event (inside another change's transaction, or posted by staff) and read a page
of events, newest first. The victim's view (``GET /v1/me/timeline``) reads through :func:`fetch_events` too."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg

from api.auth.principals import Staff
from api.cases.service import case_or_404
from api.cases.timeline import repository
from api.contacts.schemas import EventIn
from api.platform.staff_common import decode_cursor, encode_cursor
from api.privacy import audit


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
    return await repository.insert_event(conn, case_id, kind, visibility=visibility, actor=actor,
                                         occurred_at=occurred_at or datetime.now(timezone.utc), note=note,
                                         detail=detail or {})


def event_cursor(rows: list[asyncpg.Record], limit: int) -> str | None:
    """Newest-first keyset on (occurred_at, id); rows fetched with ``limit + 1``."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return encode_cursor(last["occurred_at"], last["id"])


async def fetch_events(conn: asyncpg.Connection | asyncpg.Pool, case_id: uuid.UUID, limit: int, cursor: str | None,
                       *, victim_only: bool) -> list[asyncpg.Record]:
    before_at, before_id = decode_cursor(cursor)
    return await repository.fetch_events(conn, case_id, limit, before_at, before_id, victim_only=victim_only)


async def post_event(pool: asyncpg.Pool, staff: Staff, case_id: str, body: EventIn) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        row = await add_event(conn, cid, body.kind, visibility=body.visibility, actor=staff.actor,
                              occurred_at=body.occurred_at.astimezone(timezone.utc), note=body.note)
        # The note may hold personal detail; the audit log keeps what and when, the timeline keeps the text.
        await audit.record(conn, actor=staff.actor, role=staff.role, action="timeline.add", case_id=cid,
                           detail={"event_id": str(row["id"]), "kind": body.kind, "visibility": body.visibility})
        return row


async def list_events(pool: asyncpg.Pool, case_id: str, limit: int, cursor: str | None) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        return await fetch_events(conn, cid, limit, cursor, victim_only=False)
