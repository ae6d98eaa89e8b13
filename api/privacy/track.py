"""Reading positions is an act: ``GET /v1/cases/{case_id}/track`` returns both parties' fixes for a period,
only with a stated ``reason``, and every read is written to the audit log before it is answered (no audit
record, no answer). See SECURITY.md, "Audit".

An audited read takes its consistent snapshot in a read-only REPEATABLE READ transaction and records itself
afterwards, in its own (READ COMMITTED) transaction on the same connection: the audit chain links each record to
the newest one, which a snapshot older than the chain's lock cannot see (migrations/0007_hardening.sql refuses
such an append), and two concurrent reads must both succeed."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.privacy import audit
from api.auth.principals import Staff, require_staff
from api.platform.problems import field_error
from api.cases.service import case_or_404
from api.platform.staff_common import Ctx
from api.platform.times import Instant

router = APIRouter(prefix="/v1/cases", tags=["privacy"])

# Positions are for the monitoring room and the case owner; contact persons and auditors never need them.
ReadPositions = Annotated[Staff, Depends(require_staff("operator", "case_director"))]
Reason = Annotated[str, Query(min_length=3, max_length=500,
                              description="why these positions are read; kept in the audit log")]


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: list[float]  # [lon, lat]


class FixProperties(BaseModel):
    seq: int
    party: Literal["offender", "victim"]
    device_id: str
    recorded_at: datetime
    received_at: datetime
    accuracy_m: float
    source: str
    speed_mps: float | None = None
    heading_deg: float | None = None
    battery_pct: float | None = None


class FixFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: PointGeometry
    properties: FixProperties


class Track(BaseModel):
    """A GeoJSON FeatureCollection: one Point per fix, both parties, oldest first."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[FixFeature]
    properties: dict[str, Any]


FIX_COLUMNS = ("seq, device_id, party, recorded_at, received_at, lat, lon, accuracy_m, source, speed_mps,"
               " heading_deg, battery_pct")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def feature(row: asyncpg.Record, **extra: Any) -> dict[str, Any]:
    """One fix as a GeoJSON Feature ([lon, lat], as GeoJSON and CONTRACT.md require)."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        "properties": {
            "seq": row["seq"], "party": row["party"], "device_id": str(row["device_id"]),
            "recorded_at": _iso(row["recorded_at"]), "received_at": _iso(row["received_at"]),
            "accuracy_m": row["accuracy_m"], "source": row["source"], "speed_mps": row["speed_mps"],
            "heading_deg": row["heading_deg"], "battery_pct": row["battery_pct"], **extra,
        },
    }


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


@router.get("/{case_id}/track", response_model=Track)
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
    why = check_reason(reason)
    async with ctx.pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cid: uuid.UUID = await case_or_404(conn, case_id)
            rows = await conn.fetch(
                f"SELECT {FIX_COLUMNS} FROM positions WHERE case_id = $1 AND recorded_at >= $2 AND recorded_at < $3"
                " AND ($4::text IS NULL OR party = $4) ORDER BY recorded_at, seq",
                cid, start, end, party,
            )
        await audit.record(conn, actor=staff.actor, role=staff.role, action="track.read", case_id=cid, reason=why,
                           detail={"from": _iso(start), "to": _iso(end), "party": party, "fixes": len(rows)})
    return {
        "type": "FeatureCollection",
        "features": [feature(r) for r in rows],
        "properties": {"case_id": str(cid), "from": _iso(start), "to": _iso(end), "count": len(rows)},
    }
