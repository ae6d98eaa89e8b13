from geofence import ChangeKind, Engine

from tests.geofence.builders import T0, UTRECHT, at, exclusion_case, fix, home_circle, offset, proximity_case

FAR = offset(UTRECHT, 3000)


def test_late_buffer_upload_reveals_past_breach_as_late_episode():
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
    engine = Engine()
    engine.configure(exclusion_case(home_circle(300), buffer_m=200), T0)
    engine.process([fix("tag-1", 0, FAR), fix("tag-1", 600, FAR)])
    _, opened = engine.process([fix("tag-1", 300, UTRECHT)])
    assert [(c.change, c.late) for c in opened] == [(ChangeKind.OPENED, True)]
    assert len(engine.open_episodes()) == 1
    _, ended = engine.process([fix("tag-1", 630, FAR)])
    assert [(c.change, c.reason, c.fix_at) for c in ended] == [(ChangeKind.CLEARED, "late_data_end", at(300))]


def test_late_breach_covered_by_an_episode_raises_nothing():
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
    engine = Engine()
    engine.configure(proximity_case(), T0)
    engine.process([fix("phone-1", 0, UTRECHT)])
    for t in range(10, 300, 30):  # the tag walks past the victim's route before her phone uploads
        engine.process([fix("tag-1", t, offset(UTRECHT, 3000))])
    _, changes = engine.process([fix("phone-1", 100, offset(UTRECHT, 2900))])
    assert [(c.change, c.late, c.fix_at) for c in changes] == [(ChangeKind.OPENED, False, at(100))]
