"""Fixed contact persons and ownership, end to end: staff members, assignments, reassignment on the timeline,
orphaned cases after a deactivation, contact agreements, the overdue list and the daily digest (injected clock)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from api.contacts.reminders import OrderScheduler
from tests.api.case_world import (
    admin, assert_problem, assign, db, director, new_case, new_staff, victim_token,
)
from tests.helpers import staff_headers


def test_staff_members_are_managed_by_admins_only(api) -> None:  # type: ignore[no-untyped-def]
    body = {"sub": "anne", "display_name": "Anne de Vries", "agency": "prosecutor", "role_title": "slachtoffercoördinator"}
    assert_problem(api.post("/v1/staff", headers=director(api), json=body), 403)
    r = api.post("/v1/staff", headers=admin(api), json=body)
    assert r.status_code == 201
    anne = r.json()
    assert anne["active"] and not anne["sash_trained"] and anne["agency"] == "prosecutor"
    assert_problem(api.post("/v1/staff", headers=admin(api), json=body), 409)
    assert_problem(api.post("/v1/staff", headers=admin(api), json={**body, "sub": "x", "agency": "mafia"}), 422, ["agency"])
    r = api.patch(f"/v1/staff/{anne['id']}", headers=admin(api), json={"sash_trained": True, "phone": "088-699"})
    assert r.status_code == 200 and r.json()["sash_trained"] and r.json()["phone"] == "088-699"
    assert_problem(api.patch(f"/v1/staff/{anne['id']}", headers=director(api), json={"sash_trained": False}), 403)
    assert_problem(api.patch(f"/v1/staff/{anne['id']}", headers=admin(api), json={}), 422)
    listed = api.get("/v1/staff", headers=staff_headers(api, "operator")).json()
    assert [s["sub"] for s in listed["items"]] == ["anne"] and listed["next_cursor"] is None
    rows = db(api, "SELECT action, detail FROM audit_log WHERE action LIKE 'staff.%' ORDER BY chain_seq")
    assert [r["action"] for r in rows] == ["staff.create", "staff.update"]
    assert rows[1]["detail"]["sash_trained"] is True


def test_assignment_and_reassignment_are_recorded_on_the_timeline(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    jan, piet = new_staff(api, "jan", "police", "Jan"), new_staff(api, "piet", "police", "Piet")
    om = new_staff(api, "om", "prosecutor", "Olga")
    first = assign(api, cid, jan["id"], how_to_reach="call", when_to_reach="weekdays")
    assert first["staff_name"] == "Jan" and first["agency"] == "police" and first["function"] == "contact_person"
    assign(api, cid, om["id"], "prosecutor", "case_director")
    # Same person again: contact details change, nobody is reassigned.
    again = assign(api, cid, jan["id"], how_to_reach="app first")
    assert again["id"] == first["id"] and again["how_to_reach"] == "app first"
    second = assign(api, cid, piet["id"], reason="Jan moved to another district")
    assert second["id"] != first["id"]

    current = api.get(f"/v1/cases/{cid}/assignments", headers=staff_headers(api, "operator")).json()["items"]
    assert {(a["agency"], a["function"], a["staff_name"]) for a in current} == \
        {("police", "contact_person", "Piet"), ("prosecutor", "case_director", "Olga")}
    events = api.get(f"/v1/cases/{cid}/timeline", headers=director(api)).json()["items"]
    assert [(e["kind"], e["visibility"], e["detail"]["staff_id"]) for e in events] == [
        ("contact_reassigned", "victim", piet["id"]), ("contact_reassigned", "internal", om["id"]),
        ("contact_reassigned", "victim", jan["id"])]
    assert events[0]["detail"]["previous_staff_id"] == jan["id"]
    me = victim_token(api, cid)
    titles = [i["title"] for i in api.get("/v1/me/timeline", headers=me).json()["items"]]
    assert titles == ["You have a new contact person at the police"] * 2
    assert api.get("/v1/me/case", headers=me).json()["contact_persons"][0]["name"] == "Piet"
    audit = db(api, "SELECT action, reason FROM audit_log WHERE action LIKE 'assignment.%' ORDER BY chain_seq")
    assert [(r["action"], r["reason"]) for r in audit] == [
        ("assignment.assign", None), ("assignment.assign", None), ("assignment.update", None),
        ("assignment.assign", "Jan moved to another district")]

    assert_problem(api.put(f"/v1/cases/{cid}/assignments", headers=director(api), json={
        "agency": "probation", "function": "contact_person", "staff_id": jan["id"]}), 422, ["agency"])
    assert_problem(api.put(f"/v1/cases/{cid}/assignments", headers=staff_headers(api, "contact_person"), json={
        "agency": "police", "function": "contact_person", "staff_id": jan["id"]}), 403)


def test_deactivation_lists_cases_as_orphaned_until_reassigned(api) -> None:  # type: ignore[no-untyped-def]
    a, b = new_case(api, "CASE-A"), new_case(api, "CASE-B")
    jan, piet = new_staff(api, "jan", "police"), new_staff(api, "piet", "police")
    assign(api, a, jan["id"], function="case_director")
    assign(api, a, jan["id"])
    assign(api, b, piet["id"], function="case_director")
    assert api.get("/v1/contact/orphaned", headers=director(api)).json()["items"] == []

    r = api.post(f"/v1/staff/{jan['id']}/deactivate", headers=admin(api), json={"reason": "left the force"})
    assert r.status_code == 200
    assert not r.json()["staff"]["active"] and r.json()["staff"]["deactivated_at"]
    assert {(o["case_id"], o["function"]) for o in r.json()["orphaned"]} == {(a, "case_director"), (a, "contact_person")}
    orphaned = api.get("/v1/contact/orphaned", headers=director(api)).json()["items"]
    assert [(o["case_reference"], o["missing_owner"], len(o["assignments"])) for o in orphaned] == [("CASE-A", True, 2)]
    # A deactivated person cannot take on cases; the victim no longer sees him as her contact.
    assert_problem(api.put(f"/v1/cases/{b}/assignments", headers=director(api), json={
        "agency": "police", "function": "contact_person", "staff_id": jan["id"]}), 422, ["staff_id"])
    assert not api.get("/v1/me/case", headers=victim_token(api, a)).json()["contact_persons"][0]["assigned"]

    assign(api, a, piet["id"], function="case_director", reason="Jan left")
    orphaned = api.get("/v1/contact/orphaned", headers=director(api)).json()["items"]
    assert [(o["case_reference"], o["missing_owner"], [x["function"] for x in o["assignments"]]) for o in orphaned] == \
        [("CASE-A", False, ["contact_person"])]
    assign(api, a, piet["id"])
    assert api.get("/v1/contact/orphaned", headers=director(api)).json()["items"] == []
    kinds = [e["kind"] for e in api.get(f"/v1/cases/{a}/timeline", headers=director(api)).json()["items"]]
    assert kinds.count("contact_reassigned") == 4
    assert db(api, "SELECT reason FROM audit_log WHERE action = 'staff.deactivate'")[0]["reason"] == "left the force"


def _agreement(api, cid: str, agency: str, due: datetime, every: int = 14) -> dict:  # type: ignore[no-untyped-def]
    r = api.post(f"/v1/cases/{cid}/contact-agreements", headers=staff_headers(api, "contact_person"), json={
        "agency": agency, "every_days": every, "channel": "phone", "first_due_at": due.isoformat()})
    assert r.status_code == 201, r.text
    return r.json()


def test_overdue_follow_ups_per_contact_person_oldest_first(api) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(timezone.utc)
    a, b, c = new_case(api, "A"), new_case(api, "B"), new_case(api, "C")
    jan, vera = new_staff(api, "jan", "police", "Jan"), new_staff(api, "vera", "victim_support", "Vera")
    assign(api, a, jan["id"])
    assign(api, b, jan["id"])
    assign(api, a, vera["id"], "victim_support")
    a_police = _agreement(api, a, "police", now - timedelta(days=2))
    b_police = _agreement(api, b, "police", now - timedelta(days=5))
    a_support = _agreement(api, a, "victim_support", now - timedelta(days=1))
    _agreement(api, b, "police", now + timedelta(days=3))          # not due yet
    c_nobody = _agreement(api, c, "probation", now - timedelta(days=9))  # nobody holds it

    r = api.get("/v1/contact/overdue", headers=director(api))
    assert r.status_code == 200
    groups = r.json()["items"]
    assert [(g["staff_name"], [i["agreement_id"] for i in g["items"]]) for g in groups] == [
        (None, [c_nobody["id"]]), ("Jan", [b_police["id"], a_police["id"]]), ("Vera", [a_support["id"]])]
    assert 4.9 < groups[1]["items"][0]["overdue_days"] < 5.1 and groups[1]["items"][0]["case_reference"] == "B"
    # A contact person sees only their own.
    mine = api.get("/v1/contact/overdue", headers=staff_headers(api, "contact_person", "jan")).json()["items"]
    assert [(g["staff_name"], len(g["items"])) for g in mine] == [("Jan", 2)]
    assert api.get("/v1/contact/overdue", headers=staff_headers(api, "contact_person", "stranger")).json()["items"] == []
    assert_problem(api.get("/v1/contact/overdue", headers=staff_headers(api, "operator")), 403)

    # Contact as agreed: the next one is due every_days after it, and it leaves the list.
    r = api.post(f"/v1/cases/{b}/contact-agreements/{b_police['id']}/contacts",
                 headers=staff_headers(api, "contact_person", "jan"),
                 json={"contacted_at": (now - timedelta(hours=1)).isoformat(), "note": "called her"})
    assert r.status_code == 200
    assert datetime.fromisoformat(r.json()["next_due_at"]) == (now - timedelta(hours=1) + timedelta(days=14))
    assert_problem(api.post(f"/v1/cases/{b}/contact-agreements/{b_police['id']}/contacts", headers=director(api),
                            json={"contacted_at": (now + timedelta(days=1)).isoformat()}), 422, ["contacted_at"])
    assert_problem(api.post(f"/v1/cases/{a}/contact-agreements/{b_police['id']}/contacts", headers=director(api),
                            json={"contacted_at": now.isoformat()}), 404)  # another case's agreement
    api.post(f"/v1/cases/{a}/contact-agreements/{a_support['id']}/end", headers=director(api)).raise_for_status()
    groups = api.get("/v1/contact/overdue", headers=director(api)).json()["items"]
    assert [(g["staff_name"], [i["agreement_id"] for i in g["items"]]) for g in groups] == [
        (None, [c_nobody["id"]]), ("Jan", [a_police["id"]])]
    listed = api.get(f"/v1/cases/{b}/contact-agreements", headers=staff_headers(api, "operator")).json()["items"]
    assert [x["last_contact_at"] is not None for x in listed] == [True, False]
    assert_problem(api.post(f"/v1/cases/{a}/contact-agreements", headers=director(api), json={
        "agency": "police", "every_days": 0, "channel": "phone"}), 422, ["every_days"])


def test_daily_digest_once_per_contact_person_per_day_by_the_injected_clock(api) -> None:  # type: ignore[no-untyped-def]
    real_now = datetime.now(timezone.utc)
    a = new_case(api)
    jan = new_staff(api, "jan", "police", "Jan")
    assign(api, a, jan["id"])
    _agreement(api, a, "police", real_now - timedelta(days=3))
    _agreement(api, new_case(api), "probation", real_now - timedelta(days=3))  # nobody's: no digest to send
    ctx = api.app.state.ctx
    clock = {"now": datetime(2030, 5, 6, 5, 0, tzinfo=timezone.utc)}  # 07:00 in Amsterdam, before the digest hour
    sched = OrderScheduler(ctx.pool, ctx.settings, ctx.outbox, clock=lambda: clock["now"])
    assert api.portal.call(sched.run_once).digests == 0
    clock["now"] = datetime(2030, 5, 6, 6, 30, tzinfo=timezone.utc)  # 08:30 local
    assert api.portal.call(sched.run_once).digests == 1
    assert api.portal.call(sched.run_once).digests == 0  # once a day
    clock["now"] += timedelta(days=1)
    assert api.portal.call(sched.run_once).digests == 1
    notices = api.get("/v1/contact/notices", headers=staff_headers(api, "contact_person", "jan")).json()["items"]
    assert [(n["kind"], n["payload"]["date"]) for n in notices] == [("contact_digest", "2030-05-07"),
                                                                     ("contact_digest", "2030-05-06")]
    assert len(notices[0]["payload"]["items"]) == 1 and notices[0]["payload"]["items"][0]["agency"] == "police"
    assert notices[0]["delivery"] == "pending"
