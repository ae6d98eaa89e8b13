"""Feasibility use cases: check a draft, check a case with a proposal, check one zone about to be stored, and keep
the parties' known addresses. This module only gathers the inputs of the pure ``geofence.feasibility``."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from api.auth.principals import Staff
from api.cases import repository as cases
from api.cases.orders.repository import fetch_orders
from api.cases.service import case_or_404
from api.cases.feasibility import repository
from api.cases.zones.repository import fetch_zone_shapes
from api.contacts.schemas import Addresses, FeasibilityCaseRequest, FeasibilityDraft, FeasibilityOut, FindingOut
from api.platform.settings import Settings
from api.privacy import audit
from geofence import feasibility as fz

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


async def zone_findings(conn: asyncpg.Connection, settings: Settings, case_id: uuid.UUID, zone_id: uuid.UUID,
                        zone: Any) -> list[dict[str, Any]]:
    """The findings for one zone about to be stored, against the case's known addresses."""
    found = fz.check(_addresses(await repository.stored_addresses(conn, case_id)), zones=[_zone(str(zone_id), zone)],
                     limits=limits(settings))
    return [finding_json(f) for f in found]


def check_draft(settings: Settings, body: FeasibilityDraft) -> FeasibilityOut:
    zones = [_zone(z.id or f"draft-{i}", z) for i, z in enumerate(body.zones)]
    orders = [fz.ProposedOrder(o.id or f"draft-{i}", o.kind, o.valid_from, o.valid_until) for i, o in enumerate(body.orders)]
    prox = fz.ProposedProximity(body.proximity.warn_m, body.proximity.alert_m) if body.proximity else None
    return _out(fz.check(_addresses(body.addresses), prox, zones, orders, limits(settings)))


async def check_case(pool: asyncpg.Pool, settings: Settings, case_id: str,
                     body: FeasibilityCaseRequest) -> FeasibilityOut:
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        cid = await case_or_404(conn, case_id)
        case = await cases.fetch_distances(conn, cid)
        addresses = (body.addresses.model_dump() if body.addresses is not None
                     else await repository.stored_addresses(conn, cid))
        stored_zones = await fetch_zone_shapes(conn, cid)
        stored_orders = await fetch_orders(conn, cid)
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
    return _out(fz.check(_addresses(addresses), prox, zones, orders, limits(settings)))


async def put_addresses(pool: asyncpg.Pool, staff: Staff, case_id: str, body: Addresses) -> None:
    data = body.model_dump()
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        await repository.put_addresses(conn, cid, data, staff.actor)
        await audit.record(conn, actor=staff.actor, role=staff.role, action="case.addresses", case_id=cid,
                           detail={"known": sorted(k for k, v in data.items() if v is not None)})


async def read_addresses(pool: asyncpg.Pool, staff: Staff, case_id: str) -> Addresses:
    async with pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        addresses = Addresses(**await repository.stored_addresses(conn, cid))
        # Where the victim lives: a read of personal data, audited before it is answered.
        await audit.record(conn, actor=staff.actor, role=staff.role, action="case.addresses.read", case_id=cid)
        return addresses
