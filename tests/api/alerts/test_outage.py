"""Floods of silence (api/alerts/outage.py, geofence/RULES.md R-TICK-5) on a real database: one supplier_outage
alert for the room, each silence stored and linked, near-victim and tampered tags never folded, the victims told
only once the outage lasts, and the alert-log lock never held while a flood is stored."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from api.alerts import repository
from api.alerts.outage import OutageMonitor, is_outage
from api.platform import pg_channels
from api.platform.database import _init_connection
from api.platform.settings import Settings
from geofence import CaseConfig, Engine, ProximityRule
from notifications.outbox import Outbox

from tests.geofence.builders import ALWAYS, T0, UTRECHT, at, fix, offset
from tests.notifications.support import make_case

OUTBOX = Outbox(wake_channel=pg_channels.OUTBOX)


class Fleet:
    """Cases whose tags all come from one supplier, and the engine that watches them."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.engine = Engine()
        self.supplier = uuid.uuid4()
        self.tags: dict[str, uuid.UUID] = {}  # tag id -> case id

    async def setup(self, n: int) -> None:
        await self.conn.execute("INSERT INTO suppliers (id, name) VALUES ($1, 'Tags BV')", self.supplier)
        for i in range(n):
            case_id = await make_case(self.conn)
            tag = uuid.uuid4()
            await self.conn.execute("INSERT INTO devices (id, case_id, role, supplier_id, serial)"
                                    " VALUES ($1, $2, 'offender_tag', $3, $4)", tag, case_id, self.supplier, f"s{i}")
            self.tags[str(tag)] = case_id
            self.engine.configure(CaseConfig(str(case_id), frozenset({str(tag)}), frozenset({f"phone-{i}"}),
                                             ProximityRule(f"rule-{i}", 1000, 500, ALWAYS)), T0)

    def report(self, t: float, near: set[str] = frozenset()) -> list:  # type: ignore[assignment]
        """Every tag and phone reports at t; tags in ``near`` 800 m from their victim, the others 5 km."""
        fixes = []
        for i, (tag, case_id) in enumerate(self.tags.items()):
            fixes.append(fix(tag, t, offset(UTRECHT, 800 if tag in near else 5000), case=str(case_id)))
            fixes.append(fix(f"phone-{i}", t, UTRECHT, case=str(case_id)))
        return self.engine.process(fixes)[1]

    async def store(self, changes: list) -> None:  # type: ignore[type-arg]
        async with self.conn.transaction():
            await repository.apply_engine_changes(self.conn, changes, outbox=OUTBOX, hold_silences=True)


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"outage_min_devices": 5, "outage_min_share": 0.1, "outage_hold_s": 0,
                                 "outage_victim_after_s": 3600, "outage_batch": 4}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def _connect(url: str) -> tuple[asyncpg.Connection, asyncpg.Pool]:
    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=3, init=_init_connection)
    return conn, pool


def _queue(conn: asyncpg.Connection, **kw: object):  # type: ignore[no-untyped-def]
    return repository.list_alerts(conn, status="open", case_id=None, case_ids=None, after_seq=None, limit=500,
                                  outages=True, **kw)


def test_the_outage_threshold_needs_both_the_count_and_the_share() -> None:
    assert is_outage(20, 200, 20, 0.1)
    assert not is_outage(19, 100, 20, 0.1)  # too few tags
    assert not is_outage(50, 1000, 20, 0.1)  # too small a share of the supplier's tags


def test_a_flood_is_one_outage_alert_and_each_silence_is_stored_and_linked(database_url: str) -> None:
    async def run() -> None:
        conn, pool = await _connect(database_url)
        try:
            fleet = Fleet(conn)
            await fleet.setup(10)
            near_tag = next(iter(fleet.tags))
            await fleet.store(fleet.report(10_000, near={near_tag}))
            due = fleet.engine.tick(at(10_400))
            # The tags, and the phone of the victim the near tag was 800 m from (R-TICK-6); far phones wait 900 s.
            phones = [c for c in due if c.kind.value == "victim_silent"]
            assert [(c.near_victim, c.level.label) for c in phones] == [(True, "violation")]
            silences = [c for c in due if c.kind.value == "offender_silent"]
            assert len(silences) == 10
            await fleet.store(due)
            held = await conn.fetchval("SELECT count(*) FROM alerts WHERE held_since IS NOT NULL")
            assert held == 9  # R-TICK-5: the tag 800 m from her is never held
            assert await conn.fetchval("SELECT count(*) FROM alert_changes ch JOIN alerts a ON a.id = ch.alert_id"
                                       " WHERE a.kind = 'offender_silent'") == 1
            report = await OutageMonitor(pool, _settings(), OUTBOX).run_once()
            assert (report.outages_opened, report.grouped, report.released) == (1, 9, 0)
            # The near tag's warning, and her phone's near silence (never part of an outage).
            queue = [a for a in await _queue(conn) if a["kind"] not in ("proximity", "victim_silent")]
            assert sorted(a["kind"] for a in queue) == ["offender_silent", "supplier_outage"]
            outage = next(a for a in queue if a["kind"] == "supplier_outage")
            near = next(a for a in queue if a["kind"] == "offender_silent")
            assert outage["case_id"] is None and outage["detail"]["devices"] == 9
            assert near["device_id"] == near_tag and near["group_id"] is None
            cases = {c["case_id"] for c in outage["detail"]["cases"]}
            assert cases == {str(c) for t, c in fleet.tags.items() if t != near_tag}
            members = await _queue(conn, group_id=uuid.UUID(outage["id"]))
            assert len(members) == 9 and all(m["group_id"] == outage["id"] for m in members)
            for m in members:
                stored = await repository.fetch_alert(conn, uuid.UUID(m["id"]))
                assert [c["change"] for c in stored["changes"]] == ["opened"]
            assert await conn.fetchval("SELECT count(*) FROM outbox o JOIN alerts a ON a.id = o.alert_id"
                                       " WHERE a.group_id IS NOT NULL OR a.case_id IS NULL") == 0  # nothing pushed
            assert await conn.fetchval("SELECT count(*) FROM victim_notices") == 0  # not yet: it is young
            # The tags report again: their silences clear in one batch, and then the outage.
            await fleet.store(fleet.report(10_500))
            assert await conn.fetchval("SELECT count(*) FROM alerts WHERE group_id IS NOT NULL"
                                       " AND cleared_at IS NULL") == 0
            report = await OutageMonitor(pool, _settings(), OUTBOX).run_once()
            assert report.outages_cleared == 1
            assert await conn.fetchval("SELECT cleared_at IS NOT NULL FROM alerts WHERE kind = 'supplier_outage'")
        finally:
            await conn.close()
            await pool.close()

    asyncio.run(run())


