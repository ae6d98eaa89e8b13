"""All SQL of the monitoring domain: the fix log it reads, its progress marker and snapshot, the configuration
version and change log, and the rows a case's engine configuration is built from."""

from __future__ import annotations

import uuid
from typing import NamedTuple, Protocol

import asyncpg

Db = asyncpg.Connection | asyncpg.Pool


class LogPositionLike(Protocol):
    seq: int
    stream_seq: int


class CaseRows(NamedTuple):
    """What the engine must know of some cases, as stored (api/monitoring/config.py builds the configuration)."""

    cases: list[asyncpg.Record]
    orders: list[asyncpg.Record]
    zones: list[asyncpg.Record]
    devices: list[asyncpg.Record]


async def case_rows(conn: Db, case_ids: list[uuid.UUID] | None,
                    partition: tuple[int, int] | None = None) -> CaseRows:
    """The active cases among ``case_ids`` (``None``: all) and in ``partition`` (``(p, of P)``; ``None``: any),
    with their orders, zones and devices."""
    part, of = partition if partition is not None else (None, None)
    cases = await conn.fetch(
        "SELECT id, warn_m, alert_m FROM cases WHERE status = 'active' AND ($1::uuid[] IS NULL OR id = ANY($1))"
        " AND ($2::int IS NULL OR afstand_partition(id, $3) = $2)",
        case_ids, part, of,
    )
    ids = [c["id"] for c in cases]
    orders = await conn.fetch(
        "SELECT id, case_id, kind, valid_from, valid_until FROM orders WHERE case_id = ANY($1) ORDER BY created_at", ids
    )
    zones = await conn.fetch(
        "SELECT id, case_id, order_id, kind, geometry, buffer_m, schedule FROM zones WHERE case_id = ANY($1)"
        " ORDER BY created_at",
        ids,
    )
    devices = await conn.fetch(
        "SELECT id, case_id, role FROM devices WHERE case_id = ANY($1) AND revoked_at IS NULL", ids
    )
    return CaseRows(cases, orders, zones, devices)


async def inactive_case_ids(conn: Db) -> set[str]:
    return {str(r["id"]) for r in await conn.fetch("SELECT id FROM cases WHERE status <> 'active'")}


async def config_version(conn: Db) -> int:
    return await conn.fetchval("SELECT version FROM config_version")


async def config_changes_after(conn: Db, version: int) -> list[asyncpg.Record]:
    """Rows ``(head, version, case_id, age_s)``: the head version, and each change after ``version`` (none: one
    row with ``version`` NULL). One statement, one snapshot: the head and the changes below it are consistent
    (versions commit in order)."""
    return await conn.fetch(
        "SELECT v.version AS head, c.version, c.case_id,"
        " extract(epoch FROM clock_timestamp() - c.changed_at)::float8 AS age_s"
        " FROM config_version v LEFT JOIN config_changes c ON c.version > $1 ORDER BY c.version",
        version,
    )


async def prune_config_changes(conn: Db, kept: str) -> None:
    await conn.execute(f"DELETE FROM config_changes WHERE changed_at < now() - interval '{kept}'")


async def positions_after(conn: Db, seq: int, limit: int) -> list[asyncpg.Record]:
    """The next entries of the log, in log order (api/intake writes it): fixes from ``positions`` and the phone's
    Bluetooth encounters (``source`` 'ble', ``tag_id`` and ``rssi`` set), which share its seq (migrations/0014)."""
    return await conn.fetch(
        "(SELECT seq, device_id, case_id, party, recorded_at, received_at, lat, lon, accuracy_m, source,"
        " speed_mps, NULL::uuid AS tag_id, NULL::int AS rssi FROM positions WHERE seq > $1 ORDER BY seq LIMIT $2)"
        " UNION ALL (SELECT seq, device_id, case_id, 'victim', recorded_at, received_at, lat, lon, accuracy_m, 'ble',"
        " NULL, tag_id, rssi FROM encounters WHERE seq > $1 ORDER BY seq LIMIT $2) ORDER BY seq LIMIT $2",
        seq, limit,
    )


async def log_lag(conn: Db, seq: int) -> asyncpg.Record:
    """``head``: the newest seq of the log; ``age_s``: how long its oldest entry after ``seq`` (a fix or an
    encounter: the view ``engine_log``, migrations/0016) has waited."""
    return await conn.fetchrow(
        "SELECT coalesce(max(seq), 0) AS head, extract(epoch FROM clock_timestamp() - (SELECT received_at"
        " FROM engine_log WHERE seq > $1 ORDER BY seq LIMIT 1))::float8 AS age_s FROM engine_log", seq)


