"""Orders that never lapse unnoticed, end to end: legal basis, extension rules (a behavioural order: ≤ 90 days per
period, ≤ 3 extensions), let-go with a reason, reminders 14/7/2 days before expiry and the expiry itself, both
driven by an injected clock (nothing sleeps)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from api.contacts.reminders import OrderScheduler
from tests.api.case_world import (
    assert_problem, assign, db, db_val, director, new_case, new_order, new_staff, victim_token,
)
from tests.helpers import staff_headers


def iso(t: datetime) -> str:
    return t.isoformat()


def soon(days: float) -> datetime:
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0)


def scheduler(api, clock: dict) -> OrderScheduler:  # type: ignore[no-untyped-def]
    ctx = api.app.state.ctx
    return OrderScheduler(ctx.pool, ctx.settings, ctx.outbox, clock=lambda: clock["now"])


def extend(api, cid: str, oid: str, until: datetime, ref: str = "OM-EXT"):  # type: ignore[no-untyped-def]
    return api.post(f"/v1/cases/{cid}/orders/{oid}/extensions", headers=director(api),
                    json={"valid_until": iso(until), "reference": ref})


def test_order_records_its_legal_basis(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    order = new_order(api, cid, "behavioural_order", valid_from=iso(soon(-1)), valid_until=iso(soon(60)),
                      legal_basis="art. 509hh Sv")
    assert order["legal_basis"] == "art. 509hh Sv" and order["extension_count"] == 0 and order["let_go_at"] is None
    listed = api.get(f"/v1/cases/{cid}/orders", headers=director(api)).json()["items"]
    assert listed == [order]
    assert db(api, "SELECT detail FROM audit_log WHERE action = 'order.create'")[0]["detail"]["legal_basis"] == \
        "art. 509hh Sv"


def test_behavioural_order_extends_at_most_three_times_by_at_most_90_days(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    end = soon(30)
    oid = new_order(api, cid, "behavioural_order", valid_from=iso(soon(-60)), valid_until=iso(end))["id"]
    too_long = assert_problem(extend(api, cid, oid, end + timedelta(days=91)), 422, ["valid_until"])
    assert "at most 90 days per period" in too_long["detail"] and "91.0 days" in too_long["detail"]
    assert_problem(extend(api, cid, oid, end - timedelta(days=1)), 422, ["valid_until"])
    for n in range(1, 4):
        r = extend(api, cid, oid, end + timedelta(days=90 * n), f"OM-EXT-{n}")
        assert r.status_code == 201, r.text
        assert r.json()["n"] == n and r.json()["previous_until"] == iso(end + timedelta(days=90 * (n - 1))).replace("+00:00", "Z")
    fourth = assert_problem(extend(api, cid, oid, end + timedelta(days=300)), 422, ["valid_until"])
    assert "at most 3 times" in fourth["detail"]
    order = api.get(f"/v1/cases/{cid}/orders", headers=director(api)).json()["items"][0]
    assert order["extension_count"] == 3 and datetime.fromisoformat(order["valid_until"]) == end + timedelta(days=270)
    exts = api.get(f"/v1/cases/{cid}/orders/{oid}/extensions", headers=staff_headers(api, "operator")).json()["items"]
    assert [e["reference"] for e in exts] == ["OM-EXT-1", "OM-EXT-2", "OM-EXT-3"]
    # Each extension is on the victim's timeline, in her language, and in the audit log.
    titles = [i["title"] for i in api.get("/v1/me/timeline", headers=victim_token(api, cid)).json()["items"]
              if i["kind"] == "order_extended"]
    assert len(titles) == 3 and all(t.startswith("Behavioural order from the public prosecutor extended until ")
                                    for t in titles)
    assert [r["detail"]["n"] for r in db(api, "SELECT detail FROM audit_log WHERE action = 'order.extend'"
                                              " ORDER BY chain_seq")] == [1, 2, 3]


def test_other_orders_extend_without_the_behavioural_limits_but_never_after_expiry(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    end = soon(10)
    oid = new_order(api, cid, "protection_order", valid_from=iso(soon(-10)), valid_until=iso(end))["id"]
    for n in range(1, 5):
        assert extend(api, cid, oid, end + timedelta(days=365 * n)).status_code == 201
    lapsed = new_order(api, cid, "contact_ban", valid_from=iso(soon(-10)), valid_until=iso(soon(-1)))["id"]
    assert "lapsed order cannot be extended" in assert_problem(extend(api, cid, lapsed, soon(30)), 422)["detail"]
    open_ended = new_order(api, cid, "contact_ban")["id"]
    assert_problem(extend(api, cid, open_ended, soon(30)), 422, ["valid_until"])
    assert_problem(api.post(f"/v1/cases/{cid}/orders/{oid}/extensions", headers=staff_headers(api, "operator"),
                            json={"valid_until": iso(soon(3000)), "reference": "X"}), 403)
    assert_problem(extend(api, new_case(api), oid, soon(3000)), 404)  # another case's order


def test_reminders_14_7_2_days_before_expiry_until_extended_or_let_go(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api, "GA-CASE")
    olga = new_staff(api, "olga", "prosecutor", "Olga")
    assign(api, cid, olga["id"], "prosecutor", "case_director")
    end = soon(40)
    oid = new_order(api, cid, "behavioural_order", valid_from=iso(soon(-40)), valid_until=iso(end))["id"]
    clock = {"now": end - timedelta(days=20)}
    sched = scheduler(api, clock)

    def reminders() -> list[tuple[int, str]]:
        items = api.get("/v1/contact/notices", headers=staff_headers(api, "case_director", "olga")).json()["items"]
        return sorted((n["payload"]["days_before"], n["payload"]["valid_until"]) for n in items
                      if n["kind"] == "order_reminder")

    assert api.portal.call(sched.run_once).reminders == 0
    clock["now"] = end - timedelta(days=14)
    assert api.portal.call(sched.run_once).reminders == 1
    assert api.portal.call(sched.run_once).reminders == 0  # never twice
    clock["now"] = end - timedelta(days=6, hours=23)
    assert api.portal.call(sched.run_once).reminders == 1
    assert [d for d, _ in reminders()] == [7, 14]
    notice = api.get("/v1/contact/notices", headers=staff_headers(api, "case_director", "olga")).json()["items"][0]
    assert notice["payload"]["case_reference"] == "GA-CASE" and notice["payload"]["order_kind"] == "behavioural_order"

    # Extended: a new end date, a new series; the old one is done.
    new_end = end + timedelta(days=60)
    extend(api, cid, oid, new_end).raise_for_status()
    clock["now"] = end - timedelta(days=1)
    assert api.portal.call(sched.run_once).reminders == 0
    clock["now"] = new_end - timedelta(days=13)
    assert api.portal.call(sched.run_once).reminders == 1
    # Deliberately let go: no more reminders, the reason is kept and visible to staff only.
    assert_problem(api.post(f"/v1/cases/{cid}/orders/{oid}/let-go", headers=director(api), json={}), 422, ["reason"])
    r = api.post(f"/v1/cases/{cid}/orders/{oid}/let-go", headers=director(api),
                 json={"reason": "prosecution dropped; no grounds to extend"})
    assert r.status_code == 200 and r.json()["let_go_reason"] == "prosecution dropped; no grounds to extend"
    clock["now"] = new_end - timedelta(days=1)
    assert api.portal.call(sched.run_once).reminders == 0
    assert [d for d, _ in reminders()] == [7, 14, 14]
    staff_events = api.get(f"/v1/cases/{cid}/timeline", headers=director(api)).json()["items"]
    # She learns the decision on her timeline, never the reason.
    assert [(e["kind"], e["visibility"], e["note"]) for e in staff_events][:1] == [("order_let_go", "victim", None)]
    victim_view = api.get("/v1/me/timeline", headers=victim_token(api, cid)).text
    assert "order_let_go" in victim_view and "prosecution dropped" not in victim_view
    assert db(api, "SELECT reason FROM audit_log WHERE action = 'order.let_go'")[0]["reason"].startswith("prosecution")


def test_reminder_days_are_configurable_and_a_late_order_gets_only_the_most_urgent(make_client) -> None:  # type: ignore[no-untyped-def]
    api = make_client(run_engine=False, order_check_s=0, order_reminder_days=(30, 3))
    cid = new_case(api)
    end = soon(20)
    new_order(api, cid, "contact_ban", valid_from=iso(soon(-1)), valid_until=iso(end))
    clock = {"now": end - timedelta(days=20)}
    sched = scheduler(api, clock)
    assert api.portal.call(sched.run_once).reminders == 1  # 30 is due at once (no case director: unaddressed)
    clock["now"] = end - timedelta(days=2)  # both 30 and 3 due: only 3 is new
    assert api.portal.call(sched.run_once).reminders == 1
    rows = db(api, "SELECT staff_id, payload FROM staff_notices WHERE kind = 'order_reminder' ORDER BY created_at")
    assert [(r["staff_id"], r["payload"]["days_before"]) for r in rows] == [(None, 30), (None, 3)]


def test_expiry_is_seen_by_the_operator_and_told_to_the_victim_in_her_language(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api, language="nl")
    me = victim_token(api, cid)
    olga = new_staff(api, "olga", "prosecutor", "Olga")
    assign(api, cid, olga["id"], "prosecutor", "case_director")
    end = soon(5)
    oid = new_order(api, cid, "contact_ban", valid_from=iso(soon(-5)), valid_until=iso(end))["id"]
    before = db_val(api, "SELECT version FROM config_version")
    clock = {"now": end - timedelta(minutes=1)}
    sched = scheduler(api, clock)
    assert api.portal.call(sched.run_once).expired == 0
    clock["now"] = end + timedelta(minutes=1)
    assert api.portal.call(sched.run_once).expired == 1
    assert api.portal.call(sched.run_once).expired == 0  # handled once

    # The operator sees it in the alert queue.
    alerts = api.get("/v1/alerts", headers=staff_headers(api, "operator"), params={"case_id": cid}).json()["items"]
    assert [(a["kind"], a["level"], a["status"]) for a in alerts] == [("order_ended", "warning", "open")]
    assert alerts[0]["detail"]["order_id"] == oid and alerts[0]["detail"]["reason"] == "order_expired"
    assert datetime.fromisoformat(alerts[0]["opened_at"]) == end
    # The victim: a timeline event and a notice, in Dutch.
    timeline = api.get("/v1/me/timeline", headers=me).json()["items"]
    assert timeline[0]["kind"] == "order_expired" and timeline[0]["title"].startswith("Contactverbod beëindigd op ")
    notices = api.get("/v1/me/notices", headers=me).json()["items"]
    assert [(n["kind"], n["title"]) for n in notices] == [("order_expired", "Een bescherming is beëindigd"),
                                                          ("order_ending", "Een bescherming eindigt binnenkort")]
    assert "Contactverbod" in notices[0]["body"] and "112" in notices[0]["body"]
    assert api.get("/v1/me/orders", headers=me).json()["items"][0]["status_text"] == "Beëindigd"
    # The case director is told; the engine's configuration version moved on; the audit log has it.
    kinds = [n["kind"] for n in api.get("/v1/contact/notices", headers=staff_headers(api, "case_director", "olga")).json()["items"]]
    assert "order_expired" in kinds
    assert db_val(api, "SELECT count(*) FROM config_changes WHERE version > $1 AND case_id = $2",
                  before, uuid.UUID(cid)) == 1
    assert db_val(api, "SELECT count(*) FROM audit_log WHERE action = 'order.expire'") == 1
    # A lapsed order can no longer be let go or extended.
    assert_problem(api.post(f"/v1/cases/{cid}/orders/{oid}/let-go", headers=director(api), json={"reason": "late"}), 409)
    assert_problem(extend(api, cid, oid, end + timedelta(days=30)), 422)


def test_the_scheduler_runs_in_the_server_and_ends_a_lapsed_order(make_client) -> None:  # type: ignore[no-untyped-def]
    import time

    api = make_client(run_engine=False, order_check_s=0.2)
    cid = new_case(api)
    oid = new_order(api, cid, "contact_ban", valid_from=iso(soon(-3)), valid_until=iso(soon(-1)))["id"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not db_val(api, "SELECT expiry_handled_until IS NOT NULL FROM orders"
                                                          " WHERE id = $1::uuid", oid):
        time.sleep(0.1)
    assert db_val(api, "SELECT count(*) FROM alerts WHERE case_id = $1::uuid AND kind = 'order_ended'", cid) == 1
    assert api.app.state.ctx.order_scheduler.running


def test_openapi_documents_the_case_status_routes(api) -> None:  # type: ignore[no-untyped-def]
    paths = api.get("/openapi.json").json()["paths"]
    for path, methods in {
        "/v1/me/case": {"get"}, "/v1/me/timeline": {"get"}, "/v1/me/orders": {"get"}, "/v1/me/notices": {"get"},
        "/v1/me/messages": {"get", "post"}, "/v1/me/preferences": {"get", "put"},
        "/v1/cases/{case_id}/timeline": {"get", "post"}, "/v1/cases/{case_id}/assignments": {"get", "put"},
        "/v1/cases/{case_id}/contact-agreements": {"get", "post"}, "/v1/contact/overdue": {"get"},
        "/v1/staff": {"get", "post"}, "/v1/staff/{staff_id}/deactivate": {"post"},
        "/v1/cases/{case_id}/orders/{order_id}/extensions": {"get", "post"},
        "/v1/cases/{case_id}/orders/{order_id}/let-go": {"post"},
        "/v1/cases/{case_id}/risk-screenings": {"get", "post"}, "/v1/cases/{case_id}/feasibility": {"post"},
        "/v1/feasibility": {"post"}, "/v1/cases/{case_id}/addresses": {"get", "put"},
    }.items():
        assert set(paths[path]) == methods, path
