"""The monitoring room's load (GET /v1/alerts/load): alerts per hour, what waits past the deadline, each operator's
acknowledgements, and the last minute's alerts by cause; counts only, for operators and admins."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.api.case_world import assert_problem
from tests.api.factories import event, new_supplier, now, world
from tests.helpers import staff_headers


@pytest.fixture
def api(make_client):  # type: ignore[no-untyped-def]
    return make_client(run_engine=False, order_check_s=0, outage_check_s=0)


def load(api, headers=None, **query):  # type: ignore[no-untyped-def]
    r = api.get("/v1/alerts/load", headers=headers or staff_headers(api, "operator", "op-a"), params=query)
    assert r.status_code == 200, r.text
    return r.json()


def alert_ids(api, case_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    r = api.get("/v1/alerts", headers=staff_headers(api, "admin"), params={"case_id": case_id})
    return [a["id"] for a in r.json()["items"]]


def test_room_load_counts_by_hour_cause_and_operator(api) -> None:  # type: ignore[no-untyped-def]
    supplier = new_supplier(api)
    one, two = world(api, supplier), world(api, supplier)
    at = now() - timedelta(seconds=5)
    r = supplier.events(api, [event(one.serial, "strap_tamper", at), event(one.serial, "battery_low", at),
                              event(two.serial, "strap_tamper", at)])
    assert r.status_code == 200, r.text
    assert api.post("/v1/me/panic", headers=two.victim, json={"recorded_at": now().isoformat()}).status_code == 201

    room = load(api)
    assert len(room["hours"]) == 24 and sum(h["alerts"] for h in room["hours"]) == 4
    assert room["hours"][-1]["alerts"] == 4 and room["hours"][-1]["violations"] >= 2
    assert {c["cause"]: c["alerts"] for c in room["recent_by_cause"]} == {
        "device_event:strap_tamper": 2, "device_event:battery_low": 1, "panic": 1}
    assert room["recent"] == 4 and room["open"] == 4 and room["open_overdue"] == 0
    assert room["operators"] == []
    # Counts only: neither case nor reference is named.
    text = api.get("/v1/alerts/load", headers=staff_headers(api, "operator", "op-a")).text
    assert one.case_id not in text and two.case_id not in text

    first = alert_ids(api, one.case_id)[0]
    r = api.post(f"/v1/alerts/{first}/acknowledge", headers=staff_headers(api, "operator", "op-a"))
    assert r.status_code == 200, r.text
    time.sleep(5.2)  # the shortest deadline the route takes is 5 s: the next acknowledgement comes after it
    late = alert_ids(api, two.case_id)[0]
    assert api.post(f"/v1/alerts/{late}/acknowledge", headers=staff_headers(api, "operator", "op-b")).status_code == 200

    room = load(api, deadline_s=5)
    assert room["open"] == 2 and room["open_overdue"] == 2
    assert sum(c["open"] for c in room["open_by_cause"]) == 2
    assert all(c["overdue"] == c["open"] for c in room["open_by_cause"])  # both have waited more than 5 s
    by_operator = {o["actor"]: o for o in room["operators"]}
    assert by_operator["operator:op-a"]["acknowledged"] == 1 and by_operator["operator:op-a"]["late"] == 0
    assert by_operator["operator:op-b"]["acknowledged"] == 1 and by_operator["operator:op-b"]["late"] == 1
    assert by_operator["operator:op-b"]["median_s"] >= 5


def test_room_load_is_for_the_room_and_names_bad_parameters(api) -> None:  # type: ignore[no-untyped-def]
    for role in ("case_director", "contact_person", "auditor"):
        assert_problem(api.get("/v1/alerts/load", headers=staff_headers(api, role)), 403)
    assert load(api, staff_headers(api, "admin"))["open"] == 0
    assert_problem(api.get("/v1/alerts/load?deadline_s=1", headers=staff_headers(api, "operator")), 422,
                   ["query", "deadline_s"])
    assert_problem(api.get("/v1/alerts/load?hours=0", headers=staff_headers(api, "operator")), 422, ["query", "hours"])
