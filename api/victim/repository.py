"""The SQL of the victim app: its device rows (role ``victim_app``) and their refresh tokens, the redemption of
enrollment codes, the victim's preferences, and the reads of what she may see."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg


# ---------------------------------------------------------------- enrollment and tokens


async def lock_enrollment(conn: asyncpg.Connection, lookup: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT e.lookup, e.secret_hash, e.case_id, e.expires_at, e.used_at, e.failed_attempts, c.status"
        " FROM enrollments e JOIN cases c ON c.id = e.case_id WHERE e.lookup = $1 FOR UPDATE OF e", lookup)


async def count_failed_attempt(conn: asyncpg.Connection, lookup: str) -> int:
    return await conn.fetchval(
        "UPDATE enrollments SET failed_attempts = failed_attempts + 1 WHERE lookup = $1 RETURNING failed_attempts",
        lookup)


async def mark_enrollment_used(conn: asyncpg.Connection, lookup: str) -> None:
    await conn.execute("UPDATE enrollments SET used_at = now() WHERE lookup = $1", lookup)


async def revoke_installation(conn: asyncpg.Connection, case_id: uuid.UUID, installation_id: str) -> None:
    """The same installation enrolling again (a reinstall, a new code) replaces its earlier device."""
    await conn.execute(
        "UPDATE devices SET revoked_at = now(), refresh_token_hash = NULL, refresh_expires_at = NULL"
        " WHERE case_id = $1 AND role = 'victim_app' AND installation_id = $2 AND revoked_at IS NULL",
        case_id, installation_id)


async def insert_app_device(conn: asyncpg.Connection, device_id: uuid.UUID, case_id: uuid.UUID,
                            installation_id: str, platform: str, push_token: str | None) -> None:
    await conn.execute(
        "INSERT INTO devices (id, case_id, role, installation_id, platform, push_token)"
        " VALUES ($1, $2, 'victim_app', $3, $4, $5)", device_id, case_id, installation_id, platform, push_token)



async def replace_refresh_token(conn: asyncpg.Connection, device_id: uuid.UUID, new_hash: str,
                                ttl: timedelta) -> None:
    """The device's previous refresh token is remembered as spent until it would have expired."""
    await conn.execute(
        "INSERT INTO spent_refresh_tokens (token_hash, device_id, expires_at)"
        " SELECT refresh_token_hash, id, refresh_expires_at FROM devices"
        " WHERE id = $1 AND refresh_token_hash IS NOT NULL AND refresh_expires_at > now()"
        " ON CONFLICT (token_hash) DO NOTHING", device_id)
    await conn.execute("DELETE FROM spent_refresh_tokens WHERE device_id = $1 AND expires_at <= now()", device_id)
    await conn.execute(
        "UPDATE devices SET refresh_token_hash = $2, refresh_expires_at = now() + $3::interval WHERE id = $1",
        device_id, new_hash, ttl)


async def lock_device_by_refresh(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, case_id, refresh_expires_at FROM devices WHERE refresh_token_hash = $1"
        " AND role = 'victim_app' AND revoked_at IS NULL FOR NO KEY UPDATE", token_hash)


