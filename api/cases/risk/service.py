"""Risk screening use cases: record a screening (only a registered, active, SASH-trained staff member may), list
a case's screenings."""

from __future__ import annotations

import asyncpg

from api.auth.principals import Staff
from api.cases.risk import repository
from api.cases.service import case_or_404
from api.contacts.schemas import RiskIn
from api.platform.problems import Problem
from api.privacy import audit


async def record_screening(pool: asyncpg.Pool, staff: Staff, case_id: str, body: RiskIn) -> asyncpg.Record:
    async with pool.acquire() as conn, conn.transaction():
        cid = await case_or_404(conn, case_id, lock=True)
        me = await repository.assessor(conn, staff.sub)
        if me is None or not me["active"] or not me["sash_trained"]:
            raise Problem(403, "Forbidden", "only active staff members marked as SASH-trained may record a risk screening")
        sid = await repository.insert_screening(conn, cid, body.level, body.screened_on, me["id"], body.notes)
        await audit.record(conn, actor=staff.actor, role=staff.role, action="risk.screen", case_id=cid, detail={
            "screening_id": str(sid), "level": body.level, "screened_on": body.screened_on.isoformat()})
        return await repository.fetch_screening(conn, sid)


async def list_screenings(pool: asyncpg.Pool, case_id: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        return await repository.fetch_screenings(conn, cid)
