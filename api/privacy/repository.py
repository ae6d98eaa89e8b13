"""All SQL of the privacy domain but the audit log's own (api/privacy/audit.py): reads of positions and
Bluetooth encounters for tracks and evidence, the alert, case and notification rows an evidence package holds,
and what the retention purge needs to decide (its deletes go through api/intake/repository.py, the one writer of
positions and encounters).
Functions take a connection; the caller owns the transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, AsyncIterator

import asyncpg

from api.intake.repository import LOG_TABLES

FIX_COLUMNS = ("seq, device_id, party, recorded_at, received_at, lat, lon, accuracy_m, source, speed_mps,"
               " heading_deg, battery_pct")
RETENTION_LOCK = 0x7265_7465  # "rete"


# ---------------------------------------------------------------- positions

ENCOUNTER_COLUMNS = "seq, device_id, tag_id, recorded_at, received_at, beacon_id, rssi, lat, lon, accuracy_m"
# What an alert's evidence holds of the log: the entries it names and every entry of its case in its window.
_OF_ALERT = (" WHERE case_id = $1 AND (seq = ANY($2) OR (recorded_at >= $3 AND recorded_at <= $4))"
             " ORDER BY recorded_at, seq")
_OF_PERIOD = (" WHERE case_id = $1 AND ($2::timestamptz IS NULL OR recorded_at >= $2)"
              " AND ($3::timestamptz IS NULL OR recorded_at < $3) ORDER BY recorded_at, seq")


async def track(conn: asyncpg.Connection, case_id: uuid.UUID, start: datetime, end: datetime,
                party: str | None) -> list[asyncpg.Record]:
    """The case's fixes recorded in ``[start, end)`` (of one party, or both), oldest first."""
    return await conn.fetch(
        f"SELECT {FIX_COLUMNS} FROM positions WHERE case_id = $1 AND recorded_at >= $2 AND recorded_at < $3"
        " AND ($4::text IS NULL OR party = $4) ORDER BY recorded_at, seq",
        case_id, start, end, party,
    )


async def encounters(conn: asyncpg.Connection, case_id: uuid.UUID, start: datetime,
                     end: datetime) -> list[asyncpg.Record]:
    """The case's Bluetooth encounters recorded in ``[start, end)``, oldest first."""
    return await conn.fetch(f"SELECT {ENCOUNTER_COLUMNS} FROM encounters" + _OF_PERIOD, case_id, start, end)


async def _stream(conn: asyncpg.Connection, sql: str, *args: object) -> AsyncIterator[asyncpg.Record]:
    async for row in conn.cursor(sql, *args):
        yield row


def alert_fixes(conn: asyncpg.Connection, case_id: uuid.UUID, seqs: list[int], start: datetime,
                end: datetime) -> AsyncIterator[asyncpg.Record]:
    """An alert's evidence: the fixes it names and every fix of its case in ``[start, end]``, streamed oldest
    first (iterate inside a transaction)."""
    return _stream(conn, f"SELECT {FIX_COLUMNS} FROM positions" + _OF_ALERT, case_id, seqs, start, end)


def alert_encounters(conn: asyncpg.Connection, case_id: uuid.UUID, seqs: list[int], start: datetime,
                     end: datetime) -> AsyncIterator[asyncpg.Record]:
    """The encounters among an alert's evidence: those it names and every one of its case in ``[start, end]``."""
    return _stream(conn, f"SELECT {ENCOUNTER_COLUMNS} FROM encounters" + _OF_ALERT, case_id, seqs, start, end)


def case_fixes(conn: asyncpg.Connection, case_id: uuid.UUID, start: datetime | None,
               end: datetime | None) -> AsyncIterator[asyncpg.Record]:
    """The case's fixes, optionally of ``[start, end)``, streamed oldest first (iterate inside a transaction)."""
    return _stream(conn, f"SELECT {FIX_COLUMNS} FROM positions" + _OF_PERIOD, case_id, start, end)


def case_encounters(conn: asyncpg.Connection, case_id: uuid.UUID, start: datetime | None,
                    end: datetime | None) -> AsyncIterator[asyncpg.Record]:
    """The case's encounters, optionally of ``[start, end)``, streamed oldest first."""
    return _stream(conn, f"SELECT {ENCOUNTER_COLUMNS} FROM encounters" + _OF_PERIOD, case_id, start, end)


# ---------------------------------------------------------------- the audit log (read)

async def audit_page(conn: asyncpg.Connection, *, before: int | None, case_id: uuid.UUID | None, actor: str | None,
                     action: str | None, since: datetime | None, until: datetime | None,
                     limit: int) -> list[asyncpg.Record]:
    """Up to ``limit`` audit records, newest first, below chain position ``before``; an ``action`` ending in
    ``.`` is a prefix."""
    prefix = action is not None and action.endswith(".")
    return await conn.fetch(
        "SELECT chain_seq, at, actor, role, action, case_id, reason, detail, prev_hash, hash FROM audit_log"
        " WHERE ($1::bigint IS NULL OR chain_seq < $1) AND ($2::uuid IS NULL OR case_id = $2)"
        " AND ($3::text IS NULL OR actor = $3)"
        " AND ($4::text IS NULL OR (CASE WHEN $5 THEN starts_with(action, $4) ELSE action = $4 END))"
        " AND ($6::timestamptz IS NULL OR at >= $6) AND ($7::timestamptz IS NULL OR at < $7)"
        " ORDER BY chain_seq DESC LIMIT $8",
        before, case_id, actor, action, prefix, since, until, limit,
    )


