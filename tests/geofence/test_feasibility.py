"""The feasibility check on a hand-built map around Utrecht: each finding, and its absence when the ban is sound.

Pure unit tests of geofence/feasibility.py: points are placed in metres east/north of an origin, so every
distance in these tests is known by construction.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pyproj import Transformer

from geofence.feasibility import (
    BLOCKING, WARNING, Addresses, Limits, Point, ProposedOrder, ProposedProximity, ProposedZone, check,
)

LON0, LAT0 = 5.1214, 52.0907  # Utrecht Dom tower
_TO_LONLAT = Transformer.from_crs(f"+proj=aeqd +lat_0={LAT0} +lon_0={LON0} +datum=WGS84 +units=m", "EPSG:4326",
                                  always_xy=True)


def at(east_m: float, north_m: float) -> Point:
    lon, lat = _TO_LONLAT.transform(east_m, north_m)
    return Point(lon, lat)


def square(cx: float, cy: float, half: float) -> dict:
    ring = [at(cx - half, cy - half), at(cx + half, cy - half), at(cx + half, cy + half), at(cx - half, cy + half)]
    coords = [[p.lon, p.lat] for p in ring]
    return {"type": "Polygon", "coordinates": [coords + [coords[0]]]}


def circle(cx: float, cy: float, r: float) -> dict:
    c = at(cx, cy)
    return {"type": "Circle", "center": [c.lon, c.lat], "radius_m": r}


# The map: victim home at the origin, victim work 3 km north; offender home 600 m east, offender work 5 km west.
MAP = Addresses(victim_home=at(0, 0), victim_work=at(0, 3000), offender_home=at(600, 0), offender_work=at(-5000, 0))
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def zone(geometry: dict, kind: str = "exclusion", buffer_m: float = 0, schedule: dict | None = None,
         ref: str = "z1") -> ProposedZone:
    return ProposedZone(ref=ref, name="Home street", kind=kind, geometry=geometry, buffer_m=buffer_m, schedule=schedule)


def codes(findings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f.code: f.severity for f in findings}


def test_sound_ban_has_no_findings() -> None:
    findings = check(MAP, ProposedProximity(500, 250), [zone(square(0, 0, 200), buffer_m=150)],
                     [ProposedOrder("o1", "behavioural_order", T0, T0 + timedelta(days=90))])
    assert findings == []


def test_zone_containing_offender_home_is_blocking() -> None:
    (f,) = check(MAP, zones=[zone(square(300, 0, 400))])
    assert (f.severity, f.code, f.subject) == (BLOCKING, "zone_contains_offender_home", "zone:z1")
    assert "offender's home" in f.explanation and "Home street" in f.explanation


def test_zone_containing_offender_work_is_blocking() -> None:
    assert codes(check(MAP, zones=[zone(circle(-5000, 0, 300))])) == {"zone_contains_offender_work": BLOCKING}


def test_inclusion_zone_around_offender_home_is_expected_not_a_finding() -> None:
    assert check(MAP, zones=[zone(circle(600, 0, 150), kind="inclusion")]) == []


def test_buffer_covering_offender_home_is_a_warning() -> None:
    # The square reaches 400 m east; the offender lives 600 m east: a 250 m buffer covers his home, 150 m does not.
    (f,) = check(MAP, zones=[zone(square(0, 0, 400), buffer_m=250)])
    assert (f.severity, f.code) == (WARNING, "buffer_covers_offender_home")
    assert "every day" in f.explanation and "200 m" in f.explanation
    assert check(MAP, zones=[zone(square(0, 0, 400), buffer_m=150)]) == []


def test_contact_distance_larger_than_home_to_home_is_blocking() -> None:
    # The inspectorate's case: homes 600 m apart, a 1 km contact ban.
    found = check(MAP, ProposedProximity(1000, 1000))
    (f,) = [f for f in found if f.code == "contact_distance_exceeds_home_distance"]
    assert f.severity == BLOCKING and f.subject == "proximity"
    assert "600 m" in f.explanation and "1000 m" in f.explanation


def test_warning_ring_beyond_home_to_home_is_a_warning() -> None:
    assert codes(check(MAP, ProposedProximity(800, 400))) == {"warning_distance_exceeds_home_distance": WARNING}


def test_contact_distance_larger_than_home_to_work_is_blocking() -> None:
    # Victim's work is 3 km north of her home, 3.06 km from the offender's home; offender's work 5 km west.
    found = codes(check(Addresses(victim_work=at(0, 3000), offender_home=at(600, 0)), ProposedProximity(3500, 3200)))
    assert found == {"contact_distance_exceeds_home_work_distance": BLOCKING}
    found = codes(check(Addresses(victim_home=at(0, 0), offender_work=at(-5000, 0)), ProposedProximity(6000, 5500)))
    assert found == {"contact_distance_exceeds_home_work_distance": BLOCKING}


def test_circle_smaller_than_gps_accuracy_is_a_warning_and_threshold_is_configurable() -> None:
    (f,) = check(MAP, zones=[zone(circle(0, 0, 80))])
    assert (f.severity, f.code) == (WARNING, "zone_smaller_than_gps_accuracy") and "80 m" in f.explanation
    assert check(MAP, zones=[zone(circle(0, 0, 80))], limits=Limits(gps_accuracy_m=50)) == []


def test_narrow_polygon_smaller_than_gps_accuracy_is_a_warning() -> None:
    # A street 60 m wide and 1 km long: its half-width (30 m) is under the 100 m guaranteed accuracy.
    a, b, c, d = at(-500, -2030), at(500, -2030), at(500, -1970), at(-500, -1970)
    street = {"type": "Polygon", "coordinates": [[[p.lon, p.lat] for p in (a, b, c, d, a)]]}
    (f,) = check(MAP, zones=[zone(street)])
    assert f.code == "zone_smaller_than_gps_accuracy" and "half-width of 30 m" in f.explanation


def test_proximity_smaller_than_gps_accuracy_is_a_warning() -> None:
    assert codes(check(Addresses(), ProposedProximity(120, 60))) == {"distance_smaller_than_gps_accuracy": WARNING}


def test_self_intersecting_polygon_is_blocking_with_the_fault_location() -> None:
    a, b, c, d = at(0, 0), at(500, 500), at(500, 0), at(0, 500)
    bowtie = {"type": "Polygon", "coordinates": [[[p.lon, p.lat] for p in (a, b, c, d, a)]]}
    (f,) = check(MAP, zones=[zone(bowtie)])
    assert (f.severity, f.code) == (BLOCKING, "invalid_geometry")
    middle = at(250, 250)
    assert f.location is not None
    assert f.location == pytest.approx((middle.lon, middle.lat), abs=1e-4)
    assert "self-intersection" in f.explanation.lower() and f"{f.location[1]:.6f}" in f.explanation


@pytest.mark.parametrize("geometry, words", [
    ({"type": "Point", "coordinates": [5, 52]}, "Polygon or MultiPolygon"),
    ({"type": "Polygon", "coordinates": [[[5, 52], [5.1, 52], [5, 52]]]}, "at least 4 positions"),
    ({"type": "Polygon", "coordinates": [[[5, 52], [5.1, 52], [5.1, 52.1], [5, 52.1]]]}, "not closed"),
    ({"type": "Polygon", "coordinates": [[[5, 52], [500, 52], [5.1, 52.1], [5, 52]]]}, "position 1 of ring 0"),
    ({"type": "Circle", "center": [5, 52], "radius_m": -5}, "positive"),
    ({"type": "Circle", "center": [5, 52], "radius_m": True}, "positive"),  # true is not a number of metres
    ({"type": "Circle", "center": [True, 52], "radius_m": 500}, "center"),
    ({"type": "Circle", "center": [5, 52], "radius_m": 10 ** 400}, "at most 20,000 km"),  # no OverflowError
    ({"type": "Polygon", "coordinates": [[[5, 52], [False, 52], [5.1, 52.1], [5, 52]]]}, "position 1 of ring 0"),
])
def test_structurally_broken_geometry_is_blocking(geometry: dict, words: str) -> None:
    (f,) = check(MAP, zones=[zone(geometry)])
    assert f.code == "invalid_geometry" and f.severity == BLOCKING and words in f.explanation


def test_zone_larger_than_configured_area_is_a_warning() -> None:
    big = zone(square(0, -20_000, 3000))  # 6 km × 6 km = 36 km², far from every address
    (f,) = check(MAP, zones=[big])
    assert (f.severity, f.code) == (WARNING, "zone_too_large") and "36.0 km²" in f.explanation
    assert check(MAP, zones=[big], limits=Limits(max_zone_area_m2=40e6)) == []


def test_zone_larger_than_any_ban_can_mean_is_blocking() -> None:
    """Rule: a zone over the implausible area (10,000 km², a setting) is a mistake (swapped lon/lat, a radius
    typed in the wrong unit): blocking, and it replaces the zone_too_large warning."""
    huge = zone(circle(0, -200_000, 60_000))  # π × 60 km² ≈ 11,310 km²
    (f,) = check(MAP, zones=[huge])
    assert (f.severity, f.code) == (BLOCKING, "zone_implausibly_large") and "11,3" in f.explanation
    relaxed = check(MAP, zones=[huge], limits=Limits(implausible_zone_area_m2=20_000e6))
    assert [(g.severity, g.code) for g in relaxed] == [(WARNING, "zone_too_large")]


@pytest.mark.parametrize("schedule", [
    {"timezone": "Europe/Amsterdam", "windows": []},
    {"timezone": "Europe/Amsterdam", "windows": [{"days": ["mon"], "start": "22:00", "end": "22:00"}]},
    {"timezone": "Europe/Amsterdam", "windows": [{"days": [], "start": "22:00", "end": "06:00"}]},
])
def test_schedule_with_no_active_time_is_blocking(schedule: dict) -> None:
    (f,) = check(MAP, zones=[zone(square(0, 0, 200), schedule=schedule)])
    assert (f.severity, f.code) == (BLOCKING, "schedule_never_active")


def test_bad_schedule_is_blocking_and_a_night_schedule_is_fine() -> None:
    bad = {"timezone": "Mars/Olympus", "windows": [{"days": ["mon"], "start": "22:00", "end": "06:00"}]}
    assert codes(check(MAP, zones=[zone(square(0, 0, 200), schedule=bad)])) == {"invalid_schedule": BLOCKING}
    nights = {"timezone": "Europe/Amsterdam", "windows": [{"days": ["mon", "tue"], "start": "22:00", "end": "06:00"}]}
    assert check(MAP, zones=[zone(square(0, 0, 200), schedule=nights)]) == []


def test_behavioural_order_longer_than_90_days_is_blocking() -> None:
    (f,) = check(MAP, orders=[ProposedOrder("o1", "behavioural_order", T0, T0 + timedelta(days=120))])
    assert (f.severity, f.code, f.subject) == (BLOCKING, "order_exceeds_legal_maximum", "order:o1")
    assert "90 days" in f.explanation and "120.0 days" in f.explanation
    (g,) = check(MAP, orders=[ProposedOrder("o2", "behavioural_order", T0, None)])
    assert g.code == "order_exceeds_legal_maximum" and "no end date" in g.explanation
    assert check(MAP, orders=[ProposedOrder("o3", "protection_order", T0, T0 + timedelta(days=700))]) == []


def test_blocking_findings_come_first() -> None:
    found = check(MAP, ProposedProximity(800, 400), [zone(square(300, 0, 400), buffer_m=0)])
    assert [f.severity for f in found] == [BLOCKING, WARNING]
