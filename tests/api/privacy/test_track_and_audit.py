"""Reading positions is an act: the track needs a reason, every read of positions or victim data is audited,
and only the auditor reads the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.privacy.audit import verify_chain
from tests.api.factories import db_val
from tests.helpers import staff_headers
from tests.api.privacy.support import OFFENDER, VICTIM, audit_page, case_with_fixes, track


@pytest.fixture
def client(make_client):  # type: ignore[no-untyped-def]
    return make_client(run_engine=False)


def test_track_returns_both_parties_as_geojson_and_audits_who_why_what(client) -> None:  # type: ignore[no-untyped-def]
    w, start = case_with_fixes(client, n=3)
    r = track(client, w.case_id, "case_director", reason="court request OM-2024-17",
              **{"from": (start - timedelta(minutes=1)).isoformat(), "to": (start + timedelta(hours=1)).isoformat()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["properties"]["count"] == 6
    parties = [f["properties"]["party"] for f in body["features"]]
    assert sorted(parties) == ["offender"] * 3 + ["victim"] * 3
    times = [f["properties"]["recorded_at"] for f in body["features"]]
    assert times == sorted(times)
    first = body["features"][0]
    assert first["geometry"] == {"type": "Point", "coordinates": [OFFENDER[1], OFFENDER[0]]}  # [lon, lat]
    assert first["properties"]["accuracy_m"] == 6.0 and first["properties"]["device_id"] == w.tag_id

    items = audit_page(client, case_id=w.case_id, action="track.read")["items"]
    assert len(items) == 1
    rec = items[0]
    assert rec["actor"] == "case_director:test-case_director" and rec["role"] == "case_director"
    assert rec["reason"] == "court request OM-2024-17" and rec["detail"]["fixes"] == 6
    # The audit log says that positions were read, never where they were.
    assert str(OFFENDER[0])[:6] not in str(rec) and str(VICTIM[1])[:5] not in str(rec)


def test_track_filters_by_party_and_period(client) -> None:  # type: ignore[no-untyped-def]
    w, start = case_with_fixes(client, n=3)
    r = track(client, w.case_id, reason="follow-up of alert", party="victim",
              **{"from": start.isoformat(), "to": (start + timedelta(seconds=90)).isoformat()})
    assert r.status_code == 200, r.text
    assert [f["properties"]["party"] for f in r.json()["features"]] == ["victim", "victim"]  # t+5 s and t+65 s


@pytest.mark.parametrize("params, field", [
    ({"from": "2025-01-01T00:00:00Z", "to": "2025-01-01T01:00:00Z"}, "reason"),
    ({"from": "2025-01-01T00:00:00Z", "to": "2025-01-01T01:00:00Z", "reason": "  "}, "reason"),
    ({"to": "2025-01-01T01:00:00Z", "reason": "check"}, "from"),
    ({"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:01Z", "reason": "check"}, "to"),  # > 24 h
    ({"from": "2025-01-01T01:00:00Z", "to": "2025-01-01T00:00:00Z", "reason": "check"}, "to"),
    ({"from": "2025-01-01T00:00:00", "to": "2025-01-01T01:00:00Z", "reason": "check"}, "from"),  # no offset
])
def test_track_refuses_reads_without_reason_or_with_a_bad_period(client, params, field) -> None:  # type: ignore[no-untyped-def]
    w, _ = case_with_fixes(client, n=1)
    r = track(client, w.case_id, **params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["loc"][-1] == field
    assert db_val(client, "SELECT count(*) FROM audit_log WHERE action = 'track.read'") == 0


def test_track_max_span_is_a_setting(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, track_max_span_h=1)
    w, start = case_with_fixes(client, n=1)
    r = track(client, w.case_id, reason="check", **{"from": start.isoformat(),
                                                    "to": (start + timedelta(minutes=61)).isoformat()})
    assert r.status_code == 422 and "at most 1 hours" in r.json()["detail"]


def test_track_is_for_operators_and_case_directors_only(client) -> None:  # type: ignore[no-untyped-def]
    w, start = case_with_fixes(client, n=1)
    params = {"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat(), "reason": "curious"}
    for role in ("contact_person", "auditor"):  # 403 by role, or 404 when need-to-know hides the case first
        assert track(client, w.case_id, role, **params).status_code in (403, 404)
    assert client.get(f"/v1/cases/{w.case_id}/track", params=params).status_code == 401
    assert client.get(f"/v1/cases/{w.case_id}/track", params=params, headers=w.victim).status_code == 401
    assert track(client, "00000000-0000-0000-0000-000000000000", **params).status_code == 404
    assert db_val(client, "SELECT count(*) FROM audit_log WHERE action = 'track.read'") == 0


def test_audit_log_is_served_to_the_auditor_only(client) -> None:  # type: ignore[no-untyped-def]
    w, start = case_with_fixes(client, n=1)
    for role in ("admin", "operator", "case_director", "contact_person"):
        r = client.get("/v1/audit", headers=staff_headers(client, role))
        assert r.status_code == 403, role
    assert client.get("/v1/audit").status_code == 401
    assert client.get("/v1/audit", headers=w.victim).status_code == 401
    page = audit_page(client)
    assert page["items"] and page["items"][0]["hash"] and page["items"][0]["prev_hash"]
    # The auditor's own reading is on the record too.
    assert audit_page(client, action="audit.read")["items"][0]["actor"] == "auditor:test-auditor"


def test_audit_log_pages_newest_first_and_filters(client) -> None:  # type: ignore[no-untyped-def]
    w, start = case_with_fixes(client, n=1)
    params = {"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat()}
    for i in range(5):
        assert track(client, w.case_id, "admin", reason=f"shift check {i}", **params).status_code == 200
    seen, cursor = [], None
    while True:
        page = audit_page(client, case_id=w.case_id, action="track.", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r["reason"] for r in seen] == [f"shift check {i}" for i in (4, 3, 2, 1, 0)]
    seqs = [r["chain_seq"] for r in seen]
    assert seqs == sorted(seqs, reverse=True)
    assert audit_page(client, actor="admin:test-admin", action="track.read", limit=500)["items"] == seen
    assert audit_page(client, actor="nobody:at-all")["items"] == []
    r = client.get("/v1/audit", params={"cursor": "²"}, headers=staff_headers(client, "auditor"))
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "cursor"]
    assert client.portal.call(_verify, client).intact


async def _verify(client):  # type: ignore[no-untyped-def]
    async with client.app.state.ctx.pool.acquire() as conn:
        return await verify_chain(conn)


def test_reads_of_victim_data_and_alerts_are_audited(client) -> None:  # type: ignore[no-untyped-def]
    w, start = case_with_fixes(client, n=1)
    panic = client.post("/v1/me/panic", headers=w.victim, json={"recorded_at": start.isoformat(),
                                                                "lat": VICTIM[0], "lon": VICTIM[1], "accuracy_m": 12})
    assert panic.status_code == 201, panic.text
    alert_id = panic.json()["alert_id"]
    operator = staff_headers(client, "operator")
    assert client.get(f"/v1/alerts/{alert_id}", headers=operator).status_code == 200
    assert client.get(f"/v1/cases/{w.case_id}", headers=operator).status_code == 200
    assert client.get("/v1/cases", headers=operator).status_code == 200
    reads = {r["action"]: r for r in audit_page(client, actor="operator:test-operator")["items"]}
    assert reads["alert.read"]["detail"] == {"alert_id": alert_id} and reads["alert.read"]["case_id"] == w.case_id
    assert reads["case.read"]["case_id"] == w.case_id
    assert w.case_id in reads["case.list"]["detail"]["cases"]
