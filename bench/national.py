"""The national operating point at rest: ``python -m bench.national [--cases N] [--phones N] [--seconds S]``.

Starts ``afstand serve`` (one process, role ``all``) on a fresh embedded PostgreSQL with 5,000 cases (a contact
ban and an exclusion zone each) and runs them in real time: every tag reports every 30 s (supplier batches of
100), 2,000 victims' phones every 60 s (one fix a request). One case in ten has an offender walking to and fro
between 4 km and the victim's home, so alerts open and clear all along (bench/ingest.py's load, at a fixed
rate). Fix→alert is measured as bench/ingest.py does: for every alert a fix raised or escalated during the steady
run, from the receipt of the causing fix to the change's commit, by the database's clock.

Then it restarts the server (SIGTERM, start) and times ``ready_s``: from the start to ``/readyz`` answering 200,
which includes loading every case into the engine.

Last line, JSON: ``cases``, ``p50_fix_to_alert_ms``, ``p99_fix_to_alert_ms``, ``max_fix_to_alert_ms``,
``cpu_pct`` (the server and its PostgreSQL, percent of one core, over the steady run) and ``ready_s``. Stops
the server and the embedded PostgreSQL it started, also on an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from api.cli import create_supplier
from api.platform.settings import Settings
from bench.ingest import Load, setup
from tests.e2e.server import ServerProcess


def _tree_cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def _postgres_pids(data_dir: Path) -> list[int]:
    """The embedded PostgreSQL's processes (its postmaster and backends)."""
    pids = []
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            if (p.info["name"] or "").startswith("postgres") and any(str(data_dir) in a for a in p.info["cmdline"] or []):
                pids += [p.pid] + [c.pid for c in p.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return pids


def _ready_s(server: ServerProcess) -> float:
    server.stop()
    started = time.monotonic()
    server.start(timeout=120)
    while True:
        try:
            if httpx.get(server.base + "/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)


async def _steady(load: Load, rate: float, phone_share: float, seconds: float,
                  pids: list[int]) -> tuple[list[float], float]:
    cpu0, wall0 = _tree_cpu_s(pids), time.monotonic()
    step = await load.run_step(rate, phone_share, seconds)
    cpu_pct = 100 * (_tree_cpu_s(pids) - cpu0) / (time.monotonic() - wall0)
    print(f"steady: offered {rate:.0f} fixes/s, accepted {step.accepted}, failed {step.failed},"
          f" dropped {step.dropped}; {len(step.fix_to_alert_ms)} alert changes timed", flush=True)
    return step.fix_to_alert_ms, cpu_pct


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--phones", type=int, default=2000, help="victims' phones reporting (at most one a case)")
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the steady run")
    parser.add_argument("--tag-period-s", type=float, default=30.0)
    parser.add_argument("--phone-period-s", type=float, default=60.0)
    parser.add_argument("--approach-every", type=int, default=10, help="one case in N has an approaching offender")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    from api.platform.database import embedded_database

    with tempfile.TemporaryDirectory(prefix="afstand-bench-national-") as tmp, \
            embedded_database(Path(tmp) / "data") as url:
        data = Path(tmp) / "data"
        server = ServerProcess(url, data, AFSTAND_DB_POOL_MAX="20", AFSTAND_RATE_LIMIT_ENABLED="false",
                               AFSTAND_ACCESS_TOKEN_TTL_S="86400")
        settings = Settings(database_url=url, data_dir=data, secret_key=server.secret_key)
        supplier = asyncio.run(create_supplier(settings, "bench-supplier"))
        try:
            server.start()
            cases = asyncio.run(setup(server, supplier["key_id"], args.cases, args.approach_every))
            phones = min(args.phones, len(cases))
            tag_rate = len(cases) / args.tag_period_s
            phone_rate = phones / args.phone_period_s
            rate = tag_rate + phone_rate
            assert server.proc is not None
            pids = [server.proc.pid] + _postgres_pids(data)

            async def run() -> tuple[list[float], float]:
                load = Load(server, supplier, cases, 256, url)
                load.phone_cases = cases[:phones]
                return await _steady(load, rate, phone_rate / rate, args.seconds, pids)

            latencies, cpu_pct = asyncio.run(run())
            ready_s = _ready_s(server)
        finally:
            server.stop()
    ordered = sorted(latencies)

    def pct(q: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None

    print(json.dumps({
        "cases": len(cases), "p50_fix_to_alert_ms": round(statistics.median(ordered), 1) if ordered else None,
        "p99_fix_to_alert_ms": pct(0.99), "max_fix_to_alert_ms": round(ordered[-1], 1) if ordered else None,
        "cpu_pct": round(cpu_pct, 1), "ready_s": round(ready_s, 2),
    }))


if __name__ == "__main__":
    main()
