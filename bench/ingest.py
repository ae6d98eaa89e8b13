"""Ingestion benchmark: ``python -m bench.ingest [--cases N] [--step-s S] ...``.

Starts ``afstand serve`` on a fresh embedded PostgreSQL and creates the cases over the staff API (a contact ban,
an exclusion zone at the victim's home, a tag and an enrolled victim app each). Then, for each of two paths,
it finds the sustainable rate: the highest offered rate (fixes/s) that the server accepts in full and whose
p99 fix→alert stays <= 250 ms, offering rates that rise by ``--growth`` a step until two steps in a row fail;
and it runs one more step at 80 % of that rate for the p99 figures. The paths:

* ``mixed``: the realistic mix, a third of the fixes from victims' phones one per request (``/v1/me/positions``)
  and the rest from the supplier in batches of 100 (``/v1/ingest/positions``);
* ``supplier``: supplier batches of 100 only.

The load is open-loop (requests leave on schedule whether or not earlier ones were answered, up to
``--in-flight``), every fix carries the wall-clock time, and victims stay at home. One case in ten has an
offender who walks (at 50 m/s, under the engine's speed limit) from 4 km to the victim's home and back, so
alerts open, escalate and clear all the time. Fix→alert runs, for every alert a fix raised or escalated during a
step, from the receipt of the fix that caused it (the last received of the fixes its evidence names) to the
change's commit, by the database's clock.

Progress lines, then last one line of JSON: ``mixed_fixes_per_s``, ``supplier_fixes_per_s`` (the sustainable
rates), ``p99_fix_to_alert_ms`` and ``p99_request_ms`` (the worse path's, at 80 % of its sustainable rate) and
``rss_mb`` (the server's peak resident memory). Stops the server and the embedded PostgreSQL it started,
also on an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from pyproj import Geod

from api.auth.principals import mint_staff_token, sign
from api.cli import create_supplier
from api.platform.settings import Settings
from tests.e2e.server import ServerProcess

GEOD = Geod(ellps="WGS84")
TARGET_P99_MS = 250.0
BATCH = 100
WALK_MPS = 50.0
WALK_FROM_M = 4_000.0  # beyond the warning band long enough (clear_hold_s) for episodes to clear each lap


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


# ---------------------------------------------------------------- setup over the staff API

async def setup(server: ServerProcess, key_id: str, n_cases: int, approach_every: int) -> list[dict[str, Any]]:
    headers = {"Authorization": "Bearer " + mint_staff_token(server.key, "admin", "bench")}
    async with httpx.AsyncClient(base_url=server.base, headers=headers, timeout=60) as http:
        async def one(i: int) -> dict[str, Any]:
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
            return {"id": case["id"], "serial": f"B-{i}", "home": home, "token": app["access_token"],
                    "approach": i % approach_every == 0, "phase": random.Random(i).random()}

        cases: list[dict[str, Any]] = []
        for start in range(0, n_cases, 50):
            cases += await asyncio.gather(*(one(i) for i in range(start, min(start + 50, n_cases))))
            print(f"setup: {len(cases)} cases", flush=True)
    return cases


# ---------------------------------------------------------------- a lean HTTP/1.1 client

class Connections:
    """Keep-alive HTTP/1.1 connections to the server: the load generator shares the machine with the server, so
    it spends as little CPU per request as it can (a fraction of what a general-purpose client needs)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        while self.idle:
            reader, writer = self.idle.pop()
            if writer.is_closing() or reader.at_eof():
                writer.close()  # the server closed this idle keep-alive connection: take another
                continue
            try:
                return await self._post(reader, writer, path, body, headers)
            except (OSError, asyncio.IncompleteReadError, IndexError):
                continue
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return await self._post(reader, writer, path, body, headers)

    async def _post(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes,
                    headers: dict[str, str]) -> tuple[int, bytes]:
        try:
            return await self._exchange(reader, writer, path, body, headers)
        except BaseException:
            writer.close()  # never written to again
            raise

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes,
                        headers: dict[str, str]) -> tuple[int, bytes]:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-length: {len(body)}\r\n{head}\r\n".encode() + body)
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        payload = await reader.readexactly(length)
        self.idle.append((reader, writer))
        return status, payload

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


