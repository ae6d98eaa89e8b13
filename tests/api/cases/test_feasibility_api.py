"""The feasibility check through the API, end to end: a draft, a stored case with proposals, the known addresses,
and a zone stored with its findings in the 201. Plus SASH risk screening, recorded only by trained staff."""

from __future__ import annotations

from tests.api.case_world import (
    admin, assert_problem, db, director, grant, new_case, new_order, new_staff,
)
from tests.geofence.test_feasibility import at, circle, square
from tests.helpers import staff_headers


def ll(p) -> dict:  # type: ignore[no-untyped-def]
    return {"lat": p.lat, "lon": p.lon}


# Victim home at the origin, offender home 600 m east (the inspectorate's case).
ADDRESSES = {"victim_home": ll(at(0, 0)), "offender_home": ll(at(600, 0)), "victim_work": None, "offender_work": None}


def test_draft_check_returns_findings_without_storing_anything(api) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/feasibility", headers=staff_headers(api, "contact_person"), json={
        "addresses": ADDRESSES,
        "proximity": {"warn_m": 2000, "alert_m": 1000},
        "zones": [{"id": "street", "name": "Her street", "kind": "exclusion", "geometry": square(300, 0, 400)},
                  {"name": "Her gym", "kind": "exclusion", "geometry": circle(0, 3000, 60)}],
        "orders": [{"id": "ga", "kind": "behavioural_order", "valid_from": "2026-01-01T00:00:00Z",
                    "valid_until": "2026-06-01T00:00:00Z"}],
    })
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["feasible"] is False
    found = {(f["severity"], f["subject"], f["code"]) for f in body["findings"]}
    assert found == {
        ("blocking", "proximity", "contact_distance_exceeds_home_distance"),
        ("blocking", "zone:street", "zone_contains_offender_home"),
        ("warning", "zone:draft-1", "zone_smaller_than_gps_accuracy"),
        ("blocking", "order:ga", "order_exceeds_legal_maximum"),
    }
    assert all(f["explanation"] for f in body["findings"])
    assert [f["severity"] for f in body["findings"]][:3] == ["blocking"] * 3
    assert db(api, "SELECT count(*) AS n FROM audit_log")[0]["n"] == 0  # a check changes nothing

    ok = api.post("/v1/feasibility", headers=director(api), json={
        "addresses": ADDRESSES, "proximity": {"warn_m": 400, "alert_m": 250},
        "zones": [{"name": "Her street", "kind": "exclusion", "geometry": square(0, 0, 150), "buffer_m": 100}]})
    assert ok.json() == {"feasible": True, "findings": []}
    assert_problem(api.post("/v1/feasibility", headers=director(api), json={"zones": [{"name": "x"}]}), 422)
    assert_problem(api.post("/v1/feasibility", headers=director(api), json={"addresses": {
        "victim_home": {"lat": 95, "lon": 5}}}), 422, ["addresses", "victim_home", "lat"])
    assert_problem(api.post("/v1/feasibility", headers=staff_headers(api, "auditor"), json={}), 403)


def test_case_check_uses_stored_addresses_rule_zones_and_orders(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api, proximity={"warn_m": 1500, "alert_m": 1000})
    h = director(api)
    r = api.put(f"/v1/cases/{cid}/addresses", headers=h, json=ADDRESSES)
    assert r.status_code == 200 and r.json() == ADDRESSES
    assert api.get(f"/v1/cases/{cid}/addresses", headers=h).json() == ADDRESSES
    audit = db(api, "SELECT detail FROM audit_log WHERE action = 'case.addresses'")[0]["detail"]
    assert audit == {"known": ["offender_home", "victim_home"]} and "52." not in str(audit)  # never where
    assert_problem(api.get(f"/v1/cases/{cid}/addresses", headers=staff_headers(api, "operator")), 403)

    found = api.post(f"/v1/cases/{cid}/feasibility", headers=h, json={}).json()
    assert [f["code"] for f in found["findings"]] == ["contact_distance_exceeds_home_distance"]
    # A proposed rule replaces the stored one; proposed zones are checked alongside the stored ones.
    found = api.post(f"/v1/cases/{cid}/feasibility", headers=h, json={
        "proximity": {"warn_m": 800, "alert_m": 400},
        "zones": [{"name": "Too narrow", "kind": "exclusion", "geometry": circle(0, 0, 50)}]}).json()
    assert {f["code"] for f in found["findings"]} == {"warning_distance_exceeds_home_distance",
                                                       "zone_smaller_than_gps_accuracy"}
    assert found["feasible"] is True
    assert_problem(api.post(f"/v1/cases/{new_case(api)[:-1]}x/feasibility", headers=h, json={}), 404)


