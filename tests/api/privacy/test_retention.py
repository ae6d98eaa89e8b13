"""Retention: old positions go, evidence stays until its case has long been closed, the purge is audited, and
nothing the engine has not yet read is touched. Driven by an injected ``now``: nothing sleeps."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from api.privacy.retention import RetentionJob, purge
from tests.api.factories import db, db_val, world
from tests.helpers import staff_headers
from tests.api.privacy.support import OFFENDER, VICTIM

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def client(make_client):  # type: ignore[no-untyped-def]
    return make_client(run_engine=False)


def _fix(client, w, at: datetime, party: str = "offender") -> int:  # type: ignore[no-untyped-def]
    device = w.tag_id if party == "offender" else db_val(
        client, "SELECT id FROM devices WHERE case_id = $1 AND role = 'victim_app'", uuid.UUID(w.case_id))
    return db_val(client, "INSERT INTO positions (device_id, case_id, party, recorded_at, received_at, lat, lon,"
                          " accuracy_m) VALUES ($1, $2, $3, $4, $4, $5, $6, 5) RETURNING seq",
                  uuid.UUID(str(device)), uuid.UUID(w.case_id), party, at, OFFENDER[0], OFFENDER[1])


def _alert(client, w, opened: datetime, cleared: datetime | None, evidence: list[int]) -> uuid.UUID:  # type: ignore[no-untyped-def]
    aid = uuid.uuid4()
    db(client, "INSERT INTO alerts (id, case_id, kind, level, max_level, confidence, opened_at, cleared_at, evidence)"
               " VALUES ($1, $2, 'proximity', 'violation', 'violation', 'confirmed', $3, $4, $5)",
       aid, uuid.UUID(w.case_id), opened, cleared, [str(s) for s in evidence])
    return aid


def _close(client, w, closed_at: datetime) -> None:  # type: ignore[no-untyped-def]
    db(client, "UPDATE cases SET status = 'closed', closed_at = $2 WHERE id = $1", uuid.UUID(w.case_id), closed_at)


def _progress(client, last_seq: int) -> None:  # type: ignore[no-untyped-def]
    db(client, "INSERT INTO engine_progress (engine_id, last_seq) VALUES ('main', $1)"
               " ON CONFLICT (engine_id) DO UPDATE SET last_seq = $1", last_seq)


def _alive(client, seqs: list[int]) -> set[int]:  # type: ignore[no-untyped-def]
    return {r["seq"] for r in db(client, "SELECT seq FROM positions WHERE seq = ANY($1)", seqs)}


def _purge(client, now: datetime = NOW):  # type: ignore[no-untyped-def]
    ctx = client.app.state.ctx
    return client.portal.call(purge, ctx.pool, ctx.settings, now)


def test_old_positions_go_and_evidence_stays_until_its_case_has_long_been_closed(client) -> None:  # type: ignore[no-untyped-def]
    old = NOW - timedelta(days=40)

    active = world(client)
    supplier = active.supplier
    plain_old = _fix(client, active, old - timedelta(hours=5))
    listed = _fix(client, active, old - timedelta(hours=3))  # named in the alert's evidence, outside its window
    in_window = _fix(client, active, old + timedelta(minutes=2), "victim")  # not named, but during the alert
    before_margin = _fix(client, active, old - timedelta(minutes=11))  # 11 min before opening: margin is 10
    in_margin = _fix(client, active, old - timedelta(minutes=9))
    recent = _fix(client, active, NOW - timedelta(days=29))
    _alert(client, active, opened=old, cleared=old + timedelta(minutes=5), evidence=[listed])

    long_closed = world(client, supplier=supplier)
    gone_evidence = _fix(client, long_closed, old)
    _alert(client, long_closed, opened=old - timedelta(minutes=1), cleared=old + timedelta(minutes=1),
           evidence=[gone_evidence])
    _close(client, long_closed, NOW - timedelta(days=2558))  # default: kept 2,557 days after closing

    lately_closed = world(client, supplier=supplier)
    kept_evidence = _fix(client, lately_closed, old)
    kept_plain = _fix(client, lately_closed, old - timedelta(days=2))
    _alert(client, lately_closed, opened=old - timedelta(minutes=1), cleared=None, evidence=[kept_evidence])
    db(client, "INSERT INTO alert_changes (alert_id, change, level, confidence, at, actor) SELECT id, 'resolved',"
               " level, confidence, $2, 'operator:x' FROM alerts WHERE case_id = $1",
       uuid.UUID(lately_closed.case_id), old + timedelta(minutes=30))
    _close(client, lately_closed, NOW - timedelta(days=365))

    db(client, "INSERT INTO ingest_rejections (received_at, channel, sender, item_index, item, reason) VALUES"
               " ($1, 'supplier', 's', 0, $2, 'bad'), ($3, 'supplier', 's', 0, $2, 'bad')",
       old, {"lat": OFFENDER[0], "lon": OFFENDER[1]}, NOW - timedelta(days=1))

    every = [plain_old, listed, in_window, before_margin, in_margin, recent, gone_evidence, kept_evidence, kept_plain]
    _progress(client, max(every))
    report = _purge(client)

    assert _alive(client, every) == {listed, in_window, in_margin, recent, kept_evidence}
    assert report.positions_purged == 4 and report.rejections_purged == 1
    assert report.positions_kept_as_evidence == 4  # listed, in_window, in_margin, kept_evidence
    assert db_val(client, "SELECT count(*) FROM ingest_rejections") == 1

    # The purge is audited: counts and cut-offs per case and per run, never a coordinate.
    rows = db(client, "SELECT action, actor, case_id, detail FROM audit_log WHERE action LIKE 'retention.%'"
                      " ORDER BY chain_seq")
    summary = rows[-1]
    assert summary["action"] == "retention.purge" and summary["actor"] == "system:retention"
    assert summary["detail"]["positions_purged"] == 4 and summary["detail"]["rejections_purged"] == 1
    assert summary["detail"]["cutoff"] == (NOW - timedelta(days=30)).isoformat()
    per_case = {str(r["case_id"]): r["detail"]["positions_purged"] for r in rows if r["action"] == "retention.purge_case"}
    assert per_case == {active.case_id: 2, long_closed.case_id: 1, lately_closed.case_id: 1}
    text = json.dumps([dict(r["detail"]) for r in rows])
    assert str(OFFENDER[0])[:7] not in text and str(OFFENDER[1])[:6] not in text

    # A second run finds nothing more to do.
    assert _purge(client).positions_purged == 0


def test_purge_never_passes_the_engines_progress_marker(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    old = NOW - timedelta(days=60)
    first, second = _fix(client, w, old), _fix(client, w, old + timedelta(minutes=1))
    assert _purge(client).positions_purged == 0  # no marker at all: the engine may not have read anything
    assert _alive(client, [first, second]) == {first, second}
    _progress(client, first)
    assert _purge(client).positions_purged == 1
    assert _alive(client, [first, second]) == {second}


def test_retention_period_is_a_setting(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, retention_positions_days=7)
    w = world(client)
    eight, six = _fix(client, w, NOW - timedelta(days=8)), _fix(client, w, NOW - timedelta(days=6))
    _progress(client, six)
    _purge(client)
    assert _alive(client, [eight, six]) == {six}


def test_the_scheduled_job_runs_with_its_injected_clock(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, retention_check_s=0.05)
    w = world(client)
    doomed = _fix(client, w, NOW - timedelta(days=31))
    _progress(client, doomed)
    ctx = client.app.state.ctx
    job = RetentionJob(ctx.pool, ctx.settings, clock=lambda: NOW)
    client.portal.call(job.start)
    try:
        deadline = time.monotonic() + 10
        while _alive(client, [doomed]) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.portal.call(job.stop)
    assert _alive(client, [doomed]) == set()
    assert db_val(client, "SELECT count(*) FROM audit_log WHERE action = 'retention.purge'") >= 1


def test_evidence_of_an_alert_read_later_is_still_there(client) -> None:  # type: ignore[no-untyped-def]
    """What retention keeps is what the evidence package of the alert contains."""
    w = world(client)
    real_now = datetime.now(timezone.utc)
    old = real_now - timedelta(days=45)
    listed, plain = _fix(client, w, old), _fix(client, w, old - timedelta(hours=2))
    aid = _alert(client, w, opened=old, cleared=old + timedelta(minutes=1), evidence=[listed])
    _progress(client, plain)
    _purge(client, real_now)
    r = client.get(f"/v1/alerts/{aid}/evidence", params={"reason": "court"}, headers=staff_headers(client, "admin"))
    assert r.status_code == 200, r.text
    import io
    import zipfile

    fixes = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("fixes.geojson"))
    assert [f["properties"]["seq"] for f in fixes["features"]] == [listed]
    assert _alive(client, [listed, plain]) == {listed}


def _encounter(client, w, at: datetime) -> int:  # type: ignore[no-untyped-def]
    """An encounter with the victim's position, as the intake stores one (tests/api/privacy/test_encounters.py
    goes through the API)."""
    phone = db_val(client, "SELECT id FROM devices WHERE case_id = $1 AND role = 'victim_app'", uuid.UUID(w.case_id))
    return db_val(client, "INSERT INTO encounters (device_id, case_id, tag_id, recorded_at, received_at, beacon_id,"
                          " rssi, lat, lon, accuracy_m) VALUES ($1, $2, $3, $4, $4, 'a1b2c3d4e5f60718', -70, $5, $6, 9)"
                          " RETURNING seq",
                  phone, uuid.UUID(w.case_id), uuid.UUID(w.tag_id), at, VICTIM[0], VICTIM[1])


def _heard(client, seqs: list[int]) -> set[int]:  # type: ignore[no-untyped-def]
    return {r["seq"] for r in db(client, "SELECT seq FROM encounters WHERE seq = ANY($1)", seqs)}


def test_encounters_are_purged_as_positions_are_and_kept_as_evidence(client) -> None:  # type: ignore[no-untyped-def]
    old = NOW - timedelta(days=40)
    w = world(client)
    plain_old = _encounter(client, w, old - timedelta(hours=5))
    listed = _encounter(client, w, old - timedelta(hours=3))  # the Bluetooth alert names it
    in_window = _encounter(client, w, old + timedelta(minutes=2))
    before_margin = _encounter(client, w, old - timedelta(minutes=11))
    in_margin = _encounter(client, w, old - timedelta(minutes=9))
    recent = _encounter(client, w, NOW - timedelta(days=29))
    _alert(client, w, opened=old, cleared=old + timedelta(minutes=5), evidence=[listed])

    long_closed = world(client, supplier=w.supplier)
    gone_evidence = _encounter(client, long_closed, old)
    _alert(client, long_closed, opened=old - timedelta(minutes=1), cleared=old + timedelta(minutes=1),
           evidence=[gone_evidence])
    _close(client, long_closed, NOW - timedelta(days=2558))
    unread = _encounter(client, w, old - timedelta(hours=6))  # the engine has not read it yet

    every = [plain_old, listed, in_window, before_margin, in_margin, recent, unread, gone_evidence]
    _progress(client, unread - 1)
    report = _purge(client)

    assert _heard(client, every) == {listed, in_window, in_margin, recent, unread}
    assert report.encounters_purged == 3 and report.positions_purged == 0  # plain_old, before_margin, gone_evidence
    assert report.encounters_kept_as_evidence == 3  # listed, in_window, in_margin
    rows = db(client, "SELECT action, case_id, detail FROM audit_log WHERE action LIKE 'retention.%' ORDER BY chain_seq")
    per_case = {str(r["case_id"]): r["detail"]["encounters_purged"] for r in rows if r["action"] == "retention.purge_case"}
    assert per_case == {w.case_id: 2, long_closed.case_id: 1}
    assert rows[-1]["detail"]["encounters_purged"] == 3 and rows[-1]["detail"]["cases_purged"] == 2
    assert not any(str(c)[:7] in json.dumps([dict(r["detail"]) for r in rows]) for c in VICTIM)

    # What retention kept is what the alert's evidence package holds.
    r = client.get(f"/v1/alerts/{db_val(client, 'SELECT id FROM alerts WHERE case_id = $1', uuid.UUID(w.case_id))}"
                   "/evidence", params={"reason": "court"}, headers=staff_headers(client, "admin"))
    assert r.status_code == 200, r.text
    import io
    import zipfile

    held = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("encounters.geojson"))
    assert [f["properties"]["seq"] for f in held["features"]] == [listed, in_margin, in_window]
