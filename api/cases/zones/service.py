"""Zone use cases: store a zone (parsed as the engine will parse it, checked for feasibility), list a case's
zones, remove one entered by mistake."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from api.auth.principals import Staff
from api.cases.feasibility.service import zone_findings
from api.cases.orders.repository import order_kind
from api.cases.zones.schemas import ZoneCreate
from api.cases.service import case_or_404, changed, locked_part_or_404, page_of_parts
from api.cases.zones import repository
from api.cases.zones.geometry import ZoneShapeError, parse_geometry, parse_schedule
from api.platform.problems import Problem, conflict, field_error
from api.platform.settings import Settings
from api.platform.staff_common import parse_id

# A zone order of one kind cannot carry a zone of the other; contact bans and court orders may carry either.
_ORDER_FORBIDS = {"exclusion_zone": "inclusion", "inclusion_zone": "exclusion"}
# Which request field a blocking finding is about.
_FINDING_FIELD = {"invalid_schedule": "schedule", "schedule_never_active": "schedule"}


def _enforceable_shape(body: ZoneCreate) -> None:
    """The same parsers the engine loads zones with: what is stored, the engine can run."""
    try:
        parse_geometry(body.geometry)
        parse_schedule(body.schedule)
    except ZoneShapeError as e:
        raise field_error(e.loc, e.msg) from None


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


async def create_zone(pool: asyncpg.Pool, settings: Settings, staff: Staff, case_id: str,
                      body: ZoneCreate) -> asyncpg.Record:
    _enforceable_shape(body)
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        kind_of_order = await order_kind(conn, body.order_id, cid)
        if kind_of_order is None:
            raise field_error(["order_id"], "no order with this id on this case")
        if _ORDER_FORBIDS.get(kind_of_order) == body.kind:
            raise field_error(["kind"], f"an {kind_of_order} order cannot carry an {body.kind} zone")
        # The feasibility check against the case's known addresses: the findings are stored with the zone and
        # answered with the 201, so an unenforceable ban is flagged at once.
        zid = uuid.uuid4()
        findings = await zone_findings(conn, settings, cid, zid, body)
        blocking = [f for f in findings if f["severity"] == "blocking"]
        if blocking and body.override_reason is None:
            raise _unenforceable(blocking, findings)
        row = await repository.insert_zone(conn, zid, cid, body.order_id, body.name, body.kind, body.geometry,
                                           body.buffer_m, body.schedule, staff.actor, findings)
        # No coordinates in the audit detail: the zone row itself is the record of where.
        await changed(conn, staff, "zone.create", cid, {
            "zone_id": str(row["id"]), "order_id": str(body.order_id), "kind": body.kind, "name": body.name,
            "geometry_type": body.geometry.get("type"), "buffer_m": body.buffer_m, "scheduled": body.schedule is not None,
            "findings": [f["code"] for f in findings],
            "overridden": [f["code"] for f in blocking],
        }, reason=body.override_reason if blocking else None)
        return row


async def list_zones(pool: asyncpg.Pool, case_id: str, limit: int, cursor: str | None) -> list[asyncpg.Record]:
    return await page_of_parts(pool, case_id, repository.fetch_zones, limit, cursor)


async def delete_zone(pool: asyncpg.Pool, staff: Staff, case_id: str, zone_id: str) -> None:
    """A zone that has raised an alert is evidence of what was enforced when it fired, so it stays (409)."""
    zid = parse_id(zone_id, "zone")
    async with pool.acquire() as conn, conn.transaction():
        cid, zone = await locked_part_or_404(conn, case_id, zid, "zone", repository.lock_zone)
        if await repository.has_alerts(conn, zid):
            raise conflict("this zone has raised alerts and is kept as evidence; end its order instead")
        await repository.delete_zone(conn, zid)
        await changed(conn, staff, "zone.delete", cid, {"zone_id": str(zid), "name": zone["name"], "kind": zone["kind"]})
