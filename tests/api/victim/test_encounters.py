"""Bluetooth contact through the real app and PostgreSQL: the tag's write-only key, the identifiers the victim's
app is given (GET /v1/me/beacons) and the encounters it reports (POST /v1/me/encounters), into the engine's log."""

from __future__ import annotations

import secrets as random
from datetime import datetime, timedelta, timezone

from api.intake import beacons
from api.monitoring import jetstream
from api.monitoring.fix_log import fix_from_row
from api.monitoring.repository import positions_after
from api.platform import secrets
from geofence import Encounter
from tests.api.factories import bearer, db, db_val, enroll, new_case, new_supplier, now
from tests.helpers import problem as assert_problem, staff_headers


def _tag(client, case_id: str, key: str | None, serial: str | None = None):  # type: ignore[no-untyped-def]
    supplier = new_supplier(client)
    body = {"role": "offender_tag", "supplier_key_id": supplier.key_id,
            "serial": serial or f"TAG-{random.token_hex(3)}"}
    if key is not None:
        body["ble_key"] = key
    return client.post(f"/v1/cases/{case_id}/devices", headers=staff_headers(client, "case_director"), json=body)


def _case_with_key(client):  # type: ignore[no-untyped-def]
    case_id = new_case(client, proximity={"warn_m": 1000, "alert_m": 500})
    key = random.token_hex(16)
    r = _tag(client, case_id, key)
    assert r.status_code == 201, r.text
    return case_id, r.json()["id"], bytes.fromhex(key), enroll(client, case_id)


def _encounters(client, app, items):  # type: ignore[no-untyped-def]
    return client.post("/v1/me/encounters", headers=bearer(app), json={"encounters": items})


def _item(beacon_id: str, at: datetime, **extra):  # type: ignore[no-untyped-def]
    return {"recorded_at": at.isoformat(), "beacon_id": beacon_id, "rssi": -67, **extra}


def test_ble_key_is_validated_write_only_and_encrypted_at_rest(client) -> None:  # type: ignore[no-untyped-def]
    case_id = new_case(client)
    for bad in ("abc", "zz" * 16, "00" * 17, 12):
        assert_problem(_tag(client, case_id, bad), 422, ["ble_key"])
    key = random.token_hex(16)
    r = _tag(client, case_id, key.upper())
    assert r.status_code == 201, r.text
    assert r.json()["ble_key_set"] is True and key not in r.text.lower() and "ble_key\"" not in r.text
    stored = db_val(client, "SELECT ble_key_enc FROM devices WHERE id = $1::uuid", r.json()["id"])
    assert key.encode() not in stored and bytes.fromhex(key) not in stored
    assert secrets.decrypt(client.app.state.ctx.key, stored, secrets.BLE_KEYS) == key
    listed = client.get(f"/v1/cases/{case_id}/devices", headers=staff_headers(client, "operator")).text
    assert key not in listed.lower()


def test_beacons_are_the_tags_identifiers_for_the_coming_24_hours(client) -> None:  # type: ignore[no-untyped-def]
    case_id, tag_id, key, app = _case_with_key(client)
    before = now()
    r = client.get("/v1/me/beacons", headers=bearer(app))
    assert r.status_code == 200, r.text
    items = r.json()["beacons"]
    first = beacons.counter_at(before)
    assert items[0]["beacon_id"] == beacons.beacon_id(key, first)
    assert datetime.fromisoformat(items[0]["valid_from"]) == datetime.fromtimestamp(first * 1024, timezone.utc)
    last_until = datetime.fromisoformat(items[-1]["valid_until"])
    assert last_until >= before + timedelta(hours=24) and 85 <= len(items) <= 86
    for a, b in zip(items, items[1:]):
        assert a["valid_until"] == b["valid_from"]
    serial = db_val(client, "SELECT serial FROM devices WHERE id = $1::uuid", tag_id)
    assert key.hex() not in r.text and serial not in r.text and tag_id not in r.text
    # A case whose tag has no key: nothing to listen for.
    other = new_case(client)
    assert _tag(client, other, None).status_code == 201
    assert client.get("/v1/me/beacons", headers=bearer(enroll(client, other))).json() == {"beacons": []}


