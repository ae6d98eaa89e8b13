"""The database goes away under supplier load and comes back: nothing acknowledged is lost, the service says
503 (never 500) and not ready while it cannot work, and afterwards it is whole again: a case and zone created
after the fault raise their alert within 5 s (the engine's configuration and listeners recovered by themselves).

(a) the embedded PostgreSQL stopped for 20 s, then started; (b) the machine's PostgreSQL (TEST_DATABASE_URL)
terminating the server's connections twice.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from api.cli import create_supplier
from api.platform.embedded_pg import EmbeddedServer
from api.platform.settings import Settings
from tests.chaos.support import (
    ReadinessProbe, StreamWatcher, SupplierLoad, metric, staff, wait_ready, zone_alert_latency,
)
from tests.conftest import with_database
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.slow

QUIET = {"AFSTAND_OFFENDER_SILENT_S": "1000000000", "AFSTAND_VICTIM_SILENT_S": "1000000000"}


def _start(database_url: str, tmp_path: Path) -> tuple[ServerProcess, dict[str, str], SupplierLoad, ReadinessProbe]:
    server = ServerProcess(database_url, tmp_path / "data", **QUIET)
    settings = Settings(database_url=database_url, data_dir=tmp_path / "data", secret_key=server.secret_key)
    supplier = asyncio.run(create_supplier(settings, "chaos-supplier"))
    server.start()
    wait_ready(server, 60)
    load = SupplierLoad(server, supplier)
    load.setup()
    probe = ReadinessProbe(server)
    return server, supplier, load, probe


def _assert_whole_again(server: ServerProcess, supplier: dict[str, str], load: SupplierLoad, url: str) -> str:
    """Returns the case made after the fault."""
    assert not load.malformed_503, load.malformed_503[:3]
    assert all(s in (200, 503) for _, s in load.statuses), sorted({s for _, s in load.statuses})
    assert asyncio.run(load.lost(url)) == set()
    assert len(load.acknowledged) > 100  # the load really ran on both sides of the fault
    case_id, latency = zone_alert_latency(server, supplier)
    assert latency <= 5.0
    return case_id


def test_embedded_postgres_stopped_for_20_s_under_load(tmp_path: Path) -> None:
    pg = EmbeddedServer(tmp_path / "pg-home")
    url = pg.open()
    server, supplier, load, probe = _start(url, tmp_path)
    console = StreamWatcher(server)
    try:
        load.start()
        probe.start()
        console.start()
        time.sleep(3)
        down_at = time.monotonic()
        pg.stop()
        time.sleep(10)
        # Every route, also one that reads nothing from the database, says so; the health routes answer.
        for path in ("/openapi.json", "/console", "/v1/alerts"):
            r = httpx.get(server.base + path, headers=staff(server, "operator"), timeout=5)
            assert r.status_code == 503 and r.headers["retry-after"].isdigit(), (path, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")
        assert httpx.get(server.base + "/healthz", timeout=5).status_code == 200
        assert httpx.get(server.base + "/metrics", timeout=5).status_code == 200
        time.sleep(10)
        up_at = time.monotonic()
        pg.restart()
        recovered_s = wait_ready(server, 30)
        time.sleep(3)  # load after recovery
        load.stop()
        probe.stop()
        # While down: refused with 503, and /readyz said so, naming the database.
        during = load.between(down_at + 1, up_at)
        assert during and set(during) == {503}, sorted(set(during))
        readiness = probe.between(down_at + 1, up_at)
        assert readiness and all(status == 503 and "database" in unwell for status, unwell in readiness)
        assert probe.seen[-1][1] == 200
        assert recovered_s < 10
        case_id = _assert_whole_again(server, supplier, load, url)
        assert metric(server, "afstand_listener_reconnects_total", 'listener="engine"') >= 1
        # The console was told to come back later (1013), and its stream delivers the new alert when it did.
        started = time.monotonic()
        while not console.saw_case(case_id) and time.monotonic() - started < 5:
            time.sleep(0.1)
        console.stop()
        assert 1013 in console.closes and None not in console.closes, console.closes
        assert console.saw_case(case_id)
        seqs = [i["seq"] for i in console.items]
        assert seqs == sorted(set(seqs))  # resumed after the last seq it saw: nothing twice, in order
        for path in ("/openapi.json", "/console"):
            assert httpx.get(server.base + path, timeout=5).status_code == 200
    finally:
        load.halt()
        probe.halt()
        console.halt()
        server.stop()
        pg.close()


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="needs the machine's PostgreSQL (TEST_DATABASE_URL)")
def test_machine_postgres_terminates_the_servers_connections_twice_under_load(tmp_path: Path) -> None:
    admin_url = os.environ["TEST_DATABASE_URL"]
    name = "afstand_chaos_" + uuid.uuid4().hex[:12]  # ours alone; dropped at the end

    async def admin(sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(admin_url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = with_database(admin_url, name)
    server = load = probe = None
    try:
        server, supplier, load, probe = _start(url, tmp_path)
        load.start()
        probe.start()
        for _ in range(2):
            time.sleep(3)
            killed = asyncio.run(admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                       " WHERE datname = $1 AND pid <> pg_backend_pid()", name))
            assert len(killed) >= 4  # the pool's connections and the three listeners
        time.sleep(3)
        wait_ready(server, 15)
        load.stop()
        probe.stop()
        assert probe.seen[-1][1] == 200
        _assert_whole_again(server, supplier, load, url)
        for listener in ("engine", "alert_stream", "dispatcher"):
            assert metric(server, "afstand_listener_reconnects_total", f'listener="{listener}"') >= 2
    finally:
        if load is not None:
            load.halt()
        if probe is not None:
            probe.halt()
        if server is not None:
            server.stop()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
