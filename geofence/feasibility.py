"""Can a ban be enforced? Checks proposed proximity rules, zones and orders against the parties' addresses.

Pure: plain data in, findings out; no I/O, no clock. The API (api/cases/feasibility.py) builds the inputs from a
request or from what a case holds, and the zone route runs the same check when a zone is stored.

Distances between points are geodesic; zones are projected into the local azimuthal equidistant frame of
``geofence.geometry.local_projection`` (the engine's own), anchored at the middle of everything checked.
Each finding has a severity (``blocking``: the ban cannot be enforced as written; ``warning``: it can, at a
cost), the subject it concerns, a stable ``code`` and an explanation an order-writer understands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import shapely
from shapely.geometry import Point as _ShapelyPoint
from shapely.geometry import shape

from geofence.geometry import MAX_RADIUS_M, finite_number, geodesic_m, local_projection

BLOCKING = "blocking"
WARNING = "warning"
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FAULT_AT = re.compile(r"\[\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s*\]")


@dataclass(frozen=True)
class Point:
    lon: float
    lat: float


@dataclass(frozen=True)
class Addresses:
    offender_home: Point | None = None
    offender_work: Point | None = None
    victim_home: Point | None = None
    victim_work: Point | None = None


@dataclass(frozen=True)
class ProposedProximity:
    warn_m: float
    alert_m: float


@dataclass(frozen=True)
class ProposedZone:
    ref: str
    name: str
    kind: str  # "exclusion" | "inclusion"
    geometry: Mapping[str, Any]
    buffer_m: float = 0.0
    schedule: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ProposedOrder:
    ref: str
    kind: str
    valid_from: datetime
    valid_until: datetime | None


@dataclass(frozen=True)
class Limits:
    gps_accuracy_m: float = 100.0
    max_zone_area_m2: float = 25_000_000.0  # 25 km²: larger is a warning (zone_too_large)
    implausible_zone_area_m2: float = 10_000_000_000.0  # 10,000 km²: larger is blocking (zone_implausibly_large)
    order_max: Mapping[str, timedelta] = field(default_factory=lambda: {"behavioural_order": timedelta(days=90)})


@dataclass(frozen=True)
class Finding:
    severity: str
    subject: str
    code: str
    explanation: str
    location: tuple[float, float] | None = None


_ADDRESS_WORDS = {
    "offender_home": "the offender's home", "offender_work": "the offender's work",
    "victim_home": "the victim's home", "victim_work": "the victim's work",
}


def check(
    addresses: Addresses,
    proximity: ProposedProximity | None = None,
    zones: Sequence[ProposedZone] = (),
    orders: Sequence[ProposedOrder] = (),
    limits: Limits = Limits(),
) -> list[Finding]:
    """Every finding for this proposal: blocking first, then by subject in input order."""
    findings: list[Finding] = []
    parsed = [(z, _parse(z, findings)) for z in zones]
    anchor = _anchor(addresses, [g for _, g in parsed if g is not None])
    if proximity is not None:
        findings += _check_proximity(addresses, proximity, limits)
    for z, lonlat in parsed:
        if lonlat is not None:
            findings += _check_zone(z, lonlat, addresses, anchor, limits)
        findings += _check_schedule(z)
    for o in orders:
        findings += _check_order(o, limits)
    return sorted(findings, key=lambda f: f.severity != BLOCKING)  # stable: input order kept within a severity


# ---------------------------------------------------------------- proximity

def _check_proximity(a: Addresses, p: ProposedProximity, limits: Limits) -> list[Finding]:
    out: list[Finding] = []
    if p.alert_m < limits.gps_accuracy_m:
        out.append(Finding(WARNING, "proximity", "distance_smaller_than_gps_accuracy",
                           f"The contact ban's alert distance ({p.alert_m:.0f} m) is smaller than the GPS accuracy the "
                           f"monitoring can guarantee ({limits.gps_accuracy_m:.0f} m): violations cannot be told apart "
                           "from measurement error."))
    pairs = [("victim_home", "offender_home", "home_distance"), ("victim_work", "offender_home", "home_work_distance"),
             ("victim_home", "offender_work", "home_work_distance"), ("victim_work", "offender_work", "work_distance")]
    for vk, ok, suffix in pairs:
        v, o = getattr(a, vk), getattr(a, ok)
        if v is None or o is None:
            continue
        d = geodesic_m(v.lon, v.lat, o.lon, o.lat)
        where = f"{_ADDRESS_WORDS[vk]} and {_ADDRESS_WORDS[ok]}"
        if p.alert_m > d:
            out.append(Finding(BLOCKING, "proximity", f"contact_distance_exceeds_{suffix}",
                               f"The contact ban's alert distance ({p.alert_m:.0f} m) is larger than the distance between "
                               f"{where} ({d:.0f} m): the offender would violate the ban by being at "
                               f"{_ADDRESS_WORDS[ok].removeprefix('the ')} while the victim is at "
                               f"{_ADDRESS_WORDS[vk].removeprefix('the ')}."))
        elif p.warn_m > d:
            out.append(Finding(WARNING, "proximity", f"warning_distance_exceeds_{suffix}",
                               f"The contact ban's warning distance ({p.warn_m:.0f} m) is larger than the distance between "
                               f"{where} ({d:.0f} m): the monitoring room would get a warning every time both are there."))
    return out


# ---------------------------------------------------------------- zones

def _subject(z: ProposedZone) -> str:
    return f"zone:{z.ref}"


def _invalid(z: ProposedZone, msg: str, location: tuple[float, float] | None = None) -> Finding:
    where = f" at lon {location[0]:.6f}, lat {location[1]:.6f}" if location else ""
    return Finding(BLOCKING, _subject(z), "invalid_geometry",
                   f"Zone '{z.name}' has an invalid shape{where}: {msg}. The monitoring cannot test positions against it.",
                   location)


def _finite_position(pos: Any) -> bool:
    return (isinstance(pos, (list, tuple)) and len(pos) >= 2 and all(finite_number(v) for v in pos[:2])
            and -180 <= pos[0] <= 180 and -90 <= pos[1] <= 90)


def _parse(z: ProposedZone, findings: list[Finding]) -> Any:
    """The zone as lon/lat shapely geometry, or a circle ``("circle", Point, radius)``; None (with a finding) when
    the geometry is broken."""
    g = z.geometry
    kind = g.get("type") if isinstance(g, Mapping) else None
    if kind == "Circle":
        center, radius = g.get("center"), g.get("radius_m")
        if not _finite_position(center):
            findings.append(_invalid(z, "the circle's center must be [lon, lat] within range"))
            return None
        if not finite_number(radius) or not 0 < radius <= MAX_RADIUS_M:
            findings.append(_invalid(z, "the circle's radius_m must be a positive number of metres, at most 20,000 km",
                                     (float(center[0]), float(center[1]))))
            return None
        return ("circle", Point(float(center[0]), float(center[1])), float(radius))
    if kind not in ("Polygon", "MultiPolygon"):
        findings.append(_invalid(z, "the geometry must be a GeoJSON Polygon or MultiPolygon, or a Circle"))
        return None
    coords = g.get("coordinates")
    polygons = [coords] if kind == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        findings.append(_invalid(z, "the coordinates are missing"))
        return None
    for pi, polygon in enumerate(polygons):
        if not isinstance(polygon, list) or not polygon:
            findings.append(_invalid(z, f"polygon {pi} has no rings"))
            return None
        for ri, ring in enumerate(polygon):
            label = f"ring {ri}" + (f" of polygon {pi}" if kind == "MultiPolygon" else "")
            if not isinstance(ring, list) or len(ring) < 4:
                findings.append(_invalid(z, f"{label} needs at least 4 positions"))
                return None
            for i, pos in enumerate(ring):
                if not _finite_position(pos):
                    findings.append(_invalid(z, f"position {i} of {label} is not a valid [lon, lat]"))
                    return None
            if list(ring[0][:2]) != list(ring[-1][:2]):
                findings.append(_invalid(z, f"{label} is not closed (its last position must equal its first)",
                                         (float(ring[-1][0]), float(ring[-1][1]))))
                return None
    geom = shape(g)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        m = _FAULT_AT.search(reason)
        loc = (float(m.group(1)), float(m.group(2))) if m else None
        findings.append(_invalid(z, _FAULT_AT.sub("", reason).strip().lower(), loc))
        return None
    if geom.is_empty or geom.area == 0:
        findings.append(_invalid(z, "the polygon has no area"))
        return None
    return geom


def _anchor(a: Addresses, geoms: list[Any]) -> tuple[float, float]:
    pts = [p for p in (a.offender_home, a.offender_work, a.victim_home, a.victim_work) if p is not None]
    for g in geoms:
        if isinstance(g, tuple):
            pts.append(g[1])
        else:
            c = g.centroid
            pts.append(Point(c.x, c.y))
    if not pts:
        return (0.0, 0.0)
    return (sum(p.lon for p in pts) / len(pts), sum(p.lat for p in pts) / len(pts))


def _project(geom: Any, anchor: tuple[float, float]) -> Any:
    tr = local_projection(*anchor)
    if isinstance(geom, tuple):
        _, c, r = geom
        x, y = tr.transform(c.lon, c.lat)
        return _ShapelyPoint(x, y).buffer(r, quad_segs=32)

    def fn(xy: np.ndarray) -> np.ndarray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(shapely.segmentize(geom, 0.001), fn)


def _inscribed_radius(geom: Any) -> float:
    """The radius of the largest circle inside the zone's smallest part: how narrow the zone is."""
    parts = getattr(geom, "geoms", [geom])
    return min(shapely.maximum_inscribed_circle(p, tolerance=1.0).length for p in parts)


