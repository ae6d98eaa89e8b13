"""The staff API for cases, orders, zones, devices and enrollments, end to end through the real app and a real
PostgreSQL: shapes, validation (problem+json naming the field), roles, audit rows and engine reload notices."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest

from api.platform import pg_channels
from api.cli import create_supplier
from api.cases.enrollments.service import ALPHABET
from api.platform.secrets import token_hash
from tests.helpers import problem as assert_problem, staff_headers

BOWTIE = [[5.0, 52.0], [5.01, 52.01], [5.01, 52.0], [5.0, 52.01], [5.0, 52.0]]
SQUARE = [[5.0, 52.0], [5.01, 52.0], [5.01, 52.01], [5.0, 52.01], [5.0, 52.0]]
NIGHTS = {"timezone": "Europe/Amsterdam", "windows": [{"days": ["mon", "tue"], "start": "22:00", "end": "06:00"}]}


@pytest.fixture
def api(make_client):  # type: ignore[no-untyped-def]
    """The app with its engine when the engine core is importable; the staff API does not depend on it."""
    try:
        from geofence import Engine  # noqa: F401
    except ImportError:
        return make_client(run_engine=False)
    return make_client()


def director(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return staff_headers(client, "case_director")


def db(client, sql: str, *args: Any) -> list[asyncpg.Record]:  # type: ignore[no-untyped-def]
    """Query the app's own database through its pool, on the app's event loop."""
    return client.portal.call(client.app.state.ctx.pool.fetch, sql, *args)


def new_case(client, reference: str = "ZAAK-1", proximity: dict | None = None, **extra: Any) -> dict:  # type: ignore[no-untyped-def]
    body = {"reference": reference, "proximity": proximity, "victim": {"display_name": "Anna", "language": "en"},
            "offender": {"display_name": "Bram"}, **extra}
    r = client.post("/v1/cases", headers=director(client), json=body)
    assert r.status_code == 201, r.text
    return r.json()


def new_order(client, case_id: str, kind: str = "exclusion_zone", **extra: Any) -> dict:  # type: ignore[no-untyped-def]
    body = {"kind": kind, "reference": "OM-1", "valid_from": "2026-01-01T00:00:00Z", "valid_until": None, **extra}
    r = client.post(f"/v1/cases/{case_id}/orders", headers=director(client), json=body)
    assert r.status_code == 201, r.text
    return r.json()


def zone_body(order_id: str, **extra: Any) -> dict:
    return {"order_id": order_id, "name": "Home street", "kind": "exclusion",
            "geometry": {"type": "Polygon", "coordinates": [SQUARE]}, "buffer_m": 100, "schedule": None, **extra}


def watch(client, case_id: str, sub: str = "test-operator") -> None:  # type: ignore[no-untyped-def]
    """Need-to-know (issue 6): an operator reaches a case without an open alert only from their watch list."""
    r = client.put(f"/v1/cases/{case_id}/watchers", headers=director(client), json={"staff_sub": sub})
    assert r.status_code == 200, r.text


def grant(client, case_id: str, sub: str = "test-contact_person", relation: str = "contact_person") -> None:  # type: ignore[no-untyped-def]
    r = client.put(f"/v1/cases/{case_id}/access", headers=director(client), json={"staff_sub": sub, "relation": relation})
    assert r.status_code == 200, r.text


def supplier(client, name: str = "tags-r-us") -> dict[str, str]:  # type: ignore[no-untyped-def]
    return asyncio.run(create_supplier(client.app.state.ctx.settings, name))


# ---------------------------------------------------------------- cases

def test_create_case_returns_contract_shape_and_detail(api) -> None:  # type: ignore[no-untyped-def]
    case = new_case(api, proximity={"warn_m": 1000, "alert_m": 500})
    assert set(case) == {"id", "reference", "proximity", "victim", "offender", "status", "created_at"}
    assert uuid.UUID(case["id"])
    assert case["proximity"] == {"warn_m": 1000, "alert_m": 500}
    assert case["victim"] == {"display_name": "Anna", "language": "en"}
    assert case["offender"] == {"display_name": "Bram"}
    assert case["status"] == "active"
    created = datetime.fromisoformat(case["created_at"])
    assert created.utcoffset() == timedelta(0) and abs(datetime.now(timezone.utc) - created) < timedelta(minutes=1)

    watch(api, case["id"])
    detail = api.get(f"/v1/cases/{case['id']}", headers=staff_headers(api, "operator"))
    assert detail.status_code == 200
    assert detail.json() == {**case, "orders": [], "zones": [], "devices": []}


def test_case_without_proximity_has_null_proximity(api) -> None:  # type: ignore[no-untyped-def]
    assert new_case(api)["proximity"] is None


@pytest.mark.parametrize("proximity, loc", [
    ({"warn_m": 400, "alert_m": 500}, ["proximity", "alert_m"]),
    ({"warn_m": 20_001, "alert_m": 500}, ["proximity", "warn_m"]),
    ({"warn_m": 1000, "alert_m": 49}, ["proximity", "alert_m"]),
    ({"warn_m": 1000}, ["proximity", "alert_m"]),
])
def test_bad_proximity_is_422_naming_the_field(api, proximity: dict, loc: list) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/cases", headers=director(api), json={
        "reference": "X", "proximity": proximity, "victim": {"display_name": "V", "language": "nl"},
        "offender": {"display_name": "O"}})
    assert_problem(r, 422, loc)
    assert db(api, "SELECT count(*) AS n FROM cases")[0]["n"] == 0


def test_warn_below_alert_message_explains(api) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/cases", headers=director(api), json={
        "reference": "X", "proximity": {"warn_m": 400, "alert_m": 500},
        "victim": {"display_name": "V"}, "offender": {"display_name": "O"}})
    msg = assert_problem(r, 422)["errors"][0]["msg"]
    assert "must not exceed warn_m" in msg


@pytest.mark.parametrize("body, loc", [
    ({"colour": "red"}, ["colour"]),
    ({"victim": {"display_name": "V", "language": "nl", "address": "Oudegracht 1"}}, ["victim", "address"]),
])
def test_unknown_fields_are_rejected(api, body: dict, loc: list) -> None:  # type: ignore[no-untyped-def]
    base = {"reference": "X", "victim": {"display_name": "V"}, "offender": {"display_name": "O"}}
    assert_problem(api.post("/v1/cases", headers=director(api), json={**base, **body}), 422, loc)


def test_duplicate_reference_is_409(api) -> None:  # type: ignore[no-untyped-def]
    new_case(api, "DUP-1")
    r = api.post("/v1/cases", headers=director(api), json={
        "reference": "DUP-1", "victim": {"display_name": "V"}, "offender": {"display_name": "O"}})
    assert "DUP-1" in assert_problem(r, 409)["detail"]
    assert db(api, "SELECT count(*) AS n FROM parties")[0]["n"] == 2  # the refused case left no parties behind


def test_without_token_401_and_wrong_role_403(api) -> None:  # type: ignore[no-untyped-def]
    case = new_case(api)
    cid = case["id"]
    watch(api, cid)
    grant(api, cid)
    r = api.get("/v1/cases")
    assert_problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    assert_problem(api.post(f"/v1/cases/{cid}/orders", json={}), 401)
    for role in ("operator", "contact_person"):  # they reach the case, but their role may not change it
        h = staff_headers(api, role)
        assert_problem(api.post("/v1/cases", headers=h, json={
            "reference": "R", "victim": {"display_name": "V"}, "offender": {"display_name": "O"}}), 403)
        assert_problem(api.post(f"/v1/cases/{cid}/enrollments", headers=h), 403)
        assert_problem(api.patch(f"/v1/cases/{cid}", headers=h, json={"proximity": None}), 403)
    for role in ("operator", "contact_person", "case_director", "admin"):
        assert api.get(f"/v1/cases/{cid}", headers=staff_headers(api, role)).status_code == 200
    auditor = staff_headers(api, "auditor")
    assert_problem(api.post("/v1/cases", headers=auditor, json={
        "reference": "R", "victim": {"display_name": "V"}, "offender": {"display_name": "O"}}), 403)
    # The auditor reaches no case at all (need-to-know): 404, as for a case that does not exist.
    assert_problem(api.post(f"/v1/cases/{cid}/enrollments", headers=auditor), 404)
    assert_problem(api.get(f"/v1/cases/{cid}", headers=auditor), 404)
    assert_problem(api.get("/v1/cases", headers={"Authorization": "Bearer not-a-jwt"}), 401)


def test_admin_may_create(api) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/cases", headers=staff_headers(api, "admin"), json={
        "reference": "ADM-1", "victim": {"display_name": "V"}, "offender": {"display_name": "O"}})
    assert r.status_code == 201 and r.json()["victim"]["language"] == "nl"


def test_case_list_pages_with_cursor(api) -> None:  # type: ignore[no-untyped-def]
    made = [new_case(api, f"PAGE-{i}")["id"] for i in range(5)]
    for cid in made:
        grant(api, cid)
    h = staff_headers(api, "contact_person")
    seen, cursor, pages = [], None, 0
    while True:
        r = api.get("/v1/cases", headers=h, params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        page = r.json()
        assert len(page["items"]) <= 2
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made and pages == 3
    assert_problem(api.get("/v1/cases", headers=h, params={"cursor": "garbage!"}), 422, ["query", "cursor"])
    assert_problem(api.get("/v1/cases", headers=h, params={"limit": 0}), 422, ["query", "limit"])


@pytest.mark.parametrize("case_id", [str(uuid.uuid4()), "not-a-uuid", "1' OR '1'='1"])
def test_unknown_or_malformed_case_id_is_404(api, case_id: str) -> None:  # type: ignore[no-untyped-def]
    h = director(api)
    assert_problem(api.get(f"/v1/cases/{case_id}", headers=h), 404)
    assert_problem(api.get(f"/v1/cases/{case_id}/orders", headers=h), 404)
    assert_problem(api.post(f"/v1/cases/{case_id}/enrollments", headers=h), 404)
    assert_problem(api.post(f"/v1/cases/{case_id}/orders", headers=h, json={
        "kind": "contact_ban", "reference": "R", "valid_from": "2026-01-01T00:00:00Z"}), 404)


def test_patch_changes_and_lifts_proximity_with_audit(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api, proximity={"warn_m": 1000, "alert_m": 500})["id"]
    h = director(api)
    r = api.patch(f"/v1/cases/{cid}", headers=h, json={"proximity": {"warn_m": 2000, "alert_m": 1000}, "reason": "OM"})
    assert r.status_code == 200 and r.json()["proximity"] == {"warn_m": 2000, "alert_m": 1000}
    assert_problem(api.patch(f"/v1/cases/{cid}", headers=h, json={"proximity": {"warn_m": 100, "alert_m": 200}}), 422,
                   ["proximity", "alert_m"])
    assert_problem(api.patch(f"/v1/cases/{cid}", headers=h, json={}), 422, ["proximity"])
    assert_problem(api.patch(f"/v1/cases/{cid}", headers=h, json={"status": "closed"}), 422, ["status"])
    assert api.patch(f"/v1/cases/{cid}", headers=h, json={"proximity": None}).json()["proximity"] is None
    rows = db(api, "SELECT action, reason, detail FROM audit_log WHERE action = 'case.update' ORDER BY chain_seq")
    assert [r["reason"] for r in rows] == ["OM", None]
    assert rows[0]["detail"]["proximity"] == {"from": {"warn_m": 1000, "alert_m": 500},
                                              "to": {"warn_m": 2000, "alert_m": 1000}}
    assert rows[1]["detail"]["proximity"]["to"] is None


# ---------------------------------------------------------------- orders

def test_order_times_are_returned_in_utc(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    order = new_order(api, cid, "contact_ban", valid_from="2026-03-01T10:00:00+01:00",
                      valid_until="2026-06-01T10:00:00+02:00")
    assert order["case_id"] == cid and order["kind"] == "contact_ban" and order["reference"] == "OM-1"
    assert datetime.fromisoformat(order["valid_from"]) == datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
    assert datetime.fromisoformat(order["valid_from"]).utcoffset() == timedelta(0)
    assert datetime.fromisoformat(order["valid_until"]) == datetime(2026, 6, 1, 8, tzinfo=timezone.utc)
    assert order["created_by"] == "case_director:test-case_director"
    watch(api, cid)
    listed = api.get(f"/v1/cases/{cid}/orders", headers=staff_headers(api, "operator")).json()
    assert listed == {"items": [order], "next_cursor": None}


@pytest.mark.parametrize("body, loc", [
    ({"valid_from": "2026-03-01T10:00:00"}, ["valid_from"]),
    ({"valid_until": "2026-03-01T10:00:00"}, ["valid_until"]),
    ({"valid_until": "2025-12-31T23:00:00Z"}, ["valid_until"]),
    ({"valid_until": "2026-01-01T00:00:00Z"}, ["valid_until"]),
    ({"kind": "restraining_wish"}, ["kind"]),
    ({"reference": ""}, ["reference"]),
    ({"extended": True}, ["extended"]),
])
def test_bad_orders_are_422(api, body: dict, loc: list) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    base = {"kind": "contact_ban", "reference": "OM-1", "valid_from": "2026-01-01T00:00:00Z"}
    assert_problem(api.post(f"/v1/cases/{cid}/orders", headers=director(api), json={**base, **body}), 422, loc)
    assert db(api, "SELECT count(*) AS n FROM orders")[0]["n"] == 0


def test_behavioural_order_over_90_days_is_refused(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    h = director(api)
    base = {"kind": "behavioural_order", "reference": "GA-1", "valid_from": "2026-01-01T00:00:00+01:00"}
    r = api.post(f"/v1/cases/{cid}/orders", headers=h, json={**base, "valid_until": "2026-04-01T12:00:00+02:00"})
    assert "at most 90 days" in assert_problem(r, 422, ["valid_until"])["errors"][0]["msg"]
    r = api.post(f"/v1/cases/{cid}/orders", headers=h, json={**base, "valid_until": None})
    assert "90 days" in assert_problem(r, 422, ["valid_until"])["errors"][0]["msg"]
    # Exactly 90 days is the legal maximum and is accepted.
    ok = api.post(f"/v1/cases/{cid}/orders", headers=h, json={**base, "valid_until": "2026-03-31T23:00:00Z"})
    assert ok.status_code == 201, ok.text
    # Other kinds have no such cap.
    assert new_order(api, cid, "protection_order", valid_until="2028-01-01T00:00:00Z")["valid_until"].startswith("2028")


# ---------------------------------------------------------------- zones

def test_polygon_zone_round_trips(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    oid = new_order(api, cid)["id"]
    r = api.post(f"/v1/cases/{cid}/zones", headers=director(api), json=zone_body(oid, schedule=NIGHTS))
    assert r.status_code == 201, r.text
    zone = r.json()
    assert uuid.UUID(zone["id"]) and zone["case_id"] == cid and zone["order_id"] == oid
    assert zone["geometry"] == {"type": "Polygon", "coordinates": [SQUARE]}
    assert zone["schedule"] == NIGHTS and zone["buffer_m"] == 100 and zone["kind"] == "exclusion"
    assert api.get(f"/v1/cases/{cid}/zones", headers=director(api)).json()["items"] == [zone]
    assert api.get(f"/v1/cases/{cid}", headers=director(api)).json()["zones"] == [zone]


def test_circle_zone_and_default_buffer(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    oid = new_order(api, cid, "inclusion_zone")["id"]
    body = zone_body(oid, kind="inclusion", geometry={"type": "Circle", "center": [5.12, 52.09], "radius_m": 150})
    del body["buffer_m"]
    r = api.post(f"/v1/cases/{cid}/zones", headers=director(api), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["geometry"]["radius_m"] == 150 and r.json()["buffer_m"] == 0 and r.json()["kind"] == "inclusion"


def test_self_intersecting_polygon_is_422_saying_where(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    oid = new_order(api, cid)["id"]
    r = api.post(f"/v1/cases/{cid}/zones", headers=director(api),
                 json=zone_body(oid, geometry={"type": "Polygon", "coordinates": [BOWTIE]}))
    msg = assert_problem(r, 422, ["geometry"])["errors"][0]["msg"]
    assert "Self-intersection" in msg and "5.005 52.005" in msg
    assert db(api, "SELECT count(*) AS n FROM zones")[0]["n"] == 0


@pytest.mark.parametrize("change, loc", [
    ({"geometry": {"type": "Point", "coordinates": [5.0, 52.0]}}, ["geometry", "type"]),
    ({"geometry": {"type": "Circle", "center": [5.0, 52.0], "radius_m": 0}}, ["geometry", "radius_m"]),
    ({"geometry": {"type": "Polygon", "coordinates": [SQUARE[:-1]]}}, ["geometry", "coordinates", 0]),
    ({"geometry": {"type": "Circle", "center": [52.0, 95.0], "radius_m": 100}}, ["geometry", "center"]),
    ({"schedule": {"timezone": "Mars/Olympus", "windows": []}}, ["schedule", "timezone"]),
    ({"schedule": {"windows": [{"days": ["monday"], "start": "22:00", "end": "06:00"}]}},
     ["schedule", "windows", 0, "days"]),
    ({"schedule": {"windows": [{"days": ["mon"], "start": "25:00", "end": "06:00"}]}},
     ["schedule", "windows", 0, "start"]),
    ({"schedule": {"windows": [{"days": ["mon"], "start": "06:00", "end": "06:00"}]}}, ["schedule", "windows", 0]),
    ({"buffer_m": -1}, ["buffer_m"]),
    ({"kind": "forbidden"}, ["kind"]),
    ({"kind": "inclusion"}, ["kind"]),  # an exclusion_zone order cannot carry an inclusion zone
    ({"order_id": str(uuid.uuid4())}, ["order_id"]),
    ({"order_id": "nope"}, ["order_id"]),
    ({"radius": 5}, ["radius"]),
])
def test_bad_zones_are_422_naming_the_field(api, change: dict, loc: list) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    oid = new_order(api, cid)["id"]
    r = api.post(f"/v1/cases/{cid}/zones", headers=director(api), json={**zone_body(oid), **change})
    assert_problem(r, 422, loc)
    assert db(api, "SELECT count(*) AS n FROM zones")[0]["n"] == 0


def test_zone_must_cite_an_order_of_its_own_case(api) -> None:  # type: ignore[no-untyped-def]
    mine, other = new_case(api, "A")["id"], new_case(api, "B")["id"]
    foreign = new_order(api, other)["id"]
    r = api.post(f"/v1/cases/{mine}/zones", headers=director(api), json=zone_body(foreign))
    assert_problem(r, 422, ["order_id"])


def test_delete_zone_and_zone_with_alerts_is_kept(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    oid = new_order(api, cid)["id"]
    h = director(api)
    first = api.post(f"/v1/cases/{cid}/zones", headers=h, json=zone_body(oid)).json()["id"]
    second = api.post(f"/v1/cases/{cid}/zones", headers=h, json=zone_body(oid, name="Work")).json()["id"]
    watch(api, cid)
    assert_problem(api.delete(f"/v1/cases/{cid}/zones/{first}", headers=staff_headers(api, "operator")), 403)
    assert api.delete(f"/v1/cases/{cid}/zones/{first}", headers=h).status_code == 204
    assert [z["id"] for z in api.get(f"/v1/cases/{cid}/zones", headers=h).json()["items"]] == [second]
    assert_problem(api.delete(f"/v1/cases/{cid}/zones/{first}", headers=h), 404)
    assert_problem(api.delete(f"/v1/cases/{cid}/zones/not-an-id", headers=h), 404)
    db(api, "INSERT INTO alerts (id, case_id, kind, zone_id, level, max_level, confidence, opened_at)"
            " VALUES ($1, $2, 'zone_exclusion', $3, 'violation', 'violation', 'confirmed', now())",
       uuid.uuid4(), uuid.UUID(cid), uuid.UUID(second))
    assert_problem(api.delete(f"/v1/cases/{cid}/zones/{second}", headers=h), 409)
    assert len(db(api, "SELECT 1 FROM zones WHERE id = $1", uuid.UUID(second))) == 1


# ---------------------------------------------------------------- devices

def test_register_list_and_revoke_offender_tag(api) -> None:  # type: ignore[no-untyped-def]
    key = supplier(api)
    cid = new_case(api)["id"]
    h = director(api)
    r = api.post(f"/v1/cases/{cid}/devices", headers=h,
                 json={"role": "offender_tag", "supplier_key_id": key["key_id"], "serial": "TAG-1"})
    assert r.status_code == 201, r.text
    dev = r.json()
    assert uuid.UUID(dev["id"]) and dev["case_id"] == cid
    assert (dev["role"], dev["serial"], dev["supplier_key_id"], dev["supplier_name"]) == \
        ("offender_tag", "TAG-1", key["key_id"], "tags-r-us")
    assert dev["revoked_at"] is None and dev["last_seen_at"] is None and dev["last_battery_pct"] is None
    assert "secret" not in r.text and "push_token" not in dev

    db(api, "UPDATE devices SET last_seen_at = now(), last_battery_pct = 81 WHERE id = $1", uuid.UUID(dev["id"]))
    watch(api, cid)
    listed = api.get(f"/v1/cases/{cid}/devices", headers=staff_headers(api, "operator")).json()["items"]
    assert [d["id"] for d in listed] == [dev["id"]] and listed[0]["last_battery_pct"] == 81
    assert listed[0]["last_seen_at"] is not None
    assert api.get(f"/v1/cases/{cid}", headers=h).json()["devices"][0]["last_battery_pct"] == 81

    revoked = api.post(f"/v1/cases/{cid}/devices/{dev['id']}/revoke", headers=h)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    again = api.post(f"/v1/cases/{cid}/devices/{dev['id']}/revoke", headers=h)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # idempotent
    assert len(db(api, "SELECT 1 FROM audit_log WHERE action = 'device.revoke'")) == 1
    # Once revoked, the serial may be given to a new device (tags are reissued).
    again = api.post(f"/v1/cases/{cid}/devices", headers=h,
                     json={"role": "offender_tag", "supplier_key_id": key["key_id"], "serial": "TAG-1"})
    assert again.status_code == 201


def test_device_registration_errors(api) -> None:  # type: ignore[no-untyped-def]
    key = supplier(api)
    a, b = new_case(api, "A")["id"], new_case(api, "B")["id"]
    h = director(api)
    body = {"role": "offender_tag", "supplier_key_id": key["key_id"], "serial": "TAG-9"}
    assert api.post(f"/v1/cases/{a}/devices", headers=h, json=body).status_code == 201
    assert "TAG-9" in assert_problem(api.post(f"/v1/cases/{b}/devices", headers=h, json=body), 409)["detail"]
    assert_problem(api.post(f"/v1/cases/{b}/devices", headers=h, json={**body, "supplier_key_id": "sk_nope"}), 422,
                   ["supplier_key_id"])
    assert_problem(api.post(f"/v1/cases/{b}/devices", headers=h, json={**body, "role": "victim_app"}), 422, ["role"])
    assert_problem(api.post(f"/v1/cases/{b}/devices", headers=h, json={**body, "imei": "1"}), 422, ["imei"])
    # The same serial at another supplier is another device.
    other = supplier(api, "other-supplier")
    assert api.post(f"/v1/cases/{b}/devices", headers=h, json={**body, "supplier_key_id": other["key_id"]}).status_code == 201
    assert_problem(api.post(f"/v1/cases/{b}/devices/{uuid.uuid4()}/revoke", headers=h), 404)
    assert_problem(api.post(f"/v1/cases/{b}/devices/xyz/revoke", headers=h), 404)


def test_revoking_a_victim_app_kills_its_refresh_token(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    did = uuid.uuid4()
    db(api, "INSERT INTO devices (id, case_id, role, installation_id, platform, refresh_token_hash, refresh_expires_at)"
            " VALUES ($1, $2, 'victim_app', 'inst-1', 'ios', 'h', now() + interval '1 day')", did, uuid.UUID(cid))
    r = api.post(f"/v1/cases/{cid}/devices/{did}/revoke", headers=director(api))
    assert r.status_code == 200 and r.json()["role"] == "victim_app" and r.json()["platform"] == "ios"
    row = db(api, "SELECT revoked_at, refresh_token_hash FROM devices WHERE id = $1", did)[0]
    assert row["revoked_at"] is not None and row["refresh_token_hash"] is None


def test_device_of_another_case_is_not_found(api) -> None:  # type: ignore[no-untyped-def]
    key = supplier(api)
    a, b = new_case(api, "A")["id"], new_case(api, "B")["id"]
    dev = api.post(f"/v1/cases/{a}/devices", headers=director(api),
                   json={"role": "offender_tag", "supplier_key_id": key["key_id"], "serial": "T"}).json()
    assert_problem(api.post(f"/v1/cases/{b}/devices/{dev['id']}/revoke", headers=director(api)), 404)
    assert db(api, "SELECT revoked_at FROM devices WHERE id = $1", uuid.UUID(dev["id"]))[0]["revoked_at"] is None


# ---------------------------------------------------------------- enrollments

def test_enrollment_code_is_stored_as_lookup_and_hash(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    r = api.post(f"/v1/cases/{cid}/enrollments", headers=director(api))
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"code", "expires_at"}
    code = body["code"]
    assert len(code) == 24 and set(code) <= set(ALPHABET)
    expires = datetime.fromisoformat(body["expires_at"])
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(hours=24))) < timedelta(minutes=1)
    rows = db(api, "SELECT lookup, secret_hash, case_id, used_at FROM enrollments")
    assert len(rows) == 1
    assert rows[0]["lookup"] == code[:8] and rows[0]["secret_hash"] == token_hash(code[8:])
    assert str(rows[0]["case_id"]) == cid and rows[0]["used_at"] is None
    assert code[8:] not in str(db(api, "SELECT detail FROM audit_log WHERE action = 'enrollment.create'")[0]["detail"])


def test_new_enrollment_code_replaces_the_unused_one(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)["id"]
    first = api.post(f"/v1/cases/{cid}/enrollments", headers=director(api)).json()["code"]
    second = api.post(f"/v1/cases/{cid}/enrollments", headers=director(api)).json()["code"]
    assert first != second
    live = db(api, "SELECT lookup FROM enrollments WHERE expires_at > now()")
    assert [r["lookup"] for r in live] == [second[:8]]


def test_enrollment_ttl_follows_settings(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, enrollment_ttl_s=600)
    cid = new_case(client)["id"]
    expires = datetime.fromisoformat(client.post(f"/v1/cases/{cid}/enrollments", headers=director(client)).json()["expires_at"])
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(minutes=10))) < timedelta(minutes=1)


# ---------------------------------------------------------------- audit and engine reload

def test_every_change_is_audited_and_failures_are_not(api) -> None:  # type: ignore[no-untyped-def]
    key = supplier(api)
    h = director(api)
    cid = new_case(api)["id"]
    oid = new_order(api, cid)["id"]
    api.post(f"/v1/cases/{cid}/zones", headers=h, json=zone_body(oid)).raise_for_status()
    api.post(f"/v1/cases/{cid}/devices", headers=h,
             json={"role": "offender_tag", "supplier_key_id": key["key_id"], "serial": "S"}).raise_for_status()
    api.post(f"/v1/cases/{cid}/enrollments", headers=h).raise_for_status()
    # Refused requests leave no audit row; reading the case (the victim's name, her zones) leaves one (issue 6).
    api.post(f"/v1/cases/{cid}/zones", headers=h, json=zone_body(oid, geometry={"type": "Polygon", "coordinates": [BOWTIE]}))
    api.get(f"/v1/cases/{cid}", headers=h)
    rows = db(api, "SELECT actor, role, action, case_id, detail FROM audit_log ORDER BY chain_seq")
    assert [r["action"] for r in rows] == ["case.create", "order.create", "zone.create", "device.register",
                                           "enrollment.create", "case.read"]
    assert {(r["actor"], r["role"], str(r["case_id"])) for r in rows} == \
        {("case_director:test-case_director", "case_director", cid)}
    zone_detail = rows[2]["detail"]
    assert zone_detail["geometry_type"] == "Polygon" and "5.01" not in str(zone_detail)  # no coordinates in the log


def test_every_change_the_engine_enforces_bumps_the_config_version_in_its_transaction(api) -> None:  # type: ignore[no-untyped-def]
    pool = api.app.state.ctx.pool
    wakes: list[str] = []

    def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        wakes.append(payload)

    async def listen() -> asyncpg.Connection:
        conn = await pool.acquire()
        await conn.add_listener(pg_channels.CONFIG, on_notify)
        return conn

    async def unlisten(conn: asyncpg.Connection) -> None:
        await conn.remove_listener(pg_channels.CONFIG, on_notify)
        await pool.release(conn)

    before = db(api, "SELECT version FROM config_version")[0]["version"]
    listener = api.portal.call(listen)
    cid = new_case(api, proximity={"warn_m": 1000, "alert_m": 500})["id"]
    oid = new_order(api, cid)["id"]
    api.post(f"/v1/cases/{cid}/zones", headers=director(api), json=zone_body(oid)).raise_for_status()
    api.post(f"/v1/cases/{cid}/enrollments", headers=director(api)).raise_for_status()  # not engine config
    deadline = time.monotonic() + 5
    while len(wakes) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    api.portal.call(unlisten, listener)
    assert len(wakes) == 3  # one wake-up per committed change (the trigger spells pg_channels.CONFIG)
    rows = db(api, "SELECT version, case_id FROM config_changes WHERE version > $1 ORDER BY version", before)
    assert {str(r["case_id"]) for r in rows} == {cid}
    # The case, the order and the zone, each in its own transaction: versions follow one another without gaps.
    assert [r["version"] for r in rows] == list(range(before + 1, before + 1 + len(rows)))
    assert db(api, "SELECT version FROM config_version")[0]["version"] == rows[-1]["version"]
    # What the engine does not read never bumps it: devices' last_seen_at moves on every ingested batch.
    db(api, "UPDATE devices SET last_seen_at = now() WHERE case_id = $1", uuid.UUID(cid))
    assert db(api, "SELECT version FROM config_version")[0]["version"] == rows[-1]["version"]


def test_openapi_documents_the_staff_routes(api) -> None:  # type: ignore[no-untyped-def]
    paths = api.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/cases"]) == {"get", "post"}
    assert set(paths["/v1/cases/{case_id}"]) == {"get", "patch"}
    for sub in ("orders", "zones", "devices"):
        assert set(paths[f"/v1/cases/{{case_id}}/{sub}"]) == {"get", "post"}
    assert "post" in paths["/v1/cases/{case_id}/devices/{device_id}/revoke"]
    assert "post" in paths["/v1/cases/{case_id}/enrollments"]
