"""Use cases of the case itself: open a case, list and read cases, change the contact ban's distances. Also the
two steps every change to a case's protection shares: find the case, and audit the change and wake the engine."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Awaitable, Callable

import asyncpg

from api.auth import need_to_know as access
from api.auth.principals import Staff
from api.cases import repository
from api.cases.devices.repository import fetch_devices
from api.cases.orders.repository import fetch_orders
from api.cases.schemas import CaseCreate, Proximity
from api.cases.zones.repository import fetch_zones
from api.platform.problems import conflict, not_found
from api.platform.staff_common import decode_cursor, parse_id
from api.privacy import audit


async def case_or_404(conn: asyncpg.Connection, case_id: str, *, lock: bool = False) -> uuid.UUID:
    """The case's id; a malformed or unknown one is a 404. ``lock`` holds the case while its parts change."""
    cid = parse_id(case_id, "case")
    if not await repository.case_exists(conn, cid, lock=lock):
        raise not_found("case")
    return cid


async def changed(
    conn: asyncpg.Connection,
    staff: Staff,
    action: str,
    case_id: uuid.UUID,
    detail: dict[str, Any],
    *,
    reason: str | None = None,
) -> None:
    """Audit a change, inside the change's transaction: the audit row commits with the change or not at all.

    The engine learns of changes to what it enforces from the configuration version that triggers bump in the
    same transaction (migrations/0006_config_changes.sql); nothing here needs to tell it.
    ``detail`` must never hold coordinates or secrets: the audit log is read widely.
    """
    await audit.record(conn, actor=staff.actor, role=staff.role, action=action, case_id=case_id, reason=reason,
                       detail=detail)


async def page_of_parts(pool: asyncpg.Pool, case_id: str, fetch: Callable[..., Awaitable[list[asyncpg.Record]]],
                        limit: int, cursor: str | None) -> list[asyncpg.Record]:
    """A page of one kind of a case's parts (orders, zones, devices), oldest first: ``fetch`` is that kind's
    repository read, called with the case and where the previous page ended; it returns ``limit + 1`` rows."""
    after_at, after_id = decode_cursor(cursor)
    async with pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        return await fetch(conn, cid, limit, after_at, after_id)


async def locked_part_or_404(conn: asyncpg.Connection, case_id: str, part_id: uuid.UUID, what: str,
                             lock: Callable[..., Awaitable[asyncpg.Record | None]]) -> tuple[uuid.UUID, asyncpg.Record]:
    """The case (held) and one of its parts, locked for a change by ``lock`` (that part's repository read);
    a part of another case is as unknown as a missing one: 404."""
    cid = await case_or_404(conn, case_id, lock=True)
    row = await lock(conn, part_id, cid)
    if row is None:
        raise not_found(what)
    return cid, row


def proximity_json(warn_m: float | None, alert_m: float | None) -> dict[str, float] | None:
    return None if warn_m is None else {"warn_m": warn_m, "alert_m": alert_m}


def _distances(proximity: Proximity | None) -> tuple[float | None, float | None]:
    return (proximity.warn_m, proximity.alert_m) if proximity else (None, None)


async def create_case(pool: asyncpg.Pool, staff: Staff, body: CaseCreate) -> asyncpg.Record:
    cid = uuid.uuid4()
    warn, alert = _distances(body.proximity)
    async with pool.acquire() as conn, conn.transaction():
        try:
            async with conn.transaction():
                await repository.insert_case(conn, cid, body.reference, warn, alert, staff.actor)
        except asyncpg.UniqueViolationError:
            raise conflict(f"a case with reference {body.reference} already exists") from None
        await repository.insert_parties(conn, cid, body.victim.display_name, body.victim.language,
                                        body.offender.display_name)
        # Names stay out of the audit detail: the parties table is where personal data lives.
        await changed(conn, staff, "case.create", cid,
                      {"reference": body.reference, "proximity": proximity_json(warn, alert)})
        if staff.role == "case_director":  # the creator owns the case (need-to-know, api/auth/need_to_know.py)
            await access.grant(conn, cid, staff.sub, "case_director", by=staff.actor, reason="created the case")
        return await repository.fetch_case(conn, cid)


async def list_cases(pool: asyncpg.Pool, staff: Staff, *, status: str | None, after_at: datetime | None,
                     after_id: uuid.UUID | None, limit: int, operator_grace_s: float) -> list[asyncpg.Record]:
    rows = await repository.fetch_reachable_cases(pool, status=status, after_at=after_at, after_id=after_id,
                                                  limit=limit, role=staff.role, sub=staff.sub,
                                                  operator_grace_s=operator_grace_s)
    await audit.record(pool, actor=staff.actor, role=staff.role, action="case.list",
                       detail={"cases": [str(r["id"]) for r in rows[:limit]]})
    return rows


async def read_case(pool: asyncpg.Pool, staff: Staff, case_id: str) -> tuple[asyncpg.Record, list[asyncpg.Record],
                                                                             list[asyncpg.Record], list[asyncpg.Record]]:
    """The case with all its orders, zones and devices, read as of one moment."""
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        cid = await case_or_404(conn, case_id)
        row = await repository.fetch_case(conn, cid)
        orders, zones, devices = await fetch_orders(conn, cid), await fetch_zones(conn, cid), await fetch_devices(conn, cid)
    # The victim's name and her zones are personal data: the read is audited before it is answered.
    await audit.record(pool, actor=staff.actor, role=staff.role, action="case.read", case_id=cid)
    return row, orders, zones, devices


async def set_proximity(pool: asyncpg.Pool, staff: Staff, case_id: str, proximity: Proximity | None,
                        reason: str | None) -> asyncpg.Record:
    warn, alert = _distances(proximity)
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id)
        before = await repository.lock_distances(conn, cid)
        if before is None:
            raise not_found("case")
        await repository.set_distances(conn, cid, warn, alert)
        await changed(conn, staff, "case.update", cid, {
            "proximity": {"from": proximity_json(before["warn_m"], before["alert_m"]), "to": proximity_json(warn, alert)},
        }, reason=reason)
        return await repository.fetch_case(conn, cid)
