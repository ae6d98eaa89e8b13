from geofence import AlertKind, ChangeKind, Confidence, Engine, Level

from tests.geofence.builders import T0, UTRECHT, at, box, exclusion_case, fix, offset, proximity_case


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


def _silent_tag(config, tag_at, phone_at=None):  # type: ignore[no-untyped-def]
    engine = Engine()
    engine.configure(config, T0)
    fixes = [fix("tag-1", 10_000, tag_at)]
    if phone_at is not None:
        fixes.append(fix("phone-1", 10_000, phone_at))
    engine.process(fixes)
    return [c for c in engine.tick(at(10_400)) if c.kind is AlertKind.OFFENDER_SILENT]


def test_r_tick_5_a_tag_silent_inside_the_warning_band_is_near_the_victim():
    """R-TICK-5: 900 m from her with a 1,000 m warning band: near."""
    [opened] = _silent_tag(proximity_case(), offset(UTRECHT, 900), UTRECHT)
    assert (opened.change, opened.near_victim) == (ChangeKind.OPENED, True)


def test_r_tick_5_a_tag_silent_far_from_her_is_not_near():
    """R-TICK-5: 5 km from her, no zone: not near."""
    [opened] = _silent_tag(proximity_case(), offset(UTRECHT, 5000), UTRECHT)
    assert opened.near_victim is False


def test_r_tick_5_the_accuracy_radii_count_towards_near():
    """R-TICK-5: 1,030 m apart with 5 m and 30 m radii reaches the 1,000 m band: near (the possible axis)."""
    engine = Engine()
    engine.configure(proximity_case(), T0)
    engine.process([fix("tag-1", 10_000, offset(UTRECHT, 1030), acc=30), fix("phone-1", 10_000, UTRECHT)])
    [opened] = [c for c in engine.tick(at(10_400)) if c.kind is AlertKind.OFFENDER_SILENT]
    assert opened.near_victim is True


def test_r_tick_5_a_tag_silent_inside_an_exclusion_buffer_is_near():
    """R-TICK-5: 150 m outside a zone with a 200 m buffer: near; 2 km outside it: not."""
    [inside] = _silent_tag(exclusion_case(box(UTRECHT, 300), buffer_m=200), offset(UTRECHT, 450))
    assert inside.near_victim is True
    [far] = _silent_tag(exclusion_case(box(UTRECHT, 300), buffer_m=200), offset(UTRECHT, 2300))
    assert far.near_victim is False
