"""Set-up for the case-status tests through the public API: cases, orders, staff members, enrolled victim apps."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient

from api.auth.principals import mint_device_token
from tests.helpers import staff_headers


@pytest.fixture
def api(make_client):  # type: ignore[no-untyped-def]
    """The app without engine or scheduler loop: these tests drive the scheduler with their own clock."""
    return make_client(run_engine=False, order_check_s=0)


def director(client: TestClient, sub: str | None = None) -> dict[str, str]:
    return staff_headers(client, "case_director", sub)


def admin(client: TestClient) -> dict[str, str]:
    return staff_headers(client, "admin")


def db(client: TestClient, sql: str, *args: Any) -> list[asyncpg.Record]:
    return client.portal.call(client.app.state.ctx.pool.fetch, sql, *args)


def db_val(client: TestClient, sql: str, *args: Any) -> Any:
    return client.portal.call(client.app.state.ctx.pool.fetchval, sql, *args)


def new_case(client: TestClient, reference: str | None = None, language: str = "en",
             proximity: dict | None = None) -> str:
    r = client.post("/v1/cases", headers=director(client), json={
        "reference": reference or f"ZAAK-{uuid.uuid4().hex[:6]}", "proximity": proximity,
        "victim": {"display_name": "Anna", "language": language}, "offender": {"display_name": "Bram"}})
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    share(client, case_id)
    return case_id


def share(client: TestClient, case_id: str, contact_person: str = "test-contact_person",
          operator: str = "test-operator") -> None:
    """Need-to-know (issue 6): the test's default contact person is granted the case and the default operator
    watches it, as the case director would arrange; otherwise they would not reach it at all."""
    r = client.put(f"/v1/cases/{case_id}/access", headers=director(client),
                   json={"staff_sub": contact_person, "relation": "contact_person"})
    assert r.status_code == 200, r.text
    r = client.put(f"/v1/cases/{case_id}/watchers", headers=director(client), json={"staff_sub": operator})
    assert r.status_code == 200, r.text


def grant(client: TestClient, case_id: str, sub: str, relation: str = "contact_person") -> None:
    r = client.put(f"/v1/cases/{case_id}/access", headers=director(client), json={"staff_sub": sub, "relation": relation})
    assert r.status_code == 200, r.text


def new_order(client: TestClient, case_id: str, kind: str = "contact_ban", valid_from: str = "2026-01-01T00:00:00Z",
              valid_until: str | None = None, **extra: Any) -> dict:
    r = client.post(f"/v1/cases/{case_id}/orders", headers=director(client), json={
        "kind": kind, "reference": "OM-1", "valid_from": valid_from, "valid_until": valid_until, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def new_staff(client: TestClient, sub: str, agency: str = "police", name: str | None = None,
              **extra: Any) -> dict:
    r = client.post("/v1/staff", headers=admin(client), json={
        "sub": sub, "display_name": name or f"Officer {sub}", "agency": agency, "role_title": "wijkagent", **extra})
    assert r.status_code == 201, r.text
    return r.json()


def assign(client: TestClient, case_id: str, staff_id: str, agency: str = "police",
           function: str = "contact_person", **extra: Any) -> dict:
    r = client.put(f"/v1/cases/{case_id}/assignments", headers=director(client), json={
        "agency": agency, "function": function, "staff_id": staff_id, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def victim_token(client: TestClient, case_id: str) -> dict[str, str]:
    """Enroll the victim's app as the app does; if enrollment is not served, mint a device token directly."""
    code = client.post(f"/v1/cases/{case_id}/enrollments", headers=director(client))
    assert code.status_code == 201, code.text
    r = client.post("/v1/me/enroll", json={"code": code.json()["code"], "installation_id": uuid.uuid4().hex,
                                          "platform": "android", "push_token": "push-" + uuid.uuid4().hex})
    if r.status_code == 201:
        return {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert r.status_code in (404, 405), r.text
    device_id = uuid.uuid4()
    client.portal.call(client.app.state.ctx.pool.execute,
                       "INSERT INTO devices (id, case_id, role, platform) VALUES ($1, $2, 'victim_app', 'android')",
                       device_id, uuid.UUID(case_id))
    token = mint_device_token(client.app.state.ctx.key, device_id, uuid.UUID(case_id), 900)
    return {"Authorization": f"Bearer {token}"}


def event(client: TestClient, case_id: str, kind: str, visibility: str, occurred_at: str,
          note: str | None = None, role: str = "contact_person") -> dict:
    r = client.post(f"/v1/cases/{case_id}/timeline", headers=staff_headers(client, role), json={
        "kind": kind, "visibility": visibility, "occurred_at": occurred_at, "note": note})
    assert r.status_code == 201, r.text
    return r.json()


def assert_problem(r, status: int, loc: list | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    if loc is not None:
        assert loc in [e["loc"] for e in body["errors"]], body
    return body
