"""All SQL of the intake: the supplier's and the app's devices, the engine's log ``positions`` and ``encounters``
(this module is their only writer, the retention purge included), ``device_events``, ``ingest_rejections``, and
the reads of open device alerts the device-event policy needs. Functions take a connection; the caller owns the
transaction."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from api.intake.model import Device, IncomingFix, BatchOutcome, Sender, kept_item, storable
from api.platform import pg_channels

FIX_LOG_LOCK = 0x6669_786C  # "fixl": the order of commits into ``positions``


# ---------------------------------------------------------------- devices

async def lock_supplier_devices(
    conn: asyncpg.Connection, supplier_id: uuid.UUID, serials: set[str]
) -> dict[str, Device]:
    """The supplier's active offender tags among ``serials``, row-locked in id order (see api/intake/service.py)."""
    if not serials:
        return {}
    rows = await conn.fetch(
        "SELECT id, case_id, serial FROM devices WHERE supplier_id = $1 AND serial = ANY($2::text[])"
        " AND role = 'offender_tag' AND revoked_at IS NULL ORDER BY id FOR NO KEY UPDATE",
        supplier_id, sorted(serials),
    )
    return {r["serial"]: Device(r["id"], r["case_id"], r["serial"]) for r in rows}


async def lock_app_device(conn: asyncpg.Connection, sender: Sender) -> Device | None:
    """The app's device, row-locked, unless it is revoked or (when the sender names the issue time of its token)
    its token family was revoked after that token was issued."""
    row = await conn.fetchrow(
        "SELECT id, case_id FROM devices WHERE id = $1 AND role = 'victim_app' AND revoked_at IS NULL"
        " AND ($2::timestamptz IS NULL OR tokens_revoked_at IS NULL OR tokens_revoked_at < $2)"
        " FOR NO KEY UPDATE",
        sender.device_id, sender.issued_at,
    )
    return Device(row["id"], row["case_id"], None) if row else None


async def mark_seen(conn: asyncpg.Connection, stored: list[IncomingFix]) -> None:
    """devices.last_seen_at = newest fix time; last_battery_pct from the newest fix that reports it."""
    newest: dict[uuid.UUID, list[Any]] = {}
    for f in stored:
        entry = newest.setdefault(f.device.id, [f.recorded_at, None, None])
        entry[0] = max(entry[0], f.recorded_at)
        if f.battery_pct is not None and (entry[2] is None or f.recorded_at >= entry[2]):
            entry[1], entry[2] = f.battery_pct, f.recorded_at
    if not newest:
        return
    ids = list(newest)
    await conn.execute(
        "UPDATE devices d SET last_seen_at = GREATEST(d.last_seen_at, u.seen),"
        " last_battery_pct = CASE WHEN u.battery IS NOT NULL"
        "   AND (d.last_seen_at IS NULL OR u.battery_at >= d.last_seen_at) THEN u.battery ELSE d.last_battery_pct END"
        " FROM unnest($1::uuid[], $2::timestamptz[], $3::float8[], $4::timestamptz[]) AS u(id, seen, battery, battery_at)"
        " WHERE d.id = u.id",
        ids, [newest[i][0] for i in ids], [newest[i][1] for i in ids], [newest[i][2] for i in ids],
    )


async def mark_event_seen(conn: asyncpg.Connection, seen: dict[uuid.UUID, datetime]) -> None:
    """devices.last_seen_at = the newest event time of each device in ``seen``."""
    if not seen:
        return
    ids = list(seen)
    await conn.execute(
        "UPDATE devices d SET last_seen_at = GREATEST(d.last_seen_at, u.seen)"
        " FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, seen) WHERE d.id = u.id",
        ids, [seen[i] for i in ids],
    )


# ---------------------------------------------------------------- rejections

