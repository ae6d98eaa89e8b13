"""SIGKILL the server in the middle of a load: no acknowledged fix is lost, no alert appears twice, and no
subject ever has two live alerts at once.

The expected exclusion-zone episodes come from running the pure engine over the stored log in order; the
database must hold exactly those alert changes, each once, after the killed server has been restarted and
caught up. Each offender also has a curfew (an inclusion zone whose window opens in the middle of the replayed
fixes) and is outside it all along: its alert may be opened by a fix or by the clock at the window's start,
but never twice (geofence/RULES.md, R-TICK-2 and R-TICK-3).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from pyproj import Geod

from api.auth.principals import mint_staff_token
from api.cli import create_supplier
from api.platform.database import _init_connection
from api.monitoring.config import load_cases
from api.platform.settings import Settings
from geofence import Engine, EngineSettings
from geofence.model import AlertKind, Fix, Party
from tests.e2e.server import ServerProcess
from tests.helpers import signed

GEOD = Geod(ellps="WGS84")
CASES = 12
FIXES_PER_CASE = 160
DELIVERY_WINDOW_S = 10.0


def _curfew(start: datetime) -> dict:
    """A window that opens at the recorded time of about the 40th fix, before the server is killed, for 2 hours."""
    local = (start + timedelta(seconds=400)).astimezone(ZoneInfo("Europe/Amsterdam"))
    opens = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    closes = opens + timedelta(hours=2)
    return {"timezone": "Europe/Amsterdam", "windows": [{
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": opens.strftime("%H:%M"), "end": closes.strftime("%H:%M")}]}


def _setup_cases(server: ServerProcess, key_id: str, start: datetime) -> list[tuple[str, tuple[float, float]]]:
    headers = {"Authorization": "Bearer " + mint_staff_token(server.key, "admin", "kill-test")}
    out = []
    with httpx.Client(base_url=server.base, headers=headers, timeout=10) as http:
        for i in range(CASES):
            centre = (5.0 + 0.05 * i, 52.0 + 0.02 * i)
            case = http.post("/v1/cases", json={
                "reference": f"KILL-{i}", "proximity": None,
                "victim": {"display_name": f"V{i}", "language": "nl"}, "offender": {"display_name": f"O{i}"},
            }).raise_for_status().json()
            order = http.post(f"/v1/cases/{case['id']}/orders", json={
                "kind": "exclusion_zone", "reference": f"ORD-{i}", "valid_from": "2020-01-01T00:00:00Z",
                "valid_until": None,
            }).raise_for_status().json()
            http.post(f"/v1/cases/{case['id']}/zones", json={
                "order_id": order["id"], "name": "home", "kind": "exclusion",
                "geometry": {"type": "Circle", "center": list(centre), "radius_m": 150}, "buffer_m": 300,
                "schedule": None,
            }).raise_for_status()
            curfew = http.post(f"/v1/cases/{case['id']}/orders", json={
                "kind": "inclusion_zone", "reference": f"CUR-{i}", "valid_from": "2020-01-01T00:00:00Z",
                "valid_until": None,
            }).raise_for_status().json()
            home = list(GEOD.fwd(centre[0], centre[1], 0, 4000)[:2])  # 4 km north: he is never home
            http.post(f"/v1/cases/{case['id']}/zones", json={
                "order_id": curfew["id"], "name": "curfew", "kind": "inclusion",
                "geometry": {"type": "Circle", "center": home, "radius_m": 200}, "buffer_m": 0,
                "schedule": _curfew(start),
            }).raise_for_status()
            http.post(f"/v1/cases/{case['id']}/devices", json={
                "role": "offender_tag", "supplier_key_id": key_id, "serial": f"KT-{i}",
            }).raise_for_status()
            out.append((f"KT-{i}", centre))
    return out


def _items(cases: list[tuple[str, tuple[float, float]]], start: datetime) -> list[dict]:
    """Each offender walks in from 1.5 km, stands in the zone, walks out, and does it again."""
    legs = [1500 - 60 * k for k in range(25)] + [0] * 5 + [60 * k for k in range(25)] + [1500] * 25
    items = []
    for k in range(FIXES_PER_CASE):
        t = start + timedelta(seconds=10 * k)
        for serial, (lon0, lat0) in cases:
            lon, lat, _ = GEOD.fwd(lon0, lat0, 45, legs[k % len(legs)])
            items.append({"serial": serial, "recorded_at": t.isoformat(), "lat": lat, "lon": lon, "accuracy_m": 5})
    return items


def _post_until_acknowledged(server: ServerProcess, key_id: str, secret: str, batch: list[dict]) -> list[dict]:
    while True:
        raw, headers = signed(key_id, secret, {"positions": batch})
        try:
            r = httpx.post(server.base + "/v1/ingest/positions", content=raw, headers=headers, timeout=10)
        except httpx.TransportError:
            # The server is down: the supplier retries the same batch; the operator's supervisor restarts it.
            if server.proc is not None and server.proc.poll() is not None:
                server.start()
            continue
        if r.status_code == 200:
            return r.json()["results"]
        time.sleep(0.2)


async def _expected_and_actual(database_url: str) -> tuple[list, list, int, list]:
    conn = await asyncpg.connect(database_url)
    await _init_connection(conn)
    try:
        engine = Engine(EngineSettings(offender_silent_s=10**9, victim_silent_s=10**9, near_silent_s=10**9,
                                       delivery_window_s=DELIVERY_WINDOW_S))
        for cfg in await load_cases(conn):
            engine.configure(cfg, datetime(2020, 1, 1, tzinfo=timezone.utc))
        rows = await conn.fetch(
            "SELECT seq, device_id, case_id, party, recorded_at, received_at, lat, lon, accuracy_m, source"
            " FROM positions ORDER BY seq"
        )
        fixes = [Fix(str(r["seq"]), str(r["device_id"]), str(r["case_id"]), Party(r["party"]), r["recorded_at"],
                     r["received_at"], r["lat"], r["lon"], r["accuracy_m"], r["source"]) for r in rows]
        _, changes = engine.process(fixes)
        expected = sorted((c.episode_id, c.n, c.change.value, c.level.label) for c in changes
                          if c.kind is AlertKind.ZONE_EXCLUSION)
        actual = sorted(
            (str(r["alert_id"]), r["n"], r["change"], r["level"])
            for r in await conn.fetch("SELECT ch.alert_id, ch.n, ch.change, ch.level FROM alert_changes ch"
                                      " JOIN alerts a ON a.id = ch.alert_id"
                                      " WHERE ch.n IS NOT NULL AND a.kind = 'zone_exclusion'")
        )
        alerts = await conn.fetch("SELECT case_id, kind, subject_id, opened_at, cleared_at FROM alerts"
                                  " WHERE NOT late ORDER BY opened_at")
        return expected, actual, len(rows), list(alerts)
    finally:
        await conn.close()


def _two_live_at_once(alerts: list) -> list[tuple]:
    """Subjects (case, kind, zone or device) with an alert opened while another of theirs was still live."""
    by_subject: dict[tuple, list] = defaultdict(list)
    for a in alerts:
        by_subject[(a["case_id"], a["kind"], a["subject_id"])].append(a)
    doubled = []
    for subject, found in by_subject.items():
        for before, after in zip(found, found[1:]):
            if before["cleared_at"] is None or before["cleared_at"] > after["opened_at"]:
                doubled.append(subject)
    return doubled


def test_sigkill_mid_load_loses_nothing_and_raises_nothing_twice(database_url: str, tmp_path: Path) -> None:
    server = ServerProcess(
        database_url, tmp_path / "data",
        # Small batches make the replay after the restart take many steps; a tick is due at the first step
        # after a start, and not again for a minute, so the only clock-driven curfew check is the one that
        # would judge the window's start on the first replayed positions if it ran before the catch-up.
        AFSTAND_ENGINE_BATCH_SIZE="20", AFSTAND_ENGINE_TICK_S="60", AFSTAND_OFFENDER_SILENT_S="1000000000",
        AFSTAND_DELIVERY_WINDOW_S=str(DELIVERY_WINDOW_S),
        AFSTAND_VICTIM_SILENT_S="1000000000", AFSTAND_NEAR_SILENT_S="1000000000",
    )
    settings = Settings(database_url=database_url, data_dir=tmp_path / "data", secret_key=server.secret_key)
    supplier = asyncio.run(create_supplier(settings, "kill-test-supplier"))
    server.start()
    try:
        start = datetime.now(timezone.utc) - timedelta(seconds=10 * FIXES_PER_CASE + 60)  # first fix's time
        cases = _setup_cases(server, supplier["key_id"], start)
        items = _items(cases, start)
        batches = [items[i:i + 60] for i in range(0, len(items), 60)]
        killed, halfway = threading.Event(), threading.Event()

        def killer() -> None:
            halfway.wait()
            time.sleep(0.03)  # lands while the next batches are in flight
            server.kill()
            killed.set()

        threading.Thread(target=killer, daemon=True).start()
        acknowledged = 0
        for i, batch in enumerate(batches):
            if i == len(batches) // 2:
                halfway.set()
            results = _post_until_acknowledged(server, supplier["key_id"], supplier["secret"], batch)
            acknowledged += sum(r["status"] in ("accepted", "duplicate") for r in results)
            assert all(r["status"] != "rejected" for r in results), results
        killed.wait(10)
        assert killed.is_set()
        if server.proc is not None and server.proc.poll() is not None:
            server.start()
        server.wait_ready()
        time.sleep(1.0)
        expected, actual, stored, alerts = asyncio.run(_expected_and_actual(database_url))
    finally:
        server.stop()
    assert acknowledged == len(items)
    assert stored == len(items), "an acknowledged fix was lost"
    assert len(expected) >= CASES * 4, "the scripted tracks should open and clear episodes"
    assert actual == expected
    assert _two_live_at_once(alerts) == []
    curfews = [a for a in alerts if a["kind"] == "zone_inclusion"]
    assert len({a["case_id"] for a in curfews}) == CASES, "every offender is outside during his curfew"
