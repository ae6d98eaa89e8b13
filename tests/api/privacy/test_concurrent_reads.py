"""Concurrent audited reads never fail. Each read appends to the hash-chained audit log; a read that took its
snapshot before the chain's lock used to link to a stale head, so two track reads at once answered 500
(audit_log_chain_seq_key). Every audited read is fired many times at once here, and the chain must stay whole."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import httpx
import pytest

from api.privacy.audit import verify_chain
from tests.api.factories import db_val
from tests.helpers import staff_headers
from tests.api.privacy.support import case_with_panic

AT_ONCE = 12


@pytest.fixture
def reads(make_client):  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, notify_enabled=False)
    w, start, alert_id = case_with_panic(client, n=3, after_s=90)
    period = {"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat(), "reason": "incident review"}
    director, operator = staff_headers(client, "case_director"), staff_headers(client, "operator")
    routes = {
        "track.read": (f"/v1/cases/{w.case_id}/track", period, director),
        "alert.evidence": (f"/v1/alerts/{alert_id}/evidence", {"reason": "court request"}, director),
        "case.export": (f"/v1/cases/{w.case_id}/export", {"reason": "court request"}, director),
        "case.read": (f"/v1/cases/{w.case_id}", {}, director),
        "case.list": ("/v1/cases", {}, director),
        "alert.read": (f"/v1/alerts/{alert_id}", {}, operator),
        "case.addresses.read": (f"/v1/cases/{w.case_id}/addresses", {}, director),
        "audit.read": ("/v1/audit", {}, staff_headers(client, "auditor")),
    }
    return client, routes


async def _burst(app, path: str, params: dict, headers: dict) -> list[httpx.Response]:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        return await asyncio.gather(*(http.get(path, params=params, headers=headers) for _ in range(AT_ONCE)))


async def _chain(pool: asyncpg.Pool):  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return await verify_chain(conn)


@pytest.mark.parametrize("action", ["track.read", "alert.evidence", "case.export", "case.read", "case.list",
                                    "alert.read", "case.addresses.read", "audit.read"])
def test_audited_reads_at_once_all_succeed_and_are_all_recorded(reads, action: str) -> None:  # type: ignore[no-untyped-def]
    client, routes = reads
    path, params, headers = routes[action]
    before = db_val(client, "SELECT count(*) FROM audit_log WHERE action = $1", action)
    responses = client.portal.call(_burst, client.app, path, params, headers)
    assert [r.status_code for r in responses] == [200] * AT_ONCE, [r.text[:200] for r in responses if r.status_code != 200]
    assert db_val(client, "SELECT count(*) FROM audit_log WHERE action = $1", action) == before + AT_ONCE
    report = client.portal.call(_chain, client.app.state.ctx.pool)
    assert report.intact, report.faults


def test_the_database_refuses_an_audit_append_from_a_stale_snapshot(reads) -> None:  # type: ignore[no-untyped-def]
    """The rule behind the fix, kept by the database so no future route can break it: an audit record is never
    appended from a REPEATABLE READ or SERIALIZABLE transaction, whose snapshot may predate the chain's head."""
    client, _ = reads

    async def append(isolation: str) -> None:
        async with client.app.state.ctx.pool.acquire() as conn, conn.transaction(isolation=isolation):
            await conn.execute("INSERT INTO audit_log (actor, role, action) VALUES ('system:test', 'system', 'x')")

    for isolation in ("repeatable_read", "serializable"):
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="READ COMMITTED"):
            client.portal.call(append, isolation)
    client.portal.call(append, "read_committed")
    assert db_val(client, "SELECT count(*) FROM audit_log WHERE action = 'x'") == 1
