from geofence import ChangeKind, Confidence, Engine, EngineSettings, FixStatus, Level

from tests.geofence.builders import T0, UTRECHT, at, fix, offset, proximity_case


def run(engine, fixes):
    verdicts, changes = engine.process(fixes)
    return changes


def test_approach_warns_then_violates_then_clears_after_hold():
    """R-EPI-1, R-CONF-1, R-HOLD-1: open at warning, escalate, clear after the hold."""
    engine = Engine()
    engine.configure(proximity_case(warn_m=1000, alert_m=500), T0)
    victim = UTRECHT
    changes = run(engine, [fix("phone-1", 0, victim)])
    assert changes == []
    track = [(10, 3000), (40, 900), (70, 400), (100, 300), (130, 2000), (160, 2000), (190, 2000)]
    log = []
    for t, d in track:  # the tag's fix arrives first, then the victim's of the same second (R-PAIR-1)
        log += run(engine, [fix("tag-1", t, offset(victim, d)), fix("phone-1", t, victim)])
    kinds = [(c.change, c.level) for c in log]
    assert kinds == [
        (ChangeKind.OPENED, Level.WARNING),
        (ChangeKind.ESCALATED, Level.VIOLATION),
        (ChangeKind.CLEARED, Level.VIOLATION),
    ]
    opened, escalated, cleared = log
    assert opened.fix_at == at(40) and escalated.fix_at == at(70)
    assert cleared.reason == "departed" and cleared.fix_at == at(190)  # 130 + 60 s hold
    assert cleared.max_level == Level.VIOLATION
    assert abs(cleared.min_distance_m - 300) < 1
    assert len({c.episode_id for c in log}) == 1 and [c.n for c in log] == [1, 2, 3]
    assert engine.open_episodes() == []


def test_victim_fix_121_s_old_gives_no_decision_but_119_s_does():
    """R-PAIR-1: a counterpart fix older than victim_max_age_s is no counterpart."""
    for age, expect_open in ((121, False), (119, True)):
        engine = Engine()
        engine.configure(proximity_case(), T0)
        _, changes = engine.process([fix("phone-1", 0, UTRECHT), fix("tag-1", age, offset(UTRECHT, 100))])
        assert bool(changes) is expect_open, age


def test_victim_approaching_a_standing_offender_is_caught():
    """R-PAIR-1: the victim's fix is judged against the offender's too."""
    engine = Engine()
    engine.configure(proximity_case(), T0)
    engine.process([fix("tag-1", 0, offset(UTRECHT, 100))])
    _, changes = engine.process([fix("phone-1", 30, UTRECHT)])
    assert [c.change for c in changes] == [ChangeKind.OPENED]
    assert changes[0].level == Level.VIOLATION and changes[0].fix_at == at(30)


def test_pairing_uses_recorded_times_not_arrival_order():
    """R-PAIR-1 and R-PAIR-3: the offender fix of 10 s is never paired with the later victim fix of 20 s, but the
    victim fix is paired with it, whichever arrives first."""
    found = []
    for order in ((0, 1), (1, 0)):
        engine = Engine()
        engine.configure(proximity_case(), T0)
        fixes = [fix("phone-1", 20, UTRECHT, fix_id="1"), fix("tag-1", 10, offset(UTRECHT, 100), fix_id="2")]
        _, changes = engine.process([fixes[k] for k in order])
        found.append([(c.change, c.fix_at, c.evidence) for c in changes])
    assert found[0] == found[1] == [(ChangeKind.OPENED, at(20), ("2", "1"))]


def test_confidence_from_both_accuracy_radii_and_coarse_cap():
    """R-CONF-1: confirmed when the whole interval is inside, probable when the centre is, possible when only the
    accuracy reaches; a coarse fix is at most possible. R-CONF-2: the alert shows the confident axis."""
    cases = [  # (distance, offender acc, victim acc) -> (level, confidence, possible level)
        (400, 5, 5, Level.VIOLATION, Confidence.CONFIRMED, Level.VIOLATION),
        (480, 30, 20, Level.VIOLATION, Confidence.PROBABLE, Level.VIOLATION),
        # Only possibly a violation, but surely a warning: the alert shows the sure warning.
        (540, 30, 20, Level.WARNING, Confidence.CONFIRMED, Level.VIOLATION),
        (400, 250, 5, Level.VIOLATION, Confidence.POSSIBLE, Level.VIOLATION),  # cell-tower fix: at most possible
    ]
    for distance, acc_o, acc_v, level, confidence, possible in cases:
        engine = Engine()
        engine.configure(proximity_case(), T0)
        # Same second: the pairing has no age, so no widening (R-PAIR-2) blurs the accuracy rule here.
        _, changes = engine.process([fix("phone-1", 5, UTRECHT, acc_v), fix("tag-1", 5, offset(UTRECHT, distance),
                                                                             acc_o)])
        assert (changes[0].level, changes[0].confidence, changes[0].level_possible) == (level, confidence,
                                                                                       possible), distance


def test_open_episode_stays_open_while_victim_position_unknown():
    """R-PAIR-1: no counterpart, no decision: an open episode stays open."""
    engine = Engine()
    engine.configure(proximity_case(), T0)
    engine.process([fix("phone-1", 0, UTRECHT), fix("tag-1", 5, offset(UTRECHT, 100))])
    far = offset(UTRECHT, 5000)
    _, changes = engine.process([fix("tag-1", t, far) for t in range(200, 600, 30)])
    assert changes == [] and len(engine.open_episodes()) == 1


def test_clearing_needs_two_fixes_and_sixty_seconds():
    """R-HOLD-1: two readings and 60 s beyond the margin."""
    engine = Engine(EngineSettings())
    engine.configure(proximity_case(), T0)
    engine.process([fix("phone-1", 0, UTRECHT), fix("tag-1", 5, offset(UTRECHT, 100))])
    far = offset(UTRECHT, 3000)
    _, changes = engine.process([fix("phone-1", 100, UTRECHT), fix("tag-1", 110, far), fix("tag-1", 150, far)])
    assert changes == []  # two fixes, but only 40 s
    _, changes = engine.process([fix("phone-1", 160, UTRECHT), fix("tag-1", 170, far)])
    assert [c.change for c in changes] == [ChangeKind.CLEARED]


def test_unknown_device_is_rejected():
    """R-QUAL-1: fixes of unknown devices are refused."""
    engine = Engine()
    engine.configure(proximity_case(), T0)
    verdicts, _ = engine.process([fix("tag-9", 0, UTRECHT), fix("tag-1", 0, UTRECHT, case="case-2")])
    assert [(v.status, v.reason) for v in verdicts] == [(FixStatus.REJECTED, "unknown_device")] * 2
