"""Can a ban be enforced? ``POST /v1/feasibility`` checks a draft; ``POST /v1/cases/{case_id}/feasibility`` checks a
case's stored rule, zones and orders together with proposed ones; ``PUT /v1/cases/{case_id}/addresses`` keeps the
parties' known addresses the checks use. Storing a zone runs the same check (:func:`zone_findings`).

The findings come from the pure ``geofence.feasibility``; this module only gathers its inputs.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter

from api.privacy import audit
from api.cases.service import case_or_404
from api.platform.staff_common import Ctx, ReadStaff, WriteStaff
from api.contacts.schemas import Addresses, FeasibilityCaseRequest, FeasibilityDraft, FeasibilityOut, FindingOut
from api.platform.settings import Settings
from geofence import feasibility as fz

router = APIRouter(tags=["feasibility"])

_ADDRESS_KEYS = ("offender_home", "offender_work", "victim_home", "victim_work")


def limits(settings: Settings) -> fz.Limits:
    return fz.Limits(gps_accuracy_m=settings.feasibility_gps_accuracy_m,
                     max_zone_area_m2=settings.feasibility_max_zone_km2 * 1e6,
                     implausible_zone_area_m2=settings.feasibility_implausible_zone_km2 * 1e6)


def _addresses(raw: dict[str, Any] | Addresses | None) -> fz.Addresses:
    if raw is None:
        return fz.Addresses()
    data = raw.model_dump() if isinstance(raw, Addresses) else raw
    return fz.Addresses(**{k: fz.Point(v["lon"], v["lat"]) for k in _ADDRESS_KEYS if (v := data.get(k)) is not None})


def _zone(ref: str, z: Any) -> fz.ProposedZone:
    get = (lambda k: z[k]) if isinstance(z, (dict, asyncpg.Record)) else (lambda k: getattr(z, k))
    return fz.ProposedZone(ref=ref, name=get("name"), kind=get("kind"), geometry=get("geometry"),
                           buffer_m=float(get("buffer_m")), schedule=get("schedule"))


def _out(findings: list[fz.Finding]) -> FeasibilityOut:
    return FeasibilityOut(
        feasible=not any(f.severity == fz.BLOCKING for f in findings),
        findings=[finding_json(f) for f in findings],
    )


def finding_json(f: fz.Finding) -> dict[str, Any]:
    return FindingOut(severity=f.severity, subject=f.subject, code=f.code, explanation=f.explanation,  # type: ignore[arg-type]
                      location=list(f.location) if f.location else None).model_dump()


async def stored_addresses(conn: asyncpg.Connection, case_id: uuid.UUID) -> dict[str, Any]:
    return await conn.fetchval("SELECT addresses FROM case_addresses WHERE case_id = $1", case_id) or {}


async def zone_findings(conn: asyncpg.Connection, settings: Settings, case_id: uuid.UUID, zone_id: uuid.UUID,
                        zone: Any) -> list[dict[str, Any]]:
    """The findings for one zone about to be stored, against the case's known addresses."""
    found = fz.check(_addresses(await stored_addresses(conn, case_id)), zones=[_zone(str(zone_id), zone)],
                     limits=limits(settings))
    return [finding_json(f) for f in found]


@router.post("/v1/feasibility", response_model=FeasibilityOut)
async def check_draft(body: FeasibilityDraft, ctx: Ctx, staff: ReadStaff) -> FeasibilityOut:
    """Check a ban that is not stored anywhere yet: nothing is read or written."""
    zones = [_zone(z.id or f"draft-{i}", z) for i, z in enumerate(body.zones)]
    orders = [fz.ProposedOrder(o.id or f"draft-{i}", o.kind, o.valid_from, o.valid_until) for i, o in enumerate(body.orders)]
    prox = fz.ProposedProximity(body.proximity.warn_m, body.proximity.alert_m) if body.proximity else None
    return _out(fz.check(_addresses(body.addresses), prox, zones, orders, limits(ctx.settings)))


@router.post("/v1/cases/{case_id}/feasibility", response_model=FeasibilityOut)
async def check_case(case_id: str, body: FeasibilityCaseRequest, ctx: Ctx, staff: ReadStaff) -> FeasibilityOut:
    """Check the case as it stands plus the proposal: stored zones and orders with the proposed ones; the stored
    proximity rule and addresses unless the request sends its own."""
    async with ctx.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        cid = await case_or_404(conn, case_id)
        case = await conn.fetchrow("SELECT warn_m, alert_m FROM cases WHERE id = $1", cid)
        addresses = body.addresses.model_dump() if body.addresses is not None else await stored_addresses(conn, cid)
        stored_zones = await conn.fetch("SELECT id, name, kind, geometry, buffer_m, schedule FROM zones"
                                        " WHERE case_id = $1 ORDER BY created_at, id", cid)
        stored_orders = await conn.fetch("SELECT id, kind, valid_from, valid_until FROM orders WHERE case_id = $1"
                                         " ORDER BY created_at, id", cid)
    if body.proximity is not None:
        prox = fz.ProposedProximity(body.proximity.warn_m, body.proximity.alert_m)
    elif case["warn_m"] is not None:
        prox = fz.ProposedProximity(case["warn_m"], case["alert_m"])
    else:
        prox = None
    zones = [_zone(str(z["id"]), z) for z in stored_zones]
    zones += [_zone(z.id or f"draft-{i}", z) for i, z in enumerate(body.zones)]
    orders = [fz.ProposedOrder(str(o["id"]), o["kind"], o["valid_from"], o["valid_until"]) for o in stored_orders]
    orders += [fz.ProposedOrder(o.id or f"draft-{i}", o.kind, o.valid_from, o.valid_until) for i, o in enumerate(body.orders)]
    return _out(fz.check(_addresses(addresses), prox, zones, orders, limits(ctx.settings)))


@router.put("/v1/cases/{case_id}/addresses", response_model=Addresses, tags=["feasibility"])
async def put_addresses(case_id: str, body: Addresses, ctx: Ctx, staff: WriteStaff) -> Addresses:
    """The parties' known addresses as points (all four replaced; null for unknown). Personal data: the audit log
    records which addresses are known, never where."""
    data = body.model_dump()
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        await conn.execute(
            "INSERT INTO case_addresses (case_id, addresses, updated_by) VALUES ($1, $2, $3)"
            " ON CONFLICT (case_id) DO UPDATE SET addresses = $2, updated_by = $3, updated_at = now()",
            cid, data, staff.actor)
        await audit.record(conn, actor=staff.actor, role=staff.role, action="case.addresses", case_id=cid,
                           detail={"known": sorted(k for k, v in data.items() if v is not None)})
    return body


@router.get("/v1/cases/{case_id}/addresses", response_model=Addresses, tags=["feasibility"])
async def get_addresses(case_id: str, ctx: Ctx, staff: WriteStaff) -> Addresses:
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        addresses = Addresses(**await stored_addresses(conn, cid))
        # Where the victim lives: a read of personal data, audited before it is answered.
        await audit.record(conn, actor=staff.actor, role=staff.role, action="case.addresses.read", case_id=cid)
        return addresses
