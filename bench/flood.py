"""Flood benchmark: a supplier's tags all fall silent at once while one offender walks into his exclusion zone.

``python -m bench.flood [--tags 1000] [--silent-s 20]``

An embedded PostgreSQL (fresh data dir) and the real app in this process (engine runner, outage grouping,
alert stream's NOTIFY, all as ``afstand serve`` runs them, through its lifespan). ``--tags`` cases each have
a tag of one supplier and a victim phone; one more case has an exclusion zone (a 200 m circle, 100 m buffer)
and a tag of another supplier that reports every second from just outside it. Every tag reports once through the intake's one
writer of the fix log; ``--silent-s`` later (the offender silence threshold, scaled down) the engine's tick
finds them all silent in one pass. The moment the first silence is stored the walker's next fix puts him
inside his zone: ``violation_to_stream_ms`` runs from that fix's commit to the commit of his zone alert's
``opened`` change becoming visible in ``alert_changes`` (what the stream reads; polled every 2 ms). ``operator_alerts`` counts the open alerts in
the operators' queue that the flood put there once the grouping has decided (one ``supplier_outage`` is the
goal); ``silent_devices`` the silences stored.

Last line JSON: ``{"silent_devices": …, "operator_alerts": …, "violation_to_stream_ms": …}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
from pyproj import Geod

_GEOD = Geod(ellps="WGS84")
HOME = (5.1214, 52.0907)  # the walker's zone centre (lon, lat)


def _east(metres: float) -> tuple[float, float]:
    lon, lat, _ = _GEOD.fwd(HOME[0], HOME[1], 90.0, metres)
    return lon, lat


async def _seed(conn: asyncpg.Connection, tags: int) -> tuple[list[Any], Any]:
    """The flood's cases and the walker's; returns (flood devices, walker device) as the intake's Device."""
    from api.intake.model import Device

    supplier, other = uuid.uuid4(), uuid.uuid4()
    await conn.executemany("INSERT INTO suppliers (id, name) VALUES ($1, $2)",
                           [(supplier, "flood-bv"), (other, "walker-bv")])
    cases = [uuid.uuid4() for _ in range(tags + 1)]
    await conn.executemany("INSERT INTO cases (id, reference, created_by) VALUES ($1, $2, 'bench')",
                           [(c, f"F-{c.hex[:10]}") for c in cases])
    await conn.executemany("INSERT INTO parties (id, case_id, role, display_name) VALUES ($1, $2, 'victim', 'V')",
                           [(uuid.uuid4(), c) for c in cases])
    devices = [(uuid.uuid4(), c, supplier if i < tags else other) for i, c in enumerate(cases)]
    await conn.executemany("INSERT INTO devices (id, case_id, role, supplier_id, serial)"
                           " VALUES ($1, $2, 'offender_tag', $3, $4)", [(d, c, s, str(d)) for d, c, s in devices])
    walker_case = cases[-1]
    order = uuid.uuid4()
    await conn.execute("INSERT INTO orders (id, case_id, kind, reference, valid_from, created_by)"
                       " VALUES ($1, $2, 'exclusion_zone', 'O-1', $3, 'bench')",
                       order, walker_case, datetime.now(timezone.utc) - timedelta(days=1))
    await conn.execute("INSERT INTO zones (id, case_id, order_id, name, kind, geometry, buffer_m, created_by)"
                       " VALUES ($1, $2, $3, 'home', 'exclusion', $4, 100, 'bench')", uuid.uuid4(), walker_case,
                       order, {"type": "Circle", "center": list(HOME), "radius_m": 200})
    as_device = [Device(id=d, case_id=c, serial=str(d)) for d, c, _ in devices]
    return as_device[:-1], as_device[-1]


async def _write(conn: asyncpg.Connection, fixes: list[tuple[Any, tuple[float, float]]]) -> float:
    """Append fixes through the intake's writer; returns the wall time of the commit."""
    from api.intake import repository as intake
    from api.intake.model import IncomingFix

    now = datetime.now(timezone.utc)
    batch = [IncomingFix(index=i, device=d, party="offender", recorded_at=now, lat=pos[1], lon=pos[0],
                         accuracy_m=5.0, source="gps") for i, (d, pos) in enumerate(fixes)]
    async with conn.transaction():
        await intake.insert_fixes(conn, batch, now)
    return time.time()


