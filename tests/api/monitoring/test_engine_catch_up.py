"""No clock-driven check before the engine has caught up with the log (geofence/RULES.md, R-TICK-3)."""

from __future__ import annotations

import time

from tests.api.factories import db, fix, new_case, new_supplier, new_tag


def test_silence_is_judged_only_after_the_backlog_is_evaluated(make_client) -> None:  # type: ignore[no-untyped-def]
    """A backlog of 150 fixes, one every 6 s from 25 to 10 minutes ago, read one fix per engine step while a tick
    falls due every 0.5 s. Judged between steps, the tag would look silent since the fix just read and an
    offender_silent alert would open and at once clear; caught up, there is one silence alert, from the newest
    fix."""
    client = make_client(engine_batch_size=1)
    supplier = new_supplier(client)
    case_id = new_case(client)
    new_tag(client, case_id, supplier, "CATCH-1")
    backlog = [fix("CATCH-1", seconds_ago=1500 - 6 * k) for k in range(150)]
    r = supplier.positions(client, backlog)
    assert r.status_code == 200 and {i["status"] for i in r.json()["results"]} == {"accepted"}
    newest = max(row["recorded_at"] for row in db(client, "SELECT recorded_at FROM positions"))
    deadline = time.monotonic() + 30
    rows: list = []
    while time.monotonic() < deadline:
        rows = db(client, "SELECT kind, opened_at, cleared_at FROM alerts WHERE case_id = $1::uuid", case_id)
        if rows:
            break
        time.sleep(0.1)
    time.sleep(1.0)  # a few more ticks: nothing else may come
    rows = db(client, "SELECT kind, opened_at, cleared_at FROM alerts WHERE case_id = $1::uuid", case_id)
    assert [(r["kind"], r["cleared_at"]) for r in rows] == [("offender_silent", None)]
    assert (rows[0]["opened_at"] - newest).total_seconds() == client.app.state.ctx.settings.offender_silent_s
