"""Audited reads: positions (tracks, and the victim's positions in Bluetooth encounters), the audit log itself and evidence packages. Every read is written to the
audit log before it is answered: no audit record, no answer (SECURITY.md, "Audit").

An audited read takes its consistent snapshot in a read-only REPEATABLE READ transaction and records itself
afterwards, in its own (READ COMMITTED) transaction on the same connection: the audit chain links each record to
the newest one, which a snapshot older than the chain's lock cannot see (migrations/0007_hardening.sql refuses
such an append), and two concurrent reads must both succeed. An evidence package is recorded by the SHA-256 of
its manifest, so the audit chain vouches for which package was issued to whom."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from api.auth.principals import Staff
from api.platform.problems import not_found
from api.cases.service import case_or_404
from api.privacy import audit, evidence, repository
from api.platform.times import iso
from api.privacy.schemas import AuditPage, AuditRecord, encounter_feature, feature


async def read_track(pool: asyncpg.Pool, staff: Staff, case_id: str, start: datetime, end: datetime,
                     party: str | None, reason: str) -> dict[str, Any]:
    """The case's fixes in ``[start, end)`` as a GeoJSON FeatureCollection; the read is audited."""
    async with pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cid: uuid.UUID = await case_or_404(conn, case_id)
            rows = await repository.track(conn, cid, start, end, party)
        await audit.record(conn, actor=staff.actor, role=staff.role, action="track.read", case_id=cid, reason=reason,
                           detail={"from": iso(start), "to": iso(end), "party": party, "fixes": len(rows)})
    return {
        "type": "FeatureCollection",
        "features": [feature(r) for r in rows],
        "properties": {"case_id": str(cid), "from": iso(start), "to": iso(end), "count": len(rows)},
    }


async def read_encounters(pool: asyncpg.Pool, staff: Staff, case_id: str, start: datetime, end: datetime,
                          reason: str) -> dict[str, Any]:
    """The case's Bluetooth encounters in ``[start, end)`` as a GeoJSON FeatureCollection, each at the victim's
    phone's position when it gave one: a read of her positions, audited as a track read is."""
    async with pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cid: uuid.UUID = await case_or_404(conn, case_id)
            rows = await repository.encounters(conn, cid, start, end)
        await audit.record(conn, actor=staff.actor, role=staff.role, action="encounters.read", case_id=cid,
                           reason=reason, detail={"from": iso(start), "to": iso(end), "encounters": len(rows),
                                                  "with_position": sum(r["lat"] is not None for r in rows)})
    return {
        "type": "FeatureCollection",
        "features": [encounter_feature(r) for r in rows],
        "properties": {"case_id": str(cid), "from": iso(start), "to": iso(end), "count": len(rows)},
    }


async def read_audit_log(pool: asyncpg.Pool, staff: Staff, *, before: int | None, limit: int,
                         case_id: uuid.UUID | None, actor: str | None, action: str | None,
                         since: datetime | None, until: datetime | None) -> AuditPage:
    """One page of the audit log, newest first, keyset-paginated on the chain position (``chain_seq``), so
    records appended while an auditor pages never shift a page. Each record carries its ``prev_hash`` and
    ``hash``: an auditor can recompute the chain (``afstand audit verify`` does it server-side). Reading the log
    is itself recorded (``audit.read``)."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await repository.audit_page(conn, before=before, case_id=case_id, actor=actor, action=action,
                                           since=since, until=until, limit=limit + 1)
        page = rows[:limit]
        await audit.record(conn, actor=staff.actor, role=staff.role, action="audit.read", case_id=case_id,
                           detail={"filters": {"actor": actor, "action": action,
                                               "since": since.isoformat() if since else None,
                                               "until": until.isoformat() if until else None},
                                   "records": len(page)})
    return AuditPage(
        items=[AuditRecord(**{**dict(r), "case_id": str(r["case_id"]) if r["case_id"] else None}) for r in page],
        next_cursor=str(page[-1]["chain_seq"]) if len(rows) > limit else None,
    )


def _issued(staff: Staff, reason: str) -> dict[str, str]:
    return {"actor": staff.actor, "role": staff.role, "reason": reason}


async def alert_evidence(pool: asyncpg.Pool, server_key: bytes, staff: Staff, alert_id: uuid.UUID, *,
                         margin: timedelta, reason: str) -> evidence.Package:
    """The signed evidence package of one alert; issuing it is audited."""
    async with pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            package = await evidence.alert_package(conn, server_key, alert_id, margin=margin,
                                                   issued_by=_issued(staff, reason))
            if package is None:
                raise not_found("alert")
        await audit.record(conn, actor=staff.actor, role=staff.role, action="alert.evidence",
                           case_id=package.case_id, reason=reason,
                           detail={"alert_id": str(alert_id), "fixes": package.fixes,
                                   "encounters": package.encounters, "manifest_sha256": package.manifest_sha256})
    return package


async def case_export(pool: asyncpg.Pool, server_key: bytes, staff: Staff, case_id: str, *,
                      start: datetime | None, end: datetime | None, reason: str) -> evidence.Package:
    """The signed evidence package of a whole case (its fixes optionally of ``[start, end)``); audited."""
    async with pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cid = await case_or_404(conn, case_id)
            package = await evidence.case_package(conn, server_key, cid, start=start, end=end,
                                                  issued_by=_issued(staff, reason))
        await audit.record(conn, actor=staff.actor, role=staff.role, action="case.export", case_id=cid, reason=reason,
                           detail={"fixes": package.fixes, "encounters": package.encounters,
                                   "from": start.isoformat() if start else None,
                                   "to": end.isoformat() if end else None,
                                   "manifest_sha256": package.manifest_sha256})
    return package
