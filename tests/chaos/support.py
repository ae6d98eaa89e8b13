"""What the chaos tests share: a supplier pushing fixes at a real server, a readiness probe that records what
``/readyz`` said over time, and the check that a case and zone made after a fault raise their alert."""

from __future__ import annotations

import abc
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

from api.auth.principals import mint_staff_token
from tests.e2e.server import ServerProcess
from tests.helpers import signed

TAGS = 4  # load tags, each in its own case, far from any zone
BATCH = 10


def staff(server: ServerProcess, role: str = "case_director") -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_staff_token(server.key, role, "chaos-test")}


def new_case(server: ServerProcess, key_id: str, serial: str, centre: tuple[float, float] | None) -> str:
    """A case with an offender tag and, when ``centre`` is given, an exclusion zone (150 m circle) around it."""
    with httpx.Client(base_url=server.base, headers=staff(server), timeout=10) as http:
        case = http.post("/v1/cases", json={
            "reference": f"CHAOS-{secrets.token_hex(4)}", "proximity": None,
            "victim": {"display_name": "V", "language": "nl"}, "offender": {"display_name": "O"},
        }).raise_for_status().json()
        if centre is not None:
            order = http.post(f"/v1/cases/{case['id']}/orders", json={
                "kind": "exclusion_zone", "reference": "OM-CHAOS", "valid_from": "2020-01-01T00:00:00Z",
                "valid_until": None,
            }).raise_for_status().json()
            http.post(f"/v1/cases/{case['id']}/zones", json={
                "order_id": order["id"], "name": "home", "kind": "exclusion",
                "geometry": {"type": "Circle", "center": list(centre), "radius_m": 150}, "buffer_m": 100,
                "schedule": None,
            }).raise_for_status()
        http.post(f"/v1/cases/{case['id']}/devices", json={
            "role": "offender_tag", "supplier_key_id": key_id, "serial": serial,
        }).raise_for_status()
    return case["id"]


@dataclass
class Background(abc.ABC):
    """A test-side loop on its own thread, from ``start`` until ``stop`` (or ``halt`` without waiting)."""

    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.halt()
        assert self._thread is not None
        self._thread.join(30)

    def halt(self) -> None:
        self._stop.set()

    @abc.abstractmethod
    def _run(self) -> None:
        """The loop's body; it returns once ``self._stop`` is set."""


@dataclass
class SupplierLoad(Background):
    """Posts batches of fixes from ``TAGS`` tags as fast as the server answers, and remembers every answer."""

    server: ServerProcess
    supplier: dict[str, str]
    acknowledged: set[tuple[str, str]] = field(default_factory=set)  # (serial, recorded_at) answered 2xx
    statuses: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, HTTP status or 0 = no answer)
    malformed_503: list[str] = field(default_factory=list)  # 503s that were not a problem document with Retry-After

    def setup(self) -> None:
        self.serials = [f"LOAD-{secrets.token_hex(3)}-{i}" for i in range(TAGS)]
        for serial in self.serials:
            new_case(self.server, self.supplier["key_id"], serial, None)

    def _run(self) -> None:
        base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
        n = 0
        with httpx.Client(base_url=self.server.base, timeout=10) as http:
            while not self._stop.is_set():
                serial = self.serials[n % TAGS]
                k = n // TAGS
                items = [{"serial": serial, "recorded_at": (base + timedelta(seconds=k * BATCH + j)).isoformat(),
                          "lat": 52.3 + 0.01 * (n % TAGS), "lon": 4.9, "accuracy_m": 10} for j in range(BATCH)]
                n += 1
                raw, headers = signed(self.supplier["key_id"], self.supplier["secret"], {"positions": items})
                try:
                    r = http.post("/v1/ingest/positions", content=raw, headers=headers)
                except httpx.TransportError:
                    self.statuses.append((time.monotonic(), 0))
                    time.sleep(0.05)
                    continue
                self.statuses.append((time.monotonic(), r.status_code))
                if r.status_code == 503:
                    if not (r.headers.get("content-type", "").startswith("application/problem+json")
                            and r.headers.get("retry-after", "").isdigit() and r.json()["status"] == 503):
                        self.malformed_503.append(r.text[:200])
                    time.sleep(0.05)
                elif 200 <= r.status_code < 300:
                    for res in r.json()["results"]:
                        if res["status"] in ("accepted", "duplicate"):
                            self.acknowledged.add((serial, items[res["index"]]["recorded_at"]))

    def between(self, start: float, end: float) -> list[int]:
        return [s for t, s in self.statuses if start <= t <= end]

    async def lost(self, database_url: str) -> set[tuple[str, str]]:
        """Acknowledged fixes that are not in the database."""
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch("SELECT d.serial, p.recorded_at FROM positions p JOIN devices d ON d.id = p.device_id"
                                    " WHERE d.serial = ANY($1)", self.serials)
        finally:
            await conn.close()
        stored = {(r["serial"], r["recorded_at"].isoformat()) for r in rows}
        return self.acknowledged - stored


