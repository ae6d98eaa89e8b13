"""The victim app API end to end through the real app and a real PostgreSQL: enrollment, tokens, positions,
panic, push token, the victim's own alerts (never the offender's position) and the limits of a device token."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest

from api.alerts import repository as alert_store
from api.platform.secrets import token_hash
from tests.api.factories import (
    ago, bearer, db, db_val, enroll, fix, new_case, new_code, now, world,
)
from tests.helpers import problem as assert_problem, staff_headers


def redeem(client, code: str, installation_id: str = "phone-1"):  # type: ignore[no-untyped-def]
    return client.post("/v1/me/enroll", json={"code": code, "installation_id": installation_id, "platform": "ios"})


def wrong(code: str) -> str:
    """The same lookup with another secret."""
    last = "2" if code[-1] != "2" else "3"
    return code[:-1] + last


# ---------------------------------------------------------------- enrollment

def test_enrollment_creates_the_victim_device_and_a_token_pair(client) -> None:  # type: ignore[no-untyped-def]
    case_id = new_case(client)
    code = new_code(client, case_id)
    typed = "-".join([code[:4], code[4:8], code[8:]]).lower()  # read from paper: dashes, lower case
    r = client.post("/v1/me/enroll", json={"code": typed, "installation_id": "inst-1", "platform": "android",
                                           "push_token": "fcm-abc"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) >= {"device_id", "access_token", "refresh_token", "expires_in"}
    assert body["expires_in"] == client.app.state.ctx.settings.access_token_ttl_s
    dev = db(client, "SELECT * FROM devices WHERE id = $1::uuid", body["device_id"])[0]
    assert str(dev["case_id"]) == case_id and dev["role"] == "victim_app"
    assert (dev["installation_id"], dev["platform"], dev["push_token"]) == ("inst-1", "android", "fcm-abc")
    # The refresh token is stored only as a hash.
    assert dev["refresh_token_hash"] == token_hash(body["refresh_token"]) and dev["refresh_expires_at"] > now()
    assert db_val(client, "SELECT used_at FROM enrollments WHERE lookup = $1", code[:8]) is not None
    assert db_val(client, "SELECT count(*) FROM audit_log WHERE action = 'enrollment.redeem' AND case_id = $1::uuid",
                  case_id) == 1
    assert client.get("/v1/me/alerts", headers=bearer(body)).status_code == 200


def test_enrollment_code_is_single_use(client) -> None:  # type: ignore[no-untyped-def]
    case_id = new_case(client)
    code = new_code(client, case_id)
    assert redeem(client, code).status_code == 201
    assert "used" in assert_problem(redeem(client, code, "phone-2"), 409, ["code"])["detail"]
    assert db_val(client, "SELECT count(*) FROM devices WHERE role = 'victim_app'") == 1


def test_enrollment_code_expires(client) -> None:  # type: ignore[no-untyped-def]
    case_id = new_case(client)
    code = new_code(client, case_id)
    client.portal.call(client.app.state.ctx.pool.execute,
                       "UPDATE enrollments SET expires_at = now() - interval '1 second' WHERE lookup = $1", code[:8])
    assert "expired" in assert_problem(redeem(client, code), 410, ["code"])["detail"]
    assert db_val(client, "SELECT count(*) FROM devices WHERE role = 'victim_app'") == 0


def test_five_wrong_tries_lock_the_code(client) -> None:  # type: ignore[no-untyped-def]
    case_id = new_case(client)
    code = new_code(client, case_id)
    for attempt in range(1, 5):
        assert_problem(redeem(client, wrong(code)), 400, ["code"])
        assert db_val(client, "SELECT failed_attempts FROM enrollments WHERE lookup = $1", code[:8]) == attempt
    assert "locked" in assert_problem(redeem(client, wrong(code)), 423)["detail"]
    # Now even the right code fails.
    assert "locked" in assert_problem(redeem(client, code), 423)["detail"]
    assert db_val(client, "SELECT count(*) FROM devices WHERE role = 'victim_app'") == 0
    assert db_val(client, "SELECT used_at FROM enrollments WHERE lookup = $1", code[:8]) is None
    assert db_val(client, "SELECT count(*) FROM audit_log WHERE action = 'enrollment.locked'") == 1


def test_enrollment_rejects_unknown_codes_and_bad_bodies(client) -> None:  # type: ignore[no-untyped-def]
    assert_problem(redeem(client, "ZZZZZZZZ" + "2" * 16), 400, ["code"])
    assert_problem(redeem(client, ""), 422, ["code"])
    case_id = new_case(client)
    code = new_code(client, case_id)
    assert_problem(client.post("/v1/me/enroll", json={"code": code, "installation_id": "i", "platform": "windows"}),
                   422, ["platform"])
    assert_problem(client.post("/v1/me/enroll", json={"code": code, "installation_id": "i", "platform": "ios",
                                                      "case_id": case_id}), 422, ["case_id"])
    # None of these spent the code.
    assert redeem(client, code).status_code == 201


def test_refresh_token_rotates(client) -> None:  # type: ignore[no-untyped-def]
    first = enroll(client, new_case(client))
    r = client.post("/v1/me/token", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["device_id"] == first["device_id"] and second["refresh_token"] != first["refresh_token"]
    assert client.get("/v1/me/alerts", headers=bearer(second)).status_code == 200
    third = client.post("/v1/me/token", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200
    assert client.get("/v1/me/alerts", headers=bearer(third.json())).status_code == 200
    assert_problem(client.post("/v1/me/token", json={"refresh_token": "made-up"}), 401)
    assert_problem(client.post("/v1/me/token", json={}), 422, ["refresh_token"])
    # An unknown token revokes nothing: the family still works.
    assert client.post("/v1/me/token", json={"refresh_token": third.json()["refresh_token"]}).status_code == 200


def test_reuse_of_a_rotated_refresh_token_revokes_the_whole_family(client) -> None:  # type: ignore[no-untyped-def]
    """A spent refresh token coming back means two parties hold the family (one of them a thief): the current
    refresh token and every access token issued so far stop working, and the reuse is audited."""
    case_id = new_case(client)
    first = enroll(client, case_id)
    second = client.post("/v1/me/token", json={"refresh_token": first["refresh_token"]}).json()
    third = client.post("/v1/me/token", json={"refresh_token": second["refresh_token"]}).json()
    assert client.get("/v1/me/alerts", headers=bearer(third)).status_code == 200
    # The thief replays the first, long spent, refresh token.
    assert_problem(client.post("/v1/me/token", json={"refresh_token": first["refresh_token"]}), 401)
    # Every member of the family is dead: the current refresh token and the access tokens of all generations.
    assert_problem(client.post("/v1/me/token", json={"refresh_token": third["refresh_token"]}), 401)
    for pair in (first, second, third):
        assert_problem(client.get("/v1/me/alerts", headers=bearer(pair)), 401)
    reuse = db(client, "SELECT actor, role, case_id::text AS case_id, detail FROM audit_log"
                       " WHERE action = 'device.token_reuse'")
    assert [(r["actor"], r["role"], r["case_id"]) for r in reuse] == [
        (f"victim_app:{first['device_id']}", "victim_app", case_id)]
    # The device stays registered (the engine keeps expecting the victim's positions); a new code enrolls anew.
    assert db_val(client, "SELECT revoked_at FROM devices WHERE id = $1::uuid", first["device_id"]) is None
    fresh = enroll(client, case_id)
    assert client.get("/v1/me/alerts", headers=bearer(fresh)).status_code == 200


def test_expired_refresh_token_and_revoked_device_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    case_id = new_case(client)
    pair = enroll(client, case_id)
    client.portal.call(client.app.state.ctx.pool.execute,
                       "UPDATE devices SET refresh_expires_at = now() - interval '1 second' WHERE id = $1::uuid",
                       pair["device_id"])
    assert_problem(client.post("/v1/me/token", json={"refresh_token": pair["refresh_token"]}), 401)

    other = enroll(client, case_id, "phone-2")
    director = staff_headers(client, "case_director")
    assert client.post(f"/v1/cases/{case_id}/devices/{other['device_id']}/revoke", headers=director).status_code == 200
    assert_problem(client.get("/v1/me/alerts", headers=bearer(other)), 401)
    assert_problem(client.post("/v1/me/token", json={"refresh_token": other["refresh_token"]}), 401)
    assert_problem(client.post("/v1/me/panic", headers=bearer(other), json={"recorded_at": now().isoformat()}), 401)


# ---------------------------------------------------------------- positions, panic, push token

def test_victim_positions_go_through_the_shared_intake(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    first = fix(None, 30)
    items = [first, fix(None, 20, lat=-95.0), {**fix(None, 10), "serial": "TAG"}, dict(first)]
    r = client.post("/v1/me/positions", headers=w.victim, json={"positions": items})
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "rejected", "rejected", "duplicate"]
    assert r.json()["results"][1]["error"].startswith("lat:") and r.json()["results"][2]["error"].startswith("serial:")
    row = db(client, "SELECT device_id, case_id, party FROM positions")[0]
    assert (str(row["device_id"]), str(row["case_id"]), row["party"]) == (w.app["device_id"], w.case_id, "victim")
    kept = db(client, "SELECT channel, sender, item_index FROM ingest_rejections ORDER BY item_index")
    assert [(k["channel"], k["sender"], k["item_index"]) for k in kept] == [
        ("app:positions", f"victim_app:{w.app['device_id']}", 1), ("app:positions", f"victim_app:{w.app['device_id']}", 2)]
    assert_problem(client.post("/v1/me/positions", headers=w.victim, json={"positions": [fix()] * 1001}), 413)
    assert_problem(client.post("/v1/me/positions", headers=w.victim, json={"positions": [], "x": 1}), 422, ["x"])
    assert_problem(client.post("/v1/me/positions", json={"positions": [fix()]}), 401)


def test_panic_raises_a_confirmed_violation_at_once(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    pressed = now() - timedelta(seconds=2)
    r = client.post("/v1/me/panic", headers=w.victim, json={"recorded_at": pressed.isoformat()})
    assert r.status_code == 201, r.text
    alert_id = r.json()["alert_id"]
    assert r.json()["position"] is None
    got = client.get(f"/v1/alerts/{alert_id}", headers=staff_headers(client, "operator")).json()
    assert (got["kind"], got["level"], got["confidence"], got["status"]) == ("panic", "violation", "confirmed", "open")
    assert got["case_id"] == w.case_id and got["cleared_at"] is None
    assert got["changes"][0]["change"] == "opened" and got["changes"][0]["actor"] == f"victim_app:{w.app['device_id']}"
    # A retried request (same press) is the same alert, not a second one.
    again = client.post("/v1/me/panic", headers=w.victim, json={"recorded_at": pressed.isoformat()})
    assert again.status_code == 201 and again.json()["alert_id"] == alert_id
    assert db_val(client, "SELECT count(*) FROM alerts WHERE kind = 'panic'") == 1
    assert db_val(client, "SELECT count(*) FROM positions") == 0


def test_panic_with_a_position_stores_it_as_a_victim_fix(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    pressed = now() - timedelta(seconds=1)
    r = client.post("/v1/me/panic", headers=w.victim, json={
        "recorded_at": pressed.isoformat(), "lat": 52.09, "lon": 5.12, "accuracy_m": 15})
    assert r.status_code == 201 and r.json()["position"]["status"] == "accepted", r.text
    fix_row = db(client, "SELECT seq, party, device_id FROM positions")[0]
    assert fix_row["party"] == "victim" and str(fix_row["device_id"]) == w.app["device_id"]
    got = client.get(f"/v1/alerts/{r.json()['alert_id']}", headers=staff_headers(client, "operator")).json()
    assert got["detail"]["fix_seq"] == fix_row["seq"]


def test_a_bad_or_partial_position_never_stops_the_panic(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    r = client.post("/v1/me/panic", headers=w.victim, json={"recorded_at": now().isoformat(), "lat": 52.09})
    assert r.status_code == 201, r.text
    assert r.json()["position"]["status"] == "rejected" and "lon" in r.json()["position"]["error"]
    r2 = client.post("/v1/me/panic", headers=w.victim, json={
        "recorded_at": (now() - timedelta(seconds=3)).isoformat(), "lat": 95, "lon": 5.1, "accuracy_m": 5})
    assert r2.status_code == 201 and r2.json()["position"]["error"].startswith("lat:")
    assert db_val(client, "SELECT count(*) FROM alerts WHERE kind = 'panic'") == 2
    assert db_val(client, "SELECT count(*) FROM ingest_rejections WHERE channel = 'app:panic'") == 2
    assert db_val(client, "SELECT count(*) FROM positions") == 0
    # A clock far ahead does not put the alert in the future.
    ahead = client.post("/v1/me/panic", headers=w.victim, json={"recorded_at": (now() + timedelta(hours=2)).isoformat()})
    assert ahead.status_code == 201
    opened_at = db_val(client, "SELECT opened_at FROM alerts WHERE id = $1::uuid", ahead.json()["alert_id"])
    assert opened_at <= now()
    assert ahead.json()["clock_suspect"] is True
    assert_problem(client.post("/v1/me/panic", headers=w.victim, json={}), 422, ["recorded_at"])


@pytest.mark.parametrize("recorded_at", [
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: not even a Python datetime
    "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
    "2019-04-07T00:00:00Z",  # a GPS week-rollover fault: before AFSTAND_PLAUSIBLE_SINCE
    "2026-01-01T10:00:00",  # no offset: not RFC 3339
    "yesterday", 1767225600, None,  # not a time at all
])
def test_a_panic_is_never_refused_for_its_time(client, recorded_at) -> None:  # type: ignore[no-untyped-def]
    """An implausible recorded_at raises the panic all the same, at server time, marked clock_suspect; a position
    sent along is rejected (a fix needs a real time) and kept with the reason."""
    w = world(client)
    before = now()
    r = client.post("/v1/me/panic", headers=w.victim,
                    json={"recorded_at": recorded_at, "lat": 52.09, "lon": 5.12, "accuracy_m": 9})
    assert r.status_code == 201, r.text
    assert r.json()["clock_suspect"] is True and r.json()["position"]["status"] == "rejected"
    assert r.json()["position"]["error"].startswith("recorded_at:")
    got = client.get(f"/v1/alerts/{r.json()['alert_id']}", headers=staff_headers(client, "operator")).json()
    assert got["kind"] == "panic" and got["clock_suspect"] is True and got["detail"]["clock_suspect"] is True
    assert before <= datetime.fromisoformat(got["opened_at"]) <= now()
    # The same press retried is the same alert; the stored positions are untouched.
    again = client.post("/v1/me/panic", headers=w.victim, json={"recorded_at": recorded_at})
    assert again.json()["alert_id"] == r.json()["alert_id"]
    assert db_val(client, "SELECT count(*) FROM alerts WHERE kind = 'panic'") == 1
    assert db_val(client, "SELECT count(*) FROM positions") == 0


def test_a_plausible_panic_is_not_clock_suspect(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    r = client.post("/v1/me/panic", headers=w.victim, json={"recorded_at": ago(30)})
    assert r.status_code == 201 and r.json()["clock_suspect"] is False
    got = client.get(f"/v1/alerts/{r.json()['alert_id']}", headers=staff_headers(client, "operator")).json()
    assert got["clock_suspect"] is False and "clock_suspect" not in got["detail"]


def test_push_token_is_registered(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    r = client.put("/v1/me/push-token", headers=w.victim, json={"push_token": "apns-new"})
    assert r.status_code == 204 and r.content == b""
    assert db_val(client, "SELECT push_token FROM devices WHERE id = $1::uuid", w.app["device_id"]) == "apns-new"
    assert_problem(client.put("/v1/me/push-token", headers=w.victim, json={"push_token": ""}), 422, ["push_token"])
    assert_problem(client.put("/v1/me/push-token", json={"push_token": "x"}), 401)


# ---------------------------------------------------------------- the victim's alerts: privacy and scope

def _offender_alert(client, case_id: str, tag_id: str, kind: str = "proximity") -> str:  # type: ignore[no-untyped-def]
    """An engine-style alert carrying the offender's evidence, distance and position in its detail."""
    alert_id = uuid.uuid4()

    async def write() -> None:
        async with client.app.state.ctx.pool.acquire() as conn, conn.transaction():
            await alert_store.open_alert(
                conn, outbox=client.app.state.ctx.outbox, alert_id=alert_id, case_id=uuid.UUID(case_id), kind=kind,
                level="violation",
                confidence="probable", opened_at=now() - timedelta(minutes=1), subject_id=tag_id,
                device_id=uuid.UUID(tag_id), detail={"offender_lat": 52.1234, "offender_lon": 5.4321},
            )
            await conn.execute("UPDATE alerts SET evidence = $2, min_distance_m = 123.4 WHERE id = $1",
                               alert_id, ["9001", "9002"])

    client.portal.call(write)
    return str(alert_id)