async def keep_rejections(conn: asyncpg.Connection, sender: Sender, kind: str, outcome: BatchOutcome) -> None:
    if not outcome.rejected:
        return
    await conn.executemany(
        "INSERT INTO ingest_rejections (channel, sender, item_index, item, reason) VALUES ($1, $2, $3, $4, $5)",
        [(f"{sender.channel}:{kind}", sender.sender, i, kept_item(item), storable(reason)[:2000])
         for i, item, reason in outcome.rejected],
    )


async def purge_rejections(conn: asyncpg.Connection | asyncpg.Pool, received_before: datetime) -> int:
    """Delete the rejected items (which may hold coordinates) received before the cut-off; returns how many."""
    return _count(await conn.execute("DELETE FROM ingest_rejections WHERE received_at < $1", received_before))


# ---------------------------------------------------------------- the fix log

async def insert_fixes(conn: asyncpg.Connection, fixes: list[IncomingFix], received_at: datetime) -> dict[tuple, int]:
    """Append ``fixes`` to the log in recorded_at order; returns ``{(device_id, recorded_at): seq}`` of those
    stored. A fix already in the log (same device and time) is not stored again: idempotent redelivery."""
    if not fixes:
        return {}
    fixes = sorted(fixes, key=lambda f: (f.recorded_at, f.index))
    columns = (
        [f.device.id for f in fixes], [f.device.case_id for f in fixes], [f.party for f in fixes],
        [f.recorded_at for f in fixes], [f.lat for f in fixes], [f.lon for f in fixes],
        [f.accuracy_m for f in fixes], [f.source for f in fixes], [f.speed_mps for f in fixes],
        [f.heading_deg for f in fixes], [f.battery_pct for f in fixes],
    )
    # Right before the INSERT and held until commit: seq values become visible in order.
    await conn.execute("SELECT pg_advisory_xact_lock($1)", FIX_LOG_LOCK)
    rows = await conn.fetch(
        "INSERT INTO positions (device_id, case_id, party, recorded_at, received_at, lat, lon, accuracy_m, source,"
        " speed_mps, heading_deg, battery_pct)"
        " SELECT u.device_id, u.case_id, u.party, u.recorded_at, $12, u.lat, u.lon, u.accuracy_m, u.source,"
        " u.speed_mps, u.heading_deg, u.battery_pct"
        " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::float8[], $6::float8[],"
        " $7::float8[], $8::text[], $9::float8[], $10::float8[], $11::float8[])"
        " WITH ORDINALITY AS u(device_id, case_id, party, recorded_at, lat, lon, accuracy_m, source, speed_mps,"
        " heading_deg, battery_pct, ord)"
        " ORDER BY u.ord"
        " ON CONFLICT (device_id, recorded_at) DO NOTHING RETURNING seq, device_id, recorded_at",
        *columns, received_at,
    )
    if rows:
        await conn.execute("SELECT pg_notify($1, '')", pg_channels.FIXES)
    return {(r["device_id"], r["recorded_at"]): r["seq"] for r in rows}


async def append_group(conn: asyncpg.Connection, members: list[Any], fixes: list[tuple[int, Any]]) -> list[asyncpg.Record]:
    """One call of ``intake_append_fixes`` (migrations/0012_intake_append.sql) for a group of members
    (api/intake/fix_log.py) and their fixes, each as (1-based member index, fix), in autocommit: one statement,
    one round trip, committed when it returns. Rows of (out_member, out_fix, out_seq, out_status)."""
    fs = [f for _, f in fixes]
    return await conn.fetch(
        "SELECT * FROM intake_append_fixes($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        FIX_LOG_LOCK, pg_channels.FIXES,
        [m.supplier_id for m in members], [m.device_id for m in members], [m.issued_at for m in members],
        [m.received_at for m in members],
        [m for m, _ in fixes], [f.serial for f in fs], [f.recorded_at for f in fs], [f.lat for f in fs],
        [f.lon for f in fs], [f.accuracy_m for f in fs], [f.source for f in fs], [f.speed_mps for f in fs],
        [f.heading_deg for f in fs], [f.battery_pct for f in fs],
    )