def _check_zone(z: ProposedZone, lonlat: Any, a: Addresses, anchor: tuple[float, float], limits: Limits) -> list[Finding]:
    out: list[Finding] = []
    subject = _subject(z)
    metres = _project(lonlat, anchor)
    tr = local_projection(*anchor)
    if z.kind == "exclusion":
        for key in ("offender_home", "offender_work"):
            p = getattr(a, key)
            if p is None:
                continue
            xy = _ShapelyPoint(*tr.transform(p.lon, p.lat))
            what = _ADDRESS_WORDS[key]
            if metres.covers(xy):
                out.append(Finding(BLOCKING, subject, f"zone_contains_{key}",
                                   f"Exclusion zone '{z.name}' contains {what}: the offender would violate the ban "
                                   "simply by being there."))
            elif z.buffer_m > 0 and metres.distance(xy) <= z.buffer_m:
                out.append(Finding(WARNING, subject, f"buffer_covers_{key}",
                                   f"The {z.buffer_m:.0f} m approach buffer of exclusion zone '{z.name}' covers {what} "
                                   f"({metres.distance(xy):.0f} m from the zone): the monitoring room would get an "
                                   "approach warning every day."))
    if isinstance(lonlat, tuple):
        size_m, what = lonlat[2], "radius"
    else:
        size_m, what = _inscribed_radius(metres), "narrowest half-width"
    if size_m < limits.gps_accuracy_m:
        out.append(Finding(WARNING, subject, "zone_smaller_than_gps_accuracy",
                           f"Zone '{z.name}' has a {what} of {size_m:.0f} m, smaller than the GPS accuracy the monitoring "
                           f"can guarantee ({limits.gps_accuracy_m:.0f} m): entries cannot be told apart from "
                           "measurement error."))
    area = metres.area
    if area > limits.implausible_zone_area_m2:
        # Rule: no ban covers a province. A zone this large is a typing mistake (longitude and latitude swapped,
        # a radius in metres typed as kilometres); enforcing it would flood the monitoring room or protect nobody.
        out.append(Finding(BLOCKING, subject, "zone_implausibly_large",
                           f"Zone '{z.name}' covers {area / 1e6:,.0f} km², more than the {limits.implausible_zone_area_m2 / 1e6:,.0f} km² "
                           "any ban can mean: check the coordinates (longitude and latitude swapped?) and the radius."))
    elif area > limits.max_zone_area_m2:
        out.append(Finding(WARNING, subject, "zone_too_large",
                           f"Zone '{z.name}' covers {area / 1e6:.1f} km², more than the {limits.max_zone_area_m2 / 1e6:.1f} km² "
                           "the monitoring is set up for: check that the area is what the order means."))
    return out