async def engine_lags(conn: Db, config_version: int, seq: int) -> asyncpg.Record:
    """How long the oldest configuration change after ``config_version`` (``config_lag_s``) and the oldest entry
    of the log after ``seq`` (``log_lag_s``) have waited; NULL when there is none."""
    return await conn.fetchrow(
        "SELECT extract(epoch FROM clock_timestamp() - (SELECT min(changed_at) FROM config_changes"
        "   WHERE version > $1))::float8 AS config_lag_s,"
        " extract(epoch FROM clock_timestamp() - (SELECT received_at FROM engine_log WHERE seq > $2"
        "   ORDER BY seq LIMIT 1))::float8 AS log_lag_s",
        config_version, seq)


async def progress_marker(conn: Db, engine_id: str) -> int | None:
    return await conn.fetchval("SELECT last_seq FROM engine_progress WHERE engine_id = $1", engine_id)


async def advance_progress(conn: asyncpg.Connection, engine_id: str, last_seq: int, stream_seq: int = 0) -> None:
    await conn.execute(
        "INSERT INTO engine_progress (engine_id, last_seq, stream_seq) VALUES ($1, $2, $3) ON CONFLICT (engine_id)"
        " DO UPDATE SET last_seq = GREATEST(engine_progress.last_seq, $2),"
        " stream_seq = GREATEST(engine_progress.stream_seq, $3), updated_at = now()",
        engine_id, last_seq, stream_seq,
    )


class StoredSnapshot(NamedTuple):
    last_seq: int
    stream_seq: int
    state: bytes  # encoded as api/monitoring/snapshot.py says
    config_version: int  # the configuration version its cases were loaded at (0: unknown)


async def read_snapshot(conn: Db, engine_id: str) -> StoredSnapshot | None:
    row = await conn.fetchrow(
        "SELECT last_seq, stream_seq, state, config_version FROM engine_snapshots WHERE engine_id = $1", engine_id)
    return None if row is None else StoredSnapshot(row["last_seq"], row["stream_seq"], bytes(row["state"]),
                                                   row["config_version"])


async def save_snapshot(conn: asyncpg.Connection, engine_id: str, position: "LogPositionLike", state: bytes,
                        config_version: int) -> None:
    await conn.execute(
        "INSERT INTO engine_snapshots (engine_id, last_seq, stream_seq, state, config_version)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (engine_id) DO UPDATE SET last_seq = $2, stream_seq = $3,"
        " state = $4, config_version = $5, taken_at = now()",
        engine_id, position.seq, position.stream_seq, state, config_version,
    )


# ---------------------------------------------------------------- the relay to NATS JetStream (its only writer)

RELAY_ID = "main"


async def relay_start(conn: Db, partitions: int) -> asyncpg.Record:
    """The relay's row (made on first use): ``last_seq`` published so far and the ``partitions`` it publishes to."""
    await conn.execute(
        "INSERT INTO log_relay (relay_id, partitions) VALUES ($1, $2) ON CONFLICT (relay_id) DO NOTHING",
        RELAY_ID, partitions,
    )
    return await conn.fetchrow("SELECT last_seq, partitions FROM log_relay WHERE relay_id = $1", RELAY_ID)


async def advance_relay(conn: asyncpg.Connection, last_seq: int) -> None:
    await conn.execute(
        "UPDATE log_relay SET last_seq = GREATEST(last_seq, $2), updated_at = now() WHERE relay_id = $1",
        RELAY_ID, last_seq,
    )


async def relay_lag(conn: Db) -> asyncpg.Record:
    """``last_seq`` published, and ``age_s``: how long the oldest committed entry of the log (fix or encounter)
    after it has waited (0: none)."""
    return await conn.fetchrow(
        "SELECT r.last_seq, coalesce(extract(epoch FROM clock_timestamp() - (SELECT received_at FROM engine_log"
        " WHERE seq > r.last_seq ORDER BY seq LIMIT 1))::float8, 0) AS age_s"
        " FROM (SELECT coalesce((SELECT last_seq FROM log_relay WHERE relay_id = $1), 0) AS last_seq) r",
        RELAY_ID,
    )
