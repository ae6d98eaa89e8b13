"""No coordinates and no secrets in logs: an incident end to end, with every logger captured at DEBUG through
the service's own JSON formatter, must leave no latitude or longitude that was sent and no token or secret."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta, timezone

from pyproj import Geod

from api.platform.logs import configure_logging
from tests.api.factories import new_supplier
from tests.helpers import signed, staff_headers

GEOD = Geod(ellps="WGS84")
HOME = (5.127391, 52.094618)  # lon, lat: the victim stays home
BAD_LAT = 91.352817  # an impossible latitude the supplier sends by mistake: rejected, but still not for logs


def _formats(value: float) -> set[str]:
    """The ways a coordinate could end up in text: full repr, rounded and truncated to 4-7 decimals."""
    out = {repr(value), str(value)}
    for d in (4, 5, 6, 7):
        out.add(f"{value:.{d}f}")
        whole, _, frac = repr(value).partition(".")
        out.add(f"{whole}.{frac[:d]}")
    return out


def _hits(text: str, needle: str) -> list[str]:
    """Occurrences of ``needle`` as a number of its own (not the tail of a longer number, nor the seconds of a
    time such as 12:05:52.0946)."""
    hits = []
    for m in re.finditer(r"(?<![\d.])" + re.escape(needle), text):
        if re.search(r"\d\d:\d\d:$", text[max(0, m.start() - 6):m.start()]):
            continue
        hits.append(text[max(0, m.start() - 80):m.end() + 40])
    return hits


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_an_incident_leaves_no_coordinate_or_secret_in_the_logs(make_client) -> None:  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("DEBUG")  # the service's own JSON formatter on the root logger
    capture = _Capture()
    capture.setFormatter(root.handlers[0].formatter)
    root.addHandler(capture)
    try:
        sent, secrets = _run_incident(make_client)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    text = "\n".join(capture.lines)

    assert len(capture.lines) > 30 and '"path": "/v1/cases/{case_id}/track"' in text  # the flow was logged
    leaks = {needle: _hits(text, needle) for value in sent for needle in _formats(value)}
    assert not {k: v for k, v in leaks.items() if v}, "coordinates in logs"
    found = [name for name, secret in secrets.items() if secret in text]
    assert not found, f"secrets in logs: {found}"


def _run_incident(make_client) -> tuple[set[float], dict[str, str]]:  # type: ignore[no-untyped-def]
    client = make_client()
    director = staff_headers(client, "case_director")
    operator = staff_headers(client, "operator")
    supplier = new_supplier(client, "log-supplier")
    case = client.post("/v1/cases", headers=director, json={
        "reference": "LOG-1", "proximity": {"warn_m": 1000, "alert_m": 500},
        "victim": {"display_name": "V", "language": "nl"}, "offender": {"display_name": "O"}})
    assert case.status_code == 201, case.text
    cid = case.json()["id"]
    assert client.post(f"/v1/cases/{cid}/orders", headers=director, json={
        "kind": "contact_ban", "reference": "OM-9", "valid_from": "2020-01-01T00:00:00+00:00",
        "valid_until": None}).status_code == 201
    assert client.post(f"/v1/cases/{cid}/devices", headers=director, json={
        "role": "offender_tag", "supplier_key_id": supplier.key_id, "serial": "LOG-TAG"}).status_code == 201
    code = client.post(f"/v1/cases/{cid}/enrollments", headers=director).json()["code"]
    app = client.post("/v1/me/enroll", json={"code": code, "installation_id": "log-phone", "platform": "android",
                                             "push_token": "push-token-7d1e9a3f"}).json()
    refreshed = client.post("/v1/me/token", json={"refresh_token": app["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    victim = {"Authorization": "Bearer " + refreshed.json()["access_token"]}

    sent: set[float] = {HOME[0], HOME[1], BAD_LAT}
    start = datetime.now(timezone.utc) - timedelta(seconds=90)
    last_signature = ""
    for i, dist in enumerate([1300, 900, 600, 400, 300]):
        t = start + timedelta(seconds=15 * i)
        lon, lat, _ = GEOD.fwd(HOME[0], HOME[1], 90, dist)
        sent |= {lon, lat}
        raw, headers = signed(supplier.key_id, supplier.secret, {"positions": [
            {"serial": "LOG-TAG", "recorded_at": t.isoformat(), "lat": lat, "lon": lon, "accuracy_m": 5},
            {"serial": "LOG-TAG", "recorded_at": t.isoformat(), "lat": BAD_LAT, "lon": lon, "accuracy_m": 5}]})
        last_signature = headers["X-Afstand-Signature"]
        r = client.post("/v1/ingest/positions", content=raw, headers=headers)
        assert [x["status"] for x in r.json()["results"]] == ["accepted", "rejected"], r.text
        r = client.post("/v1/me/positions", headers=victim, json={"positions": [
            {"recorded_at": (t - timedelta(seconds=2)).isoformat(), "lat": HOME[1], "lon": HOME[0], "accuracy_m": 5}]})
        assert r.json()["results"][0]["status"] == "accepted", r.text
    # A forged request: its signature must not be logged either.
    raw, headers = signed(supplier.key_id, "not-the-secret", {"positions": []})
    assert client.post("/v1/ingest/positions", content=raw, headers=headers).status_code == 401

    panic = client.post("/v1/me/panic", headers=victim, json={
        "recorded_at": datetime.now(timezone.utc).isoformat(), "lat": HOME[1], "lon": HOME[0], "accuracy_m": 11})
    assert panic.status_code == 201, panic.text

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alerts = client.get("/v1/alerts", params={"case_id": cid}, headers=operator).json()["items"]
        if any(a["kind"] == "proximity" and a["max_level"] == "violation" for a in alerts):
            break
        time.sleep(0.2)
    proximity = next(a for a in alerts if a["kind"] == "proximity")
    assert client.post(f"/v1/alerts/{proximity['id']}/acknowledge", headers=operator).status_code == 200
    assert client.post(f"/v1/alerts/{proximity['id']}/resolve", headers=operator,
                       json={"outcome": "police_dispatched", "note": "unit sent"}).status_code == 200
    assert client.get(f"/v1/alerts/{proximity['id']}", headers=operator).status_code == 200
    track = client.get(f"/v1/cases/{cid}/track", headers=operator, params={
        "from": (start - timedelta(minutes=1)).isoformat(), "to": datetime.now(timezone.utc).isoformat(),
        "reason": "alert follow-up"})
    assert track.status_code == 200 and track.json()["properties"]["count"] >= 10
    assert client.get(f"/v1/alerts/{proximity['id']}/evidence", headers=operator,
                      params={"reason": "court"}).status_code == 200
    assert client.get("/v1/me/alerts", headers=victim).status_code == 200
    assert client.get("/v1/cases/not-a-case/track", headers=operator).status_code in (404, 422)

    secrets = {
        "case director token": director["Authorization"][7:], "operator token": operator["Authorization"][7:],
        "first access token": app["access_token"], "first refresh token": app["refresh_token"],
        "access token": refreshed.json()["access_token"], "refresh token": refreshed.json()["refresh_token"],
        "supplier secret": supplier.secret, "supplier signature": last_signature,
        "enrollment code": code, "push token": "push-token-7d1e9a3f",
        "server key": client.app.state.ctx.key.hex(),
    }
    return sent, secrets


def test_the_detector_finds_planted_coordinates_and_ignores_times() -> None:
    lat = HOME[1]
    assert _hits('{"message": "fix", "lat": 52.094618}', "52.094618")
    assert _hits("near 52.0946 ", f"{lat:.4f}")
    assert not _hits("at 2025-01-01T12:05:52.0946Z", f"{lat:.4f}")  # the seconds of a time, not a latitude
    assert not _hits("seq 152.094618", "52.094618")
    assert {"52.0946", "52.09462", "52.094618"} <= _formats(lat)
