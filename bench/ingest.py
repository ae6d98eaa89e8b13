"""Ingestion benchmark: ``python -m bench.ingest [--cases N] [--seconds S]``.

Starts ``afstand serve`` on a fresh embedded database, creates the cases over the staff API, enrolls a victim
app per case, then drives simulated suppliers (batches of 100 fixes) and victim apps at a rising rate. One in
fifty cases has an offender who walks into the victim's zone, so alerts flow; fix-to-alert is measured from
the moment the supplier's request is sent to the moment the alert change arrives on the WebSocket.
Prints progress lines and, last, one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psutil
import websockets
from pyproj import Geod

from api.auth.principals import mint_staff_token
from api.cli import create_supplier
from api.platform.settings import Settings
from tests.e2e.server import ServerProcess
from tests.helpers import signed

GEOD = Geod(ellps="WGS84")


def p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


async def setup(server: ServerProcess, key_id: str, n_cases: int) -> list[dict]:
    headers = {"Authorization": "Bearer " + mint_staff_token(server.key, "admin", "bench")}
    cases = []
    async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=30) as http:
        async def one(i: int) -> dict:
            home = (4.3 + (i % 40) * 0.05, 51.5 + (i // 40) * 0.03)
            case = (await http.post("/v1/cases", json={
                "reference": f"BENCH-{i}", "proximity": {"warn_m": 1000, "alert_m": 500},
                "victim": {"display_name": f"V{i}", "language": "nl"}, "offender": {"display_name": f"O{i}"},
            })).raise_for_status().json()
            order = (await http.post(f"/v1/cases/{case['id']}/orders", json={
                "kind": "contact_ban", "reference": f"O-{i}", "valid_from": "2020-01-01T00:00:00Z", "valid_until": None,
            })).raise_for_status().json()
            (await http.post(f"/v1/cases/{case['id']}/zones", json={
                "order_id": order["id"], "name": "home", "kind": "exclusion",
                "geometry": {"type": "Circle", "center": list(home), "radius_m": 200}, "buffer_m": 300, "schedule": None,
            })).raise_for_status()
            (await http.post(f"/v1/cases/{case['id']}/devices", json={
                "role": "offender_tag", "supplier_key_id": key_id, "serial": f"B-{i}",
            })).raise_for_status()
            code = (await http.post(f"/v1/cases/{case['id']}/enrollments")).raise_for_status().json()["code"]
            app = (await http.post("/v1/me/enroll", json={
                "code": code, "installation_id": f"bench-{i}", "platform": "android",
            })).raise_for_status().json()
            return {"id": case["id"], "serial": f"B-{i}", "home": home, "token": app["access_token"], "i": i}

        for start in range(0, n_cases, 50):
            cases += await asyncio.gather(*(one(i) for i in range(start, min(start + 50, n_cases))))
            print(f"setup: {len(cases)} cases", flush=True)
    return cases


class Load:
    def __init__(self, server: ServerProcess, supplier: dict, cases: list[dict]) -> None:
        self.server, self.supplier, self.cases = server, supplier, cases
        self.sent_at: dict[tuple[str, str], float] = {}
        self.ingest_ms: list[float] = []
        self.fix_to_alert_ms: list[float] = []
        self.accepted = 0
        self.t0 = datetime.now(timezone.utc)
        self.reports: dict[int, int] = {}

    def next_fix(self, case: dict) -> tuple[str, float, float]:
        """The case's tag reports every 200 ms of fix time; one in fifty offenders approaches and leaves."""
        n = self.reports[case["i"]] = self.reports.get(case["i"], 0) + 1
        lon0, lat0 = case["home"]
        dist = abs(2000 - (n * 8) % 4000) if case["i"] % 50 == 0 else 5000 + (n * 7) % 300
        lon, lat, _ = GEOD.fwd(lon0, lat0, 30, dist)
        return (self.t0 + timedelta(milliseconds=200 * n)).isoformat(), lat, lon

    async def supplier_batch(self, http: httpx.AsyncClient, chunk: list[dict]) -> None:
        items = []
        for case in chunk:
            recorded, lat, lon = self.next_fix(case)
            items.append({"serial": case["serial"], "recorded_at": recorded, "lat": lat, "lon": lon, "accuracy_m": 6})
        raw, headers = signed(self.supplier["key_id"], self.supplier["secret"], {"positions": items})
        sent = time.perf_counter()
        for case, item in zip(chunk, items):
            if case["i"] % 50 == 0:
                self.sent_at[(case["id"], item["recorded_at"])] = sent
        r = await http.post("/v1/ingest/positions", content=raw, headers=headers)
        self.ingest_ms.append((time.perf_counter() - sent) * 1000)
        if r.status_code == 200:
            self.accepted += sum(x["status"] == "accepted" for x in r.json()["results"])

    async def victim_batch(self, http: httpx.AsyncClient, case: dict) -> None:
        lon, lat = case["home"]
        r = await http.post("/v1/me/positions", headers={"Authorization": "Bearer " + case["token"]}, json={
            "positions": [{"recorded_at": datetime.now(timezone.utc).isoformat(), "lat": lat, "lon": lon,
                           "accuracy_m": 10}]})
        if r.status_code == 200:
            self.accepted += sum(x["status"] == "accepted" for x in r.json()["results"])

    async def watch(self) -> None:
        token = mint_staff_token(self.server.key, "operator", "bench")
        url = self.server.base.replace("http", "ws") + f"/v1/alerts/stream?after=0&token={token}"
        async with websockets.connect(url, max_size=None) as ws:
            async for message in ws:
                arrived = time.perf_counter()
                item = json.loads(message)
                fix_at = item["change"]["fix_at"]
                if not fix_at:
                    continue
                key = (item["alert"]["case_id"], datetime.fromisoformat(fix_at).isoformat())
                if key in self.sent_at:
                    self.fix_to_alert_ms.append((arrived - self.sent_at[key]) * 1000)


