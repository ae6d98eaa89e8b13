"""Bluetooth encounters hold the victim's position (where her phone heard the tag) and the RSSI: staff read them
only with a reason and on the audit log, as a track; evidence packages carry them, digested and signed; the
victim never sees the offender's position and a supplier never sees an encounter."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from api.auth.principals import sign
from api.cli import main
from api.privacy.evidence import MANIFEST, verify
from tests.api.factories import db, db_val, world
from tests.helpers import staff_headers
from tests.api.privacy.support import BLE_KEY, OFFENDER, VICTIM, audit_page, hear

START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=20)


@pytest.fixture
def client(make_client):  # type: ignore[no-untyped-def]
    return make_client(run_engine=False)


def _encounters(client, case_id: str, role: str = "admin", **params):  # type: ignore[no-untyped-def]
    return client.get(f"/v1/cases/{case_id}/encounters", params=params, headers=staff_headers(client, role))


def _period(reason: str = "Bluetooth alert follow-up") -> dict[str, str]:
    return {"from": (START - timedelta(minutes=1)).isoformat(), "to": (START + timedelta(hours=1)).isoformat(),
            "reason": reason}


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _coordinates_in(text: str) -> bool:
    return any(str(c)[:7] in text for c in (*OFFENDER, *VICTIM))


def test_reading_encounters_needs_a_reason_and_is_audited_like_a_track(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client, ble_key=BLE_KEY)
    placed = hear(client, w, START, rssi=-58)
    unplaced = hear(client, w, START + timedelta(seconds=10), with_position=False)
    r = _encounters(client, w.case_id, "case_director", **_period("court request OM-2025-9"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["properties"]["count"] == 2
    first, second = body["features"]
    assert first["geometry"] == {"type": "Point", "coordinates": [VICTIM[1], VICTIM[0]]}  # [lon, lat]
    assert first["properties"]["seq"] == placed and first["properties"]["rssi"] == -58
    assert first["properties"]["tag_id"] == w.tag_id and first["properties"]["device_id"] == w.app["device_id"]
    assert second["geometry"] is None and second["properties"]["seq"] == unplaced

    [rec] = audit_page(client, case_id=w.case_id, action="encounters.read")["items"]
    assert rec["actor"] == "case_director:test-case_director" and rec["reason"] == "court request OM-2025-9"
    assert rec["detail"]["encounters"] == 2 and rec["detail"]["with_position"] == 1
    assert not _coordinates_in(json.dumps(rec))  # that her position was read, never where it was


def test_encounters_are_for_operators_and_case_directors_with_a_reason(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client, ble_key=BLE_KEY)
    hear(client, w, START)
    no_reason = {k: v for k, v in _period().items() if k != "reason"}
    r = _encounters(client, w.case_id, **no_reason)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "reason"]
    too_long = {**_period(), "to": (START + timedelta(days=30)).isoformat()}
    assert _encounters(client, w.case_id, **too_long).status_code == 422
    for role in ("contact_person", "auditor"):  # 403 by role, or 404 when need-to-know hides the case first
        assert _encounters(client, w.case_id, role, **_period()).status_code in (403, 404)
    url = f"/v1/cases/{w.case_id}/encounters"
    assert client.get(url, params=_period()).status_code == 401
    assert client.get(url, params=_period(), headers=w.victim).status_code == 401  # her phone: not even hers
    assert db_val(client, "SELECT count(*) FROM audit_log WHERE action = 'encounters.read'") == 0


def test_evidence_packages_carry_the_encounters_and_verify_covers_them(client, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    w = world(client, ble_key=BLE_KEY)
    named = hear(client, w, START - timedelta(hours=2))  # outside the window, but the alert names it
    before = hear(client, w, START - timedelta(minutes=11))  # margin is 10 minutes
    during = hear(client, w, START + timedelta(minutes=1), with_position=False)
    after = hear(client, w, START + timedelta(minutes=14))
    alert_id = uuid.uuid4()
    db(client, "INSERT INTO alerts (id, case_id, kind, level, max_level, confidence, opened_at, cleared_at, evidence)"
               " VALUES ($1, $2, 'proximity', 'violation', 'violation', 'confirmed', $3, $4, $5)",
       alert_id, uuid.UUID(w.case_id), START, START + timedelta(minutes=3), [str(named)])

    r = client.get(f"/v1/alerts/{alert_id}/evidence", params={"reason": "prosecutor asked"},
                   headers=staff_headers(client, "operator"))
    assert r.status_code == 200, r.text
    files = _files(r.content)
    features = json.loads(files["encounters.geojson"])["features"]
    assert [(f["properties"]["seq"], f["properties"]["evidence"]) for f in features] == [(named, True), (during, False)]
    assert features[0]["geometry"]["coordinates"] == [VICTIM[1], VICTIM[0]] and features[1]["geometry"] is None
    manifest = json.loads(files[MANIFEST])
    assert "encounters.geojson" in manifest["files"] and manifest["subject"]["encounters"] == 2
    rec = audit_page(client, action="alert.evidence")["items"][0]
    assert rec["detail"]["encounters"] == 2 and rec["detail"]["manifest_sha256"] == r.headers["x-afstand-manifest-sha256"]

    # A court's check covers them: one RSSI changed is caught.
    intact = tmp_path / "alert.zip"
    intact.write_bytes(r.content)
    assert main(["evidence", "verify", str(intact)]) == 0
    tampered_features = json.loads(files["encounters.geojson"])
    tampered_features["features"][0]["properties"]["rssi"] = -40
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in {**files, "encounters.geojson": json.dumps(tampered_features).encode()}.items():
            zf.writestr(name, data)
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(out.getvalue())
    capsys.readouterr()
    assert main(["evidence", "verify", str(tampered)]) == 1 and "TAMPERED" in capsys.readouterr().out
    assert "encounters.geojson: content does not match its digest" in verify(tampered).faults

    # The case export holds every encounter of the case.
    r = client.get(f"/v1/cases/{w.case_id}/export", params={"reason": "court order"},
                   headers=staff_headers(client, "case_director"))
    assert r.status_code == 200, r.text
    exported = json.loads(_files(r.content)["encounters.geojson"])["features"]
    assert [f["properties"]["seq"] for f in exported] == [named, before, during, after]
    assert verify(r.content).intact
    assert audit_page(client, action="case.export")["items"][0]["detail"]["encounters"] == 4


def test_the_victim_never_sees_the_offenders_position_nor_a_supplier_an_encounter(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()  # with the engine: a real Bluetooth alert
    w = world(client, ble_key=BLE_KEY)
    director = staff_headers(client, "case_director")
    assert client.patch(f"/v1/cases/{w.case_id}", headers=director,
                        json={"proximity": {"warn_m": 1000, "alert_m": 500}}).status_code == 200
    assert client.post(f"/v1/cases/{w.case_id}/orders", headers=director, json={
        "kind": "contact_ban", "reference": "OM-B", "valid_from": "2024-01-01T00:00:00Z",
        "valid_until": None}).status_code == 201
    now = datetime.now(timezone.utc).replace(microsecond=0)
    tag = [{"serial": w.serial, "recorded_at": (now - timedelta(seconds=20)).isoformat(), "lat": OFFENDER[0],
            "lon": OFFENDER[1], "accuracy_m": 6.0}]  # GPS says about 1.8 km away
    assert w.supplier.positions(client, tag).status_code == 200
    hear(client, w, now - timedelta(seconds=5))
    deadline = time.monotonic() + 10
    while not db_val(client, "SELECT count(*) FROM alerts WHERE case_id = $1::uuid AND kind = 'proximity'",
                     w.case_id) and time.monotonic() < deadline:
        time.sleep(0.05)

    mine = client.get("/v1/me/alerts", headers=w.victim)
    assert mine.status_code == 200 and [a["kind"] for a in mine.json()["items"]] == ["proximity"], mine.text
    assert not any(str(c)[:7] in mine.text for c in OFFENDER)
    beacons = client.get("/v1/me/beacons", headers=w.victim)
    assert beacons.status_code == 200 and not _coordinates_in(beacons.text) and w.serial not in beacons.text

    # A supplier's signed request reaches no encounter; what it is told of the alert (pursuit mode) names its
    # tags, never where the victim's phone heard one or how loud.
    ts = str(int(time.time()))
    signed = {"X-Afstand-Key": w.supplier.key_id, "X-Afstand-Timestamp": ts,
              "X-Afstand-Signature": sign(w.supplier.secret, ts, b"")}
    assert client.get(f"/v1/cases/{w.case_id}/encounters", params=_period(), headers=signed).status_code == 401
    told = db(client, "SELECT payload FROM outbox WHERE recipient = 'supplier' AND case_id = $1::uuid", w.case_id)
    assert told, "a Bluetooth violation asks the supplier for pursuit mode"
    text = json.dumps([dict(r) for r in told], default=str)
    assert not _coordinates_in(text) and "rssi" not in text and "beacon" not in text
