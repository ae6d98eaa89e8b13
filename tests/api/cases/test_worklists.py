"""The case staff's work lists: orders ending within 14 days with what is decided about each, and devices that are
silent, low on battery or tampered. Both filtered by need-to-know and paginated."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.api.case_world import admin, assert_problem, grant, new_order
from tests.api.factories import event, fix, new_case, new_supplier, new_tag, now
from tests.helpers import staff_headers


def iso(t: datetime) -> str:
    return t.isoformat()


def soon(days: float) -> datetime:
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0)


def ending(api, headers, **query):  # type: ignore[no-untyped-def]
    r = api.get("/v1/orders/ending", headers=headers, params=query)
    assert r.status_code == 200, r.text
    return r.json()


def test_orders_ending_lists_the_reachable_ones_soonest_first_with_the_decision(api) -> None:  # type: ignore[no-untyped-def]
    mine, other = new_case(api, "END-MINE"), new_case(api, "END-OTHER")
    grant(api, mine, "cp-end")
    in7 = new_order(api, mine, valid_from=iso(soon(-30)), valid_until=iso(soon(7)))
    in3 = new_order(api, mine, valid_from=iso(soon(-30)), valid_until=iso(soon(3)))
    new_order(api, mine, valid_from=iso(soon(-30)), valid_until=iso(soon(30)))  # beyond the 14 days
    new_order(api, mine, valid_from=iso(soon(-30)), valid_until=None)  # until further notice
    theirs = new_order(api, other, valid_from=iso(soon(-30)), valid_until=iso(soon(5)))
    cp = staff_headers(api, "contact_person", "cp-end")

    listed = ending(api, cp)["items"]
    assert [o["id"] for o in listed] == [in3["id"], in7["id"]]
    assert all(o["decision"] is None and o["case_reference"] == "END-MINE" for o in listed)
    assert listed[0]["extensions_left"] is None  # a contact ban has no legal maximum of extensions
    # Need-to-know: a colleague without the case sees none of it; an admin sees every case.
    assert ending(api, staff_headers(api, "contact_person", "cp-elsewhere"))["items"] == []
    assert {o["id"] for o in ending(api, admin(api))["items"]} >= {in3["id"], in7["id"], theirs["id"]}

    # The contact person records both decisions: the extension granted, the other let go with its reason.
    new_end = soon(60)
    r = api.post(f"/v1/cases/{mine}/orders/{in7['id']}/extensions", headers=cp,
                 json={"valid_until": iso(new_end), "reference": "OM-2026-EXT"})
    assert r.status_code == 201, r.text
    r = api.post(f"/v1/cases/{mine}/orders/{in3['id']}/let-go", headers=cp, json={"reason": "victim moved abroad"})
    assert r.status_code == 200, r.text
    decided = {o["id"]: o for o in ending(api, cp)["items"]}
    assert decided[in7["id"]]["decision"] == "extended" and decided[in7["id"]]["extension_reference"] == "OM-2026-EXT"
    # Listed at the end it was heading for.
    assert datetime.fromisoformat(decided[in7["id"]]["due_at"]) == datetime.fromisoformat(in7["valid_until"])
    assert datetime.fromisoformat(decided[in7["id"]]["valid_until"]) == new_end
    assert decided[in3["id"]]["decision"] == "let_go" and decided[in3["id"]]["let_go_reason"] == "victim moved abroad"
    # Recorded under the contact person's name.
    timeline = api.get(f"/v1/cases/{mine}/timeline", headers=cp).json()["items"]
    assert {(e["kind"], e["created_by"]) for e in timeline} >= {("order_extended", "contact_person:cp-end"),
                                                           ("order_let_go", "contact_person:cp-end")}


def test_orders_ending_pages_and_names_bad_parameters(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    ids = [new_order(api, cid, valid_from=iso(soon(-30)), valid_until=iso(soon(d)))["id"] for d in (2, 4, 6)]
    seen, cursor = [], None
    while True:
        page = ending(api, admin(api), limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert_problem(api.get("/v1/orders/ending?cursor=nonsense", headers=admin(api)), 422, ["query", "cursor"])
    assert_problem(api.get("/v1/orders/ending?within_days=0", headers=admin(api)), 422, ["query", "within_days"])
    assert_problem(api.get("/v1/orders/ending", headers=staff_headers(api, "operator")), 403)


def attention(api, headers, **query):  # type: ignore[no-untyped-def]
    r = api.get("/v1/devices/attention", headers=headers, params=query)
    assert r.status_code == 200, r.text
    return r.json()


def test_devices_needing_attention_are_silent_low_or_tampered_on_reachable_cases(api) -> None:  # type: ignore[no-untyped-def]
    supplier = new_supplier(api)
    mine, other = new_case(api, "DEV-MINE"), new_case(api, "DEV-OTHER")
    grant(api, mine, "cp-dev")
    never = new_tag(api, mine, supplier, "DEV-NEVER")
    low = new_tag(api, mine, supplier, "DEV-LOW")
    well = new_tag(api, mine, supplier, "DEV-WELL")
    theirs = new_tag(api, other, supplier, "DEV-THEIRS")
    r = supplier.positions(api, [fix("DEV-LOW", 20, battery_pct=9.0), fix("DEV-WELL", 20, battery_pct=90.0)])
    assert {x["status"] for x in r.json()["results"]} == {"accepted"}, r.text
    cp = staff_headers(api, "contact_person", "cp-dev")

    listed = {d["id"]: d for d in attention(api, cp)["items"]}
    assert set(listed) == {never, low}
    assert listed[never]["silent"] and listed[never]["last_seen_at"] is None
    assert listed[low]["battery_low"] and not listed[low]["silent"] and listed[low]["last_battery_pct"] == 9.0
    assert listed[low]["case_reference"] == "DEV-MINE"
    # A lower threshold takes the low battery off the list.
    assert {d["id"] for d in attention(api, cp, battery_below_pct=5)["items"]} == {never}

    # The healthy tag's strap is cut: an open tamper alert puts it on the list until an operator resolves it.
    r = supplier.events(api, [event("DEV-WELL", "strap_tamper", now() - timedelta(seconds=5))])
    assert r.status_code == 200, r.text
    listed = {d["id"]: d for d in attention(api, cp)["items"]}
    assert listed[well]["open_alerts"] == ["tamper"] and not listed[well]["silent"]

    # Need-to-know: nothing of another case; the admin sees it.
    assert theirs not in listed
    assert attention(api, staff_headers(api, "contact_person", "cp-nowhere"))["items"] == []
    assert theirs in {d["id"] for d in attention(api, admin(api))["items"]}


def test_devices_needing_attention_page_and_name_bad_parameters(api) -> None:  # type: ignore[no-untyped-def]
    supplier = new_supplier(api)
    cid = new_case(api)
    tags = [new_tag(api, cid, supplier, f"PAGE-{i}") for i in range(3)]
    seen, cursor = [], None
    while True:
        page = attention(api, admin(api), limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == tags
    assert_problem(api.get("/v1/devices/attention?cursor=x", headers=admin(api)), 422, ["query", "cursor"])
    assert_problem(api.get("/v1/devices/attention?battery_below_pct=0", headers=admin(api)), 422,
                   ["query", "battery_below_pct"])
    assert_problem(api.get("/v1/devices/attention", headers=staff_headers(api, "auditor")), 403)
