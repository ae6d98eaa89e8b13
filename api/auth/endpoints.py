"""Managing need-to-know (SECURITY.md, "Need-to-know"): grants, watch lists and suppliers' HMAC keys.

Reaching a case is checked before any of these handlers runs (api/auth/need_to_know.py): a case director can
grant or end access only on a case they reach themselves. Every change is audited (api/auth/service.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api.auth import service
from api.auth.principals import Staff, require_staff
from api.auth.schemas import AccessOut, GrantIn, KeyOut, WatchIn
from api.platform.staff_common import Ctx, WriteStaff

router = APIRouter(tags=["access"])

AdminStaff = Annotated[Staff, Depends(require_staff())]  # admin only


@router.get("/v1/cases/{case_id}/access", response_model=AccessOut)
async def list_access(case_id: str, ctx: Ctx, staff: WriteStaff) -> AccessOut:
    """Who reaches this case besides admins: grants, the roster (issue 5's assignments) and watching operators.
    Operators also reach a case while it has an open alert; that is not listed here."""
    return await service.list_access(ctx.pool, case_id)


@router.put("/v1/cases/{case_id}/access", response_model=AccessOut)
async def grant_access(case_id: str, body: GrantIn, ctx: Ctx, staff: WriteStaff) -> AccessOut:
    """Grant ``staff_sub`` (the subject of their staff token) reach to this case as ``relation``, or change the
    relation of an existing grant."""
    return await service.grant_access(ctx.pool, staff, case_id, body)


@router.delete("/v1/cases/{case_id}/access/{staff_sub}", status_code=204)
async def end_access(case_id: str, staff_sub: str, ctx: Ctx, staff: WriteStaff) -> Response:
    """End a grant at once (roster assignments end through ``PUT /v1/cases/{case_id}/assignments``)."""
    await service.end_access(ctx.pool, staff, case_id, staff_sub)
    return Response(status_code=204)


@router.put("/v1/cases/{case_id}/watchers", response_model=AccessOut)
async def add_watcher(case_id: str, body: WatchIn, ctx: Ctx, staff: WriteStaff) -> AccessOut:
    """Put the case on an operator's watch list: they reach it without an open alert."""
    return await service.add_watcher(ctx.pool, staff, case_id, body.staff_sub)


@router.delete("/v1/cases/{case_id}/watchers/{staff_sub}", status_code=204)
async def remove_watcher(case_id: str, staff_sub: str, ctx: Ctx, staff: WriteStaff) -> Response:
    await service.remove_watcher(ctx.pool, staff, case_id, staff_sub)
    return Response(status_code=204)


# ---------------------------------------------------------------- supplier keys

@router.post("/v1/supplier-keys/{key_id}/rotate", status_code=201, response_model=KeyOut, tags=["supplier keys"])
async def rotate(key_id: str, ctx: Ctx, staff: AdminStaff) -> KeyOut:
    """Issue the supplier a second key. Both keys work until the old one is revoked; the new secret is shown
    here once."""
    return KeyOut(**await service.rotate_by_staff(ctx.pool, ctx.key, key_id, staff))


@router.post("/v1/supplier-keys/{key_id}/revoke", response_model=KeyOut, tags=["supplier keys"])
async def revoke(key_id: str, ctx: Ctx, staff: AdminStaff) -> KeyOut:
    """Revoke a key at once (a retried revoke changes nothing)."""
    return KeyOut(**await service.revoke_by_staff(ctx.pool, key_id, staff))
