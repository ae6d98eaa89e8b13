"""`afstand serve` with AFSTAND_WORKERS=2: two whole processes on one port; the leases give the engine and the
scheduled jobs to one of them, both answer requests, and a fix sent to either is judged."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from api.auth.principals import mint_staff_token
from api.cli import create_supplier
from api.platform.settings import Settings
from tests.e2e.server import ServerProcess
from tests.helpers import signed

pytestmark = pytest.mark.slow


def _rows(url: str, sql: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_two_workers_share_the_port_and_one_holds_the_engine(database_url: str, tmp_path: Path) -> None:
    server = ServerProcess(database_url, tmp_path / "data", AFSTAND_WORKERS="2")
    supplier = asyncio.run(create_supplier(
        Settings(database_url=database_url, data_dir=tmp_path / "data", secret_key=server.secret_key), "w"))
    server.start()
    try:
        server.wait_ready()
        deadline = time.monotonic() + 30  # ready means one worker answers; the other may still be starting
        while len(members := _rows(database_url, "SELECT member_id, role FROM cluster_members")) < 2:
            assert time.monotonic() < deadline, members
            time.sleep(0.1)
        assert len(members) == 2 and {m["role"] for m in members} == {"all"}
        owners = {r["name"]: r["owner"] for r in _rows(database_url, "SELECT name, owner FROM leases")}
        assert owners["engine"] in {m["member_id"] for m in members}
        assert owners["schedulers"] in {m["member_id"] for m in members}

        headers = {"Authorization": "Bearer " + mint_staff_token(server.key, "admin", "workers")}
        with httpx.Client(base_url=server.base, headers=headers, timeout=10) as http:
            case = http.post("/v1/cases", json={
                "reference": "W-1", "proximity": None, "victim": {"display_name": "V", "language": "nl"},
                "offender": {"display_name": "O"}}).raise_for_status().json()
            http.post(f"/v1/cases/{case['id']}/devices", json={
                "role": "offender_tag", "supplier_key_id": supplier["key_id"], "serial": "W-TAG"}).raise_for_status()
        for i in range(20):  # new connections each time: the two workers take turns accepting them
            raw, h = signed(supplier["key_id"], supplier["secret"], {"positions": [{
                "serial": "W-TAG", "recorded_at": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z", "lat": 52.0,
                "lon": 5.0, "accuracy_m": 8.0}]})
            r = httpx.post(server.base + "/v1/ingest/positions", content=raw, headers=h, timeout=10)
            assert r.status_code == 200, r.text
        head = _rows(database_url, "SELECT max(seq) AS s FROM positions")[0]["s"]
        deadline = time.monotonic() + 20
        while _rows(database_url, "SELECT coalesce(max(last_seq), 0) AS s FROM engine_progress")[0]["s"] < head:
            assert time.monotonic() < deadline, "the engine did not judge the fixes"
            time.sleep(0.1)
    finally:
        server.stop()
