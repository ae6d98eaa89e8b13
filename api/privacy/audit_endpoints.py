"""``GET /v1/audit``: the audit log, for the ``auditor`` role only (not even admin: the auditor watches admins).

Newest first, keyset-paginated on the chain position (``chain_seq``), so records appended while an auditor pages
never shift a page. Each record carries its ``prev_hash`` and ``hash``: an auditor can recompute the chain
(``afstand audit verify`` does it server-side). Reading the log is itself recorded (``audit.read``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.privacy import audit
from api.auth.principals import Staff, staff_principal
from api.platform.problems import Problem
from api.platform.staff_common import Ctx, decode_seq_cursor
from api.platform.times import Instant

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def auditor_only(staff: Annotated[Staff, Depends(staff_principal)]) -> Staff:
    if staff.role != "auditor":
        raise Problem(403, "Forbidden", "only the auditor role reads the audit log")
    return staff


class AuditRecord(BaseModel):
    chain_seq: int
    at: datetime
    actor: str
    role: str
    action: str
    case_id: str | None
    reason: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_cursor: str | None


@router.get("", response_model=AuditPage)
async def read_audit_log(
    ctx: Ctx,
    staff: Annotated[Staff, Depends(auditor_only)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    case_id: uuid.UUID | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=100, description="exact action, or a prefix ending in '.'")] = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> AuditPage:
    """Audit records, newest first; filter by case, actor (``role:sub``), action and time ``[since, until)``."""
    before = decode_seq_cursor(cursor)
    start, end = since, until
    prefix = action is not None and action.endswith(".")
    async with ctx.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT chain_seq, at, actor, role, action, case_id, reason, detail, prev_hash, hash FROM audit_log"
            " WHERE ($1::bigint IS NULL OR chain_seq < $1) AND ($2::uuid IS NULL OR case_id = $2)"
            " AND ($3::text IS NULL OR actor = $3)"
            " AND ($4::text IS NULL OR (CASE WHEN $5 THEN starts_with(action, $4) ELSE action = $4 END))"
            " AND ($6::timestamptz IS NULL OR at >= $6) AND ($7::timestamptz IS NULL OR at < $7)"
            " ORDER BY chain_seq DESC LIMIT $8",
            before, case_id, actor, action, prefix, start, end, limit + 1,
        )
        page = rows[:limit]
        await audit.record(conn, actor=staff.actor, role=staff.role, action="audit.read", case_id=case_id,
                           detail={"filters": {"actor": actor, "action": action,
                                               "since": start.isoformat() if start else None,
                                               "until": end.isoformat() if end else None},
                                   "records": len(page)})
    return AuditPage(
        items=[AuditRecord(**{**dict(r), "case_id": str(r["case_id"]) if r["case_id"] else None}) for r in page],
        next_cursor=str(page[-1]["chain_seq"]) if len(rows) > limit else None,
    )
