from datetime import datetime, time, timezone

from geofence import ChangeKind, Confidence, Engine, EngineSettings, Level, Schedule, Validity, Window

from tests.geofence.builders import (
    T0, UTRECHT, at, box, exclusion_case, fix, home_circle, inclusion_case, offset,
)


def test_exclusion_polygon_buffer_warning_then_inside_violation_then_clear():
    """R-ZONE-1, R-HOLD-2: buffer warning, inside violation, clear."""
    engine = Engine()
    engine.configure(exclusion_case(box(UTRECHT, 250), buffer_m=200), T0)
    track = [(0, -2000), (30, -400), (60, -100), (90, 1000), (120, 1000)]  # metres east of the centre
    _, changes = engine.process([fix("tag-1", t, offset(UTRECHT, e)) for t, e in track])
    assert [(c.change, c.level) for c in changes] == [(ChangeKind.OPENED, Level.WARNING),
                                                     (ChangeKind.ESCALATED, Level.VIOLATION)]
    assert changes[0].min_distance_m is not None and abs(changes[0].min_distance_m - 150) < 1
    # R-ZONE-1: inside the zone the distance is negative, the depth of the breach (100 m from the west edge).
    assert changes[1].confidence == Confidence.CONFIRMED and abs(changes[1].min_distance_m + 150) < 1
    _, changes = engine.process([fix("tag-1", 150, offset(UTRECHT, 1000))])
    assert [c.change for c in changes] == [ChangeKind.CLEARED] and changes[0].reason == "departed"


def test_offender_brushing_along_the_buffer_produces_one_episode():
    """R-HOLD-1: hysteresis keeps a brush along the buffer to one episode."""
    engine = Engine()
    engine.configure(exclusion_case(box(UTRECHT, 250), buffer_m=200), T0)
    # Walk north along the buffer edge (450 m west of the centre), wobbling 30 m either side of it.
    fixes = [fix("tag-1", 15 * i, offset(UTRECHT, -450 + (30 if i % 2 else -30), -200 + 7 * i), acc=8)
             for i in range(60)]
    _, changes = engine.process(fixes)
    assert [c.change for c in changes] == [ChangeKind.OPENED]
    assert changes[0].level == Level.WARNING
    _, changes = engine.process([fix("tag-1", 1000 + 30 * i, offset(UTRECHT, -1500)) for i in range(3)])
    assert [(c.change, c.reason) for c in changes] == [(ChangeKind.CLEARED, "departed")]


def test_circle_zone_is_measured_geodesically_from_its_centre():
    """R-GEO-1 and R-ZONE-1."""
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=500), T0)
    _, changes = engine.process([fix("tag-1", 0, offset(UTRECHT, 0, 700))])
    assert changes[0].level == Level.WARNING and abs(changes[0].min_distance_m - 400) < 0.01


def test_zone_not_in_force_is_not_evaluated():
    """R-EPI-2: a zone is judged only while its order is in force."""
    later = Validity("order-2", datetime(2024, 7, 1, tzinfo=timezone.utc))
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), validity=later), T0)
    _, changes = engine.process([fix("tag-1", 0, UTRECHT)])
    assert changes == []


def test_order_expiry_closes_episode_at_valid_until_by_tick_and_by_fix():
    """R-TICK-4: order expiry closes at valid_until. (His silence inside the zone, R-TICK-6, is left out.)"""
    until = at(100)
    validity = Validity("order-1", datetime(2024, 1, 1, tzinfo=timezone.utc), until)
    for by_tick in (True, False):
        engine = Engine(EngineSettings(near_silent_s=10**9))
        engine.configure(exclusion_case(home_circle(300), validity=validity), T0)
        engine.process([fix("tag-1", 0, UTRECHT)])
        if by_tick:
            assert engine.tick(at(99)) == []
            changes = engine.tick(at(130))
        else:
            _, changes = engine.process([fix("tag-1", 130, UTRECHT)])
        assert [(c.change, c.reason, c.fix_at) for c in changes] == [(ChangeKind.CLEARED, "order_expired", until)]
        assert engine.open_episodes() == []


def test_removed_zone_closes_its_episode():
    """R-EPI-2: a removed zone's episode closes (rule_removed)."""
    engine = Engine()
    config = exclusion_case(home_circle(300))
    engine.configure(config, T0)
    engine.process([fix("tag-1", 0, UTRECHT)])
    changes = engine.configure(exclusion_case(home_circle(300)).__class__(config.case_id, config.offender_devices),
                               at(50))
    assert [(c.change, c.reason) for c in changes] == [(ChangeKind.CLEARED, "rule_removed")]


CURFEW = Schedule("Europe/Amsterdam", (Window(frozenset(range(1, 8)), time(22, 0), time(6, 0)),))


def _zone_changes(changes):
    return [c for c in changes if c.zone_id is not None]  # the silent tag raises offender_silent too


def _curfew_night(day_utc: datetime, window_start_utc: datetime, expected_hours: float):
    """Offender outside at home time; the curfew (avondklok) window raises and clears with the window."""
    engine = Engine()
    engine.configure(inclusion_case(home_circle(100), CURFEW), day_utc)
    away = offset(UTRECHT, 2000)
    t0 = day_utc.timestamp() - T0.timestamp()
    engine.process([fix("tag-1", t0 + 3600 * 18, away)])  # 18:00 UTC: before the window, no breach
    assert engine.open_episodes() == []
    last = window_start_utc.timestamp() - T0.timestamp() - 60  # reporting until a minute before the window
    engine.process([fix("tag-1", last, away)])
    opened = _zone_changes(engine.tick(datetime.fromtimestamp(day_utc.timestamp() + 3600 * 22, timezone.utc)))
    assert [c.change for c in opened] == [ChangeKind.OPENED]
    assert opened[0].level == Level.VIOLATION and opened[0].kind.value == "zone_inclusion"
    assert _zone_changes(engine.tick(datetime.fromtimestamp(day_utc.timestamp() + 3600 * 23, timezone.utc))) == []
    ended = _zone_changes(engine.tick(datetime.fromtimestamp(day_utc.timestamp() + 3600 * 36, timezone.utc)))
    assert [(c.change, c.reason) for c in ended] == [(ChangeKind.CLEARED, "window_ended")]
    hours = (ended[0].fix_at - opened[0].fix_at).total_seconds() / 3600
    assert hours == expected_hours
    return opened[0].fix_at, ended[0].fix_at


