"""The alert store keeps both axes and late findings (geofence/RULES.md, R-CONF-2, R-CONF-3 and R-LATE-2), on a
real database, with the outbox deciding in the same transaction."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from api.alerts.repository import apply_engine_changes, fetch_alert
from api.platform import pg_channels
from api.platform.database import _init_connection
from notifications.outbox import Outbox
from geofence import CaseConfig, Engine, ProximityRule

from tests.geofence.builders import ALWAYS, T0, UTRECHT, at, fix, offset
from tests.notifications.support import make_case


def _engine(case_id: str) -> Engine:
    engine = Engine()
    engine.configure(CaseConfig(case_id, frozenset({"tag-1"}), frozenset({"phone-1"}),
                                ProximityRule("rule-1", 2000, 1000, ALWAYS)), T0)
    return engine


async def _store(database_url: str, scenario) -> tuple[dict, list[str]]:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(database_url)
    await _init_connection(conn)
    try:
        case_id = await make_case(conn)
        changes = scenario(str(case_id))
        async with conn.transaction():
            await apply_engine_changes(conn, changes, outbox=Outbox(wake_channel=pg_channels.OUTBOX))
        alert = await fetch_alert(conn, uuid.UUID(changes[0].episode_id))
        purposes = [r["purpose"] for r in await conn.fetch("SELECT purpose FROM outbox WHERE alert_id = $1",
                                                          uuid.UUID(changes[0].episode_id))]
        return alert, purposes
    finally:
        await conn.close()


def _late_violation_in_a_cleared_alert(case_id: str) -> list:
    """A warning that cleared; the tag's buffer then shows 837 m against a 1,000 m violation distance."""
    engine = _engine(case_id)
    out = engine.process([fix("phone-1", t, UTRECHT, case=case_id) for t in range(0, 601, 30)])[1]
    out += engine.process([fix("tag-1", 0, offset(UTRECHT, 1500), case=case_id),
                           fix("tag-1", 600, offset(UTRECHT, 1100), case=case_id)])[1]
    for t in (630, 660, 690):
        out += engine.process([fix("tag-1", t, offset(UTRECHT, 2500), case=case_id),
                               fix("phone-1", t, UTRECHT, case=case_id)])[1]
    out += engine.process([fix("tag-1", 300, offset(UTRECHT, 837), case=case_id)])[1]
    return out


def test_a_late_violation_in_a_cleared_alert_is_stored_as_a_late_finding(database_url: str) -> None:
    """R-LATE-2: max_level and the distance take the late reading, the alert stays cleared at warning, the change
    says violation at the late fix's time, and nothing automatic is sent (R-CONF-3)."""
    alert, purposes = asyncio.run(_store(database_url, _late_violation_in_a_cleared_alert))
    assert (alert["level"], alert["max_level"], alert["late"]) == ("warning", "violation", False)
    assert alert["cleared_at"] is not None and alert["late_fix_at"] == at(300).isoformat().replace("+00:00", "Z")
    assert abs(alert["min_distance_m"] - 837) < 1
    last = alert["changes"][-1]
    assert (last["change"], last["late"], last["level"], last["level_possible"], last["fix_at"]) == (
        "escalated", True, "violation", "violation", alert["late_fix_at"])
    assert [(c["change"], c["late"]) for c in alert["changes"]] == [("opened", False), ("cleared", False),
                                                                     ("escalated", True)]
    assert purposes == []


def _possible_only_violation(case_id: str) -> list:
    """The tag's cell fix (800 m accuracy) at 900 m: possibly a violation, surely nothing."""
    engine = _engine(case_id)
    engine.process([fix("phone-1", 0, UTRECHT, case=case_id)])
    return engine.process([fix("tag-1", 0, offset(UTRECHT, 900), acc=800, case=case_id)])[1]


def test_a_possible_only_violation_neither_pushes_the_victim_nor_starts_the_police_timer(database_url: str) -> None:
    """R-CONF-2 and R-CONF-3: the alert shows 'violation, possible' (no confident reading yet), both axes are
    stored, and the policy leaves the victim and the police out of it."""
    alert, purposes = asyncio.run(_store(database_url, _possible_only_violation))
    assert (alert["level"], alert["confidence"], alert["max_level_possible"]) == ("violation", "possible",
                                                                                 "violation")
    assert alert["changes"][0]["level_possible"] == "violation"
    assert "violation" not in purposes and "escalation_check" not in purposes
