"""Distances between fixes, victims and zones on the WGS84 ellipsoid.

Proximity uses the geodesic itself (``pyproj.Geod``). Polygon zones are projected once into a local azimuthal
equidistant projection anchored near the zone; within 100 km of its anchor that projection distorts distances by
less than 0.003 %, which keeps zones that straddle the Dutch-German or Dutch-Belgian border as exact as any other
(a national grid such as RD New does not). A circle is measured geodesically from its centre, which is what an
AEQD projection anchored at the centre would give, without a transformer per circle.
"""

from __future__ import annotations

import math
from functools import lru_cache

import shapely
from pyproj import Geod, Transformer
from shapely.geometry.base import BaseGeometry

from geofence.model import Circle

GEOD = Geod(ellps="WGS84")
_geod_inv = GEOD.inv

ANCHOR_GRID_DEG = 0.25  # zones whose centroids round to the same grid point share one transformer

# Conservative metres per degree for the cheap lon/lat prefilter: below the true length of a degree of
# latitude anywhere (110,574 m at the equator) and of a degree of longitude at the given latitude.
_M_PER_DEG_LOWER = 110_000.0


# Half the Earth's circumference: no circle on it is larger. A zone's radius beyond this is a mistake.
MAX_RADIUS_M = 20_000_000


def finite_number(v: object) -> bool:
    """A finite JSON number. ``true`` is not one although Python counts it as 1 (a zone with radius ``true`` is
    a client's mistake); a huge integer is one (comparisons with it are exact; convert only after a range check)."""
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and math.isfinite(v))


def geodesic_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return _geod_inv(lon1, lat1, lon2, lat2)[2]


@lru_cache(maxsize=None)
def local_projection(lon0: float, lat0: float) -> Transformer:
    """WGS84 lon/lat -> metres in an azimuthal equidistant projection centred on (lon0, lat0)."""
    return Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m", always_xy=True
    )


def anchor_for(lon: float, lat: float) -> tuple[float, float]:
    return (round(lon / ANCHOR_GRID_DEG) * ANCHOR_GRID_DEG, round(lat / ANCHOR_GRID_DEG) * ANCHOR_GRID_DEG)


def lonlat_gap_lower_m(lon: float, lat: float, bounds: tuple[float, float, float, float]) -> float:
    """A lower bound of the geodesic distance from (lon, lat) to any point of a lon/lat box.

    Used only to skip exact work for fixes far from every zone; it errs small, never large. The extra
    degree of latitude in the cosine covers geodesics bulging poleward between the two latitudes.
    """
    min_lon, min_lat, max_lon, max_lat = bounds
    dlat = max(min_lat - lat, lat - max_lat, 0.0)
    dlon = max(min_lon - lon, lon - max_lon, 0.0)
    if dlon == 0.0:
        return dlat * _M_PER_DEG_LOWER
    phi = min(max(abs(lat), abs(min_lat), abs(max_lat)) + 1.0, 89.0)
    return max(dlat, dlon * math.cos(math.radians(phi))) * _M_PER_DEG_LOWER


def lonlat_box_around(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box that surely contains every point within ``radius_m`` of (lon, lat)."""
    dlat = radius_m / _M_PER_DEG_LOWER
    phi = min(abs(lat) + dlat + 1.0, 89.0)
    dlon = radius_m / (_M_PER_DEG_LOWER * math.cos(math.radians(phi)))
    return (lon - dlon, lat - dlat, lon + dlon, lat + dlat)


class CircleShape:
    """A geodesic circle; signed distance = geodesic distance from the centre minus the radius."""

    __slots__ = ("lon", "lat", "radius_m", "lonlat_bounds")

    def __init__(self, circle: Circle) -> None:
        self.lon = circle.lon
        self.lat = circle.lat
        self.radius_m = circle.radius_m
        self.lonlat_bounds = lonlat_box_around(circle.lon, circle.lat, circle.radius_m)

    def signed_distance(self, lon: float, lat: float, reach_m: float) -> float:
        return _geod_inv(self.lon, self.lat, lon, lat)[2] - self.radius_m


class PolygonShape:
    """A (multi)polygon projected into the local AEQD frame of its anchor, prepared for repeated queries."""

    __slots__ = ("transformer", "geom", "boundary", "xy_bounds", "lonlat_bounds")

    def __init__(self, geom: BaseGeometry) -> None:
        centroid = geom.centroid
        self.transformer = local_projection(*anchor_for(centroid.x, centroid.y))
        # GeoJSON edges are straight in lon/lat; densify so they keep that shape after projection.
        dense = shapely.segmentize(geom, 0.01)
        self.geom = shapely.transform(dense, lambda xy: _project_array(self.transformer, xy))
        self.boundary = self.geom.boundary
        shapely.prepare(self.geom)
        shapely.prepare(self.boundary)
        self.xy_bounds = self.geom.bounds
        self.lonlat_bounds = geom.bounds

    def signed_distance(self, lon: float, lat: float, reach_m: float) -> float:
        """Negative inside (depth to the boundary), positive outside. When the projected bounding box already
        puts the point more than ``reach_m`` away, that box distance is returned: still a lower bound, and the
        caller only needs to know that it is beyond every threshold."""
        x, y = self.transformer.transform(lon, lat)
        min_x, min_y, max_x, max_y = self.xy_bounds
        gap = math.hypot(max(min_x - x, x - max_x, 0.0), max(min_y - y, y - max_y, 0.0))
        if gap > reach_m:
            return gap
        if shapely.contains_xy(self.geom, x, y):
            return -float(shapely.distance(self.boundary, shapely.Point(x, y)))
        return float(shapely.distance(self.geom, shapely.Point(x, y)))


def _project_array(transformer: Transformer, xy):
    x, y = transformer.transform(xy[:, 0], xy[:, 1])
    xy = xy.copy()
    xy[:, 0] = x
    xy[:, 1] = y
    return xy


def compile_shape(geometry: BaseGeometry | Circle) -> CircleShape | PolygonShape:
    if isinstance(geometry, Circle):
        return CircleShape(geometry)
    return PolygonShape(geometry)