def test_curfew_window_across_october_dst_change_lasts_nine_hours():
    """R-ZONE-3 and R-TICK-2."""
    start, end = _curfew_night(datetime(2024, 10, 26, tzinfo=timezone.utc),
                               datetime(2024, 10, 26, 20, 0, tzinfo=timezone.utc), 9)
    assert start == datetime(2024, 10, 26, 20, 0, tzinfo=timezone.utc)  # 22:00 CEST
    assert end == datetime(2024, 10, 27, 5, 0, tzinfo=timezone.utc)  # 06:00 CET


def test_curfew_window_across_march_dst_change_lasts_seven_hours():
    """R-ZONE-3 and R-TICK-2."""
    start, end = _curfew_night(datetime(2024, 3, 30, tzinfo=timezone.utc),
                               datetime(2024, 3, 30, 21, 0, tzinfo=timezone.utc), 7)
    assert start == datetime(2024, 3, 30, 21, 0, tzinfo=timezone.utc)  # 22:00 CET
    assert end == datetime(2024, 3, 31, 4, 0, tzinfo=timezone.utc)  # 06:00 CEST


def test_inclusion_fix_outside_during_window_violates_and_inside_is_calm():
    """R-ZONE-2 and R-ZONE-1."""
    engine = Engine()
    night = datetime(2024, 6, 3, 21, 0, tzinfo=timezone.utc)  # 23:00 in Amsterdam
    engine.configure(inclusion_case(home_circle(100), CURFEW), night)
    base = night.timestamp() - T0.timestamp()
    _, changes = engine.process([fix("tag-1", base, UTRECHT), fix("tag-1", base + 30, offset(UTRECHT, 60), 50)])
    assert changes == []  # centre inside: not a breach, even with a large accuracy radius
    _, changes = engine.process([fix("tag-1", base + 60, offset(UTRECHT, 500))])
    assert [(c.change, c.confidence) for c in changes] == [(ChangeKind.OPENED, Confidence.CONFIRMED)]
    assert abs(changes[0].min_distance_m + 400) < 0.01  # R-ZONE-1: 400 m outside the home
    _, changes = engine.process([fix("tag-1", base + t, UTRECHT) for t in (90, 120, 150)])
    assert [(c.change, c.reason) for c in changes] == [(ChangeKind.CLEARED, "departed")]


def test_inclusion_window_outside_schedule_is_not_evaluated():
    """R-ZONE-3: outside its windows a curfew is not judged."""
    engine = Engine()
    engine.configure(inclusion_case(home_circle(100), CURFEW), T0)  # 14:00 in Amsterdam
    _, changes = engine.process([fix("tag-1", 0, offset(UTRECHT, 5000))])
    assert changes == []


def test_cleared_curfew_alert_keeps_minus_the_furthest_distance_outside():
    """R-ZONE-1: the readings inside the home during the hold do not turn the distance into 0."""
    engine = Engine()
    night = datetime(2024, 6, 3, 21, 0, tzinfo=timezone.utc)  # 23:00 in Amsterdam
    engine.configure(inclusion_case(home_circle(100), CURFEW), night)
    base = night.timestamp() - T0.timestamp()
    track = [(0, 500), (30, 700), (60, 300), (90, 0), (120, 0), (150, 0)]  # metres from the home's centre
    _, changes = engine.process([fix("tag-1", base + t, offset(UTRECHT, d)) for t, d in track])
    assert [c.change for c in changes] == [ChangeKind.OPENED, ChangeKind.CLEARED]
    assert abs(changes[-1].min_distance_m + 600) < 0.01  # 700 m from the centre, 600 m outside the home


def test_curfew_window_is_not_judged_on_a_position_older_than_a_few_reporting_intervals():
    """R-TICK-2: the tag's newest fix is 20 minutes older than the window's start: no breach from the clock
    (silence is what it tells); a fix inside the window decides as usual."""
    engine = Engine()
    start = datetime(2024, 6, 3, 20, 0, tzinfo=timezone.utc)  # 22:00 in Amsterdam
    engine.configure(inclusion_case(home_circle(100), CURFEW), start)
    away = offset(UTRECHT, 2000)
    base = start.timestamp() - T0.timestamp()
    engine.process([fix("tag-1", base - 1200, away)])
    assert _zone_changes(engine.tick(datetime.fromtimestamp(start.timestamp() + 5, timezone.utc))) == []
    _, changes = engine.process([fix("tag-1", base + 30, away)])
    assert [(c.change, c.fix_at) for c in _zone_changes(changes)] == [(ChangeKind.OPENED, at(base + 30))]
    # 170 s old is fresh enough: the window's start is a breach from the start.
    fresh = Engine()
    fresh.configure(inclusion_case(home_circle(100), CURFEW), start)
    fresh.process([fix("tag-1", base - 170, away)])
    opened = _zone_changes(fresh.tick(datetime.fromtimestamp(start.timestamp() + 5, timezone.utc)))
    assert [(c.change, c.fix_at) for c in opened] == [(ChangeKind.OPENED, start)]