def test_my_alerts_never_show_the_offender_position_or_evidence(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    proximity = _offender_alert(client, w.case_id, w.tag_id)
    technical = _offender_alert(client, w.case_id, w.tag_id, kind="device_event")
    panic = client.post("/v1/me/panic", headers=w.victim, json={"recorded_at": now().isoformat()}).json()["alert_id"]
    elsewhere = world(client)
    other_case = _offender_alert(client, elsewhere.case_id, elsewhere.tag_id)

    r = client.get("/v1/me/alerts", headers=w.victim)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [a["id"] for a in items] == [panic, proximity]  # newest first; own case, safety kinds only
    assert technical not in r.text and other_case not in r.text
    for a in items:
        assert set(a) == {"id", "kind", "title", "level", "confidence", "status", "opened_at", "cleared_at", "state"}
    for leak in ('"lat"', '"lon"', '"evidence"', "9001", '"min_distance_m"', "123.4", '"device_id"', '"detail"',
                 '"zone_id"', w.tag_id, "52.1234", "5.4321", "offender"):
        assert leak not in r.text, leak

    page = client.get("/v1/me/alerts", headers=w.victim, params={"limit": 1})
    assert [a["id"] for a in page.json()["items"]] == [panic]
    rest = client.get("/v1/me/alerts", headers=w.victim, params={"limit": 1, "cursor": page.json()["next_cursor"]})
    assert [a["id"] for a in rest.json()["items"]] == [proximity] and rest.json()["next_cursor"] is None
    assert_problem(client.get("/v1/me/alerts", headers=w.victim, params={"cursor": "garbage!"}), 422)


def test_ack_is_recorded_once_and_only_for_my_own_alerts(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    proximity = _offender_alert(client, w.case_id, w.tag_id)
    first = client.post(f"/v1/me/alerts/{proximity}/ack", headers=w.victim)
    assert first.status_code == 200, first.text
    second = client.post(f"/v1/me/alerts/{proximity}/ack", headers=w.victim)
    assert second.json() == first.json()
    got = client.get(f"/v1/alerts/{proximity}", headers=staff_headers(client, "operator")).json()
    acks = [c for c in got["changes"] if c["change"] == "victim_acknowledged"]
    assert len(acks) == 1 and acks[0]["actor"] == f"victim_app:{w.app['device_id']}"
    assert got["status"] == "open"  # the operator's work is untouched

    elsewhere = world(client)
    other_case = _offender_alert(client, elsewhere.case_id, elsewhere.tag_id)
    technical = _offender_alert(client, w.case_id, w.tag_id, kind="device_event")
    for target in (other_case, technical, str(uuid.uuid4()), "not-a-uuid"):
        assert_problem(client.post(f"/v1/me/alerts/{target}/ack", headers=w.victim), 404)
    assert db_val(client, "SELECT count(*) FROM alert_changes WHERE change = 'victim_acknowledged'") == 1


def test_a_victim_token_reaches_only_me_routes(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    victim = w.victim
    for method, path in (("get", "/v1/cases"), ("get", f"/v1/cases/{w.case_id}"), ("get", "/v1/alerts"),
                         ("post", f"/v1/cases/{w.case_id}/enrollments"), ("post", "/v1/ingest/positions")):
        r = getattr(client, method)(path, headers=victim)
        assert r.status_code in (401, 403), (path, r.status_code)
        assert r.headers["content-type"].startswith("application/problem+json")
    # And a staff token is not a device token.
    assert_problem(client.get("/v1/me/alerts", headers=staff_headers(client, "admin")), 401)
    # The case id in the token is not trusted either: a victim of another case sees none of this one's alerts.
    other = enroll(client, new_case(client), "phone-x")
    client.post("/v1/me/panic", headers=victim, json={"recorded_at": now().isoformat()})
    assert client.get("/v1/me/alerts", headers=bearer(other)).json()["items"] == []
    assert json.loads(client.get("/v1/me/alerts", headers=victim).text)["items"][0]["kind"] == "panic"
