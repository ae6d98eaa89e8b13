"""Cluster benchmark: ``python -m bench.cluster [--cases N] [--seconds S] [--kills K]``.

Runs real processes against one PostgreSQL (embedded, or ``--database-url``) and the machine's NATS JetStream
(``--nats-url``): API processes (role ``api``) and three engine processes (role ``engine``), the partitioned log
on JetStream. It measures:

* ``fixes_per_s_1_api`` / ``fixes_per_s_2_api``: accepted fixes per second when suppliers send batches of 100
  as fast as the API answers (``--clients`` requests in flight) to one API process, then to two in turn. On two
  cores the second process competes with the first, the engines and PostgreSQL for the same CPU;
* ``cpu_ms_per_fix``: CPU time of every Afstand process (not PostgreSQL's, not NATS's) per accepted fix, from the
  start of the two-API burst until the engines have evaluated all of it;
* ``p99_fix_to_alert_ms``: under a steady load (every tag every ``--period-s``) once the engines have evaluated the
  bursts, tags drive into their zone; every alert a fix raised or escalated, from the causing fix's receipt to
  the change's commit by the database's clock, as bench/ingest.py measures it (the kills below are part of this
  phase);
* ``failover_p50_s`` / ``failover_max_s``: ``--kills`` times, SIGKILL the engine that owns most partitions as
  one of its cases drives into its zone: the time from the kill to that alert stored; the engine is restarted
  after each;
* ``lost_fixes``: fixes the suppliers saw accepted but that are not in the log, or that no engine evaluated;
  ``duplicate_changes``: alert changes stored twice for the same episode step.

Progress lines, then last one line of JSON. Stops every process it started, and the embedded PostgreSQL, also on
an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.ingest import db_now, fix_to_alert_ms
from tests.cluster.harness import (CENTRE, M_PER_DEG_LAT, OUTSIDE_M, Cluster, Supplier, cases_in,
                                   evaluated_everything, make_cases, query)
from tests.e2e.server import ServerProcess
from tests.helpers import signed

PARTITIONS = 16


def _p(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else values[0]


async def _blast(apis: list[ServerProcess], key_id: str, secret: str, serials: list[str], seconds: float,
                 clients: int) -> int:
    """Batches of 100 fixes as fast as the APIs answer; the fixes accepted."""
    accepted = 0
    deadline = time.monotonic() + seconds
    lat = CENTRE[1] + OUTSIDE_M / M_PER_DEG_LAT

    async def client(k: int, http: httpx.AsyncClient) -> None:
        nonlocal accepted
        i = k
        while time.monotonic() < deadline:
            api = apis[i % len(apis)]
            now = datetime.now(timezone.utc).isoformat()
            start = (i * 100) % len(serials)
            batch = [{"serial": serials[(start + j) % len(serials)], "recorded_at": now, "lat": lat,
                      "lon": CENTRE[0], "accuracy_m": 8.0} for j in range(min(100, len(serials)))]
            raw, headers = signed(key_id, secret, {"positions": batch})
            try:
                r = await http.post(api.base + "/v1/ingest/positions", content=raw, headers=headers)
            except httpx.TransportError:
                continue
            if r.status_code == 200:
                accepted += sum(1 for x in r.json()["results"] if x["status"] == "accepted")
            i += clients

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=clients * 2)) as http:
        await asyncio.gather(*(client(k, http) for k in range(clients)))
    return accepted


def _cpu_s(servers: list[ServerProcess]) -> float:
    total = 0.0
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            t = psutil.Process(s.proc.pid).cpu_times()
            total += t.user + t.system
    return total


def _owned_by_live(cluster: Cluster, dead_pid: int) -> bool:
    owners = cluster.owners()
    return all(owners.get(f"partition:{p:03d}") and owners[f"partition:{p:03d}"].split(":")[1] != str(dead_pid)
               for p in range(PARTITIONS))


def _until(what: Any, timeout: float) -> float:
    started = time.monotonic()
    while not what():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def _zone_alert(url: str, case_id: str) -> bool:
    return bool(query(url, "SELECT 1 FROM alerts WHERE case_id = $1 AND kind = 'zone_exclusion'", uuid.UUID(case_id)))


def run(args: argparse.Namespace, url: str, root: Path) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    cluster = Cluster(url, root, {
        "AFSTAND_NATS_URL": args.nats_url, "AFSTAND_NATS_STREAM": f"AFSTAND_BENCH_{tag}",
        "AFSTAND_NATS_SUBJECT_PREFIX": f"afstand-bench-{tag}", "AFSTAND_PARTITIONS": str(PARTITIONS),
        "AFSTAND_RATE_LIMIT_ENABLED": "false", "AFSTAND_OFFENDER_SILENT_S": "3600", "AFSTAND_DB_POOL_MAX": "20",
    })
    for i in (1, 2):
        cluster.add(f"api-{i}", "api")
    for i in (1, 2, 3):
        cluster.add(f"engine-{i}", "engine")
    with ExitStack() as stack:
        stack.callback(cluster.stop_all)
        cluster.start_all()
        keys = cluster.supplier()
        apis = cluster.of_role("api")
        print(f"creating {args.cases} cases", flush=True)
        cases = make_cases(apis[0], keys["key_id"], args.cases)
        serials = [s for _, s in cases]
        _until(lambda: _owned_by_live(cluster, -1), 30)

        one = asyncio.run(_blast(apis[:1], keys["key_id"], keys["secret"], serials, args.seconds, args.clients))
        caught_up = _until(lambda: evaluated_everything(url, PARTITIONS), 600)
        print(f"1 API: {one / args.seconds:.0f} fixes/s; the engines evaluated the burst {caught_up:.1f} s after it",
              flush=True)
        cpu0 = _cpu_s(list(cluster.processes.values()))
        two = asyncio.run(_blast(apis, keys["key_id"], keys["secret"], serials, args.seconds, args.clients))
        caught_up = _until(lambda: evaluated_everything(url, PARTITIONS), 600)
        # Every process's CPU from the start of the burst until the engines have evaluated all of it.
        cpu_ms_per_fix = (_cpu_s(list(cluster.processes.values())) - cpu0) * 1000 / max(two, 1)
        print(f"2 APIs: {two / args.seconds:.0f} fixes/s, {cpu_ms_per_fix:.3f} CPU ms a fix (API, relay, engines);"
              f" the engines evaluated the burst {caught_up:.1f} s after it", flush=True)

        steady_since = asyncio.run(db_now(url))
        supplier = Supplier(apis, keys["key_id"], keys["secret"], serials, period_s=args.period_s)
        supplier.start()
        stack.callback(lambda: supplier.is_alive() and supplier.stop())
        drivers = cases[: max(1, len(cases) // 10)]
        for _, serial in drivers:
            supplier.approach(serial)
        for case_id, _ in drivers:
            _until(lambda: _zone_alert(url, case_id), 60)

        failovers: list[float] = []
        used = {c for c, _ in drivers}
        for k in range(args.kills):
            engines = cluster.of_role("engine")
            busiest = max(engines, key=lambda e: len(cluster.partitions_of(e)))
            choice = [c for c in cases_in(cases, cluster.partitions_of(busiest), PARTITIONS) if c[0] not in used]
            if not choice:
                print("no fresh case on the busiest engine's partitions; stopping the kills", flush=True)
                break
            case_id, serial = choice[0]
            used.add(case_id)
            supplier.approach(serial)
            time.sleep(1.0)  # on its way in
            assert busiest.proc is not None
            dead = busiest.proc.pid
            killed = time.monotonic()
            busiest.kill()
            _until(lambda: _owned_by_live(cluster, dead), 30)
            _until(lambda: _zone_alert(url, case_id), 60)
            failovers.append(time.monotonic() - killed)
            print(f"kill {k + 1}: alert after {failovers[-1]:.2f} s", flush=True)
            busiest.start()
            busiest.wait_ready(60)
        supplier.stop()
        _until(lambda: evaluated_everything(url, PARTITIONS), 60)
        latencies = asyncio.run(fix_to_alert_ms(url, steady_since, asyncio.run(db_now(url))))
        stored = query(url, "SELECT count(*) AS n FROM positions")[0]["n"]
        duplicates = query(url, "SELECT count(*) AS n FROM (SELECT 1 FROM alert_changes WHERE n IS NOT NULL"
                                " GROUP BY alert_id, change, fix_at HAVING count(*) > 1) d")[0]["n"]
        return {
            "fixes_per_s_1_api": round(one / args.seconds),
            "fixes_per_s_2_api": round(two / args.seconds),
            "cpu_ms_per_fix": round(cpu_ms_per_fix, 3),
            "p99_fix_to_alert_ms": round(_p(latencies, 99), 1),
            "failover_p50_s": round(statistics.median(failovers), 2) if failovers else None,
            "failover_max_s": round(max(failovers), 2) if failovers else None,
            "lost_fixes": one + two + supplier.accepted - stored,
            "duplicate_changes": duplicates,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each throughput run")
    parser.add_argument("--clients", type=int, default=8, help="supplier requests in flight")
    parser.add_argument("--period-s", type=float, default=1.0, help="each tag's period under the steady load")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--database-url", help="a PostgreSQL to use instead of an embedded one (a fresh database)")
    args = parser.parse_args()
    from api.platform.database import embedded_database

    with tempfile.TemporaryDirectory(prefix="afstand-bench-cluster-") as tmp:
        root = Path(tmp)
        if args.database_url:
            result = run(args, args.database_url, root)
        else:
            with embedded_database(root / "pg") as url:
                result = run(args, url, root)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
