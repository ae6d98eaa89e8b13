"""Late data: buffered uploads, fixes arriving behind the tag (geofence/RULES.md, R-LATE-1 to R-LATE-2, R-QUAL-3)."""

from geofence import ChangeKind, Confidence, Engine, FixStatus, Level

from tests.geofence.builders import T0, UTRECHT, at, exclusion_case, fix, home_circle, offset, proximity_case

FAR = offset(UTRECHT, 3000)


def test_late_buffer_upload_reveals_past_breach_as_late_episode():
    """R-LATE-1: at a moment no episode covers, late readings open a late episode."""
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=200), T0)
    # Live: the tag reports far away, then goes into a tunnel; afterwards it uploads its buffer.
    _, live = engine.process([fix("tag-1", 0, FAR), fix("tag-1", 600, FAR)])
    assert live == []
    near = offset(UTRECHT, 1200)  # still beyond the buffer, and a plausible 30 s walk from the zone
    buffer = [fix("tag-1", t, UTRECHT if 200 <= t <= 300 else near) for t in range(60, 600, 30)]
    _, changes = engine.process(buffer)
    assert [(c.change, c.late) for c in changes] == [(ChangeKind.OPENED, True), (ChangeKind.CLEARED, True)]
    assert changes[0].fix_at == at(210) and changes[1].reason == "departed"
    assert changes[0].episode_id == changes[1].episode_id


def test_late_episode_ends_when_live_data_resumes():
    """R-LATE-1: a late episode ends at its last late reading when live data of the device resumes."""
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=200), T0)
    engine.process([fix("tag-1", 0, FAR), fix("tag-1", 600, FAR)])
    _, opened = engine.process([fix("tag-1", 300, UTRECHT)])
    assert [(c.change, c.late) for c in opened] == [(ChangeKind.OPENED, True)]
    assert len(engine.open_episodes()) == 1
    _, ended = engine.process([fix("tag-1", 630, FAR)])
    assert [(c.change, c.reason, c.fix_at) for c in ended] == [(ChangeKind.CLEARED, "late_data_end", at(300))]


def test_late_breach_covered_by_an_episode_raises_nothing():
    """R-LATE-2: a late reading no more serious than what the covering episode said then changes nothing."""
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=200), T0)
    _, live = engine.process([fix("tag-1", 0, UTRECHT), fix("tag-1", 200, FAR), fix("tag-1", 260, FAR)])
    assert [c.change for c in live] == [ChangeKind.OPENED, ChangeKind.CLEARED]
    _, changes = engine.process([fix("tag-1", 100, UTRECHT)])  # inside the closed span [0, 260]
    assert changes == []
    # ... and a late breach while a live episode is open neither reopens nor clears it.
    _, live = engine.process([fix("tag-1", 1000, UTRECHT)])
    _, changes = engine.process([fix("tag-1", 1100, UTRECHT), fix("tag-1", 1050, FAR), fix("tag-1", 1060, FAR)])
    assert [c.change for c in live] == [ChangeKind.OPENED] and changes == []
    assert [c.late for c in engine.open_episodes()] == [False]


def test_victim_uploading_behind_the_tag_is_paired_at_its_own_time():
    """R-PAIR-1: pairing is on recorded time, whatever the arrival order."""
    engine = Engine()
    engine.configure(proximity_case(), T0)
    engine.process([fix("phone-1", 0, UTRECHT)])
    for t in range(10, 300, 30):  # the tag walks past the victim's route before her phone uploads
        engine.process([fix("tag-1", t, offset(UTRECHT, 3000))])
    _, changes = engine.process([fix("phone-1", 100, offset(UTRECHT, 2900))])
    assert [(c.change, c.late, c.fix_at) for c in changes] == [(ChangeKind.OPENED, False, at(100))]


# ---------------------------------------------------------------- R-LATE-2: a late reading is never lost

def _buffer_upload_under_a_live_warning():
    """The victim stands still and reports every 30 s. The tag reports live at 1,500 m (warning), goes into a
    tunnel, reports live again at 600 s, then uploads its buffer: two buffered fixes are at 837 m and 808 m,
    inside the 1,000 m violation distance."""
    engine = Engine()
    engine.configure(proximity_case(warn_m=2000, alert_m=1000), T0)
    engine.process([fix("phone-1", t, UTRECHT) for t in range(0, 601, 30)])
    _, live = engine.process([fix("tag-1", 0, offset(UTRECHT, 1500)), fix("tag-1", 600, offset(UTRECHT, 1100))])
    assert [(c.change, c.level) for c in live] == [(ChangeKind.OPENED, Level.WARNING)]
    distances = {t: 1200 + t % 90 for t in range(30, 600, 30)}
    distances[300], distances[330] = 837, 808
    buffer = [fix("tag-1", t, offset(UTRECHT, d)) for t, d in sorted(distances.items())]
    return engine, live[0], buffer


