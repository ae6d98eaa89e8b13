"""Managing need-to-know (SECURITY.md, "Need-to-know"): who is granted a case, which cases an operator watches,
and the rotation of suppliers' HMAC keys.

Reaching a case is checked before any of these handlers runs (api/auth/need_to_know.py): a case director can grant or end
access only on a case they reach themselves. Every change is audited.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from api.privacy import audit
from api.auth import need_to_know as access
from api.auth.supplier_keys import revoke_key, rotate_key
from api.auth.principals import Staff, require_staff
from api.platform.problems import not_found
from api.cases.service import case_or_404
from api.platform.staff_common import Ctx, WriteStaff

router = APIRouter(tags=["access"])

AdminStaff = Annotated[Staff, Depends(require_staff())]  # admin only
Sub = Field(min_length=1, max_length=200, pattern=r"^[^\s/]+$")


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_sub: str = Sub
    relation: Literal["case_director", "contact_person", "prosecutor_coordinator"]
    reason: str | None = Field(default=None, max_length=500)


class WatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_sub: str = Sub


class GrantOut(BaseModel):
    staff_sub: str
    relation: str
    source: Literal["grant", "roster"]
    since: datetime
    by: str


class WatcherOut(BaseModel):
    staff_sub: str
    since: datetime
    by: str


class AccessOut(BaseModel):
    case_id: uuid.UUID
    grants: list[GrantOut]
    watchers: list[WatcherOut]


class KeyOut(BaseModel):
    key_id: str
    supplier_id: uuid.UUID
    secret: str | None = None
    replaces: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None


async def _access(conn, case_id: uuid.UUID) -> AccessOut:  # type: ignore[no-untyped-def]
    grants = await conn.fetch(
        "SELECT staff_sub, relation, 'grant' AS source, granted_at AS since, granted_by AS by FROM case_access"
        " WHERE case_id = $1 AND ended_at IS NULL"
        " UNION ALL"
        " SELECT m.sub, CASE WHEN a.function = 'contact_person' AND a.agency = 'prosecutor'"
        " THEN 'prosecutor_coordinator' ELSE a.function END, 'roster', a.assigned_at, a.assigned_by"
        " FROM case_assignments a JOIN staff_members m ON m.id = a.staff_id"
        " WHERE a.case_id = $1 AND a.ended_at IS NULL AND m.active ORDER BY 4, 1", case_id)
    watchers = await conn.fetch("SELECT staff_sub, added_at AS since, added_by AS by FROM operator_watch"
                                " WHERE case_id = $1 ORDER BY added_at, staff_sub", case_id)
    return AccessOut(case_id=case_id, grants=[GrantOut(**dict(g)) for g in grants],
                     watchers=[WatcherOut(**dict(w)) for w in watchers])


@router.get("/v1/cases/{case_id}/access", response_model=AccessOut)
async def list_access(case_id: str, ctx: Ctx, staff: WriteStaff) -> AccessOut:
    """Who reaches this case besides admins: grants, the roster (issue 5's assignments) and watching operators.
    Operators also reach a case while it has an open alert; that is not listed here."""
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        return await _access(conn, cid)


@router.put("/v1/cases/{case_id}/access", response_model=AccessOut)
async def grant_access(case_id: str, body: GrantIn, ctx: Ctx, staff: WriteStaff) -> AccessOut:
    """Grant ``staff_sub`` (the subject of their staff token) reach to this case as ``relation``, or change the
    relation of an existing grant."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        gid, changed = await access.grant(conn, cid, body.staff_sub, body.relation, by=staff.actor, reason=body.reason)
        if changed:
            await audit.record(conn, actor=staff.actor, role=staff.role, action="access.grant", case_id=cid,
                               reason=body.reason, detail={"grant_id": str(gid), "staff_sub": body.staff_sub,
                                                           "relation": body.relation})
        return await _access(conn, cid)


@router.delete("/v1/cases/{case_id}/access/{staff_sub}", status_code=204)
async def end_access(case_id: str, staff_sub: str, ctx: Ctx, staff: WriteStaff) -> Response:
    """End a grant at once (roster assignments end through ``PUT /v1/cases/{case_id}/assignments``)."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        gid = await conn.fetchval(
            "UPDATE case_access SET ended_at = now(), ended_by = $3 WHERE case_id = $1 AND staff_sub = $2"
            " AND ended_at IS NULL RETURNING id", cid, staff_sub, staff.actor)
        if gid is None:
            raise not_found("grant")
        await audit.record(conn, actor=staff.actor, role=staff.role, action="access.end", case_id=cid,
                           detail={"grant_id": str(gid), "staff_sub": staff_sub})
    return Response(status_code=204)


@router.put("/v1/cases/{case_id}/watchers", response_model=AccessOut)
async def add_watcher(case_id: str, body: WatchIn, ctx: Ctx, staff: WriteStaff) -> AccessOut:
    """Put the case on an operator's watch list: they reach it without an open alert."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        added = await conn.fetchval(
            "INSERT INTO operator_watch (staff_sub, case_id, added_by) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true", body.staff_sub, cid, staff.actor)
        if added:
            await audit.record(conn, actor=staff.actor, role=staff.role, action="watch.add", case_id=cid,
                               detail={"staff_sub": body.staff_sub})
        return await _access(conn, cid)


@router.delete("/v1/cases/{case_id}/watchers/{staff_sub}", status_code=204)
async def remove_watcher(case_id: str, staff_sub: str, ctx: Ctx, staff: WriteStaff) -> Response:
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        removed = await conn.fetchval("DELETE FROM operator_watch WHERE case_id = $1 AND staff_sub = $2 RETURNING true",
                                      cid, staff_sub)
        if not removed:
            raise not_found("watcher")
        await audit.record(conn, actor=staff.actor, role=staff.role, action="watch.remove", case_id=cid,
                           detail={"staff_sub": staff_sub})
    return Response(status_code=204)


# ---------------------------------------------------------------- supplier keys

@router.post("/v1/supplier-keys/{key_id}/rotate", status_code=201, response_model=KeyOut, tags=["supplier keys"])
async def rotate(key_id: str, ctx: Ctx, staff: AdminStaff) -> KeyOut:
    """Issue the supplier a second key. Both keys work until the old one is revoked; the new secret is shown
    here once."""
    async with ctx.pool.acquire() as conn:
        return KeyOut(**await rotate_key(conn, ctx.key, key_id, staff.actor, staff.role))


@router.post("/v1/supplier-keys/{key_id}/revoke", response_model=KeyOut, tags=["supplier keys"])
async def revoke(key_id: str, ctx: Ctx, staff: AdminStaff) -> KeyOut:
    """Revoke a key at once (a retried revoke changes nothing)."""
    async with ctx.pool.acquire() as conn:
        return KeyOut(**await revoke_key(conn, key_id, staff.actor, staff.role))
