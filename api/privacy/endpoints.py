"""Privacy routes: track and encounter reads, the audit log for the auditor, evidence packages and their public key.

Reading positions is an act: each route that returns fixes requires a stated ``reason`` and is audited before it
answers (api/privacy/service.py). Three routers, as the paths have three prefixes and three tags."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.auth.principals import Staff, require_staff, staff_principal
from api.platform.problems import Problem, field_error
from api.platform.staff_common import Ctx, decode_seq_cursor, parse_id
from api.platform.times import Instant
from api.privacy import evidence, service
from api.privacy.schemas import AuditPage, Encounters, PublicKey, Track

track_router = APIRouter(prefix="/v1/cases", tags=["privacy"])
audit_router = APIRouter(prefix="/v1/audit", tags=["audit"])
evidence_router = APIRouter(tags=["evidence"])

# Positions are for the monitoring room and the case owner; contact persons and auditors never need them.
ReadPositions = Annotated[Staff, Depends(require_staff("operator", "case_director"))]
Reason = Annotated[str, Query(min_length=3, max_length=500,
                              description="why these positions are read; kept in the audit log")]
ZIP = {200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
             "description": "a signed evidence package (zip); check it with `afstand evidence verify`"}}


def check_period(start: datetime, end: datetime, max_span_h: float | None) -> tuple[datetime, datetime]:
    if end <= start:
        raise field_error(["query", "to"], "to must be later than from")
    if max_span_h is not None and (end - start).total_seconds() > max_span_h * 3600:
        raise field_error(["query", "to"], f"a track read covers at most {max_span_h:g} hours")
    return start, end


def check_reason(reason: str) -> str:
    if len(reason.strip()) < 3:
        raise field_error(["query", "reason"], "state why you read this (at least 3 characters)")
    return reason.strip()


def auditor_only(staff: Annotated[Staff, Depends(staff_principal)]) -> Staff:
    if staff.role != "auditor":
        raise Problem(403, "Forbidden", "only the auditor role reads the audit log")
    return staff


@track_router.get("/{case_id}/track", response_model=Track)
async def track(
    case_id: str,
    ctx: Ctx,
    staff: ReadPositions,
    reason: Reason,
    from_: Annotated[Instant, Query(alias="from", description="start of the period (recorded_at), RFC 3339")],
    to: Annotated[Instant, Query(description="end of the period (recorded_at, exclusive), RFC 3339")],
    party: Literal["offender", "victim"] | None = None,
) -> dict[str, Any]:
    """Both parties' fixes (or one party's) recorded in ``[from, to)``, at most ``AFSTAND_TRACK_MAX_SPAN_H``
    hours, as a GeoJSON FeatureCollection ordered by ``recorded_at``. Requires ``reason``; the read is audited
    (who, role, case, period, count, why)."""
    start, end = check_period(from_, to, ctx.settings.track_max_span_h)
    return await service.read_track(ctx.pool, staff, case_id, start, end, party, check_reason(reason))


@track_router.get("/{case_id}/encounters", response_model=Encounters)
async def encounters(
    case_id: str,
    ctx: Ctx,
    staff: ReadPositions,
    reason: Reason,
    from_: Annotated[Instant, Query(alias="from", description="start of the period (recorded_at), RFC 3339")],
    to: Annotated[Instant, Query(description="end of the period (recorded_at, exclusive), RFC 3339")],
) -> dict[str, Any]:
    """The times the victim's phone heard the offender's tag over Bluetooth in ``[from, to)`` (at most
    ``AFSTAND_TRACK_MAX_SPAN_H`` hours), as a GeoJSON FeatureCollection ordered by ``recorded_at``: each with the
    RSSI and the phone's position ([lon, lat], no geometry when it gave none). Her position is read: requires
    ``reason`` and is audited as a track read (``encounters.read``)."""
    start, end = check_period(from_, to, ctx.settings.track_max_span_h)
    return await service.read_encounters(ctx.pool, staff, case_id, start, end, check_reason(reason))


@audit_router.get("", response_model=AuditPage)
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
    # For the auditor role only (not even admin: the auditor watches admins).
    return await service.read_audit_log(ctx.pool, staff, before=decode_seq_cursor(cursor), limit=limit,
                                        case_id=case_id, actor=actor, action=action, since=since, until=until)


def _zip(package: evidence.Package, filename: str) -> Response:
    return Response(package.data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Afstand-Manifest-SHA256": package.manifest_sha256,
        "Cache-Control": "no-store",
    })


@evidence_router.get("/v1/evidence/public-key", response_model=PublicKey)
async def public_key(ctx: Ctx) -> PublicKey:
    """The Ed25519 key that signs evidence manifests. Public on purpose: courts and defence check with it."""
    return PublicKey(**evidence.public_key_info(ctx.key))


@evidence_router.get("/v1/alerts/{alert_id}/evidence", response_class=Response, responses=ZIP)  # type: ignore[arg-type]
async def alert_evidence(alert_id: str, ctx: Ctx, staff: ReadPositions, reason: Reason) -> Response:
    """The alert, the fixes and Bluetooth encounters that are its evidence (those it names and every one of the
    case from ``AFSTAND_RETENTION_EVIDENCE_MARGIN_S`` before it opened until that long after it cleared or was
    resolved), the engine's decisions, operator actions and notification attempts, signed. Audited."""
    aid = parse_id(alert_id, "alert")
    package = await service.alert_evidence(
        ctx.pool, ctx.key, staff, aid, margin=timedelta(seconds=ctx.settings.retention_evidence_margin_s),
        reason=check_reason(reason))
    return _zip(package, f"afstand-alert-{aid}.zip")


@evidence_router.get("/v1/cases/{case_id}/export", response_class=Response, responses=ZIP)  # type: ignore[arg-type]
async def case_export(
    case_id: str,
    ctx: Ctx,
    staff: ReadPositions,
    reason: Reason,
    from_: Annotated[Instant | None, Query(alias="from", description="only fixes recorded from then")] = None,
    to: Annotated[Instant | None, Query(description="only fixes recorded before then")] = None,
) -> Response:
    """Everything the case holds for a court: case, parties, orders, zones, devices, all alerts with their
    decisions, operator actions and notifications, device events, the fixes and the Bluetooth encounters
    (optionally of ``[from, to)``), signed. Audited."""
    why = check_reason(reason)
    start, end = from_, to
    if start is not None and end is not None and end <= start:
        raise field_error(["query", "to"], "to must be later than from")
    package = await service.case_export(ctx.pool, ctx.key, staff, case_id, start=start, end=end, reason=why)
    return _zip(package, f"afstand-case-{package.case_id}.zip")