def test_late_violation_under_a_live_warning_escalates_the_alert_late():
    """R-LATE-2: max_level and min_distance_m take the late reading; the change says what was found at its fix
    time, while the alert's level keeps following the live readings."""
    engine, opened, buffer = _buffer_upload_under_a_live_warning()
    _, changes = engine.process(buffer)
    assert [(c.change, c.late, c.level, c.max_level, c.fix_at) for c in changes] == [
        (ChangeKind.ESCALATED, True, Level.VIOLATION, Level.VIOLATION, at(300))]
    assert changes[0].episode_id == opened.episode_id and changes[0].confidence == Confidence.CONFIRMED
    assert abs(changes[0].min_distance_m - 837) < 1
    [current] = engine.open_episodes()
    # The 808 m reading is folded in: no second change, but the distance and the evidence keep it.
    assert (current.level, current.max_level, current.late) == (Level.WARNING, Level.VIOLATION, False)
    assert abs(current.min_distance_m - 808) < 1 and buffer[10].fix_id in current.evidence


def test_late_violation_in_a_cleared_alert_escalates_it_without_reopening():
    """R-LATE-2: a late reading inside the span of an alert already cleared adds the change to that alert."""
    engine, opened, buffer = _buffer_upload_under_a_live_warning()
    _, cleared = engine.process([fix("tag-1", t, offset(UTRECHT, 5000)) for t in (630, 660, 690, 720)])
    assert [c.change for c in cleared] == [ChangeKind.CLEARED] and engine.open_episodes() == []
    assert engine.process([fix("phone-1", t, UTRECHT) for t in range(630, 800, 30)])[1] == []
    _, changes = engine.process(buffer)
    assert [(c.change, c.late, c.episode_id, c.n, c.max_level) for c in changes] == [
        (ChangeKind.ESCALATED, True, opened.episode_id, 3, Level.VIOLATION)]
    assert engine.open_episodes() == []


def test_late_reading_no_more_serious_is_folded_into_the_evidence():
    """R-LATE-2: a late warning inside a live warning changes nothing but the distance and the evidence."""
    engine, _, buffer = _buffer_upload_under_a_live_warning()
    calm = [f for f in buffer if f.recorded_at not in (at(300), at(330))]
    _, changes = engine.process(calm)
    assert changes == []
    [current] = engine.open_episodes()
    assert current.max_level == Level.WARNING and abs(current.min_distance_m - 1100) < 1


def test_late_breach_of_a_zone_under_a_live_warning_escalates_the_zone_alert_late():
    """R-LATE-2 for zones: the tag was live in the buffer band; its buffer shows it inside the zone."""
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=200), T0)
    _, live = engine.process([fix("tag-1", 0, offset(UTRECHT, 400)), fix("tag-1", 600, offset(UTRECHT, 450))])
    assert [(c.change, c.level) for c in live] == [(ChangeKind.OPENED, Level.WARNING)]
    buffer = [fix("tag-1", t, offset(UTRECHT, 100 if t == 300 else 420)) for t in range(30, 600, 30)]
    _, changes = engine.process(buffer)
    assert [(c.change, c.late, c.level, c.max_level, c.fix_at) for c in changes] == [
        (ChangeKind.ESCALATED, True, Level.VIOLATION, Level.VIOLATION, at(300))]
    assert [c.level for c in engine.open_episodes()] == [Level.WARNING]
    assert abs(changes[0].min_distance_m + 200) < 1  # R-ZONE-1: 200 m deep inside the zone


# ---------------------------------------------------------------- R-QUAL-3: late outliers

def test_late_jump_is_confirmed_by_the_fixes_that_follow_it_in_time():
    """R-QUAL-3: a buffered trip that starts with an implausible jump is evaluated once what follows agrees."""
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=200), T0)
    far = offset(UTRECHT, 50_000)
    engine.process([fix("tag-1", 0, far), fix("tag-1", 3600, offset(UTRECHT, 3000))])  # live: before and after
    # Buffer: at 60 s the tag is in the zone, 50 km from its fix of 0 s: impossible, unless what follows agrees.
    first = [fix("tag-1", 60, UTRECHT)]
    verdicts, changes = engine.process(first)
    assert [(v.status, v.reason) for v in verdicts] == [(FixStatus.OUTLIER, "implied_speed")] and changes == []
    verdicts, changes = engine.process([fix("tag-1", 90, offset(UTRECHT, 20)), fix("tag-1", 120, offset(UTRECHT, 40))])
    assert verdicts[-1].status == FixStatus.ACCEPTED
    assert [(c.change, c.late, c.fix_at) for c in changes] == [(ChangeKind.OPENED, True, at(60))]
    assert changes[0].evidence == (first[0].fix_id,)


def test_late_spike_between_good_fixes_stays_an_outlier():
    """R-QUAL-2/R-QUAL-3: one late fix far from both its neighbours in time is a spike."""
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=200), T0)
    far = offset(UTRECHT, 50_000)
    engine.process([fix("tag-1", t, far) for t in (0, 60, 120)])
    verdicts, changes = engine.process([fix("tag-1", 90, UTRECHT)])
    assert verdicts[0].status == FixStatus.OUTLIER and changes == []
