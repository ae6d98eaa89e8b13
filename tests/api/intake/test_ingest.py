"""The supplier API end to end through the real app and a real PostgreSQL: HMAC, per-item results, what is
stored and kept, idempotent redelivery, limits, and device events becoming ``device_event`` alerts."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from api.auth.principals import sign
from api.intake.device_events import Attach, Ignore, Open, decide
from tests.api.factories import (
    Supplier, db, db_val, event, fix, new_case, new_supplier, new_tag, now, world,
)
from tests.helpers import signed, staff_headers


def assert_problem(r, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def statuses(r) -> list[str]:  # type: ignore[no-untyped-def]
    assert r.status_code == 200, r.text
    return [x["status"] for x in r.json()["results"]]


def stored_count(client) -> int:  # type: ignore[no-untyped-def]
    return db_val(client, "SELECT count(*) FROM positions") + db_val(client, "SELECT count(*) FROM ingest_rejections")


def alerts_of(client, case_id: str, kind: str = "device_event") -> list[dict]:  # type: ignore[no-untyped-def]
    r = client.get("/v1/alerts", params={"case_id": case_id}, headers=staff_headers(client, "operator"))
    assert r.status_code == 200, r.text
    return [a for a in r.json()["items"] if a["kind"] == kind]


def alert(client, alert_id: str) -> dict:  # type: ignore[no-untyped-def]
    r = client.get(f"/v1/alerts/{alert_id}", headers=staff_headers(client, "operator"))
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------- positions

def test_accepted_fixes_are_committed_in_time_order_and_update_the_device(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    items = [fix(w.serial, 30, battery_pct=40.0), fix(w.serial, 90, battery_pct=70.0, speed_mps=1.2, heading_deg=90.0),
             fix(w.serial, 60, source="wifi")]
    r = w.supplier.positions(client, items)
    assert r.json() == {"results": [{"index": i, "status": "accepted", "error": None} for i in range(3)]}
    rows = db(client, "SELECT seq, device_id, case_id, party, recorded_at, source, battery_pct FROM positions ORDER BY seq")
    assert [str(r["device_id"]) for r in rows] == [w.tag_id] * 3
    assert {str(r["case_id"]) for r in rows} == {w.case_id} and {r["party"] for r in rows} == {"offender"}
    # Stored oldest first, so the engine reads each device's fixes in time order.
    assert [r["recorded_at"] for r in rows] == sorted(r["recorded_at"] for r in rows)
    assert [r["battery_pct"] for r in rows] == [70.0, None, 40.0] and rows[1]["source"] == "wifi"
    dev = db(client, "SELECT last_seen_at, last_battery_pct FROM devices WHERE id = $1::uuid", w.tag_id)[0]
    assert dev["last_seen_at"] == rows[-1]["recorded_at"] and dev["last_battery_pct"] == 40.0


def test_committed_fixes_reach_the_engine(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    assert statuses(w.supplier.positions(client, [fix(w.serial, 20)])) == ["accepted"]
    seq = db_val(client, "SELECT max(seq) FROM positions")
    deadline = time.monotonic() + 10
    while (db_val(client, "SELECT last_seq FROM engine_progress") or 0) < seq:
        assert time.monotonic() < deadline, "the engine never evaluated the committed fix"
        time.sleep(0.05)


def test_mixed_batch_stores_the_good_items_and_reports_and_keeps_each_bad_one(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    good = fix(w.serial, 10)
    items = [
        good,
        fix(w.serial, 20, lat=91.0),
        {**fix(w.serial, 30), "recorded_at": "2026-01-01T12:00:00"},  # naive: no offset
        fix(w.serial, 40, colour="red"),
        "not an object",
        fix(w.serial, 50, accuracy_m=0),
        fix(w.serial, 60, battery_pct=101),
        fix(w.serial, 70, lat="52.09"),
        {**fix(w.serial, 80), "recorded_at": 1767225600},
        {k: v for k, v in fix(w.serial, 90).items() if k != "lon"},
        fix(w.serial, 100, lon=float("nan")),  # Python's json writes NaN; it must not slip through
        fix(w.serial, 110),
    ]
    r = w.supplier.positions(client, items)
    results = r.json()["results"]
    assert [x["index"] for x in results] == list(range(len(items)))
    assert statuses(r) == ["accepted"] + ["rejected"] * 10 + ["accepted"]
    errors = [x["error"] for x in results[1:11]]
    for field, error in zip(["lat", "recorded_at", "colour", "item", "accuracy_m", "battery_pct", "lat",
                             "recorded_at", "lon", "lon"], errors):
        assert error.startswith(field + ":"), (field, error)
    assert "offset" in errors[1] and "not permitted" in errors[2] and "finite" in errors[9]
    assert db_val(client, "SELECT count(*) FROM positions") == 2
    kept = db(client, "SELECT channel, sender, item_index, item, reason FROM ingest_rejections ORDER BY item_index")
    assert [k["item_index"] for k in kept] == list(range(1, 11))
    assert {k["sender"] for k in kept} == {w.supplier.key_id} and {k["channel"] for k in kept} == {"supplier:positions"}
    assert kept[0]["item"]["lat"] == 91.0 and kept[3]["item"] == "not an object"
    assert kept[9]["item"]["lon"] == "nan"  # kept, made storable
    assert [k["reason"] for k in kept] == errors


def test_redelivery_and_repeats_within_a_batch_are_duplicates_not_new_fixes(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    batch = [fix(w.serial, 30), fix(w.serial, 20)]
    assert statuses(w.supplier.positions(client, batch)) == ["accepted", "accepted"]
    new = fix(w.serial, 10)
    # The same instant written with another offset is the same fix.
    amsterdam = timezone(timedelta(hours=1))
    same_instant = {**batch[0], "recorded_at": datetime.fromisoformat(batch[0]["recorded_at"]).astimezone(amsterdam).isoformat()}
    r = w.supplier.positions(client, batch + [new, dict(new), same_instant])
    assert statuses(r) == ["duplicate", "duplicate", "accepted", "duplicate", "duplicate"]
    assert db_val(client, "SELECT count(*) FROM positions") == 3
    assert db_val(client, "SELECT count(*) FROM ingest_rejections") == 0


def test_future_fixes_are_rejected_beyond_the_clock_tolerance(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    r = w.supplier.positions(client, [fix(w.serial, -400), fix(w.serial, -100)])
    assert statuses(r) == ["rejected", "accepted"]
    assert r.json()["results"][0]["error"] == "recorded_at: more than 300 s ahead of server time (a wrong device clock)"
    assert db_val(client, "SELECT reason FROM ingest_rejections") == "recorded_at: more than 300 s ahead of server time (a wrong device clock)"


@pytest.mark.parametrize("recorded_at, reason", [
    ("2019-04-06T23:59:42Z", "before 2020-01-01T00:00:00Z"),  # the 2019 GPS week rollover
    ("1999-08-21T23:59:47Z", "before 2020-01-01T00:00:00Z"),  # the 1999 one
    ("0001-01-01T00:00:00+14:00", "out of range"),
    ("9999-12-31T23:59:59-14:00", "out of range"),
    ("2026-01-01 12:00", "RFC 3339"),  # no seconds, no offset
    ("20260101T120000Z", "RFC 3339"),  # ISO 8601 basic format is not RFC 3339
    ("2026-01-01", "RFC 3339"),
])
def test_implausible_times_are_refused_per_item_with_a_reason(client, recorded_at: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    """Fixes and device events recorded before AFSTAND_PLAUSIBLE_SINCE, or with a time that is not RFC 3339 or
    not representable, are rejected one by one and kept; the good items of the same batch are stored."""
    w = world(client)
    r = w.supplier.positions(client, [fix(w.serial, 10), {**fix(w.serial, 20), "recorded_at": recorded_at}])
    assert statuses(r) == ["accepted", "rejected"]
    assert r.json()["results"][1]["error"].startswith("recorded_at:") and reason in r.json()["results"][1]["error"]
    r = w.supplier.events(client, [event(w.serial, "charging", now()), {**event(w.serial, "gps_lost", now()),
                                                                        "recorded_at": recorded_at}])
    assert statuses(r) == ["accepted", "rejected"] and reason in r.json()["results"][1]["error"]
    app = client.post("/v1/me/positions", headers=w.victim, json={"positions": [{**fix(None, 5), "recorded_at": recorded_at}]})
    assert statuses(app) == ["rejected"] and reason in app.json()["results"][0]["error"]
    assert db_val(client, "SELECT count(*) FROM ingest_rejections") == 3


def test_the_plausible_window_is_a_setting(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, plausible_since="2026-01-01T00:00:00Z", future_tolerance_s=30)
    w = world(client)
    r = w.supplier.positions(client, [{**fix(w.serial), "recorded_at": "2025-12-31T23:59:59Z"}, fix(w.serial, -60),
                                      fix(w.serial, -10)])
    assert statuses(r) == ["rejected", "rejected", "accepted"]
    assert "before 2026-01-01T00:00:00Z" in r.json()["results"][0]["error"]
    assert r.json()["results"][1]["error"] == "recorded_at: more than 30 s ahead of server time (a wrong device clock)"


def test_batch_limits_and_envelope(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    many = [fix(w.serial, 5000 - i) for i in range(1001)]
    body = assert_problem(w.supplier.positions(client, many), 413)
    assert body["errors"][0]["loc"] == ["positions"]
    assert stored_count(client) == 0
    r = w.supplier.positions(client, many[:1000])
    assert statuses(r).count("accepted") == 1000
    assert db_val(client, "SELECT count(*) FROM positions") == 1000

    empty = w.supplier.positions(client, [])
    assert empty.status_code == 200 and empty.json() == {"results": []}
    unknown = assert_problem(w.supplier.post(client, "/v1/ingest/positions", {"positions": [], "batch_id": 7}), 422)
    assert unknown["errors"][0]["loc"] == ["batch_id"]
    missing = assert_problem(w.supplier.post(client, "/v1/ingest/positions", {"fixes": []}), 422)
    assert ["positions"] in [e["loc"] for e in missing["errors"]]
    not_list = assert_problem(w.supplier.post(client, "/v1/ingest/positions", {"positions": {"a": 1}}), 422)
    assert not_list["errors"][0]["loc"] == ["positions"]
    raw = b'{"positions": ['
    _, headers = signed(w.supplier.key_id, w.supplier.secret, None)
    from api.auth.principals import sign

    headers["X-Afstand-Signature"] = sign(w.supplier.secret, headers["X-Afstand-Timestamp"], raw)
    bad_json = assert_problem(client.post("/v1/ingest/positions", content=raw, headers=headers), 422)
    assert bad_json["errors"] == [{"loc": ["body"], "msg": "the body is not valid JSON"}]
    assert db_val(client, "SELECT count(*) FROM positions") == 1000


# ---------------------------------------------------------------- HMAC and ownership

def test_hmac_failures_get_401_and_store_nothing(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    items = [fix(w.serial, 10)]
    cases = {
        "wrong secret": w.supplier.positions(client, items, secret="not-the-secret"),
        "stale timestamp": w.supplier.positions(client, items, timestamp=int(time.time()) - 301),
        "timestamp ahead": w.supplier.positions(client, items, timestamp=int(time.time()) + 301),
        "unknown key": Supplier("no-such-key", w.supplier.secret).positions(client, items),
        "no headers": client.post("/v1/ingest/positions", json={"positions": items}),
    }
    raw, headers = signed(w.supplier.key_id, w.supplier.secret, {"positions": items})
    cases["body changed after signing"] = client.post(
        "/v1/ingest/positions", content=raw.replace(b"52.0907", b"52.0908"), headers=headers)
    cases["garbage body, bad signature"] = client.post(
        "/v1/ingest/positions", content=b"{not json", headers={**headers, "X-Afstand-Signature": "00" * 32})
    cases["events, wrong secret"] = w.supplier.events(client, [event(w.serial, "strap_tamper", now())], secret="x")
    for name, r in cases.items():
        assert_problem(r, 401), name
    assert stored_count(client) == 0
    assert db_val(client, "SELECT count(*) FROM device_events") == 0
    assert alerts_of(client, w.case_id) == []
    # Within the window on both sides is fine.
    assert statuses(w.supplier.positions(client, items, timestamp=int(time.time()) - 250)) == ["accepted"]


def test_replayed_request_is_refused_and_stores_nothing(client) -> None:  # type: ignore[no-untyped-def]
    """A captured request replayed inside the 300 s window is refused outright (issue 6: replay protection);
    a retry signed anew is served as duplicates."""
    w = world(client)
    raw, headers = signed(w.supplier.key_id, w.supplier.secret, {"positions": [fix(w.serial, 10), fix(w.serial, 5)]})
    first = client.post("/v1/ingest/positions", content=raw, headers=headers)
    replay = client.post("/v1/ingest/positions", content=raw, headers=headers)
    assert statuses(first) == ["accepted", "accepted"]
    assert_problem(replay, 401)
    assert db_val(client, "SELECT count(*) FROM positions") == 2
    ts = str(int(headers["X-Afstand-Timestamp"]) + 1)
    resigned = client.post("/v1/ingest/positions", content=raw, headers={
        **headers, "X-Afstand-Timestamp": ts, "X-Afstand-Signature": sign(w.supplier.secret, ts, raw)})
    assert statuses(resigned) == ["duplicate", "duplicate"]


def test_a_supplier_may_post_only_for_its_own_active_tags(client) -> None:  # type: ignore[no-untyped-def]
    mine = world(client)
    theirs = world(client)  # another supplier, another case
    r = mine.supplier.positions(client, [fix(theirs.serial, 10), fix("NO-SUCH-TAG", 10), fix(mine.serial, 10)])
    assert statuses(r) == ["rejected", "rejected", "accepted"]
    other, unknown = r.json()["results"][0]["error"], r.json()["results"][1]["error"]
    # Another supplier's serial and a serial nobody has get the same answer: nothing is revealed.
    assert other == unknown == "serial: unknown serial for this supplier"
    assert db_val(client, "SELECT count(*) FROM positions WHERE device_id = $1::uuid", theirs.tag_id) == 0
    ev = mine.supplier.events(client, [event(theirs.serial, "strap_tamper", now())])
    assert statuses(ev) == ["rejected"] and alerts_of(client, theirs.case_id) == []

    # A revoked tag is no longer the supplier's to post for.
    director = staff_headers(client, "case_director")
    assert client.post(f"/v1/cases/{mine.case_id}/devices/{mine.tag_id}/revoke", headers=director).status_code == 200
    assert statuses(mine.supplier.positions(client, [fix(mine.serial, 5)])) == ["rejected"]


def test_supplier_credentials_do_not_reach_staff_or_app_routes(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    raw, headers = signed(w.supplier.key_id, w.supplier.secret, None)
    assert_problem(client.get("/v1/alerts", headers=headers), 401)
    assert_problem(client.get("/v1/me/alerts", headers=headers), 401)


# ---------------------------------------------------------------- device events

def test_tamper_is_a_violation_that_never_clears_by_itself(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    t0 = now() - timedelta(minutes=5)
    r = w.supplier.events(client, [event(w.serial, "strap_tamper", t0, detail={"sensor": "optical"})])
    assert statuses(r) == ["accepted"]
    [opened] = alerts_of(client, w.case_id)
    assert (opened["level"], opened["confidence"], opened["status"]) == ("violation", "confirmed", "open")
    assert opened["device_id"] == w.tag_id and opened["cleared_at"] is None
    assert opened["detail"]["family"] == "tamper" and opened["detail"]["event"] == "strap_tamper"

    # Redelivery of the same event: a duplicate, not a second alert.
    assert statuses(w.supplier.events(client, [event(w.serial, "strap_tamper", t0)])) == ["duplicate"]
    # A later restoring event, a second tamper and a position are attached; nothing clears it.
    r = w.supplier.events(client, [event(w.serial, "strap_restored", t0 + timedelta(minutes=1)),
                                   event(w.serial, "case_tamper", t0 + timedelta(minutes=2))])
    assert statuses(r) == ["accepted", "accepted"]
    assert statuses(w.supplier.positions(client, [fix(w.serial, 30)])) == ["accepted"]
    [still] = alerts_of(client, w.case_id)
    full = alert(client, still["id"])
    assert still["id"] == opened["id"] and full["cleared_at"] is None and full["status"] == "open"
    assert [c["change"] for c in full["changes"]] == ["opened", "note", "note"]
    assert full["changes"][1]["detail"]["event"] == "strap_restored" and full["changes"][1]["detail"]["restores"]
    assert full["changes"][2]["detail"]["event"] == "case_tamper"
    assert db_val(client, "SELECT count(*) FROM device_events") == 3

    # Only an operator ends it; a tamper after that is a new alert.
    op = staff_headers(client, "operator")
    done = client.post(f"/v1/alerts/{opened['id']}/resolve", headers=op, json={"outcome": "technical_fault"})
    assert done.status_code == 200, done.text
    assert statuses(w.supplier.events(client, [event(w.serial, "strap_tamper", t0 + timedelta(minutes=3))])) == ["accepted"]
    assert len(alerts_of(client, w.case_id)) == 2


def test_battery_escalates_and_charging_restores(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    t0 = now() - timedelta(minutes=10)
    w.supplier.events(client, [event(w.serial, "battery_low", t0)])
    [low] = alerts_of(client, w.case_id)
    assert low["level"] == "warning"
    w.supplier.events(client, [event(w.serial, "battery_critical", t0 + timedelta(minutes=1))])
    [critical] = alerts_of(client, w.case_id)
    assert critical["id"] == low["id"] and critical["level"] == critical["max_level"] == "violation"
    charging_at = t0 + timedelta(minutes=2)
    assert statuses(w.supplier.events(client, [event(w.serial, "charging", charging_at)])) == ["accepted"]
    full = alert(client, low["id"])
    assert [c["change"] for c in full["changes"]] == ["opened", "escalated", "note", "cleared"]
    assert full["clear_reason"] == "restored" and full["cleared_at"] is not None
    assert full["changes"][-1]["fix_at"] == full["cleared_at"]
    # The next low battery is a new alert: the earlier one is over.
    w.supplier.events(client, [event(w.serial, "battery_low", t0 + timedelta(minutes=3))])
    assert len(alerts_of(client, w.case_id)) == 2


def test_gps_lost_and_offline_clear_when_restored(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    t0 = now() - timedelta(minutes=10)
    w.supplier.events(client, [event(w.serial, "gps_lost", t0), event(w.serial, "device_offline", t0)])
    opened = {a["detail"]["family"]: a for a in alerts_of(client, w.case_id)}
    assert set(opened) == {"gps", "offline"} and {a["level"] for a in opened.values()} == {"warning"}
    # A position proves the tag is online again; GPS stays lost until gps_restored.
    assert statuses(w.supplier.positions(client, [fix(w.serial, 120)])) == ["accepted"]
    offline = alert(client, opened["offline"]["id"])
    assert offline["clear_reason"] == "restored" and offline["changes"][-2]["detail"]["via"] == "position"
    assert alert(client, opened["gps"]["id"])["cleared_at"] is None
    w.supplier.events(client, [event(w.serial, "gps_restored", t0 + timedelta(minutes=5))])
    gps = alert(client, opened["gps"]["id"])
    assert [c["change"] for c in gps["changes"]] == ["opened", "note", "cleared"] and gps["clear_reason"] == "restored"


def test_event_that_arrives_after_its_restoration_opens_and_clears(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    t0 = now() - timedelta(minutes=10)
    w.supplier.events(client, [event(w.serial, "gps_restored", t0 + timedelta(minutes=2))])
    assert alerts_of(client, w.case_id) == []  # nothing to restore yet
    w.supplier.events(client, [event(w.serial, "gps_lost", t0)])
    [late] = alerts_of(client, w.case_id)
    assert late["cleared_at"] is not None and late["late"] is True
    assert [c["change"] for c in alert(client, late["id"])["changes"]] == ["opened", "note", "cleared"]


def test_bad_events_are_rejected_and_kept(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    r = w.supplier.events(client, [
        event(w.serial, "fire_alarm", now()),
        event(w.serial, "strap_tamper", now() + timedelta(seconds=400)),
        {"serial": w.serial, "type": "charging"},
        event(w.serial, "charging", now(), extra=1),
        event(w.serial, "battery_low", now() - timedelta(seconds=5)),
    ])
    assert statuses(r) == ["rejected"] * 4 + ["accepted"]
    errors = [x["error"] for x in r.json()["results"][:4]]
    assert errors[0].startswith("type:") and errors[1] == "recorded_at: more than 300 s ahead of server time (a wrong device clock)"
    assert errors[2].startswith("recorded_at:") and errors[3].startswith("extra:")
    kept = db(client, "SELECT channel, item_index FROM ingest_rejections ORDER BY item_index")
    assert [(k["channel"], k["item_index"]) for k in kept] == [("supplier:events", i) for i in range(4)]
    assert_problem(w.supplier.post(client, "/v1/ingest/events", {"events": [event(w.serial, "charging", now())] * 1001}), 413)


def test_fix_and_event_metrics_are_counted(client) -> None:  # type: ignore[no-untyped-def]
    def value(name: str) -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{") and line.split(" ")[0] == name:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    accepted = 'afstand_fixes_total{outcome="accepted",source="supplier"}'
    rejected = 'afstand_fixes_total{outcome="rejected",source="supplier"}'
    before = value(accepted), value(rejected)
    w = world(client)
    w.supplier.positions(client, [fix(w.serial, 10), fix(w.serial, 20, lat=100.0)])
    assert (value(accepted), value(rejected)) == (before[0] + 1, before[1] + 1)


# ---------------------------------------------------------------- the policy table, without a database

@pytest.mark.parametrize("event_type, level", [
    ("strap_tamper", "violation"), ("case_tamper", "violation"), ("battery_low", "warning"),
    ("battery_critical", "violation"), ("gps_lost", "warning"), ("device_offline", "warning"),
])
def test_policy_opens_each_alarm_at_its_documented_level(event_type: str, level: str) -> None:
    assert decide(event_type, None, None, now()) == Open(level)


def test_policy_attaches_restores_and_never_clears_tamper() -> None:
    t = now()
    assert decide("strap_restored", "violation", t, t) == Attach("note", "violation", clears=False)
    assert decide("case_tamper", "violation", t, t) == Attach("note", "violation")
    assert decide("charging", "violation", t, t) == Attach("note", "violation", clears=True)
    assert decide("battery_critical", "warning", t, t) == Attach("escalated", "violation")
    assert decide("battery_low", "violation", t, t) == Attach("note", "violation")
    assert isinstance(decide("gps_restored", None, None, t), Ignore)
    assert isinstance(decide("gps_restored", "warning", t, t - timedelta(seconds=1)), Ignore)
