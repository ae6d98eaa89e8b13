"""Turns the contract's zone JSON (GeoJSON Polygon / MultiPolygon or a Circle) into engine shapes.

Both the zone endpoints and the engine loader (api/monitoring/config.py) parse with these functions, so what is
stored the engine can run. A fault is a :class:`ZoneShapeError`, not an HTTP error: the endpoints answer it as a
422 naming the field, the loader needs no web framework."""

from __future__ import annotations

from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

from geofence.geometry import MAX_RADIUS_M, finite_number
from geofence.model import Circle, Schedule, Window


class ZoneShapeError(ValueError):
    """A zone's geometry or schedule that cannot be enforced as sent: ``loc`` names the field, ``msg`` says why."""

    def __init__(self, loc: list[str | int], msg: str) -> None:
        super().__init__(f"{'.'.join(map(str, loc))}: {msg}")
        self.loc = loc
        self.msg = msg


DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}


def _check_position(loc: list[str | int], lon: Any, lat: Any) -> None:
    if not (finite_number(lon) and finite_number(lat)):
        raise ZoneShapeError(loc, "coordinates must be finite numbers [lon, lat]")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ZoneShapeError(loc, "coordinates out of range: expected [lon, lat] with lon in [-180, 180], lat in [-90, 90]")


def parse_geometry(raw: dict[str, Any]) -> shapely.Geometry | Circle:
    """Validate and convert; a fault names the field and, for a bad polygon, where it is."""
    loc: list[str | int] = ["geometry"]
    kind = raw.get("type")
    if kind == "Circle":
        center = raw.get("center")
        radius = raw.get("radius_m")
        if not isinstance(center, list) or len(center) != 2:
            raise ZoneShapeError(loc + ["center"], "center must be [lon, lat]")
        _check_position(loc + ["center"], center[0], center[1])
        if not finite_number(radius) or not 0 < radius <= MAX_RADIUS_M:
            raise ZoneShapeError(loc + ["radius_m"], "radius_m must be a positive number of metres, at most 20,000 km")
        return Circle(lon=float(center[0]), lat=float(center[1]), radius_m=float(radius))
    if kind not in ("Polygon", "MultiPolygon"):
        raise ZoneShapeError(loc + ["type"], "geometry must be a GeoJSON Polygon or MultiPolygon, or a Circle")
    coords = raw.get("coordinates")
    polygons = [coords] if kind == "Polygon" else coords
    if not isinstance(polygons, list) or not polygons:
        raise ZoneShapeError(loc + ["coordinates"], "coordinates are missing")
    for pi, polygon in enumerate(polygons):
        if not isinstance(polygon, list) or not polygon:
            raise ZoneShapeError(loc + ["coordinates", pi], "a polygon needs at least one ring")
        for ri, ring in enumerate(polygon):
            ring_loc = loc + ["coordinates"] + ([pi] if kind == "MultiPolygon" else []) + [ri]
            if not isinstance(ring, list) or len(ring) < 4:
                raise ZoneShapeError(ring_loc, "a ring needs at least 4 positions")
            for i, pos in enumerate(ring):
                if not isinstance(pos, list) or len(pos) < 2:
                    raise ZoneShapeError(ring_loc + [i], "a position is [lon, lat]")
                _check_position(ring_loc + [i], pos[0], pos[1])
            if ring[0][:2] != ring[-1][:2]:
                raise ZoneShapeError(ring_loc, "a ring must be closed: its last position must equal its first")
    geom = shape(raw)
    if not geom.is_valid:
        raise ZoneShapeError(loc, f"invalid polygon: {explain_validity(geom)} (lon lat of the fault)")
    if geom.is_empty or geom.area == 0:
        raise ZoneShapeError(loc, "the polygon has no area")
    return geom


def _parse_time(loc: list[str | int], value: Any) -> time:
    try:
        hh, mm = str(value).split(":")
        return time(int(hh), int(mm))
    except (ValueError, TypeError):
        raise ZoneShapeError(loc, "time must be HH:MM") from None


def parse_schedule(raw: dict[str, Any] | None) -> Schedule | None:
    if raw is None:
        return None
    loc: list[str | int] = ["schedule"]
    tz = raw.get("timezone", "Europe/Amsterdam")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ZoneShapeError(loc + ["timezone"], f"unknown time zone {tz!r}") from None
    windows = raw.get("windows")
    if not isinstance(windows, list):
        raise ZoneShapeError(loc + ["windows"], "windows must be a list")
    parsed = []
    for i, w in enumerate(windows):
        wloc = loc + ["windows", i]
        if not isinstance(w, dict):
            raise ZoneShapeError(wloc, "a window is {days, start, end}")
        days = w.get("days")
        if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
            raise ZoneShapeError(wloc + ["days"], f"days must be a non-empty list of {', '.join(DAYS)}")
        start, end = _parse_time(wloc + ["start"], w.get("start")), _parse_time(wloc + ["end"], w.get("end"))
        if start == end:
            raise ZoneShapeError(wloc, "start and end are equal: the window has no active time")
        parsed.append(Window(days=frozenset(DAYS[d] for d in days), start=start, end=end))
    return Schedule(timezone=tz, windows=tuple(parsed))
