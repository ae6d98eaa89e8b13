"""A cluster of real `afstand serve` processes sharing one PostgreSQL and one NATS JetStream, a supplier that
keeps sending, and the reads the tests make of the shared database."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from api.auth.principals import mint_staff_token
from api.cli import create_supplier
from api.cluster.partitioning import partition_of
from api.platform.settings import Settings
from tests.e2e.server import ServerProcess
from tests.helpers import signed

CENTRE = (5.1214, 52.0907)  # lon, lat of each case's exclusion zone
M_PER_DEG_LAT = 111_200.0
OUTSIDE_M = 230.0  # where each tag stays: this far north of its zone's centre, outside the zone and its buffer


def query(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def evaluated_everything(url: str, partitions: int) -> bool:
    """Every committed entry of the log (fix or encounter) is at or below its partition engine's position."""
    rows = query(url, "SELECT p.part, max(p.seq) AS head, coalesce(e.last_seq, 0) AS done FROM"
                      " (SELECT afstand_partition(case_id, $1) AS part, seq FROM engine_log) p"
                      " LEFT JOIN engine_progress e ON e.engine_id = 'partition-' || lpad(p.part::text, 3, '0')"
                      " GROUP BY p.part, e.last_seq", partitions)
    return all(r["done"] >= r["head"] for r in rows)


@dataclass
class Cluster:
    database_url: str
    root: Path
    env: dict[str, str]
    processes: dict[str, ServerProcess] = field(default_factory=dict)
    secret_key: str = ""

    def add(self, name: str, role: str, **env: str) -> ServerProcess:
        server = ServerProcess(self.database_url, self.root / name, AFSTAND_ROLE=role, **self.env, **env)
        if not self.secret_key:
            self.secret_key = server.secret_key
        server.secret_key = self.secret_key
        server.env["AFSTAND_SECRET_KEY"] = self.secret_key
        self.processes[name] = server
        return server

    def start_all(self) -> None:
        for server in self.processes.values():
            server.start()
        for server in self.processes.values():
            server.wait_ready(90)

    def stop_all(self) -> None:
        for server in self.processes.values():
            server.stop()

    def of_role(self, role: str) -> list[ServerProcess]:
        return [s for s in self.processes.values() if s.env["AFSTAND_ROLE"] == role]

    def supplier(self) -> dict[str, str]:
        settings = Settings(database_url=self.database_url, data_dir=self.root / "cli", secret_key=self.secret_key)
        return asyncio.run(create_supplier(settings, "cluster-supplier"))

    # ------------------------------------------------------------------ what the database says

    def owners(self) -> dict[str, str | None]:
        """Lease name -> live owner (None: free or expired)."""
        return {r["name"]: r["owner"] for r in query(
            self.database_url,
            "SELECT name, CASE WHEN expires_at > clock_timestamp() THEN owner END AS owner FROM leases")}

    def partitions_of(self, server: ServerProcess) -> set[int]:
        assert server.proc is not None
        return {int(name.split(":")[1]) for name, owner in self.owners().items()
                if name.startswith("partition:") and owner and owner.split(":")[1] == str(server.proc.pid)}


def make_cases(server: ServerProcess, key_id: str, count: int) -> list[tuple[str, str]]:
    """``count`` cases, each with an exclusion zone around CENTRE and a tag: ``(case_id, serial)``."""
    headers = {"Authorization": "Bearer " + mint_staff_token(server.key, "admin", "cluster-test")}
    out = []
    with httpx.Client(base_url=server.base, headers=headers, timeout=20) as http:
        for i in range(count):
            case = http.post("/v1/cases", json={
                "reference": f"CL-{i}", "proximity": None,
                "victim": {"display_name": f"V{i}", "language": "nl"}, "offender": {"display_name": f"O{i}"},
            }).raise_for_status().json()
            order = http.post(f"/v1/cases/{case['id']}/orders", json={
                "kind": "exclusion_zone", "reference": f"OM-{i}", "valid_from": "2020-01-01T00:00:00Z",
                "valid_until": None}).raise_for_status().json()
            http.post(f"/v1/cases/{case['id']}/zones", json={
                "order_id": order["id"], "name": "home", "kind": "exclusion",
                "geometry": {"type": "Circle", "center": list(CENTRE), "radius_m": 150}, "buffer_m": 50,
                "schedule": None}).raise_for_status()
            serial = f"CL-TAG-{i}"
            http.post(f"/v1/cases/{case['id']}/devices", json={
                "role": "offender_tag", "supplier_key_id": key_id, "serial": serial}).raise_for_status()
            out.append((case["id"], serial))
    return out


def cases_in(cases: list[tuple[str, str]], partitions: set[int], of: int) -> list[tuple[str, str]]:
    return [c for c in cases if partition_of(c[0], of) in partitions]


class Supplier(threading.Thread):
    """Sends one fix per tag every ``period_s``, far from every zone, to the API processes in turn; a request that
    fails goes to the next process (as a load balancer would). Records what was accepted and when."""

    def __init__(self, apis: list[ServerProcess], key_id: str, secret: str, serials: list[str],
                 period_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.apis, self.key_id, self.secret, self.serials, self.period_s = apis, key_id, secret, serials, period_s
        self.accepted = 0
        self.accepted_at: list[float] = []
        self.refused: list[str] = []
        self._halt = threading.Event()
        self._turn = 0
        self.paths: dict[str, list[float]] = {}  # serial -> metres north of the centre, one per batch to come
        self.lock = threading.Lock()

    def stop(self) -> None:
        self._halt.set()
        self.join(30)

    def approach(self, serial: str, step_m: float = 20.0) -> None:
        """From the next batch on, the tag heads for the centre of its zone at ``step_m`` a batch (40 m/s at the
        default period: a car, which the engine believes) and stays there."""
        with self.lock:
            self.paths[serial] = [OUTSIDE_M - step_m * k for k in range(1, int(OUTSIDE_M // step_m) + 2)]

    def run(self) -> None:
        while not self._halt.is_set():
            now = datetime.now(timezone.utc).isoformat()
            batch = []
            with self.lock:
                for serial in self.serials:
                    path = self.paths.get(serial)
                    north_m = (path.pop(0) if len(path) > 1 else path[0]) if path else OUTSIDE_M
                    batch.append({"serial": serial, "recorded_at": now, "lat": CENTRE[1] + north_m / M_PER_DEG_LAT,
                                  "lon": CENTRE[0], "accuracy_m": 8.0})
            self._send(batch)
            self._halt.wait(self.period_s)

    def _send(self, batch: list[dict[str, Any]]) -> None:
        for attempt in range(len(self.apis) * 3):
            api = self.apis[(self._turn + attempt) % len(self.apis)]
            raw, headers = signed(self.key_id, self.secret, {"positions": batch})
            try:
                r = httpx.post(api.base + "/v1/ingest/positions", content=raw, headers=headers, timeout=5)
            except httpx.TransportError:
                continue
            if r.status_code == 200:
                self._turn += 1
                self.accepted += sum(1 for x in r.json()["results"] if x["status"] == "accepted")
                self.accepted_at.append(time.monotonic())
                return
            self.refused.append(f"{r.status_code}")
            time.sleep(0.1)