def test_too_few_silences_are_released_as_ordinary_alerts_after_the_hold(database_url: str) -> None:
    async def run() -> None:
        conn, pool = await _connect(database_url)
        try:
            fleet = Fleet(conn)
            await fleet.setup(4)  # below outage_min_devices
            await fleet.store(fleet.report(10_000))
            await fleet.store(fleet.engine.tick(at(10_400)))
            waiting = await OutageMonitor(pool, _settings(outage_hold_s=300), OUTBOX).run_once()
            assert (waiting.released, waiting.grouped) == (0, 0)  # still inside the hold
            assert await _queue(conn) == []
            report = await OutageMonitor(pool, _settings(), OUTBOX).run_once()
            assert (report.released, report.grouped, report.outages_opened) == (4, 0, 0)
            queue = await _queue(conn)
            assert [a["kind"] for a in queue] == ["offender_silent"] * 4
            assert all(a["group_id"] is None and a["detail"]["near_victim"] is False for a in queue)
        finally:
            await conn.close()
            await pool.close()

    asyncio.run(run())


def test_a_tampered_tag_is_never_held(database_url: str) -> None:
    async def run() -> None:
        conn, pool = await _connect(database_url)
        try:
            fleet = Fleet(conn)
            await fleet.setup(6)
            tag, case_id = next(iter(fleet.tags.items()))
            await repository.open_alert(conn, outbox=OUTBOX, alert_id=uuid.uuid4(), case_id=case_id,
                                        kind="device_event", level="violation", confidence="confirmed",
                                        opened_at=at(9_000), device_id=uuid.UUID(tag),
                                        detail={"family": "tamper", "event": "strap_tamper"})
            await fleet.store(fleet.report(10_000))
            await fleet.store(fleet.engine.tick(at(10_400)))
            shown = await conn.fetchval("SELECT count(*) FROM alerts WHERE kind = 'offender_silent'"
                                        " AND held_since IS NULL AND device_id = $1", uuid.UUID(tag))
            assert shown == 1
            report = await OutageMonitor(pool, _settings(), OUTBOX).run_once()
            assert report.grouped == 5
        finally:
            await conn.close()
            await pool.close()

    asyncio.run(run())


def test_victims_are_told_once_the_outage_lasts_and_again_when_their_tag_reports(database_url: str) -> None:
    async def run() -> None:
        conn, pool = await _connect(database_url)
        try:
            fleet = Fleet(conn)
            await fleet.setup(6)
            await fleet.store(fleet.report(10_000))
            await fleet.store(fleet.engine.tick(at(10_400)))
            report = await OutageMonitor(pool, _settings(outage_victim_after_s=0), OUTBOX).run_once()
            assert report.victims_told == 6
            kinds = [r["kind"] for r in await conn.fetch("SELECT kind FROM victim_notices")]
            assert kinds == ["monitoring_interrupted"] * 6
            again = await OutageMonitor(pool, _settings(outage_victim_after_s=0), OUTBOX).run_once()
            assert again.victims_told == 0  # once
            await fleet.store(fleet.report(10_500))
            await OutageMonitor(pool, _settings(outage_victim_after_s=0), OUTBOX).run_once()
            assert await conn.fetchval("SELECT count(*) FROM victim_notices WHERE kind = 'monitoring_resumed'") == 6
        finally:
            await conn.close()
            await pool.close()

    asyncio.run(run())


def test_storing_a_flood_does_not_wait_for_the_alert_log_lock(database_url: str) -> None:
    """Held silences take no seq: storing 300 of them completes while another transaction holds the lock."""
    async def run() -> None:
        conn, pool = await _connect(database_url)
        holder = await asyncpg.connect(database_url)
        try:
            fleet = Fleet(conn)
            await fleet.setup(300)
            await fleet.store(fleet.report(10_000))
            silences = fleet.engine.tick(at(10_400))
            async with holder.transaction():
                await repository.lock_alert_log(holder)
                await asyncio.wait_for(fleet.store(silences), timeout=10)
            assert await conn.fetchval("SELECT count(*) FROM alerts WHERE held_since IS NOT NULL") == 300
        finally:
            await holder.close()
            await conn.close()
            await pool.close()

    asyncio.run(run())
