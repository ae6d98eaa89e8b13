"""Stepping down after a violation (geofence/RULES.md, R-HOLD-1 and R-HOLD-2)."""

from geofence import ChangeKind, Engine, Level

from tests.geofence.builders import T0, UTRECHT, at, exclusion_case, fix, home_circle, offset

# A home zone of 300 m radius with a 300 m buffer: violation inside (x <= 0, margin 50 m), warning in the
# buffer (x <= 300, margin 50 m). x is the distance to the zone's edge, so a point 300 + d m from the centre.


def edge(d: float):
    return offset(UTRECHT, 300 + d)


def run(track):
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=300), T0)
    _, changes = engine.process([fix("tag-1", t, edge(d)) for t, d in track])
    return [(c.change, c.level, c.fix_at) for c in changes]


def test_violation_deescalates_in_the_warning_band_and_clears_only_beyond_it():
    """R-HOLD-2, the case seen: 270 m into a 300 m buffer after a violation, then 30 s beyond 350 m. The episode
    steps down to warning after the hold beyond the violation margin and clears only after a full hold beyond
    the warning threshold plus margin, instead of clearing outright 60 s after the violation."""
    track = [(0, -100), (30, 270), (60, 270), (90, 400), (120, 400), (150, 400)]
    assert run(track) == [
        (ChangeKind.OPENED, Level.VIOLATION, at(0)),
        (ChangeKind.DEESCALATED, Level.WARNING, at(90)),  # 30..90 s beyond 0 + 50 m
        (ChangeKind.CLEARED, Level.WARNING, at(150)),  # 90..150 s beyond 300 + 50 m, not at 90 s
    ]


def test_every_reading_in_the_hold_counts_not_only_the_last():
    """R-HOLD-2: one reading back in the warning band restarts the hold towards clearing."""
    track = [(0, -100), (30, 400), (60, 400), (75, 200), (90, 400), (120, 400), (150, 400)]
    assert run(track) == [
        (ChangeKind.OPENED, Level.VIOLATION, at(0)),
        (ChangeKind.DEESCALATED, Level.WARNING, at(90)),  # beyond 50 m from 30 s on, 75 s included
        (ChangeKind.CLEARED, Level.WARNING, at(150)),  # beyond 350 m again only from 90 s on
    ]


def test_whole_hold_beyond_the_warning_band_clears_at_once():
    """R-HOLD-2: leaving fast clears the violation without a detour through warning."""
    assert run([(0, -100), (30, 1000), (60, 1000), (90, 1000)]) == [
        (ChangeKind.OPENED, Level.VIOLATION, at(0)), (ChangeKind.CLEARED, Level.VIOLATION, at(90))]


def test_hold_needs_sixty_seconds_and_two_readings():
    """R-HOLD-1: a single reading, or two within less than 60 s, do not step down."""
    assert run([(0, -100), (30, 1000), (80, 1000)]) == [(ChangeKind.OPENED, Level.VIOLATION, at(0))]


def test_staying_inside_the_margin_keeps_the_violation():
    """R-HOLD-1: 40 m outside the zone is within the 50 m margin: still a violation."""
    assert run([(0, -100)] + [(30 * k, 40) for k in range(1, 8)]) == [(ChangeKind.OPENED, Level.VIOLATION, at(0))]