async def lock_device_by_spent(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """The live device a spent (already traded in, not yet expired) refresh token belonged to."""
    return await conn.fetchrow(
        "SELECT d.id, d.case_id FROM spent_refresh_tokens s JOIN devices d ON d.id = s.device_id"
        " WHERE s.token_hash = $1 AND s.expires_at > now() AND d.revoked_at IS NULL FOR NO KEY UPDATE OF d",
        token_hash)


async def revoke_token_family(conn: asyncpg.Connection, device_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE devices SET refresh_token_hash = NULL, refresh_expires_at = NULL, tokens_revoked_at = now()"
        " WHERE id = $1", device_id)


async def set_push_token(conn: asyncpg.Connection | asyncpg.Pool, device_id: uuid.UUID, push_token: str) -> None:
    await conn.execute("UPDATE devices SET push_token = $2 WHERE id = $1", device_id, push_token)


async def lock_device(conn: asyncpg.Connection, device_id: uuid.UUID) -> None:
    await conn.execute("SELECT 1 FROM devices WHERE id = $1 FOR NO KEY UPDATE", device_id)


# ---------------------------------------------------------------- her alerts (read; api/alerts writes them)

async def recent_suspect_panic(conn: asyncpg.Connection, device_id: uuid.UUID, claim: str,
                               within_s: float) -> uuid.UUID | None:
    return await conn.fetchval(
        "SELECT id FROM alerts WHERE device_id = $1 AND kind = 'panic' AND detail->>'clock_suspect' = 'true'"
        " AND detail->>'recorded_at' = $2 AND raised_at > now() - make_interval(secs => $3)"
        " ORDER BY raised_at DESC LIMIT 1", device_id, claim, within_s)


# Hers: an alert of one of the kinds ($2), or a silence of one of the kinds ($3) that went dark near her.
_HERS = "(a.kind = ANY($2::text[]) OR (a.kind = ANY($3::text[]) AND a.detail->>'near_victim' = 'true'))"


async def alerts_page(conn: asyncpg.Connection | asyncpg.Pool, case_id: uuid.UUID, kinds: list[str],
                      near_kinds: list[str], before_at: datetime | None, before_id: uuid.UUID | None,
                      limit: int) -> list[asyncpg.Record]:
    """Newest first, keyset on (opened_at, id), ``limit + 1`` rows; never a position, zone or device. ``ble``:
    her phone heard his tag (a change with trigger ble)."""
    return await conn.fetch(
        "SELECT a.id, a.kind, a.level, a.confidence, a.status, a.opened_at, a.cleared_at,"
        " EXISTS (SELECT 1 FROM alert_changes ch WHERE ch.alert_id = a.id AND ch.detail->>'trigger' = 'ble') AS ble"
        f" FROM alerts a WHERE a.case_id = $1 AND {_HERS}"
        " AND ($4::timestamptz IS NULL OR (a.opened_at, a.id) < ($4, $5)) ORDER BY a.opened_at DESC, a.id DESC"
        " LIMIT $6",
        case_id, kinds, near_kinds, before_at, before_id, limit + 1)


async def alert_of_case(conn: asyncpg.Connection, alert_id: uuid.UUID, case_id: uuid.UUID,
                        kinds: list[str], near_kinds: list[str]) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT a.level, a.confidence FROM alerts a WHERE a.id = $4 AND a.case_id = $1 AND {_HERS}",
        case_id, kinds, near_kinds, alert_id)


async def first_change_by(conn: asyncpg.Connection, alert_id: uuid.UUID, change: str, actor: str) -> datetime | None:
    return await conn.fetchval(
        "SELECT at FROM alert_changes WHERE alert_id = $1 AND change = $2 AND actor = $3 ORDER BY seq LIMIT 1",
        alert_id, change, actor)


async def change_time(conn: asyncpg.Connection, seq: int) -> datetime:
    return await conn.fetchval("SELECT at FROM alert_changes WHERE seq = $1", seq)


# ---------------------------------------------------------------- her case

async def latest_stage(conn: asyncpg.Connection, case_id: uuid.UUID, stages: list[str]) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT kind, occurred_at FROM timeline_events WHERE case_id = $1 AND visibility = 'victim'"
        " AND kind = ANY($2) ORDER BY occurred_at DESC, created_at DESC LIMIT 1", case_id, stages)


async def case_created_at(conn: asyncpg.Connection, case_id: uuid.UUID) -> datetime:
    return await conn.fetchval("SELECT created_at FROM cases WHERE id = $1", case_id)


async def orders(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, kind, valid_from, valid_until, expiry_handled_until FROM orders"
                            " WHERE case_id = $1 ORDER BY valid_from, id", case_id)


async def exclusion_zones(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[asyncpg.Record]:
    """Only exclusion zones: inclusion zones are where the offender must stay, i.e. where he lives."""
    return await conn.fetch("SELECT id, order_id, name, geometry, schedule FROM zones WHERE case_id = $1"
                            " AND kind = 'exclusion' ORDER BY created_at, id", case_id)


# ---------------------------------------------------------------- her preferences

async def preferences(conn: asyncpg.Connection, case_id: Any) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT channel, quiet_start, quiet_end, update_frequency FROM victim_preferences"
                               " WHERE case_id = $1", case_id)


async def set_language(conn: asyncpg.Connection, case_id: uuid.UUID, language: str) -> None:
    await conn.execute("UPDATE parties SET language = $2 WHERE case_id = $1 AND role = 'victim'", case_id, language)


async def save_preferences(conn: asyncpg.Connection, case_id: uuid.UUID, channel: str, quiet_start: Any,
                           quiet_end: Any, update_frequency: str) -> None:
    await conn.execute(
        "INSERT INTO victim_preferences (case_id, channel, quiet_start, quiet_end, update_frequency)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id) DO UPDATE SET channel = $2, quiet_start = $3,"
        " quiet_end = $4, update_frequency = $5, updated_at = now()",
        case_id, channel, quiet_start, quiet_end, update_frequency)