@dataclass
class ReadinessProbe(Background):
    """Polls ``/readyz`` every 0.2 s and records (monotonic, status code or 0 when unanswered, unwell parts)."""

    server: ServerProcess
    seen: list[tuple[float, int, list[str]]] = field(default_factory=list)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.base, timeout=5) as http:
            while not self._stop.is_set():
                try:
                    r = http.get("/readyz")
                    self.seen.append((time.monotonic(), r.status_code, r.json().get("unwell", [])))
                except (httpx.TransportError, ValueError):
                    self.seen.append((time.monotonic(), 0, []))
                time.sleep(0.2)

    def between(self, start: float, end: float) -> list[tuple[int, list[str]]]:
        return [(s, u) for t, s, u in self.seen if start <= t <= end]


def wait_ready(server: ServerProcess, timeout: float) -> float:
    """Seconds until ``/readyz`` answered 200; fails the test after ``timeout``."""
    started = time.monotonic()
    last = ""
    while time.monotonic() - started < timeout:
        try:
            r = httpx.get(server.base + "/readyz", timeout=3)
            if r.status_code == 200:
                return time.monotonic() - started
            last = r.text
        except httpx.TransportError as e:
            last = repr(e)
        time.sleep(0.2)
    raise AssertionError(f"not ready after {timeout} s: {last}")


def zone_alert_latency(server: ServerProcess, supplier: dict[str, str], timeout: float = 15.0) -> tuple[str, float]:
    """Create a case with an exclusion zone and a tag now, send the tag into the zone, and return the case and
    the seconds from the fixes' acknowledgement to the zone alert in the queue."""
    centre = (5.5 + secrets.randbelow(1000) / 10000, 51.5)
    serial = f"FRESH-{secrets.token_hex(3)}"
    case_id = new_case(server, supplier["key_id"], serial, centre)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    items = [{"serial": serial, "recorded_at": (now - timedelta(seconds=s)).isoformat(), "lat": centre[1],
              "lon": centre[0], "accuracy_m": 5} for s in (30, 20, 10)]
    raw, headers = signed(supplier["key_id"], supplier["secret"], {"positions": items})
    r = httpx.post(server.base + "/v1/ingest/positions", content=raw, headers=headers, timeout=10)
    assert r.status_code == 200 and all(x["status"] == "accepted" for x in r.json()["results"]), r.text
    sent = time.monotonic()
    with httpx.Client(base_url=server.base, headers=staff(server, "operator"), timeout=10) as http:
        while time.monotonic() - sent < timeout:
            alerts = http.get("/v1/alerts", params={"case_id": case_id}).json()["items"]
            if any(a["kind"] == "zone_exclusion" for a in alerts):
                return case_id, time.monotonic() - sent
            time.sleep(0.1)
    raise AssertionError(f"no zone alert for a case made after the fault within {timeout} s")


def metric(server: ServerProcess, name: str, labels: str) -> float:
    text = httpx.get(server.base + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}}"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{labels}}} not in /metrics")



@dataclass
class StreamWatcher(Background):
    """An operator's console: follows the alert stream, reconnects after any close from the last seq it saw."""

    server: ServerProcess
    closes: list[int | None] = field(default_factory=list)  # close codes received (None: dropped without one)
    items: list[dict] = field(default_factory=list)

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
        from websockets.sync.client import connect

        token = mint_staff_token(self.server.key, "admin", "chaos-console")
        base = self.server.base.replace("http://", "ws://") + "/v1/alerts/stream"
        while not self._stop.is_set():
            last = self.items[-1]["seq"] if self.items else 0
            try:
                with connect(f"{base}?after={last}", additional_headers={"Authorization": f"Bearer {token}"},
                             open_timeout=5) as ws:
                    while not self._stop.is_set():
                        try:
                            self.items.append(json.loads(ws.recv(timeout=0.5)))
                        except TimeoutError:
                            continue
            except ConnectionClosed as e:
                self.closes.append(e.rcvd.code if e.rcvd else None)
            except (InvalidHandshake, InvalidStatus, OSError, TimeoutError):
                pass  # refused while the server cannot serve: try again, as the console does
            time.sleep(0.3)

    def saw_case(self, case_id: str) -> bool:
        return any(i["alert"]["case_id"] == case_id for i in self.items)
