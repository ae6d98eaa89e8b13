"""The victim's view of her case through the app, end to end against PostgreSQL: stage, contact persons, next
contact, timeline (internal events never reach her), orders in plain words with her own zones, messages with
read receipts, preferences; and a device token never reads another victim's case."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from tests.api.case_world import (
    assert_problem, assign, db, director, event, grant, new_case, new_order, new_staff, victim_token,
)
from tests.helpers import staff_headers

SQUARE = [[5.0, 52.0], [5.01, 52.0], [5.01, 52.01], [5.0, 52.01], [5.0, 52.0]]


def test_case_status_in_the_victims_language_with_contacts_and_next_contact(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api, language="en")
    me = victim_token(api, cid)
    fresh = api.get("/v1/me/case", headers=me).json()
    assert fresh["stage"]["code"] == "registered" and fresh["stage"]["title"] == "Case registered"
    assert [c["agency"] for c in fresh["contact_persons"]] == ["police", "prosecutor", "probation", "victim_support"]
    assert all(not c["assigned"] and c["note"].startswith("No contact person") for c in fresh["contact_persons"])
    assert fresh["next_contact"] is None

    officer = new_staff(api, "jvdberg", "police", "Jan van den Berg", phone="0900-8844")
    assign(api, cid, officer["id"], how_to_reach="Call 0900-8844 and ask for Jan", when_to_reach="Weekdays 9-17")
    event(api, cid, "report_filed", "victim", "2026-01-05T10:00:00Z")
    event(api, cid, "charged", "victim", "2026-02-01T10:00:00Z")
    event(api, cid, "hearing_scheduled", "internal", "2026-02-10T10:00:00Z")  # not yet told: must not show
    due = datetime.now(timezone.utc) + timedelta(days=14)
    r = api.post(f"/v1/cases/{cid}/contact-agreements", headers=director(api), json={
        "agency": "police", "every_days": 14, "channel": "phone", "first_due_at": due.isoformat()})
    assert r.status_code == 201, r.text

    case = api.get("/v1/me/case", headers=me).json()
    assert case["language"] == "en"
    assert case["stage"] == {"code": "charged", "title": "Charges brought",
                             "description": "The public prosecutor has decided to bring the case to court.",
                             "since": "2026-02-01T10:00:00Z"}
    police = case["contact_persons"][0]
    assert police == {"agency": "police", "agency_name": "the police", "assigned": True, "name": "Jan van den Berg",
                      "role": "wijkagent", "function": "Your contact person",
                      "how_to_reach": "Call 0900-8844 and ask for Jan", "when_to_reach": "Weekdays 9-17",
                      "phone": "0900-8844", "email": None, "note": None}
    assert not case["contact_persons"][1]["assigned"]
    assert case["next_contact"]["channel"] == "phone" and case["next_contact"]["agency"] == "police"
    assert datetime.fromisoformat(case["next_contact"]["due_at"]) == due
    assert case["next_contact"]["text"].startswith("Next agreed contact on ") and "by phone" in case["next_contact"]["text"]

    # Switching her language switches every text.
    prefs = api.get("/v1/me/preferences", headers=me).json()
    assert api.put("/v1/me/preferences", headers=me, json={**prefs, "language": "nl"}).status_code == 200
    nl = api.get("/v1/me/case", headers=me).json()
    assert nl["stage"]["title"] == "Vervolging ingesteld" and nl["contact_persons"][0]["agency_name"] == "de politie"
    assert "via telefoon" in nl["next_contact"]["text"]
    assert nl["contact_persons"][1]["note"].startswith("Er is nog geen contactpersoon")


def test_internal_events_never_reach_the_victim(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    me = victim_token(api, cid)
    visible = [event(api, cid, "report_filed", "victim", "2026-01-05T10:00:00Z", note="We received your report."),
               event(api, cid, "investigation_started", "victim", "2026-01-10T10:00:00Z"),
               event(api, cid, "offender_released", "victim", "2026-03-01T10:00:00Z", note="He was released today.")]
    event(api, cid, "note", "internal", "2026-02-01T10:00:00Z", note="SECRET: informant says he bought a knife")
    event(api, cid, "offender_on_leave", "internal", "2026-03-02T10:00:00Z", note="SECRET leave address")

    r = api.get("/v1/me/timeline", headers=me)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["id"] for i in items] == [e["id"] for e in reversed(visible)]  # newest first
    assert [i["title"] for i in items] == ["The other person has been released", "Investigation started", "Report filed"]
    assert items[0]["note"] == "He was released today." and "visibility" not in items[0]
    assert "SECRET" not in r.text
    # Paging newest first never yields an internal event either.
    seen, cursor = [], None
    while True:
        page = api.get("/v1/me/timeline", headers=me, params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        seen += [i["kind"] for i in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ["offender_released", "investigation_started", "report_filed"]
    # Staff see everything, with its visibility.
    staff_view = api.get(f"/v1/cases/{cid}/timeline", headers=staff_headers(api, "operator")).json()["items"]
    assert [e["visibility"] for e in staff_view] == ["internal", "victim", "internal", "victim", "victim"]
    # The stage never comes from an internal event either.
    event(api, cid, "verdict", "internal", "2026-04-01T10:00:00Z")
    assert api.get("/v1/me/case", headers=me).json()["stage"]["code"] == "investigation_started"


def test_timeline_posting_is_validated_audited_and_role_checked(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    h = staff_headers(api, "contact_person")
    assert_problem(api.post(f"/v1/cases/{cid}/timeline", headers=h, json={
        "kind": "gossip", "visibility": "victim", "occurred_at": "2026-01-01T00:00:00Z"}), 422, ["kind"])
    assert_problem(api.post(f"/v1/cases/{cid}/timeline", headers=h, json={
        "kind": "note", "visibility": "public", "occurred_at": "2026-01-01T00:00:00Z"}), 422, ["visibility"])
    assert_problem(api.post(f"/v1/cases/{cid}/timeline", headers=h, json={
        "kind": "note", "visibility": "victim", "occurred_at": "2026-01-01T00:00:00"}), 422, ["occurred_at"])
    assert_problem(api.post(f"/v1/cases/{cid}/timeline", headers=staff_headers(api, "operator"), json={
        "kind": "note", "visibility": "victim", "occurred_at": "2026-01-01T00:00:00Z"}), 403)
    e = event(api, cid, "note", "internal", "2026-01-01T00:00:00Z", note="private detail")
    rows = db(api, "SELECT action, detail FROM audit_log WHERE action = 'timeline.add'")
    assert [r["detail"] for r in rows] == [{"event_id": e["id"], "kind": "note", "visibility": "internal"}]


def test_a_victim_token_never_reads_another_victims_case(api) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = new_case(api, "MINE"), new_case(api, "THEIRS")
    officer = new_staff(api, "officer", name="Officer Theirs")
    assign(api, theirs, officer["id"])
    event(api, theirs, "charged", "victim", "2026-02-01T10:00:00Z", note="THEIR-NOTE")
    new_order(api, theirs, "protection_order")
    h_theirs = staff_headers(api, "contact_person", "officer")
    their_msg = api.post(f"/v1/cases/{theirs}/messages", headers=h_theirs, json={"body": "THEIR-MESSAGE"}).json()
    me = victim_token(api, mine)
    victim_token(api, theirs)

    for path in ("/v1/me/case", "/v1/me/timeline", "/v1/me/orders", "/v1/me/messages", "/v1/me/preferences",
                 "/v1/me/notices"):
        r = api.get(path, headers=me)
        assert r.status_code == 200, (path, r.text)
        assert "THEIR" not in r.text and theirs not in r.text and "Officer Theirs" not in r.text, path
    assert api.get("/v1/me/case", headers=me).json()["stage"]["code"] == "registered"
    assert api.get("/v1/me/orders", headers=me).json()["items"] == []
    # Marking their message as read is refused as if it did not exist, and leaves it unread.
    assert_problem(api.post(f"/v1/me/messages/{their_msg['id']}/read", headers=me), 404)
    assert db(api, "SELECT read_by_victim_at FROM case_messages")[0]["read_by_victim_at"] is None
    # Her preferences change only her own case.
    api.put("/v1/me/preferences", headers=me, json={"language": "nl", "channel": "phone", "quiet_hours": None,
                                                     "update_frequency": "weekly"}).raise_for_status()
    langs = {r["reference"]: r["language"] for r in db(api, "SELECT c.reference, p.language FROM parties p JOIN cases c"
                                                           " ON c.id = p.case_id WHERE p.role = 'victim'")}
    assert langs == {"MINE": "nl", "THEIRS": "en"}


def test_victim_and_staff_tokens_stay_on_their_side(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    me = victim_token(api, cid)
    assert_problem(api.get(f"/v1/cases/{cid}/timeline", headers=me), 401)
    assert_problem(api.get("/v1/contact/overdue", headers=me), 401)
    assert_problem(api.get("/v1/me/case", headers=staff_headers(api, "admin")), 401)
    assert_problem(api.get("/v1/me/case"), 401)


def test_my_orders_in_plain_words_with_only_my_protective_zones(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api, language="en")
    ban = new_order(api, cid, "contact_ban", valid_from="2026-01-01T00:00:00Z", valid_until="2030-06-30T22:00:00Z")
    zone_order = new_order(api, cid, "exclusion_zone")
    curfew = new_order(api, cid, "inclusion_zone")
    h = director(api)
    home = api.post(f"/v1/cases/{cid}/zones", headers=h, json={
        "order_id": zone_order["id"], "name": "Her street", "kind": "exclusion",
        "geometry": {"type": "Polygon", "coordinates": [SQUARE]}, "buffer_m": 100, "schedule": None}).json()
    work = api.post(f"/v1/cases/{cid}/zones", headers=h, json={
        "order_id": zone_order["id"], "name": "Her work", "kind": "exclusion",
        "geometry": {"type": "Circle", "center": [5.12, 52.09], "radius_m": 300}, "buffer_m": 0, "schedule": None}).json()
    api.post(f"/v1/cases/{cid}/zones", headers=h, json={
        "order_id": curfew["id"], "name": "HIS HOME", "kind": "inclusion",
        "geometry": {"type": "Circle", "center": [4.4321, 51.9876], "radius_m": 150}, "buffer_m": 0,
        "schedule": None}).raise_for_status()
    me = victim_token(api, cid)

    r = api.get("/v1/me/orders", headers=me)
    assert r.status_code == 200
    assert "HIS HOME" not in r.text and "4.4321" not in r.text and "51.9876" not in r.text
    orders = {o["id"]: o for o in r.json()["items"]}
    b = orders[ban["id"]]
    assert b["title"] == "Contact ban" and b["forbids"].startswith("The other person may not contact you")
    assert b["status"] == "active" and b["status_text"] == "In force"
    assert b["until_text"] == "Until 01 Jul 2030"  # 22:00 UTC is midnight in Amsterdam
    assert b["zones"] == {"type": "FeatureCollection", "features": []}
    z = orders[zone_order["id"]]
    assert z["until_text"] == "Until further notice" and z["title"] == "Area ban"
    features = z["zones"]["features"]
    assert [f["id"] for f in features] == [home["id"], work["id"]]
    assert features[0]["geometry"] == {"type": "Polygon", "coordinates": [SQUARE]}
    assert features[0]["properties"]["description"] == "The other person may not enter this area."
    ring = features[1]["geometry"]["coordinates"][0]
    assert features[1]["geometry"]["type"] == "Polygon" and len(ring) == 65 and ring[0] == ring[-1]
    # The circle becomes a polygon whose vertices lie 300 m from the centre.
    from pyproj import Geod
    dists = [Geod(ellps="WGS84").inv(5.12, 52.09, lon, lat)[2] for lon, lat in ring]
    assert all(abs(d - 300) < 0.5 for d in dists)
    assert orders[curfew["id"]]["zones"]["features"] == []
    assert "offender" not in json.dumps(r.json()).lower()


def test_message_thread_with_read_receipts_both_ways(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    me = victim_token(api, cid)
    grant(api, cid, "nobody")  # reaches the case, but is not a registered staff member
    unregistered = staff_headers(api, "contact_person", "nobody")
    assert_problem(api.post(f"/v1/cases/{cid}/messages", headers=unregistered, json={"body": "hi"}), 403)
    officer = new_staff(api, "jan", "police", "Jan")
    assign(api, cid, officer["id"])
    h = staff_headers(api, "contact_person", "jan")

    r = api.post(f"/v1/cases/{cid}/messages", headers=h, json={"body": "The hearing is on 3 March."})
    assert r.status_code == 201, r.text
    staff_msg = r.json()
    assert staff_msg["sender"] == "staff" and staff_msg["author"] == "Jan" and staff_msg["agency"] == "police"
    assert staff_msg["push_status"] == "enqueued" and staff_msg["read_by_victim_at"] is None

    thread = api.get("/v1/me/messages", headers=me).json()
    assert [m["body"] for m in thread["items"]] == ["The hearing is on 3 March."]
    read = api.post(f"/v1/me/messages/{staff_msg['id']}/read", headers=me)
    assert read.status_code == 200 and read.json()["items"][0]["read_by_victim_at"] is not None
    # Staff see that she read it.
    assert api.get(f"/v1/cases/{cid}/messages", headers=h).json()["items"][0]["read_by_victim_at"] is not None

    reply = api.post("/v1/me/messages", headers=me, json={"body": "Thank you, I will come."})
    assert reply.status_code == 201 and reply.json()["sender"] == "victim" and reply.json()["push_status"] == "not_needed"
    notices = api.get("/v1/contact/notices", headers=h).json()["items"]
    assert [(n["kind"], n["payload"]["message_id"]) for n in notices] == [("victim_message", reply.json()["id"])]
    assert_problem(api.post(f"/v1/me/messages/{reply.json()['id']}/read", headers=me), 404)  # not hers to mark
    api.post(f"/v1/cases/{cid}/messages/{reply.json()['id']}/read", headers=h).raise_for_status()
    mine = api.get("/v1/me/messages", headers=me).json()["items"]
    assert mine[1]["read_by_staff_at"] is not None and mine[0]["read_by_victim_at"] is not None
    assert db(api, "SELECT read_by_staff FROM case_messages WHERE sender = 'victim'")[0]["read_by_staff"] == \
        "contact_person:jan"
    assert_problem(api.post("/v1/me/messages", headers=me, json={"body": ""}), 422, ["body"])
    assert_problem(api.post("/v1/me/messages", headers=me, json={"body": "x", "to": "judge"}), 422, ["to"])
    actions = [r["action"] for r in db(api, "SELECT action FROM audit_log WHERE action LIKE 'message.%' ORDER BY chain_seq")]
    assert actions == ["message.staff", "message.victim"]


def test_preferences_round_trip_and_validation(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api, language="en")
    me = victim_token(api, cid)
    first = api.get("/v1/me/preferences", headers=me).json()
    assert first == {"language": "en", "channel": "app", "quiet_hours": None, "update_frequency": "on_change",
                     "quiet_hours_note": first["quiet_hours_note"]}
    assert "Safety alerts always reach you at once, also during quiet hours" in first["quiet_hours_note"]
    body = {"language": "nl", "channel": "phone", "quiet_hours": {"start": "22:00", "end": "07:30"},
            "update_frequency": "every_two_weeks"}
    r = api.put("/v1/me/preferences", headers=me, json=body)
    note = r.json()["quiet_hours_note"]
    assert r.status_code == 200 and r.json() == {**body, "quiet_hours_note": note} and "Veiligheidsmeldingen" in note
    assert api.get("/v1/me/preferences", headers=me).json() == {**body, "quiet_hours_note": note}
    assert api.get(f"/v1/cases/{cid}", headers=director(api)).json()["victim"]["language"] == "nl"
    assert_problem(api.put("/v1/me/preferences", headers=me, json={**body, "quiet_hours": {"start": "22:00",
                                                                                           "end": "22:00"}}),
                   422, ["quiet_hours", "end"])
    assert_problem(api.put("/v1/me/preferences", headers=me, json={**body, "channel": "pigeon"}), 422, ["channel"])
    assert_problem(api.put("/v1/me/preferences", headers=me, json={**body, "quiet_hours": {"start": "25:00",
                                                                                           "end": "07:00"}}),
                   422, ["quiet_hours", "start"])
    assert api.get("/v1/me/preferences", headers=me).json() == {**body, "quiet_hours_note": note}  # nothing changed
    assert db(api, "SELECT actor, role, detail FROM audit_log WHERE action = 'victim.preferences'")[0]["role"] == "victim_app"