async def drive(load: Load, seconds: float) -> dict:
    watcher = asyncio.create_task(load.watch())
    await asyncio.sleep(0.5)
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=load.server.base, timeout=30, limits=limits) as http:
        started = time.perf_counter()
        k = 0
        rate = 1000.0
        steps: list[dict] = []
        while time.perf_counter() - started < seconds:
            step_start, accepted0 = time.perf_counter(), load.accepted
            # One second of load: `rate` tag fixes in batches of 100, and a tenth of the victims' apps.
            # Each group of 100 tags is one supplier connection sending in order, so no tag's fixes overtake.
            groups = [load.cases[g:g + 100] for g in range(0, len(load.cases), 100)]
            per_group = max(1, round(rate / 100 / len(groups)))

            async def supplier(chunk: list[dict]) -> None:
                for _ in range(per_group):
                    await load.supplier_batch(http, chunk)

            tasks = [supplier(chunk) for chunk in groups]
            for case in load.cases[k % 10::10]:
                tasks.append(load.victim_batch(http, case))
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - step_start
            if elapsed < 1.0:
                await asyncio.sleep(1.0 - elapsed)
            achieved = (load.accepted - accepted0) / max(time.perf_counter() - step_start, 1e-9)
            steps.append({"offered": rate, "achieved": achieved})
            print(f"t={time.perf_counter() - started:5.1f}s offered {rate:6.0f}/s achieved {achieved:6.0f}/s", flush=True)
            rate = rate * 1.1 if achieved >= 0.9 * rate else rate
            k += 1
    await asyncio.sleep(2.0)
    watcher.cancel()
    sustained = max(s["achieved"] for s in steps[len(steps) // 2:]) if steps else 0
    return {"positions_per_s": round(sustained), "steps": len(steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    from api.platform.database import embedded_database

    with tempfile.TemporaryDirectory(prefix="afstand-bench-") as tmp, embedded_database(Path(tmp) / "data") as url:
        data = Path(tmp) / "data"
        # The bench enrolls one victim app per case from one address: the enroll rate limit is for attackers.
        server = ServerProcess(url, data, AFSTAND_DB_POOL_MAX="20", AFSTAND_RATE_LIMIT_ENABLED="false")
        settings = Settings(database_url=url, data_dir=data, secret_key=server.secret_key)
        supplier = asyncio.run(create_supplier(settings, "bench-supplier"))
        server.start()
        try:
            cases = asyncio.run(setup(server, supplier["key_id"], args.cases))
            load = Load(server, supplier, cases)
            result = asyncio.run(drive(load, args.seconds))
            assert server.proc is not None
            rss = psutil.Process(server.proc.pid).memory_info().rss / 2**20
        finally:
            server.stop()
    print(json.dumps({
        "positions_per_s": result["positions_per_s"],
        "p99_ingest_ms": round(p99(load.ingest_ms), 1),
        "p99_fix_to_alert_ms": round(p99(load.fix_to_alert_ms), 1),
        "alert_changes_timed": len(load.fix_to_alert_ms),
        "rss_mb": round(rss, 1),
    }))


if __name__ == "__main__":
    main()
