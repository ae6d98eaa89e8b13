"""Shared set-up of the privacy tests: a case with fixes of both parties, and the Bluetooth encounters of its
victim's phone, written through the public API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient

from api.intake import beacons
from tests.api.factories import World, db_val, world
from tests.helpers import staff_headers

# Distinctive coordinates, so a test can search logs and audit records for them.
OFFENDER = (52.371837, 4.896512)
VICTIM = (52.358211, 4.881934)
BLE_KEY = "5f0c2a9e41d7b3886a0e1c4f92d7a6b3"  # the tag's Bluetooth key (32 hex characters)


def send_fixes(client: TestClient, w: World, start: datetime, n: int = 3, step_s: int = 60) -> None:
    """``n`` fixes of each party, ``step_s`` apart from ``start``, through the supplier and the victim app."""
    tag = [{"serial": w.serial, "recorded_at": (start + timedelta(seconds=i * step_s)).isoformat(),
            "lat": OFFENDER[0] + i * 1e-4, "lon": OFFENDER[1], "accuracy_m": 6.0} for i in range(n)]
    r = w.supplier.positions(client, tag)
    assert r.status_code == 200 and all(x["status"] == "accepted" for x in r.json()["results"]), r.text
    app = [{"recorded_at": (start + timedelta(seconds=i * step_s + 5)).isoformat(),
            "lat": VICTIM[0], "lon": VICTIM[1] + i * 1e-4, "accuracy_m": 9.0} for i in range(n)]
    r = client.post("/v1/me/positions", headers=w.victim, json={"positions": app})
    assert r.status_code == 200 and all(x["status"] == "accepted" for x in r.json()["results"]), r.text


def case_with_fixes(client: TestClient, n: int = 3) -> tuple[World, datetime]:
    w = world(client)
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=30)
    send_fixes(client, w, start, n)
    return w, start


def case_with_panic(client: TestClient, n: int = 3, after_s: int = 90) -> tuple[World, datetime, str]:
    """A case with ``n`` fixes of each party and a panic ``after_s`` after the first, with the victim's
    position; returns the world, the first fix's time and the panic's alert id."""
    w, start = case_with_fixes(client, n)
    panic = client.post("/v1/me/panic", headers=w.victim, json={
        "recorded_at": (start + timedelta(seconds=after_s)).isoformat(), "lat": VICTIM[0], "lon": VICTIM[1],
        "accuracy_m": 9})
    assert panic.status_code == 201, panic.text
    return w, start, panic.json()["alert_id"]


def track(client: TestClient, case_id: str, role: str = "admin", **params: Any):  # type: ignore[no-untyped-def]
    return client.get(f"/v1/cases/{case_id}/track", params=params, headers=staff_headers(client, role))


def audit_page(client: TestClient, **params: Any) -> dict[str, Any]:
    r = client.get("/v1/audit", params=params, headers=staff_headers(client, "auditor"))
    assert r.status_code == 200, r.text
    return r.json()


def hear(client: TestClient, w: World, at: datetime, *, with_position: bool = True, rssi: int = -71) -> int:
    """The victim's phone reports hearing its case's tag (created with :data:`BLE_KEY`) at ``at``, where it
    was (:data:`VICTIM`) unless ``with_position`` is false; returns the encounter's seq."""
    item: dict[str, Any] = {"recorded_at": at.isoformat(), "rssi": rssi,
                            "beacon_id": beacons.beacon_id(bytes.fromhex(BLE_KEY), beacons.counter_at(at))}
    if with_position:
        item.update(lat=VICTIM[0], lon=VICTIM[1], accuracy_m=11.0)
    r = client.post("/v1/me/encounters", headers=w.victim, json={"encounters": [item]})
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "accepted", r.text
    return db_val(client, "SELECT seq FROM encounters WHERE case_id = $1::uuid AND recorded_at = $2", w.case_id, at)