def _check_schedule(z: ProposedZone) -> list[Finding]:
    s = z.schedule
    if s is None:
        return []
    subject = _subject(z)

    def bad(msg: str) -> list[Finding]:
        return [Finding(BLOCKING, subject, "invalid_schedule", f"The schedule of zone '{z.name}' is invalid: {msg}.")]

    tz = s.get("timezone", "Europe/Amsterdam") if isinstance(s, Mapping) else None
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return bad(f"unknown time zone {tz!r}")
    windows = s.get("windows")
    if not isinstance(windows, list):
        return bad("windows must be a list")
    active = 0
    for i, w in enumerate(windows):
        if not isinstance(w, Mapping):
            return bad(f"window {i} must be {{days, start, end}}")
        days = w.get("days")
        if not isinstance(days, list) or any(d not in _DAYS for d in days):
            return bad(f"window {i}: days must be a list of {', '.join(_DAYS)}")
        try:
            start, end = (_minutes(w.get(k)) for k in ("start", "end"))
        except ValueError:
            return bad(f"window {i}: start and end must be HH:MM")
        if days and start != end:
            active += 1
    if active == 0:
        return [Finding(BLOCKING, subject, "schedule_never_active",
                        f"The schedule of zone '{z.name}' has no active time (no window with days and a start "
                        "different from its end): the zone would never be enforced.")]
    return []


def _minutes(value: Any) -> int:
    hh, mm = str(value).split(":")
    h, m = int(hh), int(mm)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(value)
    return h * 60 + m


# ---------------------------------------------------------------- orders

def _check_order(o: ProposedOrder, limits: Limits) -> list[Finding]:
    subject = f"order:{o.ref}"
    if o.valid_until is not None and o.valid_until <= o.valid_from:
        return [Finding(BLOCKING, subject, "order_ends_before_it_starts",
                        "The order ends before it starts: it would never protect anyone.")]
    maximum = limits.order_max.get(o.kind)
    if maximum is None:
        return []
    max_days = maximum / timedelta(days=1)
    if o.valid_until is None:
        return [Finding(BLOCKING, subject, "order_exceeds_legal_maximum",
                        f"A {o.kind.replace('_', ' ')} runs at most {max_days:.0f} days per period, but this one has "
                        "no end date.")]
    if o.valid_until - o.valid_from > maximum:
        days = (o.valid_until - o.valid_from) / timedelta(days=1)
        return [Finding(BLOCKING, subject, "order_exceeds_legal_maximum",
                        f"A {o.kind.replace('_', ' ')} runs at most {max_days:.0f} days per period; this one runs "
                        f"{days:.1f} days. Impose it for at most {max_days:.0f} days and extend it when that is granted.")]
    return []
