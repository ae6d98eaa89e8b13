"""Small builders for hand-made tracks: positions placed by geodesic bearing and distance (pyproj.Geod.fwd)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

from pyproj import Geod
from shapely.geometry import Polygon

from geofence import (
    CaseConfig, Circle, ExclusionZone, Fix, InclusionZone, Party, ProximityRule, Schedule, Validity,
)

GEOD = Geod(ellps="WGS84")
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=timezone.utc)  # a Monday
UTRECHT = (5.1214, 52.0907)
ALWAYS = Validity("order-1", datetime(2024, 1, 1, tzinfo=timezone.utc))
_ids = count(1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def offset(origin: tuple[float, float], east_m: float = 0.0, north_m: float = 0.0) -> tuple[float, float]:
    """(lon, lat) at the given metres east and north of origin."""
    lon, lat, _ = GEOD.fwd(origin[0], origin[1], 90.0, east_m)
    lon, lat, _ = GEOD.fwd(lon, lat, 0.0, north_m)
    return lon, lat


def fix(device: str, t: float, pos: tuple[float, float], acc: float = 5.0, case: str = "case-1",
        party: Party | None = None, received: float | None = None, fix_id: str | None = None) -> Fix:
    party = party or (Party.OFFENDER if device.startswith("tag") else Party.VICTIM)
    return Fix(fix_id or str(next(_ids)), device, case, party, at(t), at(t if received is None else received),
               pos[1], pos[0], acc)


def box(center: tuple[float, float], half_m: float) -> Polygon:
    corners = [offset(center, e, n) for e, n in ((-half_m, -half_m), (half_m, -half_m), (half_m, half_m),
                                                  (-half_m, half_m))]
    return Polygon(corners)


def proximity_case(warn_m: float = 1000, alert_m: float = 500, validity: Validity = ALWAYS) -> CaseConfig:
    return CaseConfig("case-1", frozenset({"tag-1"}), frozenset({"phone-1"}),
                      ProximityRule("rule-1", warn_m, alert_m, validity))


def exclusion_case(geometry, buffer_m: float = 200, validity: Validity = ALWAYS,
                   schedule: Schedule | None = None) -> CaseConfig:
    zone = ExclusionZone("zone-1", geometry, buffer_m, validity, schedule)
    return CaseConfig("case-1", frozenset({"tag-1"}), frozenset({"phone-1"}), None, (zone,))


def inclusion_case(geometry, schedule: Schedule | None, validity: Validity = ALWAYS) -> CaseConfig:
    zone = InclusionZone("home", geometry, schedule, validity)
    return CaseConfig("case-1", frozenset({"tag-1"}), frozenset(), None, (zone,))


def home_circle(radius_m: float = 100) -> Circle:
    return Circle(UTRECHT[0], UTRECHT[1], radius_m)