async def tag_keys(conn: asyncpg.Connection | asyncpg.Pool, case_id: uuid.UUID) -> list[asyncpg.Record]:
    """The case's active offender tags that have a Bluetooth key: (id, ble_key_enc)."""
    return await conn.fetch(
        "SELECT id, ble_key_enc FROM devices WHERE case_id = $1 AND role = 'offender_tag' AND revoked_at IS NULL"
        " AND ble_key_enc IS NOT NULL ORDER BY id", case_id)


async def insert_encounters(conn: asyncpg.Connection, device: Device, items: list[tuple[Any, ...]],
                            received_at: datetime) -> set[int]:
    """Append the phone's matched encounters, as (index, tag id, recorded_at, beacon_id, rssi, lat, lon,
    accuracy_m), to the engine's log: ``encounters`` shares the seq of ``positions`` and the fix-log lock, so the
    two commit in one order (migrations/0014). Returns the indexes stored; one already stored (same phone, time
    and identifier) is not stored again."""
    if not items:
        return set()
    items = sorted(items, key=lambda it: (it[2], it[0]))
    columns = [list(column) for column in zip(*items)]
    await conn.execute("SELECT pg_advisory_xact_lock($1)", FIX_LOG_LOCK)
    rows = await conn.fetch(
        "INSERT INTO encounters (device_id, case_id, tag_id, recorded_at, received_at, beacon_id, rssi, lat, lon,"
        " accuracy_m)"
        " SELECT $1, $2, u.tag_id, u.recorded_at, $3, u.beacon_id, u.rssi, u.lat, u.lon, u.accuracy_m"
        " FROM unnest($4::int[], $5::uuid[], $6::timestamptz[], $7::text[], $8::int[], $9::float8[], $10::float8[],"
        " $11::float8[]) WITH ORDINALITY AS u(idx, tag_id, recorded_at, beacon_id, rssi, lat, lon, accuracy_m, ord)"
        " ORDER BY u.ord ON CONFLICT (device_id, recorded_at, beacon_id) DO NOTHING"
        " RETURNING recorded_at, beacon_id",
        device.id, device.case_id, received_at, *columns,
    )
    if rows:
        await conn.execute("SELECT pg_notify($1, '')", pg_channels.FIXES)
    stored = {(r["recorded_at"], r["beacon_id"]) for r in rows}
    return {it[0] for it in items if (it[2], it[3]) in stored}


# An entry of the log (a position or an encounter) of case $1 is evidence while some alert of that case names it
# or covers its time.
_HELD_AS_EVIDENCE = """
EXISTS (
    SELECT 1 FROM alerts a
    WHERE a.case_id = p.case_id
      AND (a.evidence ? p.seq::text
           OR a.detail->>'fix_seq' = p.seq::text
           OR p.recorded_at BETWEEN a.opened_at - $5::interval
               AND coalesce(a.cleared_at,
                            (SELECT max(ch.at) FROM alert_changes ch WHERE ch.alert_id = a.id AND ch.change = 'resolved'),
                            $6::timestamptz) + $5::interval))
"""

# The two tables of the engine's log, which the retention purge empties alike. Each statement is spelt out, not
# formatted from the table's name, so every write of either table stays visible (tests/test_one_writer_per_table.py).
_PURGE = {
    "positions": "DELETE FROM positions WHERE seq IN (SELECT p.seq FROM positions p",
    "encounters": "DELETE FROM encounters WHERE seq IN (SELECT p.seq FROM encounters p",
}
LOG_TABLES = tuple(_PURGE)


