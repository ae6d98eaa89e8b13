"""Zones of a case: where the offender may not go (exclusion) or must stay (inclusion), and when."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter, Response

from api.cases.zone_geometry import parse_geometry, parse_schedule
from api.platform.problems import Problem, conflict, field_error, not_found
from api.cases.feasibility import zone_findings
from api.cases.service import case_or_404, changed
from api.platform.staff_common import Ctx, Limit, ReadStaff, WriteStaff, decode_cursor, next_cursor, parse_id
from api.cases.schemas import ZoneCreate, ZoneOut, ZonePage

router = APIRouter(tags=["zones"])  # mounted under /v1/cases by cases.py

_COLUMNS = "id, case_id, order_id, name, kind, geometry, buffer_m, schedule, created_at, created_by, findings"
# A zone order of one kind cannot carry a zone of the other; contact bans and court orders may carry either.
_ORDER_FORBIDS = {"exclusion_zone": "inclusion", "inclusion_zone": "exclusion"}


def zone_out(row: asyncpg.Record) -> ZoneOut:
    return ZoneOut(**dict(row))


async def fetch_zones(conn: asyncpg.Connection, case_id: uuid.UUID, limit: int | None = None,
                      cursor: str | None = None) -> list[asyncpg.Record]:
    after_at, after_id = decode_cursor(cursor)
    return await conn.fetch(
        f"SELECT {_COLUMNS} FROM zones WHERE case_id = $1"
        " AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3)) ORDER BY created_at, id LIMIT $4",
        case_id, after_at, after_id, None if limit is None else limit + 1,
    )


@router.post("/{case_id}/zones", status_code=201, response_model=ZoneOut)
async def create_zone(case_id: str, body: ZoneCreate, ctx: Ctx, staff: WriteStaff) -> ZoneOut:
    # The same parsers the engine loads zones with (api/monitoring/config.py): what is stored, the engine can run.
    parse_geometry(body.geometry)
    parse_schedule(body.schedule)
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        order_kind = await conn.fetchval("SELECT kind FROM orders WHERE id = $1 AND case_id = $2", body.order_id, cid)
        if order_kind is None:
            raise field_error(["order_id"], "no order with this id on this case")
        if _ORDER_FORBIDS.get(order_kind) == body.kind:
            raise field_error(["kind"], f"an {order_kind} order cannot carry an {body.kind} zone")
        # The feasibility check (api/cases/feasibility.py) against the case's known addresses: the findings
        # are stored with the zone and answered with the 201, so an unenforceable ban is flagged at once.
        zid = uuid.uuid4()
        findings = await zone_findings(conn, ctx.settings, cid, zid, body)
        blocking = [f for f in findings if f["severity"] == "blocking"]
        if blocking and body.override_reason is None:
            raise _unenforceable(blocking, findings)
        row = await conn.fetchrow(
            f"INSERT INTO zones (id, case_id, order_id, name, kind, geometry, buffer_m, schedule, created_by, findings)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_COLUMNS}",
            zid, cid, body.order_id, body.name, body.kind, body.geometry, body.buffer_m, body.schedule,
            staff.actor, findings,
        )
        # No coordinates in the audit detail: the zone row itself is the record of where.
        await changed(conn, staff, "zone.create", cid, {
            "zone_id": str(row["id"]), "order_id": str(body.order_id), "kind": body.kind, "name": body.name,
            "geometry_type": body.geometry.get("type"), "buffer_m": body.buffer_m, "scheduled": body.schedule is not None,
            "findings": [f["code"] for f in findings],
            "overridden": [f["code"] for f in blocking],
        }, reason=body.override_reason if blocking else None)
    return zone_out(row)


# Which request field a blocking finding is about.
_FINDING_FIELD = {"invalid_schedule": "schedule", "schedule_never_active": "schedule"}


def _unenforceable(blocking: list[dict[str, Any]], findings: list[dict[str, Any]]) -> Problem:
    """A zone the feasibility check says cannot be enforced as written is not stored unless someone decides so,
    with a reason that goes into the audit log: 422 with the findings."""
    return Problem(
        422, "Zone not enforceable",
        "the feasibility check found blocking problems; fix the zone, or send override_reason to store it anyway",
        type_="https://afstand.example/problems/zone-not-enforceable",
        errors=[{"loc": [_FINDING_FIELD.get(f["code"], "geometry")], "msg": f"{f['code']}: {f['explanation']}"}
                for f in blocking],
        extensions={"findings": findings})


@router.get("/{case_id}/zones", response_model=ZonePage)
async def list_zones(case_id: str, ctx: Ctx, staff: ReadStaff, limit: Limit = 100, cursor: str | None = None) -> ZonePage:
    async with ctx.pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        rows = await fetch_zones(conn, cid, limit, cursor)
    return ZonePage(items=[zone_out(r) for r in rows[:limit]], next_cursor=next_cursor(rows, limit))


@router.delete("/{case_id}/zones/{zone_id}", status_code=204)
async def delete_zone(case_id: str, zone_id: str, ctx: Ctx, staff: WriteStaff) -> Response:
    """Remove a zone entered by mistake. A zone that has raised an alert is evidence of what was enforced
    when it fired, so it stays (409); end its order instead."""
    zid = parse_id(zone_id, "zone")
    async with ctx.pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        zone = await conn.fetchrow("SELECT name, kind FROM zones WHERE id = $1 AND case_id = $2 FOR UPDATE", zid, cid)
        if zone is None:
            raise not_found("zone")
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM alerts WHERE zone_id = $1)", zid):
            raise conflict("this zone has raised alerts and is kept as evidence; end its order instead")
        await conn.execute("DELETE FROM zones WHERE id = $1", zid)
        await changed(conn, staff, "zone.delete", cid, {"zone_id": str(zid), "name": zone["name"], "kind": zone["kind"]})
    return Response(status_code=204)
