"""Need-to-know per case (issue 6): how staff come to reach a case, how they lose it, what lists show, and that a
denial looks exactly like a case that does not exist."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.api.factories import db, db_val, enroll, new_case, now, bearer
from tests.helpers import staff_headers


def op(client: TestClient, sub: str = "op-1") -> dict[str, str]:
    return staff_headers(client, "operator", sub)


def panic(client: TestClient, app: dict) -> str:  # type: ignore[type-arg]
    r = client.post("/v1/me/panic", headers=bearer(app), json={"recorded_at": now().isoformat()})
    assert r.status_code == 201, r.text
    return r.json()["alert_id"]


def test_operator_reaches_a_case_while_it_has_an_alert_and_loses_it_after(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, operator_grace_s=0)
    case_id = new_case(client)
    app = enroll(client, case_id)
    assert client.get(f"/v1/cases/{case_id}", headers=op(client)).status_code == 404
    assert client.get("/v1/cases", headers=op(client)).json()["items"] == []

    alert_id = panic(client, app)
    assert client.get(f"/v1/cases/{case_id}", headers=op(client)).status_code == 200
    assert [c["id"] for c in client.get("/v1/cases", headers=op(client)).json()["items"]] == [case_id]
    assert [a["id"] for a in client.get("/v1/alerts", headers=op(client)).json()["items"]] == [alert_id]
    assert client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=op(client)).status_code == 200
    assert client.get(f"/v1/alerts/{alert_id}", headers=op(client)).status_code == 200  # acknowledged: still open work
    r = client.post(f"/v1/alerts/{alert_id}/resolve", headers=op(client), json={"outcome": "false_alarm_gps"})
    assert r.status_code == 200
    # Resolved, no grace: the case is closed to the monitoring room again, alert and all.
    assert client.get(f"/v1/cases/{case_id}", headers=op(client)).status_code == 404
    assert client.get(f"/v1/alerts/{alert_id}", headers=op(client)).status_code == 404
    assert client.get("/v1/alerts", headers=op(client)).json()["items"] == []
    # Unless the case director puts it on the operator's watch list.
    director = staff_headers(client, "case_director")
    assert client.put(f"/v1/cases/{case_id}/watchers", headers=director, json={"staff_sub": "op-1"}).status_code == 200
    assert client.get(f"/v1/alerts/{alert_id}", headers=op(client)).status_code == 200
    assert client.get(f"/v1/cases/{case_id}", headers=op(client, "op-2")).status_code == 404  # a list per operator
    assert client.delete(f"/v1/cases/{case_id}/watchers/op-1", headers=director).status_code == 204
    assert client.get(f"/v1/alerts/{alert_id}", headers=op(client)).status_code == 404


def test_operator_keeps_a_resolved_case_for_the_grace_period(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False)  # default grace: 12 hours
    case_id = new_case(client)
    alert_id = panic(client, enroll(client, case_id))
    client.post(f"/v1/alerts/{alert_id}/resolve", headers=op(client), json={"outcome": "other"}).raise_for_status()
    assert client.post(f"/v1/alerts/{alert_id}/notes", headers=op(client), json={"note": "called back"}).status_code == 200
    db(client, "UPDATE alert_changes SET at = at - interval '13 hours' WHERE change = 'resolved'")
    assert client.get(f"/v1/alerts/{alert_id}", headers=op(client)).status_code == 404


def test_the_creator_owns_the_case_and_grants_reach_others_do_not(client) -> None:  # type: ignore[no-untyped-def]
    mine = new_case(client)  # created by test-case_director
    other_director = staff_headers(client, "case_director", "someone-else")
    contact = staff_headers(client, "contact_person", "cp-1")
    assert client.get(f"/v1/cases/{mine}", headers=staff_headers(client, "case_director")).status_code == 200
    assert client.get(f"/v1/cases/{mine}", headers=other_director).status_code == 404
    assert client.get(f"/v1/cases/{mine}", headers=contact).status_code == 404
    # Someone without reach cannot grant themselves reach either.
    r = client.put(f"/v1/cases/{mine}/access", headers=other_director,
                   json={"staff_sub": "someone-else", "relation": "case_director"})
    assert r.status_code == 404
    grant = client.put(f"/v1/cases/{mine}/access", headers=staff_headers(client, "case_director"),
                       json={"staff_sub": "cp-1", "relation": "prosecutor_coordinator", "reason": "OM coordinator"})
    assert grant.status_code == 200
    assert {(g["staff_sub"], g["relation"], g["source"]) for g in grant.json()["grants"]} == {
        ("test-case_director", "case_director", "grant"), ("cp-1", "prosecutor_coordinator", "grant")}
    assert client.get(f"/v1/cases/{mine}", headers=contact).status_code == 200
    # The grant lets the contact person in, the role still limits what they may do there.
    assert client.patch(f"/v1/cases/{mine}", headers=contact, json={"proximity": None}).status_code == 403
    assert client.delete(f"/v1/cases/{mine}/access/cp-1", headers=staff_headers(client, "case_director")).status_code == 204
    assert client.get(f"/v1/cases/{mine}", headers=contact).status_code == 404
    actions = [r["action"] for r in db(client, "SELECT action FROM audit_log WHERE action LIKE 'access.%' ORDER BY chain_seq")]
    assert actions == ["access.denied", "access.denied", "access.denied", "access.grant", "access.end", "access.denied"]


def test_a_denial_is_indistinguishable_from_an_unknown_case_and_is_audited(client) -> None:  # type: ignore[no-untyped-def]
    case_id = new_case(client)
    stranger = staff_headers(client, "case_director", "stranger")
    denied = client.get(f"/v1/cases/{case_id}", headers=stranger)
    unknown_id = str(uuid.uuid4())
    unknown = client.get(f"/v1/cases/{unknown_id}", headers=stranger)
    assert denied.status_code == unknown.status_code == 404
    strip = lambda r: {k: v for k, v in r.json().items() if k != "instance"}  # noqa: E731
    assert strip(denied) == strip(unknown)
    assert denied.headers["content-type"] == unknown.headers["content-type"]
    rows = db(client, "SELECT actor, case_id, detail FROM audit_log WHERE action = 'access.denied'")
    assert [(r["actor"], str(r["case_id"])) for r in rows] == [("case_director:stranger", case_id)]
    assert rows[0]["detail"] == {"method": "GET", "route": "/v1/cases/{case_id}"}


def test_the_roster_gives_reach_and_deactivation_takes_every_reach_away(client) -> None:  # type: ignore[no-untyped-def]
    case_id = new_case(client)
    admin, director = staff_headers(client, "admin"), staff_headers(client, "case_director")
    member = client.post("/v1/staff", headers=admin, json={
        "sub": "wijkagent-7", "display_name": "Kees", "agency": "police", "role_title": "wijkagent"}).json()
    kees = staff_headers(client, "contact_person", "wijkagent-7")
    assert client.get(f"/v1/cases/{case_id}", headers=kees).status_code == 404
    r = client.put(f"/v1/cases/{case_id}/assignments", headers=director, json={
        "agency": "police", "function": "contact_person", "staff_id": member["id"]})
    assert r.status_code == 200, r.text
    assert client.get(f"/v1/cases/{case_id}", headers=kees).status_code == 200
    sources = {(g["staff_sub"], g["source"]) for g in client.get(f"/v1/cases/{case_id}/access", headers=director).json()["grants"]}
    assert ("wijkagent-7", "roster") in sources
    # A grant on top of the roster, then he leaves: neither keeps him in.
    client.put(f"/v1/cases/{case_id}/access", headers=director, json={"staff_sub": "wijkagent-7", "relation": "contact_person"})
    client.post(f"/v1/staff/{member['id']}/deactivate", headers=admin, json={"reason": "left"}).raise_for_status()
    assert client.get(f"/v1/cases/{case_id}", headers=kees).status_code == 404
    assert client.get("/v1/cases", headers=kees).json()["items"] == []


def test_lists_show_only_reachable_cases_and_auditors_see_no_case(client) -> None:  # type: ignore[no-untyped-def]
    mine = new_case(client)
    theirs = client.post("/v1/cases", headers=staff_headers(client, "case_director", "other-dir"), json={
        "reference": "THEIRS", "victim": {"display_name": "V"}, "offender": {"display_name": "O"}}).json()["id"]
    listed = lambda h: sorted(c["id"] for c in client.get("/v1/cases", headers=h).json()["items"])  # noqa: E731
    assert listed(staff_headers(client, "case_director")) == [mine]
    assert listed(staff_headers(client, "case_director", "other-dir")) == [theirs]
    assert listed(staff_headers(client, "admin")) == sorted([mine, theirs])
    assert client.get("/v1/cases", headers=staff_headers(client, "auditor")).status_code == 403
    # Granting an auditor changes nothing: the role reads the audit log only.
    client.put(f"/v1/cases/{mine}/access", headers=staff_headers(client, "case_director"),
               json={"staff_sub": "test-auditor", "relation": "contact_person"}).raise_for_status()
    assert client.get(f"/v1/cases/{mine}/track", headers=staff_headers(client, "auditor"),
                      params={"reason": "curious", "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"}
                      ).status_code == 404


def test_the_alert_stream_sends_only_reachable_cases(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False)
    not_mine = new_case(client)
    panic(client, enroll(client, not_mine))
    stranger = staff_headers(client, "case_director", "stream-dir")
    mine = client.post("/v1/cases", headers=stranger, json={
        "reference": "STREAM", "victim": {"display_name": "V"}, "offender": {"display_name": "O"}}).json()["id"]
    client.put(f"/v1/cases/{mine}/access", headers=stranger,  # so the factory's director can issue the code
               json={"staff_sub": "test-case_director", "relation": "case_director"}).raise_for_status()
    mine_alert = panic(client, enroll(client, mine, "phone-9"))
    with client.websocket_connect("/v1/alerts/stream?after=0", headers=stranger) as ws:
        first = ws.receive_json()
    # The earlier alert of a case this director has no part in was skipped.
    assert first["alert"]["case_id"] == mine and first["alert"]["id"] == mine_alert
    assert db_val(client, "SELECT count(*) FROM alerts") == 2


def test_the_alert_stream_refuses_roles_outside_the_monitoring_room(client) -> None:  # type: ignore[no-untyped-def]
    try:
        with client.websocket_connect("/v1/alerts/stream", headers=staff_headers(client, "auditor")) as ws:
            ws.receive_json()
        raise AssertionError("the auditor was let onto the stream")
    except WebSocketDisconnect as closed:
        assert closed.code == 4403