async def purge_log(conn: asyncpg.Connection, table: str, case_id: uuid.UUID, *, recorded_before: datetime,
                    max_seq: int, limit: int, evidence_margin: timedelta | None, now: datetime) -> int:
    """Delete up to ``limit`` of the case's entries of ``table`` (one of :data:`LOG_TABLES`: positions, or the
    encounters that may hold the victim's position) recorded before the cut-off and already processed by the
    engine (``seq <= max_seq``); returns how many. With ``evidence_margin`` an entry an alert of the case names
    or covers (its window widened by the margin, ``now`` for an alert still running) is kept; without it (the
    evidence period of a closed case has ended) none is. The retention purge of api/privacy calls this."""
    held = "false" if evidence_margin is None else _HELD_AS_EVIDENCE
    args: list[object] = [case_id, recorded_before, max_seq, limit]
    if evidence_margin is not None:
        args += [evidence_margin, now]
    return _count(await conn.execute(
        _PURGE[table] + " WHERE p.case_id = $1 AND p.recorded_at < $2 AND p.seq <= $3"
        f" AND NOT ({held}) ORDER BY p.seq LIMIT $4)",
        *args,
    ))


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


# ---------------------------------------------------------------- device events

async def insert_device_event(conn: asyncpg.Connection, device: Device, *, recorded_at: datetime,
                              received_at: datetime, event_type: str, detail: Any) -> int | None:
    """Store one event; its id, or None when it was already stored (same device, time and type)."""
    return await conn.fetchval(
        "INSERT INTO device_events (device_id, case_id, recorded_at, received_at, type, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, recorded_at, type) DO NOTHING RETURNING id",
        device.id, device.case_id, recorded_at, received_at, event_type,
        storable(detail) if detail is not None else None,
    )


async def open_device_alert(conn: asyncpg.Connection, device_id: uuid.UUID, family: str) -> asyncpg.Record | None:
    """The device's newest open, not cleared ``device_event`` alert of ``family`` (id, level, confidence,
    opened_at), or None."""
    return await conn.fetchrow(
        "SELECT id, level, confidence, opened_at FROM alerts WHERE kind = 'device_event' AND device_id = $1"
        " AND detail->>'family' = $2 AND cleared_at IS NULL AND status <> 'resolved'"
        " ORDER BY opened_at DESC LIMIT 1",
        device_id, family,
    )


async def first_contact_after(conn: asyncpg.Connection, device_id: uuid.UUID, after: datetime) -> datetime | None:
    """The first sign of life of the device after ``after``: any event but ``device_offline``, or a position."""
    return await conn.fetchval(
        "SELECT min(t) AS at FROM ("
        " SELECT min(recorded_at) AS t FROM device_events WHERE device_id = $1 AND recorded_at > $2"
        "  AND type <> 'device_offline'"
        " UNION ALL SELECT min(recorded_at) FROM positions WHERE device_id = $1 AND recorded_at > $2) s",
        device_id, after,
    )


async def first_event_after(conn: asyncpg.Connection, device_id: uuid.UUID, after: datetime,
                            types: list[str]) -> asyncpg.Record | None:
    """The first event of one of ``types`` recorded after ``after`` (recorded_at, type), or None."""
    return await conn.fetchrow(
        "SELECT recorded_at, type FROM device_events WHERE device_id = $1 AND recorded_at > $2"
        " AND type = ANY($3::text[]) ORDER BY recorded_at LIMIT 1",
        device_id, after, types,
    )


async def offline_devices(conn: asyncpg.Connection, device_ids: set[uuid.UUID], case_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``device_ids`` have an open ``device_offline`` alert: one query per batch of fixes."""
    if not device_ids:
        return set()
    rows = await conn.fetch(
        "SELECT DISTINCT device_id FROM alerts WHERE status IN ('open', 'acknowledged') AND case_id = ANY($1::uuid[])"
        " AND kind = 'device_event' AND device_id = ANY($2::uuid[]) AND detail->>'family' = 'offline'"
        " AND cleared_at IS NULL",
        list(case_ids), list(device_ids),
    )
    return {r["device_id"] for r in rows}