# ---------------------------------------------------------------- the load

@dataclass
class Step:
    offered: float
    sent: int = 0
    accepted: int = 0
    failed: int = 0
    dropped: int = 0
    request_ms: list[float] = field(default_factory=list)
    fix_to_alert_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def achieved(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        """Served in full (the generator kept the pace, nothing dropped or refused) and alerts in time."""
        worst = p99(self.fix_to_alert_ms)
        return (self.sent >= 0.9 * self.offered * self.seconds and self.accepted >= 0.99 * self.sent
                and not self.failed and not self.dropped and worst is not None and worst <= TARGET_P99_MS)


async def db_now(url: str) -> datetime:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT clock_timestamp()")
    finally:
        await conn.close()


async def fix_to_alert_ms(url: str, since: datetime, until: datetime) -> list[float]:
    """Each alert raised or escalated by a fix in the window (proximity and exclusion zones: the changes a fix
    decides; clears wait out their hold and clock-driven changes have no causing fix), from the receipt of the
    fix that caused it (the last received of the fixes its evidence names: the decision could not come before it)
    to the change's commit, both by the database's clock."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM ch.at - max(l.received_at))::float8 * 1000 AS ms FROM alert_changes ch"
            " JOIN alerts a ON a.id = ch.alert_id"
            " CROSS JOIN LATERAL jsonb_array_elements_text(ch.detail -> 'evidence') AS e(id)"
            " JOIN engine_log l ON l.seq = e.id::bigint"
            " WHERE ch.at BETWEEN $1 AND $2 AND ch.change IN ('opened', 'escalated')"
            " AND a.kind IN ('proximity', 'zone_exclusion') GROUP BY ch.seq, ch.at",
            since, until)
        return [r["ms"] for r in rows]
    finally:
        await conn.close()


class Load:
    def __init__(self, server: ServerProcess, supplier: dict[str, str], cases: list[dict[str, Any]],
                 in_flight: int, database_url: str, walk_from_m: float = WALK_FROM_M) -> None:
        self.database_url = database_url
        self.walk_from_m = walk_from_m
        self.server, self.supplier, self.cases = server, supplier, cases
        self.phone_cases = cases  # the cases whose victim's phone reports
        self.http = Connections(server.port)
        self.in_flight = asyncio.Semaphore(in_flight)
        self.last_at: dict[str, datetime] = {}
        self.step: Step | None = None
        self.alerts_timed = 0  # alert changes timed over the whole run
        self.chunk = 0

    def at(self, device: str) -> datetime:
        """Now, but strictly after the device's previous fix, so no fix is a duplicate of another."""
        t = max(datetime.now(timezone.utc), self.last_at.get(device, datetime.min.replace(tzinfo=timezone.utc))
                + timedelta(milliseconds=1))
        self.last_at[device] = t
        return t

    def tag_fix(self, case: dict[str, Any]) -> dict[str, Any]:
        at = self.at(case["serial"])
        lon0, lat0 = case["home"]
        if case["approach"]:  # a triangle walk between walk_from_m and the victim's home
            d = (at.timestamp() * WALK_MPS + case["phase"] * 2 * self.walk_from_m) % (2 * self.walk_from_m)
            dist = abs(d - self.walk_from_m)
        else:
            dist = 5_000 + (at.timestamp() * 3) % 300
        lon, lat, _ = GEOD.fwd(lon0, lat0, 30, dist)
        return {"serial": case["serial"], "recorded_at": at.isoformat(), "lat": lat, "lon": lon, "accuracy_m": 6}

    async def _send(self, path: str, body: bytes, headers: dict[str, str], fixes: int) -> None:
        step = self.step
        assert step is not None
        if self.in_flight.locked():
            step.dropped += fixes  # the server is this far behind: the offered rate is not being served
            return
        async with self.in_flight:
            sent = time.perf_counter()
            step.sent += fixes
            try:
                status, payload = await self.http.post(path, body, headers)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                step.failed += fixes
                return
            step.request_ms.append((time.perf_counter() - sent) * 1000)
            step.statuses[status] += 1
            if status == 200:
                step.accepted += sum(r["status"] == "accepted" for r in json.loads(payload)["results"])
            else:
                step.failed += fixes

    async def supplier_batch(self) -> None:
        start = (self.chunk * BATCH) % len(self.cases)
        self.chunk += 1
        chunk = (self.cases + self.cases)[start:start + min(BATCH, len(self.cases))]
        items = [self.tag_fix(case) for case in chunk]
        body = json.dumps({"positions": items}).encode()
        ts = str(int(time.time()))
        headers = {"content-type": "application/json", "x-afstand-key": self.supplier["key_id"],
                   "x-afstand-timestamp": ts, "x-afstand-signature": sign(self.supplier["secret"], ts, body)}
        await self._send("/v1/ingest/positions", body, headers, len(items))

    async def phone_fix(self, case: dict[str, Any]) -> None:
        lon, lat = case["home"]
        at = self.at(case["id"])
        body = json.dumps({"positions": [{"recorded_at": at.isoformat(), "lat": lat, "lon": lon,
                                          "accuracy_m": 10}]}).encode()
        headers = {"content-type": "application/json", "authorization": "Bearer " + case["token"]}
        await self._send("/v1/me/positions", body, headers, 1)

    async def run_step(self, rate: float, phone_share: float, seconds: float) -> Step:
        """Offer ``rate`` fixes/s for ``seconds``: ``phone_share`` of them one per phone request, the rest in
        supplier batches; then wait a little for the last answers and alerts."""
        step = self.step = Step(rate)
        since = await db_now(self.database_url)
        tasks: set[asyncio.Task[None]] = set()
        phones = rate * phone_share
        batches = rate * (1 - phone_share) / min(BATCH, len(self.cases))
        started = time.perf_counter()
        owed_phones = owed_batches = 0.0
        last = started
        rng = random.Random(int(rate))
        while (now := time.perf_counter()) - started < seconds:
            owed_phones += (now - last) * phones
            owed_batches += (now - last) * batches
            last = now
            while owed_batches >= 1:
                owed_batches -= 1
                tasks.add(asyncio.create_task(self.supplier_batch()))
            while owed_phones >= 1:
                owed_phones -= 1
                tasks.add(asyncio.create_task(self.phone_fix(rng.choice(self.phone_cases))))
            tasks = {t for t in tasks if not t.done()}
            await asyncio.sleep(0.005)
        step.seconds = time.perf_counter() - started
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        # The alerts of the step's last fixes. An engine further behind than this leaves the step with few or no
        # timed alerts, and a step without any does not pass.
        await asyncio.sleep(2.0)
        step.fix_to_alert_ms = await fix_to_alert_ms(self.database_url, since, await db_now(self.database_url))
        self.alerts_timed += len(step.fix_to_alert_ms)
        self.step = None
        return step


def report(path: str, step: Step) -> None:
    worst = p99(step.fix_to_alert_ms)
    print(f"{path}: offered {step.offered:7.0f}/s accepted {step.achieved:7.0f}/s failed {step.failed} dropped"
          f" {step.dropped} p99 request {p99(step.request_ms) or float('nan'):7.1f} ms p99 fix->alert"
          f" {worst if worst is not None else float('nan'):7.1f} ms ({len(step.fix_to_alert_ms)} alert changes)"
          f" {'ok' if step.ok else 'not sustained'} {dict(step.statuses)}", flush=True)


async def sustainable(load: Load, path: str, phone_share: float, args: argparse.Namespace) -> tuple[float, Step]:
    """The highest offered rate that passes, climbing until two steps in a row fail; then 80 % of it."""
    rate, best, misses = args.start_rate, 0.0, 0
    for _ in range(args.max_steps):
        step = await load.run_step(rate, phone_share, args.step_s)
        report(path, step)
        if step.ok:
            best, misses = rate, 0
        else:
            misses += 1
            if misses == 2:
                break
        rate *= args.growth
    at80 = await load.run_step(max(best, args.start_rate) * 0.8, phone_share, args.step_s)
    report(path + " at 80 %", at80)
    return best, at80


async def drive(load: Load, args: argparse.Namespace, peak: list[float]) -> dict[str, Any]:
    assert load.server.proc is not None
    server = psutil.Process(load.server.proc.pid)

    async def sample_rss() -> None:
        while True:  # the server's processes: with --workers, the command and each worker
            processes = [server, *server.children(recursive=True)]
            peak[0] = max(peak[0], sum(p.memory_info().rss for p in processes) / 2**20)
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_rss())
    try:
        mixed, mixed80 = await sustainable(load, "mixed", args.phone_share, args)
        supplier, supplier80 = await sustainable(load, "supplier", 0.0, args)
    finally:
        sampler.cancel()
        load.http.close()
    alert_p99 = [p for p in (p99(mixed80.fix_to_alert_ms), p99(supplier80.fix_to_alert_ms)) if p is not None]
    request_p99 = [p for p in (p99(mixed80.request_ms), p99(supplier80.request_ms)) if p is not None]
    print(f"alert changes timed: {load.alerts_timed}", flush=True)
    return {
        "mixed_fixes_per_s": round(mixed), "supplier_fixes_per_s": round(supplier),
        "p99_fix_to_alert_ms": round(max(alert_p99), 1) if alert_p99 else None,
        "p99_request_ms": round(max(request_p99), 1) if request_p99 else None,
    }


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM as Ctrl-C: the finally blocks below stop the server and the database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--step-s", type=float, default=15.0, help="seconds each offered rate is held")
    parser.add_argument("--start-rate", type=float, default=1000.0, help="the first offered rate, fixes/s")
    parser.add_argument("--growth", type=float, default=1.25, help="factor between offered rates")
    parser.add_argument("--max-steps", type=int, default=20, help="rate steps per path at most")
    parser.add_argument("--phone-share", type=float, default=1 / 3, help="share of the mixed path's fixes from phones")
    parser.add_argument("--approach-every", type=int, default=10, help="one case in N has an approaching offender")
    parser.add_argument("--in-flight", type=int, default=512, help="requests outstanding at most")
    parser.add_argument("--walk-from-m", type=float, default=WALK_FROM_M,
                        help="how far the approaching offenders turn back (a short walk raises alerts sooner)")
    parser.add_argument("--workers", type=int, default=1, help="server processes on the port (AFSTAND_WORKERS)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    from api.platform.database import embedded_database

    peak = [0.0]
    with tempfile.TemporaryDirectory(prefix="afstand-bench-") as tmp, embedded_database(Path(tmp) / "data") as url:
        data = Path(tmp) / "data"
        # One address enrolls every app (the enroll rate limit is for attackers), and the access tokens must
        # outlive the run.
        server = ServerProcess(url, data, AFSTAND_DB_POOL_MAX="20", AFSTAND_RATE_LIMIT_ENABLED="false",
                               AFSTAND_ACCESS_TOKEN_TTL_S="86400", AFSTAND_WORKERS=str(args.workers))
        settings = Settings(database_url=url, data_dir=data, secret_key=server.secret_key)
        supplier = asyncio.run(create_supplier(settings, "bench-supplier"))
        try:
            server.start()
            cases = asyncio.run(setup(server, supplier["key_id"], args.cases, args.approach_every))

            async def run() -> dict[str, Any]:
                return await drive(Load(server, supplier, cases, args.in_flight, url, args.walk_from_m), args, peak)

            result = asyncio.run(run())
        finally:
            server.stop()
    print(json.dumps({**result, "rss_mb": round(peak[0], 1)}))


if __name__ == "__main__":
    main()
