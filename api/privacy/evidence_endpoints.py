"""Evidence packages for courts (api/privacy/evidence.py) and the public key that checks them.

Both package routes read positions, so both require a ``reason`` and write an audit record before they answer,
naming the package by the SHA-256 of its manifest: the audit chain then vouches for which package was issued to
whom. The package is built in a REPEATABLE READ snapshot and the record appended afterwards in its own
transaction, as for track reads (api/privacy/track.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from api.privacy import audit
from api.privacy import evidence
from api.auth.principals import Staff, require_staff
from api.platform.problems import field_error, not_found
from api.cases.service import case_or_404
from api.platform.staff_common import Ctx, parse_id
from api.privacy.track import Reason, check_reason
from api.platform.times import Instant

router = APIRouter(tags=["evidence"])

ExportEvidence = Annotated[Staff, Depends(require_staff("operator", "case_director"))]
ZIP = {200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
             "description": "a signed evidence package (zip); check it with `afstand evidence verify`"}}


class PublicKey(BaseModel):
    algorithm: str
    format: str
    public_key_pem: str
    public_key: str
    fingerprint: str


def _zip(package: evidence.Package, filename: str) -> Response:
    return Response(package.data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Afstand-Manifest-SHA256": package.manifest_sha256,
        "Cache-Control": "no-store",
    })


@router.get("/v1/evidence/public-key", response_model=PublicKey)
async def public_key(ctx: Ctx) -> PublicKey:
    """The Ed25519 key that signs evidence manifests. Public on purpose: courts and defence check with it."""
    return PublicKey(**evidence.public_key_info(ctx.key))


@router.get("/v1/alerts/{alert_id}/evidence", response_class=Response, responses=ZIP)  # type: ignore[arg-type]
async def alert_evidence(alert_id: str, ctx: Ctx, staff: ExportEvidence, reason: Reason) -> Response:
    """The alert, the fixes that are its evidence (its proving fixes and every fix of the case from
    ``AFSTAND_RETENTION_EVIDENCE_MARGIN_S`` before it opened until that long after it cleared or was resolved),
    the engine's decisions, operator actions and notification attempts, signed. Audited."""
    aid = parse_id(alert_id, "alert")
    why = check_reason(reason)
    issued = {"actor": staff.actor, "role": staff.role, "reason": why}
    async with ctx.pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            package = await evidence.alert_package(
                conn, ctx.key, aid, margin=timedelta(seconds=ctx.settings.retention_evidence_margin_s),
                issued_by=issued)
            if package is None:
                raise not_found("alert")
            case_id = await conn.fetchval("SELECT case_id FROM alerts WHERE id = $1", aid)
        await audit.record(conn, actor=staff.actor, role=staff.role, action="alert.evidence", case_id=case_id,
                           reason=why, detail={"alert_id": str(aid), "fixes": package.fixes,
                                               "manifest_sha256": package.manifest_sha256})
    return _zip(package, f"afstand-alert-{aid}.zip")


@router.get("/v1/cases/{case_id}/export", response_class=Response, responses=ZIP)  # type: ignore[arg-type]
async def case_export(
    case_id: str,
    ctx: Ctx,
    staff: ExportEvidence,
    reason: Reason,
    from_: Annotated[Instant | None, Query(alias="from", description="only fixes recorded from then")] = None,
    to: Annotated[Instant | None, Query(description="only fixes recorded before then")] = None,
) -> Response:
    """Everything the case holds for a court: case, parties, orders, zones, devices, all alerts with their
    decisions, operator actions and notifications, device events and the fixes (optionally of ``[from, to)``),
    signed. Audited."""
    why = check_reason(reason)
    start, end = from_, to
    if start is not None and end is not None and end <= start:
        raise field_error(["query", "to"], "to must be later than from")
    issued = {"actor": staff.actor, "role": staff.role, "reason": why}
    async with ctx.pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cid = await case_or_404(conn, case_id)
            package = await evidence.case_package(conn, ctx.key, cid, start=start, end=end, issued_by=issued)
        await audit.record(conn, actor=staff.actor, role=staff.role, action="case.export", case_id=cid, reason=why,
                           detail={"fixes": package.fixes, "from": start.isoformat() if start else None,
                                   "to": end.isoformat() if end else None,
                                   "manifest_sha256": package.manifest_sha256})
    return _zip(package, f"afstand-case-{cid}.zip")
