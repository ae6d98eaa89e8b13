import math

from geofence import ChangeKind, Engine, FixStatus, Level

from tests.geofence.builders import T0, UTRECHT, at, exclusion_case, fix, home_circle, offset, proximity_case


def make_engine():
    engine = Engine()
    engine.configure(proximity_case(), T0)
    return engine


def test_duplicate_future_and_invalid_fixes():
    """R-QUAL-1."""
    engine = make_engine()
    good = fix("tag-1", 0, UTRECHT)
    same_time = fix("tag-1", 0, offset(UTRECHT, 10))
    future = fix("tag-1", 400, UTRECHT, received=0)
    near_future = fix("tag-1", 290, UTRECHT, received=0)
    bad = [fix("tag-1", 10, (UTRECHT[0], 91.0)), fix("tag-1", 11, (181.0, UTRECHT[1])),
           fix("tag-1", 12, (math.nan, UTRECHT[1])), fix("tag-1", 13, UTRECHT, acc=0),
           fix("tag-1", 14, UTRECHT, acc=math.inf)]
    verdicts, _ = engine.process([good, same_time, future, near_future, *bad])
    assert [(v.status, v.reason) for v in verdicts] == [
        (FixStatus.ACCEPTED, None), (FixStatus.DUPLICATE, None), (FixStatus.REJECTED, "future"),
        (FixStatus.ACCEPTED, None),
        (FixStatus.REJECTED, "coordinates_out_of_range"), (FixStatus.REJECTED, "coordinates_out_of_range"),
        (FixStatus.REJECTED, "non_finite"), (FixStatus.REJECTED, "invalid_accuracy"),
        (FixStatus.REJECTED, "non_finite"),
    ]


def test_gps_jitter_is_not_an_outlier():
    """R-QUAL-2: the speed check gives both accuracy radii the benefit of the doubt."""
    engine = make_engine()
    verdicts, _ = engine.process([fix("tag-1", 0, UTRECHT, acc=40), fix("tag-1", 1, offset(UTRECHT, 120), acc=40)])
    assert [v.status for v in verdicts] == [FixStatus.ACCEPTED, FixStatus.ACCEPTED]


def test_single_50_km_spike_stays_an_outlier_and_is_not_evaluated():
    """R-QUAL-2: a jump followed by a return is a spike."""
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=200), T0)
    far_home = offset(UTRECHT, 50_000)
    # The tag is far from the zone; a single bogus fix lands on the zone.
    fixes = [fix("tag-1", 0, far_home), fix("tag-1", 30, UTRECHT), fix("tag-1", 60, far_home),
             fix("tag-1", 90, far_home)]
    verdicts, changes = engine.process(fixes)
    assert [v.status for v in verdicts] == [FixStatus.ACCEPTED, FixStatus.OUTLIER, FixStatus.ACCEPTED,
                                            FixStatus.ACCEPTED]
    assert verdicts[1].reason == "implied_speed"
    assert changes == []


def test_50_km_jump_confirmed_by_following_fixes_is_evaluated_in_order():
    """R-QUAL-2: a real trip is confirmed by the fixes after it."""
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=200), T0)
    start = offset(UTRECHT, 50_000)
    fixes = [fix("tag-1", 0, start), fix("tag-1", 60, UTRECHT), fix("tag-1", 90, offset(UTRECHT, 20)),
             fix("tag-1", 120, offset(UTRECHT, 40))]
    verdicts, changes = engine.process(fixes)
    assert [v.status for v in verdicts] == [FixStatus.ACCEPTED, FixStatus.OUTLIER, FixStatus.OUTLIER,
                                            FixStatus.ACCEPTED]
    # A real trip is never lost: the episode opens at the first fix of the confirmed chain.
    assert [(c.change, c.level, c.fix_at) for c in changes] == [(ChangeKind.OPENED, Level.VIOLATION, at(60))]
    assert changes[0].evidence == (fixes[1].fix_id,)


def test_outliers_of_the_victim_are_not_used_for_pairing():
    """R-QUAL-2 and R-PAIR-1: only good fixes are counterparts."""
    engine = make_engine()
    engine.process([fix("phone-1", 0, offset(UTRECHT, 60_000)), fix("phone-1", 10, UTRECHT)])
    _, changes = engine.process([fix("tag-1", 20, offset(UTRECHT, 100))])
    assert changes == []