# ---------------------------------------------------------------- what an evidence package holds

_ALERT_SQL = (
    "SELECT a.id, a.case_id, c.reference AS case_reference, a.kind, a.subject_id, a.zone_id, a.device_id, a.level,"
    " a.max_level, a.confidence, a.status, a.opened_at, a.cleared_at, a.clear_reason, a.raised_at,"
    " a.min_distance_m, a.late, a.evidence, a.detail, a.outcome, a.seq,"
    " (SELECT max(ch.at) FROM alert_changes ch WHERE ch.alert_id = a.id AND ch.change = 'resolved') AS resolved_at"
    " FROM alerts a JOIN cases c ON c.id = a.case_id"
)


async def alert(conn: asyncpg.Connection, alert_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(_ALERT_SQL + " WHERE a.id = $1", alert_id)


async def case_alerts(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(_ALERT_SQL + " WHERE a.case_id = $1 ORDER BY a.opened_at, a.id", case_id)


async def alert_changes(conn: asyncpg.Connection, alert_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT seq, alert_id, n, change, level, confidence, at, fix_at, actor, detail FROM alert_changes"
        " WHERE alert_id = ANY($1) ORDER BY seq", alert_ids)


async def messages(conn: asyncpg.Connection, alert_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """The outbox messages of the alerts, without their payload (message text, tokens)."""
    return await conn.fetch(
        "SELECT id, alert_id, change_seq, recipient, channel, purpose, safety, status, attempts, enqueued_at,"
        " deadline, last_error, provider_id, sent_at, message_key FROM outbox WHERE alert_id = ANY($1) ORDER BY id",
        alert_ids)


async def delivery_attempts(conn: asyncpg.Connection, outbox_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT outbox_id, attempt, started_at, finished_at, outcome, reason, provider_id, retry_after_s"
        " FROM delivery_attempts WHERE outbox_id = ANY($1) ORDER BY outbox_id, attempt",
        outbox_ids)


async def case_file(conn: asyncpg.Connection, case_id: uuid.UUID) -> dict[str, Any] | None:
    """The case row with its parties, orders, zones and devices, or None."""
    case = await conn.fetchrow("SELECT id, reference, status, warn_m, alert_m, created_at, created_by, closed_at"
                               " FROM cases WHERE id = $1", case_id)
    if case is None:
        return None
    return {
        "case": case,
        "parties": await conn.fetch(
            "SELECT role, display_name, language FROM parties WHERE case_id = $1 ORDER BY role", case_id),
        "orders": await conn.fetch(
            "SELECT id, kind, reference, valid_from, valid_until, legal_basis, extension_count,"
            " let_go_at, let_go_reason, created_at, created_by FROM orders WHERE case_id = $1"
            " ORDER BY created_at, id", case_id),
        "zones": await conn.fetch(
            "SELECT id, order_id, name, kind, geometry, buffer_m, schedule, created_at, created_by"
            " FROM zones WHERE case_id = $1 ORDER BY created_at, id", case_id),
        "devices": await conn.fetch(
            "SELECT id, role, serial, platform, created_at, revoked_at FROM devices"
            " WHERE case_id = $1 ORDER BY created_at, id", case_id),
    }


async def device_events(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, device_id, recorded_at, received_at, type, detail FROM device_events"
                            " WHERE case_id = $1 ORDER BY recorded_at, id", case_id)


# ---------------------------------------------------------------- retention

async def try_retention_lock(conn: asyncpg.Connection) -> bool:
    """A session lock: a second process running the purge at the same time skips its run."""
    return await conn.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK)


async def release_retention_lock(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK)


async def engine_processed_up_to(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """The highest seq every engine has processed (0 with no progress marker: nothing is processed)."""
    return await conn.fetchval("SELECT coalesce(min(last_seq), 0) FROM engine_progress")


async def cases_for_retention(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, status, closed_at FROM cases ORDER BY id")


async def count_old(conn: asyncpg.Connection | asyncpg.Pool, table: str, case_id: uuid.UUID,
                    recorded_before: datetime, max_seq: int) -> int:
    """How many of the case's entries of ``table`` (positions or encounters) are older than the cut-off."""
    if table not in LOG_TABLES:
        raise ValueError(f"not a table of the log: {table}")
    return await conn.fetchval(
        f"SELECT count(*) FROM {table} WHERE case_id = $1 AND recorded_at < $2 AND seq <= $3",
        case_id, recorded_before, max_seq)
