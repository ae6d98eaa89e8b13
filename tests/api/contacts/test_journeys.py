"""Victim information that always arrives, lived through the API as a victim, her contact persons and the case
staff would live it. One journey per defect found; the clock the scheduler, the engine and the notifications
read is the app's own injected clock (``ctx.clock``), moved forward instead of waited for. The edge of the
machine is faked on 127.0.0.1: FCM, the SMS gateway and the staff webhook."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from pyproj import Geod

from api import messages
from api.auth.principals import sign
from api.cli import create_supplier
from api.platform.settings import Settings
from tests.api.case_world import (
    admin, assert_problem, assign, db, db_val, director, grant, new_case, new_order, new_staff, victim_token,
)
from tests.helpers import signed, staff_headers
from tests.notifications.fakes import FakeServer
from tests.notifications.test_app import wait_for

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
def fakes():  # type: ignore[no-untyped-def]
    servers = {"fcm": FakeServer(), "sms": FakeServer(kind="http"), "staff": FakeServer(kind="http")}
    yield servers
    for f in servers.values():
        f.close()


def _edges(fakes: dict[str, FakeServer]) -> dict[str, Any]:
    return dict(fcm_project_id="afstand-test", fcm_url=fakes["fcm"].fcm_url, sms_url=fakes["sms"].base + "/sms",
                staff_webhook_url=fakes["staff"].base + "/notices", staff_webhook_key_id="afstand-staff",
                staff_webhook_secret="staff-secret", notify_poll_s=0.1)


@pytest.fixture
def live(make_client, fakes):  # type: ignore[no-untyped-def]
    """The app with its dispatcher delivering to the fakes; the scheduler is run by the test with the app's clock."""
    return make_client(run_engine=False, order_check_s=0, **_edges(fakes))


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def run_scheduler(client):  # type: ignore[no-untyped-def]
    return client.portal.call(client.app.state.ctx.order_scheduler.run_once)


def advance(client, **delta: float) -> None:  # type: ignore[no-untyped-def]
    client.app.state.ctx.clock.advance(timedelta(**delta).total_seconds())


def pushed_titles(fcm: FakeServer) -> list[str]:
    return [m["notification"]["title"] for m in fcm.messages()]


def agreement(client, cid: str, agency: str, due: datetime, every_days: int | None = 14,  # type: ignore[no-untyped-def]
              headers: dict | None = None) -> dict:
    r = client.post(f"/v1/cases/{cid}/contact-agreements", headers=headers or director(client), json={
        "agency": agency, "every_days": every_days, "channel": "phone", "first_due_at": due.isoformat()})
    assert r.status_code == 201, r.text
    return r.json()


