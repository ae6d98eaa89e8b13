"""The audit log is append-only and its hash chain exposes any altered or deleted record."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from api.privacy.audit import record, verify_chain
from api.cli import main
from api.platform.database import connect


async def _write(conn: asyncpg.Connection, n: int) -> None:
    case = uuid.uuid4()
    for i in range(n):
        await record(conn, actor=f"operator:staff{i}", role="operator", action="track.read", case_id=case,
                     reason="alert follow-up", detail={"i": i})


def test_chain_is_intact_after_concurrent_appends(database_url: str) -> None:
    async def run() -> tuple[int, list[str]]:
        conns = [await connect(database_url) for _ in range(3)]
        try:
            await asyncio.gather(*(_write(c, 10) for c in conns))
            report = await verify_chain(conns[0])
            return report.records, report.faults
        finally:
            for c in conns:
                await c.close()

    assert asyncio.run(run()) == (30, [])


@pytest.mark.parametrize("actor", ["jan", "operator", "operator:", "victim:3f1c", "Operator:jan"])
def test_an_actor_not_in_the_kind_name_form_is_refused(database_url: str, actor: str) -> None:
    """Every audit writer names its actor KIND:NAME (operator:jan, victim_app:<device>, system:retention); the
    database refuses anything else, so a bare name that could be anyone never enters the log again."""
    async def run() -> None:
        conn = await connect(database_url)
        try:
            with pytest.raises(asyncpg.CheckViolationError):
                await record(conn, actor=actor, role="operator", action="alert.escalated_to_police")
            await record(conn, actor="operator:jan", role="operator", action="alert.escalated_to_police")
        finally:
            await conn.close()

    asyncio.run(run())


def test_update_and_delete_are_refused(database_url: str) -> None:
    async def run() -> None:
        conn = await connect(database_url)
        try:
            await _write(conn, 2)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("UPDATE audit_log SET actor = 'someone else'")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("DELETE FROM audit_log")
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.mark.parametrize("tamper, fault", [
    ("UPDATE audit_log SET reason = 'curiosity' WHERE chain_seq = 3", "record 3: content does not match its hash"),
    ("DELETE FROM audit_log WHERE chain_seq = 2", "record 2 is missing"),
])
def test_tampering_by_a_superuser_is_detected(database_url: str, tamper: str, fault: str,
                                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    async def run() -> list[str]:
        conn = await connect(database_url)
        try:
            await _write(conn, 5)
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
            await conn.execute(tamper)
            return (await verify_chain(conn)).faults
        finally:
            await conn.close()

    faults = asyncio.run(run())
    assert any(f.startswith(fault) for f in faults), faults
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["audit", "verify"]) == 1
    assert "audit chain BROKEN: " in capsys.readouterr().out