async def _until(probe: Any, timeout: float, step: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(step)
    raise TimeoutError("the flood did not reach the expected state in time")


async def _run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from api.alerts import repository as alerts
    from api.platform.database import _init_connection

    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    try:
        flood, walker = await _seed(conn, args.tags)
        args.start_app()
        far = _east(330)  # beyond the buffer; close enough to step inside within the speed check (R-QUAL-2)
        await _write(conn, [(d, _east(5000)) for d in flood] + [(walker, far)])
        # The walker keeps reporting (he must not fall silent himself) until 3 s before the flood, so that his
        # step inside the zone is a walk, not an implausible jump.
        first_silence = time.monotonic() + args.silent_s
        while time.monotonic() < first_silence - 4:
            await asyncio.sleep(1.0)
            await _write(conn, [(walker, far)])
        await _until(lambda: conn.fetchval("SELECT EXISTS (SELECT 1 FROM alerts WHERE kind = 'offender_silent')"),
                     args.silent_s + 30)
        committed = await _write(conn, [(walker, _east(150))])
        # Polled every 2 ms, as the stream reads it: visible means committed (an upper bound by the poll step).
        await _until(lambda: conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM alert_changes ch JOIN alerts a ON a.id = ch.alert_id"
            " WHERE a.kind = 'zone_exclusion' AND ch.change = 'opened')"), 60, step=0.002)
        violation_ms = (time.time() - committed) * 1000
        await _until(lambda: conn.fetchval(
            "SELECT count(*) = $1 AND NOT EXISTS (SELECT 1 FROM alerts WHERE held_since IS NOT NULL)"
            " FROM alerts WHERE kind = 'offender_silent'", args.tags), args.silent_s + 120, step=0.1)
        queue = await alerts.list_alerts(conn, status="open", case_id=None, case_ids=None, after_seq=None,
                                         limit=500, outages=True)
        return {
            "silent_devices": await conn.fetchval("SELECT count(*) FROM alerts WHERE kind = 'offender_silent'"),
            "operator_alerts": sum(1 for a in queue if a["kind"] in ("offender_silent", "supplier_outage")),
            "violation_to_stream_ms": round(violation_ms, 1),
            "grouped": await conn.fetchval("SELECT count(*) FROM alerts WHERE group_id IS NOT NULL"),
        }
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=1000, help="tags of the supplier that falls silent")
    parser.add_argument("--silent-s", type=float, default=20.0, help="the offender silence threshold (scaled down)")
    args = parser.parse_args(argv)

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.platform.database import embedded_database
    from api.platform.migrate import apply_migrations
    from api.platform.settings import Settings

    with tempfile.TemporaryDirectory(prefix="afstand-bench-flood-") as tmp, embedded_database(Path(tmp)) as url:
        async def migrate() -> None:
            c = await asyncpg.connect(url)
            try:
                await apply_migrations(c)
            finally:
                await c.close()

        asyncio.run(migrate())
        settings = Settings(database_url=url, data_dir=Path(tmp) / "data", offender_silent_s=args.silent_s,
                            victim_silent_s=3600, engine_tick_s=0.5, engine_poll_s=0.2, outage_check_s=0.5,
                            outage_hold_s=min(10.0, args.silent_s), notify_enabled=False, order_check_s=0,
                            log_level="WARNING")
        client = TestClient(create_app(settings))
        started: list[bool] = []

        def start_app() -> None:
            client.__enter__()
            started.append(True)

        args.start_app = start_app
        try:
            result = asyncio.run(_run(args, url))
        finally:
            if started:  # the app's own loops, listeners and pool stop before the database does
                client.__exit__(None, None, None)
    for k, v in result.items():
        print(f"{k}: {v}")
    print(json.dumps({k: result[k] for k in ("silent_devices", "operator_alerts", "violation_to_stream_ms")}))
    return result


if __name__ == "__main__":
    main()
