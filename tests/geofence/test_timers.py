"""tick works from a timer queue keyed by due time (geofence/RULES.md, R-TICK-1 and R-TICK-4)."""

from datetime import datetime, timezone

from geofence import AlertKind, ChangeKind, Engine, EngineSettings, Validity

from tests.geofence.builders import T0, UTRECHT, at, exclusion_case, fix, home_circle, offset, proximity_case


def test_silence_timer_follows_the_newest_fix_and_survives_a_restore():
    """R-TICK-1: a silence timer that finds newer fixes is re-armed at its true due time; a restored engine
    rebuilds its timers."""
    engine = Engine()
    engine.configure(proximity_case(), T0)
    engine.process([fix("tag-1", 0, UTRECHT)])
    engine.process([fix("tag-1", 200, UTRECHT)])
    assert engine.tick(at(301)) == []  # due at 300 from the first fix, but the newest is of 200 s
    restored = Engine.restore(engine.snapshot())
    assert restored.tick(at(499)) == []
    changes = restored.tick(at(501))
    assert [(c.kind, c.change, c.opened_at) for c in changes] == [(AlertKind.OFFENDER_SILENT, ChangeKind.OPENED,
                                                                  at(500))]
    _, resumed = restored.process([fix("tag-1", 600, UTRECHT)])
    assert [(c.kind, c.change) for c in resumed] == [(AlertKind.OFFENDER_SILENT, ChangeKind.CLEARED)]
    assert restored.tick(at(899)) == []
    assert [c.change for c in restored.tick(at(901))] == [ChangeKind.OPENED]  # armed again after resuming


def test_order_expiry_after_reconfiguration_is_due_at_the_new_end():
    """R-TICK-1 and R-TICK-4: a case reconfigured with a shorter order is expired at the new valid_until."""
    engine = Engine(EngineSettings(offender_silent_s=10**9, near_silent_s=10**9))
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    engine.configure(exclusion_case(home_circle(300), validity=Validity("o", start, at(1000))), T0)
    engine.process([fix("tag-1", 0, UTRECHT)])
    engine.configure(exclusion_case(home_circle(300), validity=Validity("o", start, at(100))), at(10))
    changes = engine.tick(at(150))
    assert [(c.change, c.reason, c.fix_at) for c in changes] == [(ChangeKind.CLEARED, "order_expired", at(100))]
    assert engine.tick(at(2000)) == []


def test_removed_case_leaves_no_timer_behind():
    """R-TICK-1: timers of a removed case are dropped when they come due."""
    engine = Engine()
    engine.configure(proximity_case(), T0)
    engine.process([fix("tag-1", 0, offset(UTRECHT, 5000))])
    engine.remove_case("case-1", at(10))
    assert engine.tick(at(10_000)) == []
