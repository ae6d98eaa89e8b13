"""The engine snapshot as stored (api/monitoring/snapshot.py): compressed JSON with a format version; an older,
pickled snapshot is refused without being unpickled, and the engine rebuilds from the log."""

from __future__ import annotations

import pickle
import time
import uuid
import zlib
from pathlib import Path

import pytest

from api.monitoring import snapshot
from geofence import Engine, EngineSettings
from geofence.state import SnapshotRefused
from tests.api.factories import db_val, fix, new_case, new_supplier, new_tag
from tests.api.monitoring.test_config_reaches_engine import _zone
from tests.geofence.test_recovery import CASE, LOG, T0

TRAP = Path("/tmp") / f"afstand-unpickled-{uuid.uuid4().hex}"


def _spring_trap() -> None:
    TRAP.write_text("a stored snapshot was unpickled")


class _Booby:
    """Unpickling this runs code: what a tampered pickle in the database could do."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_spring_trap, ())


def _pickled_snapshot() -> bytes:
    """What format 2 stored: a zlib-compressed pickle (here one that would run code when read)."""
    return zlib.compress(pickle.dumps({"version": 2, "cases": _Booby(), "tracks": {}}), 1)


def test_a_stored_snapshot_round_trips_to_the_same_decisions() -> None:
    engine = Engine()
    engine.configure(CASE, T0)
    first = engine.process(LOG[:90])[1]
    stored = snapshot.encode(engine)
    assert stored[:2] != b"\x80\x04" and zlib.decompress(stored).startswith(b'{"format_version":3,')
    restored = snapshot.decode(stored, EngineSettings())
    assert first + restored.process(LOG[90:])[1] == first + engine.process(LOG[90:])[1]


def test_a_pickled_snapshot_is_refused_and_never_unpickled() -> None:
    with pytest.raises(SnapshotRefused, match="not compressed JSON"):
        snapshot.decode(_pickled_snapshot(), EngineSettings())
    assert not TRAP.exists()
    with pytest.raises(SnapshotRefused):
        snapshot.decode(b"not even zlib", EngineSettings())


def _count(client, sql: str, *args: object) -> int:  # type: ignore[no-untyped-def]
    return db_val(client, sql, *args)


def _wait(what, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def test_an_engine_finding_an_older_snapshot_rebuilds_from_the_log(make_client) -> None:  # type: ignore[no-untyped-def]
    """A format-2 snapshot claiming the whole log was seen is refused: the engine replays the log, raises the zone
    alert once, and its next snapshot is in the current format, from which a restart raises nothing twice."""
    setup = make_client(run_engine=False)
    supplier = new_supplier(setup)
    case_id = new_case(setup)
    _zone(setup, case_id)
    new_tag(setup, case_id, supplier, "SNAP-1")
    assert supplier.positions(setup, [fix("SNAP-1", 30), fix("SNAP-1", 20)]).status_code == 200
    head = _count(setup, "SELECT max(seq) FROM positions")
    setup.portal.call(setup.app.state.ctx.pool.execute,
                      "INSERT INTO engine_snapshots (engine_id, last_seq, state) VALUES ('main', $1, $2)",
                      head, _pickled_snapshot())
    alerts = "SELECT count(*) FROM alerts WHERE case_id = $1 AND kind = 'zone_exclusion'"

    running = make_client(engine_snapshot_every_s=0.0)
    _wait(lambda: _count(running, alerts, uuid.UUID(case_id)) == 1)
    assert not TRAP.exists()
    assert supplier.positions(running, [fix("SNAP-1", 10)]).status_code == 200  # a batch after: a snapshot is due
    _wait(lambda: _count(running, "SELECT count(*) FROM engine_snapshots WHERE last_seq > $1", head) == 1)
    stored = bytes(db_val(running, "SELECT state FROM engine_snapshots"))
    assert zlib.decompress(stored).startswith(b'{"format_version":3,')

    changes = _count(running, "SELECT count(*) FROM alert_changes")
    make_client.stop(running)  # the engine runs in one process at a time (its lease): this is a restart
    restarted = make_client()
    _wait(lambda: restarted.app.state.ctx.engine.caught_up)
    time.sleep(1.0)  # a few engine steps and ticks: nothing may be raised again
    assert _count(restarted, alerts, uuid.UUID(case_id)) == 1
    assert _count(restarted, "SELECT count(*) FROM alert_changes") == changes


def test_a_restart_restores_the_snapshot_and_loads_only_what_changed_while_it_was_down(make_client) -> None:  # type: ignore[no-untyped-def]
    """The snapshot remembers the configuration version of its cases: a restart restores it, loads the changes
    made since, and so enforces a zone drawn while the engine was down."""
    running = make_client(engine_snapshot_every_s=0.0)
    supplier = new_supplier(running)
    quiet = new_case(running)
    new_tag(running, quiet, supplier, "SNAP-Q")
    watched = new_case(running)
    new_tag(running, watched, supplier, "SNAP-W")
    assert supplier.positions(running, [fix("SNAP-Q", 30, lat=52.0943), fix("SNAP-W", 30, lat=52.0943)]).status_code == 200
    version = db_val(running, "SELECT version FROM config_version")
    _wait(lambda: db_val(running, "SELECT config_version FROM engine_snapshots") == version)
    make_client.stop(running)

    offline = make_client(run_engine=False)
    _zone(offline, watched)  # drawn while no engine runs
    make_client.stop(offline)

    restarted = make_client()
    engine = restarted.app.state.ctx.engine
    _wait(lambda: engine.caught_up)
    assert engine.config_version == db_val(restarted, "SELECT version FROM config_version") > version
    assert supplier.positions(restarted, [fix("SNAP-W", 10)]).status_code == 200
    _wait(lambda: db_val(restarted, "SELECT count(*) FROM alerts WHERE case_id = $1 AND kind = 'zone_exclusion'",
                         uuid.UUID(watched)) == 1)