def test_encounters_are_checked_per_item_and_enter_the_engines_log(client) -> None:  # type: ignore[no-untyped-def]
    case_id, tag_id, key, app = _case_with_key(client)
    at = now() - timedelta(seconds=30)
    c = beacons.counter_at(at)
    good = _item(beacons.beacon_id(key, c), at, lat=52.09, lon=5.12, accuracy_m=12.0)
    drift = _item(beacons.beacon_id(key, c - 1), at + timedelta(seconds=1))  # one period either side: clock drift
    stale = _item(beacons.beacon_id(key, c - 6), at)
    foreign = _item(beacons.beacon_id(random.token_bytes(16), c), at)
    bad_rssi = _item(beacons.beacon_id(key, c), at, rssi=40)
    r = _encounters(client, app, [good, drift, stale, foreign, bad_rssi, good])
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "accepted", "rejected", "rejected", "rejected", "duplicate"]
    assert "stale" in results[2]["error"] and results[2]["error"].startswith("beacon_id")
    assert "not an identifier of this case's tag" in results[3]["error"]
    assert results[4]["error"].startswith("rssi")
    rows = db(client, "SELECT * FROM encounters WHERE case_id = $1::uuid ORDER BY recorded_at", case_id)
    assert [(str(x["tag_id"]), x["rssi"]) for x in rows] == [(tag_id, -67), (tag_id, -67)]
    assert db_val(client, "SELECT count(*) FROM ingest_rejections WHERE channel = 'app:encounters'") == 3
    # Sent again: stored once.
    assert [x["status"] for x in _encounters(client, app, [good]).json()["results"]] == ["duplicate"]
    # The engine's log reads them in seq order beside the fixes, as Encounters, also through JetStream's copy.
    entries = client.portal.call(positions_after, client.app.state.ctx.pool, 0, 1000)
    mine = [e for e in entries if str(e["case_id"]) == case_id]
    assert [e["seq"] for e in mine] == sorted(x["seq"] for x in rows)
    for entry in mine:
        for read in (fix_from_row(entry), jetstream.decode(jetstream.encode(entry))):
            assert isinstance(read, Encounter) and read.tag_id == tag_id and read.rssi == -67
            assert read.device_id == app["device_id"] and read.case_id == case_id


def test_another_cases_phone_cannot_report_this_tag(client) -> None:  # type: ignore[no-untyped-def]
    _, _, key, _ = _case_with_key(client)
    _, _, _, stranger = _case_with_key(client)
    at = now() - timedelta(seconds=5)
    r = _encounters(client, stranger, [_item(beacons.beacon_id(key, beacons.counter_at(at)), at)])
    [result] = r.json()["results"]
    assert result["status"] == "rejected" and "not an identifier of this case's tag" in result["error"]
    assert db_val(client, "SELECT count(*) FROM encounters") == 0


def test_a_bad_encounters_body_is_a_problem_naming_the_field(client) -> None:  # type: ignore[no-untyped-def]
    _, _, _, app = _case_with_key(client)
    headers = {**bearer(app), "content-type": "application/json"}
    assert_problem(client.post("/v1/me/encounters", headers=headers, content=b"{not json"), 422, ["body"])
    assert_problem(client.post("/v1/me/encounters", headers=headers, json={"encounter": []}), 422)
    r = _encounters(client, app, [{"recorded_at": "yesterday", "beacon_id": "XYZ", "rssi": "loud"}, 7])
    assert r.status_code == 200 and [x["status"] for x in r.json()["results"]] == ["rejected", "rejected"]
    assert client.post("/v1/me/encounters", json={"encounters": []}).status_code == 401


def test_her_alerts_show_a_silence_only_when_it_went_dark_near_her(client) -> None:  # type: ignore[no-untyped-def]
    import uuid
    from geofence import AlertChange, AlertKind, ChangeKind, Confidence, Level
    from api.alerts.repository import apply_engine_changes

    case_id, tag_id, _, app = _case_with_key(client)
    at = now() - timedelta(minutes=5)

    def silence(near: bool, kind: AlertKind) -> AlertChange:
        return AlertChange(str(uuid.uuid4()), 1, case_id, kind, tag_id, ChangeKind.OPENED, Level.VIOLATION,
                           Level.VIOLATION, Confidence.CONFIRMED, at, at, near_victim=near, trigger="silence")

    near, far = silence(True, AlertKind.OFFENDER_SILENT), silence(False, AlertKind.OFFENDER_SILENT)
    ctx = client.app.state.ctx

    async def store() -> None:
        async with ctx.pool.acquire() as conn, conn.transaction():
            await apply_engine_changes(conn, [near, far], outbox=ctx.outbox)

    client.portal.call(store)
    items = client.get("/v1/me/alerts", headers=bearer(app)).json()["items"]
    assert [(i["id"], i["kind"]) for i in items] == [(near.episode_id, "offender_silent")]
    assert "enkelband" in items[0]["title"]  # her language (nl)
    assert client.post(f"/v1/me/alerts/{near.episode_id}/ack", headers=bearer(app)).status_code == 200
    assert client.post(f"/v1/me/alerts/{far.episode_id}/ack", headers=bearer(app)).status_code == 404
    staff = client.get(f"/v1/alerts/{near.episode_id}", headers=staff_headers(client, "operator")).json()
    assert staff["near_victim"] is True and staff["changes"][0]["trigger"] == "silence"
