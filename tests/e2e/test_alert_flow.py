"""One incident end to end through the public API: staff set up a case, the supplier and the victim app
send positions, the engine raises alerts that arrive on the operator's WebSocket, the operator works them."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from pyproj import Geod

from api.cli import create_supplier
from tests.helpers import signed, staff_headers

GEOD = Geod(ellps="WGS84")
HOME = (5.1214, 52.0907)


def _setup(client) -> dict:  # type: ignore[no-untyped-def]
    import asyncio

    staff = staff_headers(client, "case_director")
    supplier = asyncio.run(create_supplier(client.app.state.ctx.settings, "flow-supplier"))
    case = client.post("/v1/cases", headers=staff, json={
        "reference": "FLOW-1", "proximity": {"warn_m": 1000, "alert_m": 500},
        "victim": {"display_name": "V", "language": "en"}, "offender": {"display_name": "O"},
    })
    assert case.status_code == 201, case.text
    cid = case.json()["id"]
    order = client.post(f"/v1/cases/{cid}/orders", headers=staff, json={
        "kind": "contact_ban", "reference": "OM-1", "valid_from": "2020-01-01T00:00:00+00:00", "valid_until": None,
    })
    assert order.status_code == 201, order.text
    dev = client.post(f"/v1/cases/{cid}/devices", headers=staff, json={
        "role": "offender_tag", "supplier_key_id": supplier["key_id"], "serial": "FLOW-TAG",
    })
    assert dev.status_code == 201, dev.text
    code = client.post(f"/v1/cases/{cid}/enrollments", headers=staff).json()["code"]
    app = client.post("/v1/me/enroll", json={"code": code, "installation_id": "i1", "platform": "ios"})
    assert app.status_code == 201, app.text
    return {"case_id": cid, "supplier": supplier, "victim": {"Authorization": "Bearer " + app.json()["access_token"]}}


def _send(client, setup: dict, t: datetime, dist_m: float) -> None:  # type: ignore[no-untyped-def]
    lon, lat, _ = GEOD.fwd(HOME[0], HOME[1], 90, dist_m)
    raw, headers = signed(setup["supplier"]["key_id"], setup["supplier"]["secret"], {"positions": [
        {"serial": "FLOW-TAG", "recorded_at": t.isoformat(), "lat": lat, "lon": lon, "accuracy_m": 5}]})
    r = client.post("/v1/ingest/positions", content=raw, headers=headers)
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "accepted", r.text
    r = client.post("/v1/me/positions", headers=setup["victim"], json={"positions": [
        {"recorded_at": (t - timedelta(seconds=2)).isoformat(), "lat": HOME[1], "lon": HOME[0], "accuracy_m": 5}]})
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "accepted", r.text


def test_approach_reaches_operator_stream_and_is_worked_to_resolution(client) -> None:  # type: ignore[no-untyped-def]
    setup = _setup(client)
    operator = staff_headers(client, "operator")
    start = datetime.now(timezone.utc) - timedelta(seconds=70)
    with client.websocket_connect("/v1/alerts/stream?after=0", headers=operator) as ws:
        sent = time.monotonic()
        for i, dist in enumerate([1300, 900, 600, 400, 300]):  # ~25 m/s, a car: no outlier
            _send(client, setup, start + timedelta(seconds=15 * i), dist)
        seen = []
        while not any(item["change"]["level"] == "violation" for item in seen):
            seen.append(ws.receive_json())
        latency = time.monotonic() - sent
    assert latency < 10
    first = seen[0]
    assert first["change"]["change"] == "opened"
    assert first["alert"]["kind"] == "proximity" and first["alert"]["case_id"] == setup["case_id"]
    assert [i["seq"] for i in seen] == sorted(i["seq"] for i in seen)
    alert_id = first["alert"]["id"]

    # A reconnecting client resumes after the last seq it saw and misses nothing.
    with client.websocket_connect(f"/v1/alerts/stream?after={first['seq']}", headers=operator) as ws:
        assert ws.receive_json()["seq"] == seen[1]["seq"]

    listed = client.get("/v1/alerts", params={"status": "open", "case_id": setup["case_id"]}, headers=operator)
    assert listed.status_code == 200 and [a["id"] for a in listed.json()["items"]] == [alert_id]

    assert client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=operator).json()["status"] == "acknowledged"
    again = client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=operator)
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")
    bad = client.post(f"/v1/alerts/{alert_id}/resolve", headers=operator, json={"outcome": "nonsense"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["outcome"]
    done = client.post(f"/v1/alerts/{alert_id}/resolve", headers=operator,
                       json={"outcome": "police_dispatched", "note": "unit on site in 8 min"})
    assert done.status_code == 200, done.text
    alert = client.get(f"/v1/alerts/{alert_id}", headers=operator).json()
    changes = [c["change"] for c in alert["changes"]]
    assert changes[0] == "opened" and "escalated" in changes
    # Notification steps may interleave; the operator's own steps come in the order they were taken.
    operator_steps = [c for c in alert["changes"] if c["actor"] == "operator:test-operator"]
    assert [c["change"] for c in operator_steps] == ["acknowledged", "resolved"]
    assert changes.index("acknowledged") > changes.index("escalated")
    assert alert["status"] == "resolved" and alert["outcome"] == "police_dispatched"
    assert alert["max_level"] == "violation" and alert["min_distance_m"] < 500


def test_stream_refuses_missing_or_wrong_tokens(client) -> None:  # type: ignore[no-untyped-def]
    import pytest
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as anonymous:
        with client.websocket_connect("/v1/alerts/stream") as ws:
            ws.receive_json()
    assert anonymous.value.code == 4401
    with pytest.raises(WebSocketDisconnect) as auditor:
        with client.websocket_connect("/v1/alerts/stream", headers=staff_headers(client, "auditor")) as ws:
            ws.receive_json()
    assert auditor.value.code == 4403


def test_alert_routes_need_operator_roles(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/v1/alerts").status_code == 401
    assert client.get("/v1/alerts", headers=staff_headers(client, "auditor")).status_code == 403
    r = client.post("/v1/alerts/00000000-0000-0000-0000-000000000000/acknowledge",
                    headers=staff_headers(client, "case_director"))
    assert r.status_code == 403
    r = client.get("/v1/alerts/not-a-uuid", headers=staff_headers(client, "operator"))
    assert r.status_code == 404 and r.json()["status"] == 404