def deactivate(client, staff_id: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post(f"/v1/staff/{staff_id}/deactivate", headers=admin(client), json={"reason": "left the service"})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- 1. need-to-know on every staff list

def test_overdue_and_orphaned_lists_show_only_cases_the_caller_reaches_page_by_page(live) -> None:  # type: ignore[no-untyped-def]
    a, b = new_case(live, "CASE-A"), new_case(live, "CASE-B")
    grant(live, a, "olga", "case_director")
    grant(live, b, "piet", "case_director")
    new_staff(live, "olga", "police", "Olga")
    new_staff(live, "piet", "police", "Piet")
    for cid in (a, b):
        for agency in ("police", "victim_support"):
            agreement(live, cid, agency, now() - timedelta(days=3))
    olga = staff_headers(live, "case_director", "olga")
    assert live.get(f"/v1/cases/{b}", headers=olga).status_code == 404

    seen, cursor = [], None
    for _ in range(3):
        page = live.get("/v1/contact/overdue", headers=olga, params={"limit": 1, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        seen += [i["case_reference"] for g in page.json()["items"] for i in g["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["CASE-A", "CASE-A"]
    everyone = live.get("/v1/contact/overdue", headers=admin(live)).json()["items"]
    assert sorted(i["case_reference"] for g in everyone for i in g["items"]) == ["CASE-A"] * 2 + ["CASE-B"] * 2

    # A contact person of the prosecutor on case B leaves: only those who reach B (or work for the prosecutor) see it.
    vera = new_staff(live, "vera", "prosecutor", "Vera")
    assign(live, b, vera["id"], "prosecutor")
    deactivate(live, vera["id"])
    assert live.get("/v1/contact/orphaned", headers=olga).json()["items"] == []
    piet = live.get("/v1/contact/orphaned", headers=staff_headers(live, "case_director", "piet")).json()
    assert [o["case_reference"] for o in piet["items"]] == ["CASE-B"] and piet["next_cursor"] is None
    assert [o["case_reference"] for o in live.get("/v1/contact/orphaned", headers=admin(live)).json()["items"]] == \
        ["CASE-B"]


# ---------------------------------------------------------------- 2. the order-ended push, by what it is

def test_order_ended_notice_is_pushed_because_it_is_a_notice(live, fakes) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(live, language="en")
    me = victim_token(live, cid)
    new_order(live, cid, "contact_ban", valid_from=(now() - timedelta(days=30)).isoformat(),
              valid_until=(now() + timedelta(days=1)).isoformat())
    advance(live, days=2)
    assert run_scheduler(live).expired == 1

    [notice] = [n for n in live.get("/v1/me/notices", headers=me).json()["items"] if n["kind"] == "order_expired"]
    assert notice["title"] == "A protection has ended"
    [row] = db(live, "SELECT purpose, safety, message_key FROM outbox WHERE recipient = 'victim'"
                     " AND purpose = 'notice.order_expired'")
    assert not row["safety"] and str(row["message_key"]) == notice["id"]
    wait_for(lambda: "A protection has ended" in pushed_titles(fakes["fcm"]))
    msg = [m for m in fakes["fcm"].messages() if m["notification"]["title"] == "A protection has ended"][0]
    assert msg["data"]["notice_id"] == notice["id"]
    # Staff see that it was delivered.
    staff_view = wait_for(lambda: (n := live.get(f"/v1/cases/{cid}/victim-notices", headers=director(live)).json())
                          and n["items"][0]["deliveries"] and n["items"][0]["deliveries"][0]["status"] == "sent" and n)
    assert staff_view["items"][0]["push_status"] == "enqueued"
    assert staff_view["items"][0]["deliveries"][0]["channel"] == "push"


# ---------------------------------------------------------------- 3. every message delivered, or at least visible

def test_every_message_is_in_her_thread_and_pushed_with_sms_for_safety(live, fakes) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(live, language="en")
    me = victim_token(live, cid)
    jan = new_staff(live, "jan", "police", "Jan")
    assign(live, cid, jan["id"])
    r = live.post(f"/v1/cases/{cid}/messages", headers=staff_headers(live, "contact_person", "jan"),
                  json={"body": "The hearing is on 3 March."})
    assert r.status_code == 201 and r.json()["push_status"] == "enqueued"
    wait_for(lambda: "New message" in pushed_titles(fakes["fcm"]))
    msg = fakes["fcm"].messages()[0]
    assert msg["notification"]["body"] == "You have a new message from the police."
    assert "3 March" not in str(msg)  # the lock screen says who wrote, never what
    thread = wait_for(lambda: (t := live.get(f"/v1/cases/{cid}/messages", headers=director(live)).json()["items"])
                      and t[0]["deliveries"] and t[0]["deliveries"][0]["status"] == "sent" and t)
    assert thread[0]["deliveries"][0]["channel"] == "push"

    # A second victim whose app has no push token, with an SMS number: the operator's urgent message is in her
    # thread and reaches her by SMS.
    other = new_case(live, language="en")
    code = live.post(f"/v1/cases/{other}/enrollments", headers=director(live)).json()["code"]
    pair = live.post("/v1/me/enroll", json={"code": code, "installation_id": "no-push", "platform": "ios"}).json()
    her = {"Authorization": f"Bearer {pair['access_token']}"}
    assert live.put(f"/v1/cases/{other}/notification-policy", headers=director(live),
                    json={"victim_phone": "+31612345678", "policy": {}}).status_code == 200
    alert_id = live.post("/v1/me/panic", headers=her, json={"recorded_at": now().isoformat()}).json()["alert_id"]
    operator = staff_headers(live, "operator")
    r = live.post(f"/v1/alerts/{alert_id}/message-victim", headers=operator,
                  json={"text": "Stay inside, police are coming.", "urgent": True})
    assert r.status_code == 200, r.text
    [mine] = live.get("/v1/me/messages", headers=her).json()["items"]
    assert mine["body"] == "Stay inside, police are coming." and mine["author"] == "The monitoring room"
    [sms] = wait_for(lambda: fakes["sms"].received)
    assert "Stay inside, police are coming." in sms.body.decode()
    states = wait_for(lambda: (t := live.get(f"/v1/cases/{other}/messages", headers=director(live)).json()["items"])
                      and {(d["channel"], d["status"]) for d in t[0]["deliveries"]} == {("push", "failed"),
                                                                                          ("sms", "sent")} and t)
    assert [d["reason"] for d in states[0]["deliveries"] if d["channel"] == "push"] == ["no_push_token"]
    # A template message lands in the thread in her language.
    r = live.post(f"/v1/alerts/{alert_id}/message-victim", headers=operator, json={"template": "all_clear"})
    assert r.status_code == 200
    assert live.get("/v1/me/messages", headers=her).json()["items"][-1]["body"] == \
        "The situation is under control. Thank you for your patience."


# ---------------------------------------------------------------- 4. quiet hours, channels, frequency applied

def _quiet_around_now() -> dict[str, str]:
    local = datetime.now(AMSTERDAM)
    return {"start": (local - timedelta(hours=1)).strftime("%H:%M"), "end": (local + timedelta(hours=1)).strftime("%H:%M")}


def test_quiet_hours_channel_and_frequency_are_applied(live, fakes) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(live, language="en")
    me = victim_token(live, cid)
    jan = new_staff(live, "jan", "police", "Jan")
    assign(live, cid, jan["id"])
    quiet = _quiet_around_now()
    prefs = {"language": "en", "channel": "app", "quiet_hours": quiet, "update_frequency": "weekly"}
    assert live.put("/v1/me/preferences", headers=me, json=prefs).status_code == 200
    effective = live.get(f"/v1/cases/{cid}/notification-policy", headers=director(live)).json()["effective"]
    assert effective["quiet_hours"] == {**quiet, "timezone": "Europe/Amsterdam"}
    assert effective["quiet_hours_source"] == "victim" and effective["safety_ignores_quiet_hours"] is True
    assert effective["update_frequency"] == "weekly" and effective["update_min_interval_days"] == 7

    jan_h = staff_headers(live, "contact_person", "jan")
    r = live.post(f"/v1/cases/{cid}/messages", headers=jan_h, json={"body": "Call me tomorrow."})
    assert r.json()["push_status"] == "enqueued" and r.json()["push_detail"] == "waiting_for_quiet_hours_or_frequency"
    waiting = db_val(live, "SELECT next_attempt_at FROM outbox WHERE message_key = $1", uuid.UUID(r.json()["id"]))
    assert waiting.astimezone(AMSTERDAM).strftime("%H:%M") == quiet["end"]
    # A safety message goes through the quiet hours at once.
    alert_id = live.post("/v1/me/panic", headers=me, json={"recorded_at": now().isoformat()}).json()["alert_id"]
    live.post(f"/v1/alerts/{alert_id}/message-victim", headers=staff_headers(live, "operator"),
              json={"template": "stay_inside", "urgent": True}).raise_for_status()
    wait_for(lambda: "Stay inside" in pushed_titles(fakes["fcm"]))
    assert "New message" not in pushed_titles(fakes["fcm"])
    advance(live, hours=1, minutes=5)  # the quiet hours end
    wait_for(lambda: "New message" in pushed_titles(fakes["fcm"]))

    # Update notices are pushed at most weekly; she reads each at once.
    end = now() + timedelta(days=30)
    oid = new_order(live, cid, "protection_order", valid_from=(now() - timedelta(days=1)).isoformat(),
                    valid_until=end.isoformat())["id"]
    for days in (40, 50):
        live.post(f"/v1/cases/{cid}/orders/{oid}/extensions", headers=director(live), json={
            "valid_until": (now() + timedelta(days=days)).isoformat(), "reference": "EXT"}).raise_for_status()
    kinds = [n["kind"] for n in live.get("/v1/me/notices", headers=me).json()["items"]]
    assert kinds.count("order_extended") == 2
    times = [r["next_attempt_at"] for r in db(live, "SELECT o.next_attempt_at FROM outbox o JOIN victim_notices n"
                                                    " ON n.id = o.message_key WHERE n.kind = 'order_extended'"
                                                    " ORDER BY o.id")]
    assert times[1] - times[0] >= timedelta(days=7)

    # Another channel than the app: stored and readable, not pushed, and staff see why.
    prefs = {**prefs, "channel": "email", "quiet_hours": None}
    assert live.put("/v1/me/preferences", headers=me, json=prefs).status_code == 200
    r = live.post(f"/v1/cases/{cid}/messages", headers=jan_h, json={"body": "I sent you a letter."})
    assert (r.json()["push_status"], r.json()["push_detail"]) == ("not_pushed", "victim_prefers_email")
    assert live.get("/v1/me/messages", headers=me).json()["items"][-1]["body"] == "I sent you a letter."
    effective = live.get(f"/v1/cases/{cid}/notification-policy", headers=director(live)).json()["effective"]
    assert effective["push_non_safety"] is False and effective["quiet_hours"] is None


# ---------------------------------------------------------------- 5. told before protection ends, and of decisions

def test_victim_is_told_before_an_order_ends_and_of_each_decision(live, fakes) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(live, language="nl")
    me = victim_token(live, cid)
    jan = new_staff(live, "jan", "prosecutor", "Jan de Vries")
    assign(live, cid, jan["id"], "prosecutor", how_to_reach="Call 0800-1234",
           how_to_reach_by_language={"nl": "Bel 0800-1234 en vraag naar Jan"})
    end = now() + timedelta(days=10)
    ba = new_order(live, cid, "behavioural_order", valid_from=(now() - timedelta(days=80)).isoformat(),
                   valid_until=end.isoformat())["id"]
    assert run_scheduler(live).victim_warnings == 0
    advance(live, days=4)  # six days left: within the seven days of AFSTAND_VICTIM_ORDER_NOTICE_DAYS
    assert run_scheduler(live).victim_warnings == 1
    assert run_scheduler(live).victim_warnings == 0  # once per end date
    [ending] = live.get("/v1/me/notices", headers=me).json()["items"]
    assert ending["kind"] == "order_ending" and ending["title"] == "Een bescherming eindigt binnenkort"
    assert messages.date("nl", end) in ending["body"] and "Gedragsaanwijzing" in ending["body"]
    assert "Jan de Vries" in ending["body"] and "Bel 0800-1234 en vraag naar Jan" in ending["body"]
    wait_for(lambda: "Een bescherming eindigt binnenkort" in pushed_titles(fakes["fcm"]))

    new_end = end + timedelta(days=30)
    live.post(f"/v1/cases/{cid}/orders/{ba}/extensions", headers=director(live), json={
        "valid_until": new_end.isoformat(), "reference": "OM-BESLUIT-77"}).raise_for_status()
    extended = live.get("/v1/me/notices", headers=me).json()["items"][0]
    assert extended["kind"] == "order_extended" and messages.date("nl", new_end) in extended["body"]

    ban = new_order(live, cid, "contact_ban", valid_from=(now() - timedelta(days=1)).isoformat(),
                    valid_until=(now() + timedelta(days=20)).isoformat())["id"]
    reason = "verdachte is naar Spanje verhuisd"
    live.post(f"/v1/cases/{cid}/orders/{ban}/let-go", headers=director(live), json={"reason": reason}).raise_for_status()
    lapse = live.get("/v1/me/notices", headers=me).json()["items"][0]
    assert lapse["kind"] == "order_will_lapse" and lapse["title"] == "Een bescherming wordt niet verlengd"
    assert "Contactverbod" in lapse["body"]
    for view in ("/v1/me/notices", "/v1/me/timeline", "/v1/me/orders", "/v1/me/case"):
        text = live.get(view, headers=me).text
        assert reason not in text and "OM-BESLUIT-77" not in text, view
    # A decided order is not announced as "no decision yet" when its last week comes.
    advance(live, days=14)
    run_scheduler(live)
    assert [n["kind"] for n in live.get("/v1/me/notices", headers=me).json()["items"]].count("order_ending") == 1


# ---------------------------------------------------------------- 6. no case director: the agency's queue

def test_notices_of_a_case_without_director_reach_the_agency_queue_and_the_webhook(live, fakes) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(live, "ORPHAN-1")
    olga = new_staff(live, "olga", "probation", "Olga")
    new_staff(live, "piet", "probation", "Piet")
    new_staff(live, "kees", "police", "Kees")
    assign(live, cid, olga["id"], "probation", function="case_director")
    deactivate(live, olga["id"])
    new_order(live, cid, "contact_ban", valid_from=(now() - timedelta(days=1)).isoformat(),
              valid_until=(now() + timedelta(days=10)).isoformat())
    assert run_scheduler(live).reminders == 1

    piet = staff_headers(live, "case_director", "piet")  # same agency, not otherwise on the case
    [orphan] = live.get("/v1/contact/orphaned", headers=piet).json()["items"]
    assert orphan["case_reference"] == "ORPHAN-1" and orphan["missing_owner"]
    assert [(n["kind"], n["agency"]) for n in orphan["notices"]] == [("order_reminder", "probation")]
    queue = live.get("/v1/contact/notices", headers=piet).json()["items"]
    assert [(n["kind"], n["agency"]) for n in queue] == [("order_reminder", "probation")]
    kees = staff_headers(live, "case_director", "kees")  # another agency, not on the case
    assert live.get("/v1/contact/orphaned", headers=kees).json()["items"] == []
    assert live.get("/v1/contact/notices", headers=kees).json()["items"] == []

    [post] = wait_for(lambda: fakes["staff"].received)
    assert post.headers["x-afstand-key"] == "afstand-staff"
    assert post.headers["x-afstand-signature"] == sign("staff-secret", post.headers["x-afstand-timestamp"], post.body)
    assert post.json["kind"] == "order_reminder" and post.json["agency"] == "probation"
    assert post.json["case_reference"] == "ORPHAN-1" and post.json["staff_sub"] is None
    wait_for(lambda: live.get("/v1/contact/notices", headers=piet).json()["items"][0]["delivery"] == "enqueued")


# ---------------------------------------------------------------- 7. the smaller gaps

def test_promises_overdue_follow_ups_timeline_and_texts_per_language(live) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(live, language="en")
    me = victim_token(live, cid)
    jan = new_staff(live, "jan", "police", "Jan", phone="0900-8844")
    assign(live, cid, jan["id"], how_to_reach="Call 0900-8844, ask for Jan",
           how_to_reach_by_language={"nl": "Bel 0900-8844, vraag naar Jan"})
    # Imposing an order is on her timeline.
    new_order(live, cid, "contact_ban", valid_from=(now() - timedelta(hours=1)).isoformat())
    timeline = live.get("/v1/me/timeline", headers=me).json()["items"]
    assert ("order_imposed", "A new order protects you") in [(e["kind"], e["title"]) for e in timeline]

    # A one-off promise: "we'll call you back by Friday".
    assert_problem(live.post(f"/v1/cases/{cid}/contact-agreements", headers=director(live), json={
        "agency": "police", "channel": "phone"}), 422)
    promise = agreement(live, cid, "police", now() + timedelta(days=1), every_days=None)
    assert promise["every_days"] is None
    case = live.get("/v1/me/case", headers=me).json()
    assert case["next_contact"]["overdue"] is False and case["next_contact"]["text"].startswith("Next agreed contact")
    advance(live, days=2)  # the promise is broken
    case = live.get("/v1/me/case", headers=me).json()
    assert case["next_contact"]["overdue"] is True
    assert case["next_contact"]["text"].startswith("The police agreed to contact you by ")
    assert "has not done so yet" in case["next_contact"]["text"] and "Call 0900-8844, ask for Jan" in \
        case["next_contact"]["text"]
    overdue = live.get("/v1/contact/overdue", headers=director(live)).json()["items"]
    assert [i["every_days"] for g in overdue for i in g["items"]] == [None]
    r = live.post(f"/v1/cases/{cid}/contact-agreements/{promise['id']}/contacts", headers=director(live),
                  json={"contacted_at": now().isoformat()})
    assert r.status_code == 200 and r.json()["active"] is False  # kept: the promise ends
    assert live.get("/v1/me/case", headers=me).json()["next_contact"] is None

    # "How to reach" in her language.
    prefs = live.get("/v1/me/preferences", headers=me).json()
    live.put("/v1/me/preferences", headers=me, json={**prefs, "language": "nl"}).raise_for_status()
    assert live.get("/v1/me/case", headers=me).json()["contact_persons"][0]["how_to_reach"] == \
        "Bel 0900-8844, vraag naar Jan"

    # The end-of-order text promises no contact person where she has none.
    lonely = new_case(live, language="en")
    her = victim_token(live, lonely)
    new_order(live, lonely, "contact_ban", valid_from=(now() - timedelta(days=5)).isoformat(),
              valid_until=(now() + timedelta(days=3)).isoformat())
    advance(live, days=5)
    run_scheduler(live)
    [ended] = [n for n in live.get("/v1/me/notices", headers=her).json()["items"] if n["kind"] == "order_expired"]
    assert "No contact person has been assigned to you yet" in ended["body"]
    assert "contact person will" not in ended["body"].lower()
    assert "0900-0101" in ended["body"]


HOME = (5.1214, 52.0907)
GEOD = Geod(ellps="WGS84")


def test_after_a_lapse_her_alert_shows_as_closed(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(order_check_s=0)  # engine running, on the app's clock
    supplier = asyncio.run(create_supplier(client.app.state.ctx.settings, "lapse-supplier"))
    cid = new_case(client, proximity={"warn_m": 1000, "alert_m": 500})
    new_order(client, cid, "contact_ban", valid_from=(now() - timedelta(days=10)).isoformat(),
              valid_until=(now() + timedelta(hours=1)).isoformat())
    client.post(f"/v1/cases/{cid}/devices", headers=director(client), json={
        "role": "offender_tag", "supplier_key_id": supplier["key_id"], "serial": "LAPSE-TAG"}).raise_for_status()
    me = victim_token(client, cid)
    start = datetime.now(timezone.utc) - timedelta(seconds=70)
    for i, dist in enumerate([1300, 900, 600, 400, 300]):
        t = start + timedelta(seconds=15 * i)
        lon, lat, _ = GEOD.fwd(HOME[0], HOME[1], 90, dist)
        raw, headers = signed(supplier["key_id"], supplier["secret"], {"positions": [
            {"serial": "LAPSE-TAG", "recorded_at": t.isoformat(), "lat": lat, "lon": lon, "accuracy_m": 5}]})
        client.post("/v1/ingest/positions", content=raw, headers=headers).raise_for_status()
        client.post("/v1/me/positions", headers=me, json={"positions": [{
            "recorded_at": (t - timedelta(seconds=2)).isoformat(), "lat": HOME[1], "lon": HOME[0],
            "accuracy_m": 5}]}).raise_for_status()
    [alert] = wait_for(lambda: [a for a in client.get("/v1/me/alerts", headers=me).json()["items"]
                                if a["level"] == "violation"], 20)
    assert alert["state"] == "active"
    advance(client, hours=2)  # the contact ban has ended; the engine's tick sees it on the app's clock
    closed = wait_for(lambda: [a for a in client.get("/v1/me/alerts", headers=me).json()["items"]
                               if a["id"] == alert["id"] and a["state"] == "closed"], 20)
    assert closed[0]["cleared_at"] is not None and closed[0]["status"] == "open"  # the operator still resolves it


# ---------------------------------------------------------------- 8. the clock moved from outside, in development only

def test_clock_offset_is_refused_with_an_oidc_issuer() -> None:
    with pytest.raises(ValidationError, match="development only"):
        Settings(dev_clock_offset_s=86400, oidc_issuer="https://issuer.example")
    assert Settings(dev_clock_offset_s=86400).dev_clock_offset_s == 86400


def test_clock_offset_ends_an_order_in_seconds_but_never_moves_credentials(make_client, fakes) -> None:  # type: ignore[no-untyped-def]
    # The whole server runs 20 days ahead: its own scheduler ends a 10-day order within a round.
    client = make_client(run_engine=False, order_check_s=0.2, dev_clock_offset_s=20 * 86400, **_edges(fakes))
    cid = new_case(client, language="en")
    code = client.post(f"/v1/cases/{cid}/enrollments", headers=director(client)).json()
    # Enrollment codes, device tokens and supplier signatures keep real time: all still valid.
    assert datetime.fromisoformat(code["expires_at"]) < now() + timedelta(days=2)
    pair = client.post("/v1/me/enroll", json={"code": code["code"], "installation_id": "x", "platform": "android",
                                              "push_token": "tok"})
    assert pair.status_code == 201, pair.text
    me = {"Authorization": f"Bearer {pair.json()['access_token']}"}
    supplier = asyncio.run(create_supplier(client.app.state.ctx.settings, "offset-supplier"))
    raw, headers = signed(supplier["key_id"], supplier["secret"], {"positions": []})
    assert client.post("/v1/ingest/positions", content=raw, headers=headers).status_code == 200
    oid = new_order(client, cid, "contact_ban", valid_from=(now() - timedelta(days=1)).isoformat(),
                    valid_until=(now() + timedelta(days=10)).isoformat())["id"]
    [order] = wait_for(lambda: [o for o in client.get("/v1/me/orders", headers=me).json()["items"]
                                if o["id"] == oid and o["status"] == "expired"])
    assert order["status_text"] == "Ended"
    wait_for(lambda: "A protection has ended" in pushed_titles(fakes["fcm"]))
