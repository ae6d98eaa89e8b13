from geofence import AlertKind, ChangeKind, Confidence, Engine, Level

from tests.geofence.builders import T0, UTRECHT, at, fix, offset, proximity_case


def test_silent_tag_and_phone_raise_and_resume():
    """R-TICK-4: silence opens once and clears on the first newer fix."""
    engine = Engine()
    engine.configure(proximity_case(), T0)
    assert engine.tick(at(10_000)) == []  # never sent anything: no silence alarm
    engine.process([fix("tag-1", 10_000, UTRECHT), fix("phone-1", 10_000, offset(UTRECHT, 5000))])
    assert engine.tick(at(10_299)) == []
    changes = engine.tick(at(10_400))
    assert [(c.kind, c.level, c.confidence, c.opened_at) for c in changes] == [
        (AlertKind.OFFENDER_SILENT, Level.VIOLATION, Confidence.CONFIRMED, at(10_300))]
    assert engine.tick(at(10_500)) == []  # raised once
    changes = engine.tick(at(11_000))
    assert [(c.kind, c.level, c.opened_at) for c in changes] == [(AlertKind.VICTIM_SILENT, Level.WARNING,
                                                                 at(10_900))]
    _, resumed = engine.process([fix("tag-1", 11_100, UTRECHT)])
    assert [(c.kind, c.change, c.reason, c.fix_at) for c in resumed] == [
        (AlertKind.OFFENDER_SILENT, ChangeKind.CLEARED, "fixes_resumed", at(11_100))]
    assert [c.kind for c in engine.open_episodes()] == [AlertKind.VICTIM_SILENT]
