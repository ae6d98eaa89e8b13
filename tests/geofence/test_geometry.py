"""The maths against pyproj.Geod: within max(1 m, 0.1 %) up to 50 km anywhere in lat 35-71, lon -10-40."""

import math

import numpy
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod, Transformer
from shapely.geometry import Polygon

from geofence import Circle, Engine, Level
from geofence.geometry import CircleShape, PolygonShape, geodesic_m, lonlat_gap_lower_m

from tests.geofence.builders import T0, exclusion_case, fix

GEOD = Geod(ellps="WGS84")
lons = st.floats(min_value=-10, max_value=40)
lats = st.floats(min_value=35, max_value=71)
azimuths = st.floats(min_value=-180, max_value=180)
distances = st.floats(min_value=0, max_value=50_000)


def tolerance(d):
    return max(1.0, 0.001 * d)


def tiny_square(lon, lat, half_m=0.05):
    return Polygon([GEOD.fwd(lon, lat, az, half_m * math.sqrt(2))[:2] for az in (45, 135, 225, 315)])


@settings(max_examples=200, deadline=None)
@given(lons, lats, azimuths, distances)
def test_distance_to_a_tiny_polygon_matches_the_geodesic(lon, lat, azimuth, distance):
    """A zone projected into its local AEQD frame measures distances like Geod does."""
    shape = PolygonShape(tiny_square(lon, lat))
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, distance)
    sd = shape.signed_distance(lon2, lat2, math.inf)
    assert abs(sd - distance) <= tolerance(distance) + 0.1


@settings(max_examples=200, deadline=None)
@given(lons, lats, azimuths, distances, st.floats(min_value=10, max_value=20_000))
def test_circle_signed_distance_matches_the_geodesic(lon, lat, azimuth, distance, radius):
    """R-GEO-1: a circle is measured geodesically from its centre."""
    shape = CircleShape(Circle(lon, lat, radius))
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, distance)
    assert abs(shape.signed_distance(lon2, lat2, math.inf) - (distance - radius)) <= tolerance(distance)
    assert abs(geodesic_m(lon, lat, lon2, lat2) - distance) <= 1e-3


@settings(max_examples=200, deadline=None)
@given(lons, lats, azimuths, distances)
def test_lonlat_prefilter_never_overestimates(lon, lat, azimuth, distance):
    """R-GEO-2: the cheap lon/lat prefilter errs small, never large."""
    shape = PolygonShape(tiny_square(lon, lat, 20))
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, distance)
    assert lonlat_gap_lower_m(lon2, lat2, shape.lonlat_bounds) <= max(shape.signed_distance(lon2, lat2, math.inf), 0) + 1


def _locally_projected(polygon: Polygon, lon0: float, lat0: float):
    to_local = Transformer.from_crs("EPSG:4326", f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84",
                                    always_xy=True)
    return shapely.transform(shapely.segmentize(polygon, 0.001), lambda xy: _apply(to_local, xy)), to_local


def _apply(transformer, xy):
    x, y = transformer.transform(xy[:, 0], xy[:, 1])
    return numpy.column_stack([x, y])


BORDER_ZONES = {
    # A zone around Kerkrade/Herzogenrath, straddling the Dutch-German border.
    "nl_de": Polygon([(6.03, 50.85), (6.12, 50.84), (6.14, 50.89), (6.05, 50.91)]),
    # Baarle-Nassau/Baarle-Hertog, straddling the Dutch-Belgian border.
    "nl_be": Polygon([(4.88, 51.42), (4.96, 51.42), (4.97, 51.46), (4.90, 51.47)]),
}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(BORDER_ZONES)), st.floats(-0.1, 0.1), st.floats(-0.1, 0.1))
def test_border_zones_inside_outside_and_distance_match_a_projection_centred_on_the_point(name, dlon, dlat):
    """R-GEO-1: a polygon near a border is as exact as any other."""
    polygon = BORDER_ZONES[name]
    lon, lat = polygon.centroid.x + dlon, polygon.centroid.y + dlat
    local, to_local = _locally_projected(polygon, lon, lat)  # AEQD at the point itself: exact from there
    expected = local.distance(shapely.Point(0, 0)) if not local.contains(shapely.Point(0, 0)) else \
        -local.boundary.distance(shapely.Point(0, 0))
    actual = PolygonShape(polygon).signed_distance(lon, lat, math.inf)
    assert abs(actual - expected) <= tolerance(abs(expected))
    if abs(expected) > 1:
        assert (actual < 0) == (expected < 0)


def test_engine_raises_a_violation_inside_a_border_zone_on_either_side():
    """R-GEO-1 and R-EPI-1."""
    for name, polygon in BORDER_ZONES.items():
        engine = Engine()
        engine.configure(exclusion_case(polygon, buffer_m=200), T0)
        inside_points = [(polygon.centroid.x - 0.01, polygon.centroid.y), (polygon.centroid.x + 0.01,
                                                                          polygon.centroid.y)]
        for i, (lon, lat) in enumerate(inside_points):
            _, changes = engine.process([fix("tag-1", 1000 * i, (lon, lat))])
            assert [c.level for c in changes] in ([Level.VIOLATION], []), name
        assert engine.open_episodes()[0].level == Level.VIOLATION
