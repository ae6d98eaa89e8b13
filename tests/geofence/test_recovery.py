"""Determinism: batch splits and snapshot/restore must not change a single alert change."""

import json
from datetime import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence import CaseConfig, Engine, ExclusionZone, InclusionZone, ProximityRule, Schedule, Window
from geofence.state import SnapshotRefused

from tests.geofence.builders import ALWAYS, T0, UTRECHT, at, box, fix, home_circle, offset

CASE = CaseConfig(
    "case-1", frozenset({"tag-1"}), frozenset({"phone-1"}), ProximityRule("rule-1", 1000, 500, ALWAYS),
    (ExclusionZone("school", box(offset(UTRECHT, 0, 2000), 150), 200, ALWAYS),
     ExclusionZone("home", home_circle(100), 300, ALWAYS)),
)

# A second case whose home zone (gebiedsgebod) holds at night: a schedule and an inclusion zone in the snapshot.
SCHEDULED = CaseConfig(
    "case-2", frozenset({"tag-2"}), frozenset(),
    zones=(InclusionZone("home-2", box(offset(UTRECHT, 0, -3000), 200),
                         Schedule("Europe/Amsterdam", (Window(frozenset(range(1, 8)), time(22), time(6)),)), ALWAYS),),
)


def scripted_log():
    """A tag wandering in and out of both zones and past the victim, a victim uploading late, a duplicate."""
    fixes = []
    for i in range(120):
        east = 2500 - abs(60 - i) * 60  # walk in and back out
        north = 2000 if i % 40 < 20 else 0
        fixes.append(fix("tag-1", 20 * i, offset(UTRECHT, east, north), acc=10 + i % 7))
        if i % 3 == 0:
            fixes.append(fix("phone-1", 20 * i - 45, offset(UTRECHT, -100), acc=15))
    fixes.insert(50, fixes[10])
    return fixes


LOG = scripted_log()


def replay(batches):
    engine = Engine()
    engine.configure(CASE, T0)
    changes = []
    for batch in batches:
        changes += engine.process(batch)[1]
    return changes


def split(log, cuts):
    edges = [0, *sorted(set(cuts)), len(log)]
    return [log[a:b] for a, b in zip(edges, edges[1:])]


REFERENCE = replay([LOG])


def test_scripted_log_exercises_every_change_kind():
    """R-EPI-1: the replayed log below opens, escalates, deescalates and clears."""
    assert {c.change.value for c in REFERENCE} == {"opened", "escalated", "deescalated", "cleared"}
    assert {c.kind.value for c in REFERENCE} == {"proximity", "zone_exclusion"}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(LOG) - 1), max_size=12))
def test_any_batch_split_gives_the_same_changes(cuts):
    """R-EPI-1: the same log in any batches gives the same changes."""
    assert replay(split(LOG, cuts)) == REFERENCE


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=1, max_value=len(LOG) - 1))
def test_restore_after_any_fix_gives_the_same_changes(k):
    """R-EPI-1: a snapshot restored anywhere raises nothing twice."""
    engine = Engine()
    engine.configure(CASE, T0)
    first = engine.process(LOG[:k])[1]
    restored = Engine.restore(engine.snapshot())
    rest = restored.process(LOG[k:])[1]
    assert first + rest == REFERENCE
    keys = [(c.episode_id, c.n) for c in first + rest]
    assert len(keys) == len(set(keys))  # no episode raised twice


def test_replaying_fixes_already_seen_after_restore_raises_nothing_twice():
    """Recovery by replay: a restored engine fed the log again from well before the snapshot."""
    engine = Engine()
    engine.configure(CASE, T0)
    engine.process(LOG[:150])
    restored = Engine.restore(engine.snapshot())
    verdicts, changes = restored.process(LOG[100:150])
    assert changes == [] and {v.status.value for v in verdicts} == {"duplicate"}
    assert restored.open_episodes() == engine.open_episodes()


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=1, max_value=len(LOG) - 1))
def test_a_snapshot_through_json_restores_to_the_same_changes(k):
    """R-EPI-1: the snapshot is plain data; written as JSON and read back anywhere, it raises nothing twice."""
    engine = Engine()
    engine.configure(CASE, T0)
    engine.configure(SCHEDULED, T0)
    first = engine.process(LOG[:k])[1]
    written = json.dumps(engine.snapshot())
    restored = Engine.restore(json.loads(written))
    assert json.dumps(restored.snapshot()) == written
    rest = restored.process(LOG[k:])[1] + restored.tick(at(20 * len(LOG)))
    reference = Engine()
    reference.configure(CASE, T0)
    reference.configure(SCHEDULED, T0)
    assert first + rest == reference.process(LOG)[1] + reference.tick(at(20 * len(LOG)))


def test_a_snapshot_of_another_format_is_refused():
    """R-EPI-1: a snapshot this engine cannot read is refused as a whole (the caller rebuilds from the log),
    never half restored."""
    engine = Engine()
    engine.configure(CASE, T0)
    engine.process(LOG[:50])
    state = engine.snapshot()
    for older in ({**state, "format_version": 2}, {"version": 2, "cases": {}, "tracks": {}}, [], None):
        with pytest.raises(SnapshotRefused, match="unsupported engine snapshot format"):
            Engine.restore(older)
    broken = json.loads(json.dumps(state))
    del broken["cases"][0]["subjects"][0][1]["live"]
    with pytest.raises(SnapshotRefused, match="malformed"):
        Engine.restore(broken)
