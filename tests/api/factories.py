"""Test set-up through the public API, as staff, suppliers and victim apps do it: cases, tags, enrolled apps."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from fastapi.testclient import TestClient

from api.cli import create_supplier
from tests.helpers import signed, staff_headers


def db(client: TestClient, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Query the app's own database through its pool, on the app's event loop."""
    return client.portal.call(client.app.state.ctx.pool.fetch, sql, *args)


def db_val(client: TestClient, sql: str, *args: Any) -> Any:
    return client.portal.call(client.app.state.ctx.pool.fetchval, sql, *args)


def now() -> datetime:
    return datetime.now(timezone.utc)


def ago(seconds: float) -> str:
    return (now() - timedelta(seconds=seconds)).isoformat()


@dataclass
class Supplier:
    key_id: str
    secret: str

    def post(self, client: TestClient, path: str, body: Any, timestamp: int | None = None, secret: str | None = None):  # type: ignore[no-untyped-def]
        raw, headers = signed(self.key_id, secret or self.secret, body, timestamp)
        return client.post(path, content=raw, headers=headers)

    def positions(self, client: TestClient, items: list[dict[str, Any]], **kw: Any):  # type: ignore[no-untyped-def]
        return self.post(client, "/v1/ingest/positions", {"positions": items}, **kw)

    def events(self, client: TestClient, items: list[dict[str, Any]], **kw: Any):  # type: ignore[no-untyped-def]
        return self.post(client, "/v1/ingest/events", {"events": items}, **kw)


def new_supplier(client: TestClient, name: str | None = None) -> Supplier:
    keys = asyncio.run(create_supplier(client.app.state.ctx.settings, name or f"supplier-{uuid.uuid4().hex[:6]}"))
    return Supplier(keys["key_id"], keys["secret"])


def new_case(client: TestClient, reference: str | None = None, proximity: dict | None = None) -> str:
    """A case without orders or zones unless asked for: the engine then raises nothing of its own."""
    r = client.post("/v1/cases", headers=staff_headers(client, "case_director"), json={
        "reference": reference or f"ZAAK-{uuid.uuid4().hex[:6]}", "proximity": proximity,
        "victim": {"display_name": "Anna", "language": "nl"}, "offender": {"display_name": "Bram"},
    })
    assert r.status_code == 201, r.text
    return r.json()["id"]


def new_tag(client: TestClient, case_id: str, supplier: Supplier, serial: str, ble_key: str | None = None) -> str:
    body = {"role": "offender_tag", "supplier_key_id": supplier.key_id, "serial": serial}
    if ble_key is not None:
        body["ble_key"] = ble_key
    r = client.post(f"/v1/cases/{case_id}/devices", headers=staff_headers(client, "case_director"), json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def new_code(client: TestClient, case_id: str) -> str:
    r = client.post(f"/v1/cases/{case_id}/enrollments", headers=staff_headers(client, "case_director"))
    assert r.status_code == 201, r.text
    return r.json()["code"]


def enroll(client: TestClient, case_id: str, installation_id: str = "phone-1") -> dict[str, Any]:
    r = client.post("/v1/me/enroll", json={"code": new_code(client, case_id), "installation_id": installation_id,
                                           "platform": "android", "push_token": "push-1"})
    assert r.status_code == 201, r.text
    return r.json()


def bearer(token_pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": "Bearer " + token_pair["access_token"]}


def fix(serial: str | None = None, seconds_ago: float = 60, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"recorded_at": ago(seconds_ago), "lat": 52.0907, "lon": 5.1214, "accuracy_m": 8.0}
    if serial is not None:
        item["serial"] = serial
    item.update(extra)
    return item


def event(serial: str, type_: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"serial": serial, "recorded_at": at.isoformat(), "type": type_, **extra}


@dataclass
class World:
    """One case with a supplier's tag and the victim's enrolled app."""

    case_id: str
    supplier: Supplier
    serial: str
    tag_id: str
    app: dict[str, Any]

    @property
    def victim(self) -> dict[str, str]:
        return bearer(self.app)


def world(client: TestClient, supplier: Supplier | None = None, serial: str | None = None,
          ble_key: str | None = None) -> World:
    """``ble_key`` (32 hex characters): the tag also advertises over Bluetooth."""
    supplier = supplier or new_supplier(client)
    case_id = new_case(client)
    serial = serial or f"TAG-{uuid.uuid4().hex[:6].upper()}"
    tag_id = new_tag(client, case_id, supplier, serial, ble_key)
    return World(case_id, supplier, serial, tag_id, enroll(client, case_id))