def test_storing_a_zone_runs_the_check_and_returns_its_findings(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    h = director(api)
    api.put(f"/v1/cases/{cid}/addresses", headers=h, json=ADDRESSES).raise_for_status()
    oid = new_order(api, cid, "exclusion_zone")["id"]
    body = {"order_id": oid, "name": "Her street", "kind": "exclusion", "geometry": square(300, 0, 400),
            "buffer_m": 0, "schedule": None}
    # Blocking: the zone contains the offender's home. Refused with the findings; nothing stored.
    refused = assert_problem(api.post(f"/v1/cases/{cid}/zones", headers=h, json=body), 422, ["geometry"])
    assert refused["title"] == "Zone not enforceable"
    assert [(f["severity"], f["code"]) for f in refused["findings"]] == [("blocking", "zone_contains_offender_home")]
    assert refused["errors"][0]["msg"].startswith("zone_contains_offender_home: ")
    assert api.get(f"/v1/cases/{cid}/zones", headers=h).json()["items"] == []
    # Stored only when someone decides so, with a reason that goes into the audit log.
    r = api.post(f"/v1/cases/{cid}/zones", headers=h, json={**body, "override_reason": "court order as written"})
    assert r.status_code == 201, r.text
    zone = r.json()
    assert [(f["severity"], f["code"], f["subject"]) for f in zone["findings"]] == [
        ("blocking", "zone_contains_offender_home", f"zone:{zone['id']}")]
    assert api.get(f"/v1/cases/{cid}/zones", headers=h).json()["items"] == [zone]  # stored with the zone
    (audit,) = db(api, "SELECT reason, detail FROM audit_log WHERE action = 'zone.create'")
    assert audit["reason"] == "court order as written"
    assert audit["detail"]["findings"] == audit["detail"]["overridden"] == ["zone_contains_offender_home"]
    sound = api.post(f"/v1/cases/{cid}/zones", headers=h, json={
        "order_id": oid, "name": "Her work", "kind": "exclusion", "geometry": circle(0, 0, 200), "buffer_m": 100,
        "schedule": None}).json()
    assert sound["findings"] == []
    # The case-wide check now sees the stored zone too.
    codes = [f["code"] for f in api.post(f"/v1/cases/{cid}/feasibility", headers=h, json={}).json()["findings"]]
    assert codes == ["zone_contains_offender_home"]


def test_an_implausibly_large_zone_is_refused_and_types_are_strict(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    h = director(api)
    oid = new_order(api, cid, "exclusion_zone")["id"]
    body = {"order_id": oid, "name": "Typo", "kind": "exclusion", "geometry": circle(0, 0, 60_000), "buffer_m": 0,
            "schedule": None}
    refused = assert_problem(api.post(f"/v1/cases/{cid}/zones", headers=h, json=body), 422, ["geometry"])
    assert [f["code"] for f in refused["findings"]] == ["zone_implausibly_large"]
    # A large but plausible zone is stored with a warning.
    big = api.post(f"/v1/cases/{cid}/zones", headers=h, json={**body, "geometry": circle(0, 0, 3_500)})
    assert big.status_code == 201 and [f["code"] for f in big.json()["findings"]] == ["zone_too_large"]
    # true is not a radius, a coordinate or a distance.
    for field, geometry, extra in [
        (["geometry", "radius_m"], {"type": "Circle", "center": [5.12, 52.09], "radius_m": True}, {}),
        (["geometry", "center"], {"type": "Circle", "center": [True, 52.09], "radius_m": 300}, {}),
        (["buffer_m"], circle(0, 0, 300), {"buffer_m": True}),
        (["buffer_m"], circle(0, 0, 300), {"buffer_m": "100"}),
    ]:
        assert_problem(api.post(f"/v1/cases/{cid}/zones", headers=h, json={**body, "geometry": geometry, **extra}),
                       422, field)
    assert_problem(api.put(f"/v1/cases/{cid}/addresses", headers=h, json={
        **ADDRESSES, "victim_home": {"lat": True, "lon": 5.12}}), 422, ["victim_home", "lat"])


def test_risk_screening_only_by_trained_staff_proposes_distances(api) -> None:  # type: ignore[no-untyped-def]
    cid = new_case(api)
    for sub in ("unregistered", "piet", "sara"):  # they reach the case; being SASH-trained is what is tested
        grant(api, cid, sub, "case_director")
    body = {"level": "high", "screened_on": "2026-02-01", "notes": "fixated, recent threats"}
    assert_problem(api.post(f"/v1/cases/{cid}/risk-screenings", headers=director(api, "unregistered"), json=body), 403)
    untrained = new_staff(api, "piet", "police")
    assert_problem(api.post(f"/v1/cases/{cid}/risk-screenings", headers=director(api, "piet"), json=body), 403)
    trained = new_staff(api, "sara", "police", "Sara", sash_trained=True)
    r = api.post(f"/v1/cases/{cid}/risk-screenings", headers=staff_headers(api, "contact_person", "sara"), json=body)
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["level"], s["screened_on"], s["assessor_id"], s["assessor_name"]) == ("high", "2026-02-01", trained["id"], "Sara")
    assert s["proposed_proximity"] == {"warn_m": 2000.0, "alert_m": 1000.0}
    # Training withdrawn: no more screenings by her.
    api.patch(f"/v1/staff/{trained['id']}", headers=admin(api), json={"sash_trained": False}).raise_for_status()
    assert_problem(api.post(f"/v1/cases/{cid}/risk-screenings", headers=director(api, "sara"), json=body), 403)
    api.patch(f"/v1/staff/{untrained['id']}", headers=admin(api), json={"sash_trained": True}).raise_for_status()
    low = api.post(f"/v1/cases/{cid}/risk-screenings", headers=director(api, "piet"),
                   json={"level": "low", "screened_on": "2026-03-01"}).json()
    listed = api.get(f"/v1/cases/{cid}/risk-screenings", headers=staff_headers(api, "operator")).json()["items"]
    assert [x["id"] for x in listed] == [low["id"], s["id"]]
    assert listed[0]["proposed_proximity"] == {"warn_m": 500.0, "alert_m": 250.0}
    # A proposal only: the case's distances are unchanged until staff set them.
    assert api.get(f"/v1/cases/{cid}", headers=director(api)).json()["proximity"] is None
    assert_problem(api.post(f"/v1/cases/{cid}/risk-screenings", headers=director(api, "piet"),
                            json={"level": "extreme", "screened_on": "2026-03-01"}), 422, ["level"])
    rows = db(api, "SELECT detail FROM audit_log WHERE action = 'risk.screen' ORDER BY chain_seq")
    assert [r["detail"]["level"] for r in rows] == ["high", "low"]
