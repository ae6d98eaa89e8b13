"""Level and confidence are two axes (geofence/RULES.md, R-CONF-1 and R-CONF-2)."""

from geofence import ChangeKind, Confidence, Engine, Level

from tests.geofence.builders import T0, UTRECHT, fix, offset, proximity_case

CELL_M = 800  # a cell-tower fix


def test_possible_violation_from_a_cell_fix_does_not_replace_a_confirmed_warning():
    """R-CONF-2: the alert keeps showing the confirmed warning; the possible violation is carried beside it."""
    engine = Engine()
    engine.configure(proximity_case(warn_m=1000, alert_m=500), T0)
    _, opened = engine.process([fix("phone-1", 0, UTRECHT), fix("tag-1", 0, offset(UTRECHT, 700))])
    assert [(c.change, c.level, c.confidence) for c in opened] == [(ChangeKind.OPENED, Level.WARNING,
                                                                   Confidence.CONFIRMED)]
    _, changes = engine.process([fix("phone-1", 30, UTRECHT), fix("tag-1", 30, offset(UTRECHT, 450), acc=CELL_M)])
    assert [(c.change, c.level, c.confidence, c.max_level, c.level_possible, c.max_level_possible)
            for c in changes] == [(ChangeKind.ESCALATED, Level.WARNING, Confidence.CONFIRMED, Level.WARNING,
                                   Level.VIOLATION, Level.VIOLATION)]


def test_possible_axis_shows_only_while_no_confident_reading_exists():
    """R-CONF-2: an alert opened by a cell fix shows 'violation, possible' until a confident reading comes."""
    engine = Engine()
    engine.configure(proximity_case(warn_m=1000, alert_m=500), T0)
    _, opened = engine.process([fix("phone-1", 0, UTRECHT), fix("tag-1", 0, offset(UTRECHT, 450), acc=CELL_M)])
    assert [(c.level, c.confidence, c.level_possible) for c in opened] == [(Level.VIOLATION, Confidence.POSSIBLE,
                                                                            Level.VIOLATION)]
    _, changes = engine.process([fix("phone-1", 30, UTRECHT), fix("tag-1", 30, offset(UTRECHT, 700))])
    assert [(c.change, c.level, c.confidence, c.level_possible) for c in changes] == [
        (ChangeKind.ESCALATED, Level.WARNING, Confidence.CONFIRMED, Level.VIOLATION)]


def test_a_coarse_fix_of_one_party_does_not_mask_the_other_partys_confident_reading():
    """R-CONF-2: the victim's phone falls back to a cell fix; the confirmed violation stays what the alert says,
    and readings that cannot prove calm never step it down."""
    engine = Engine()
    engine.configure(proximity_case(warn_m=1000, alert_m=500), T0)
    engine.process([fix("phone-1", 0, UTRECHT), fix("tag-1", 0, offset(UTRECHT, 300))])
    _, changes = engine.process([fix("phone-1", 30, UTRECHT, acc=CELL_M)] +
                                [fix("tag-1", t, offset(UTRECHT, 300)) for t in range(30, 150, 15)])
    assert changes == []
    [current] = engine.open_episodes()
    assert (current.level, current.confidence) == (Level.VIOLATION, Confidence.CONFIRMED)
