"""Building blocks for notification tests: a case with a victim app, alerts written through alert_store, and
a dispatcher wired exactly as the app wires it (real channels, injected clock)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
import functools
from typing import Any, Sequence

import asyncpg

from api.alerts import repository as alert_store
from api.platform import pg_channels
from api.platform.database import create_pool
from notifications.channels import Channel
from notifications.clock import Clock, ManualClock
from notifications.config import NotificationConfig
from notifications.dispatcher import AlertHooks, Dispatcher
from notifications.outbox import Outbox
from notifications.policy import DEFAULT_POLICY

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=timezone.utc)


async def make_case(
    conn: asyncpg.Connection,
    *,
    language: str = "en",
    token: str | None = "tok-victim-1",
    platform: str = "ios",
    phone: str | None = None,
    policy: dict[str, Any] | None = None,
    supplier_webhook: str | None = None,
    supplier_key: tuple[str, bytes] | None = None,
) -> uuid.UUID:
    case_id = uuid.uuid4()
    await conn.execute("INSERT INTO cases (id, reference, created_by) VALUES ($1, $2, 'test')", case_id,
                       f"N-{case_id.hex[:8]}")
    await conn.execute("INSERT INTO parties (id, case_id, role, display_name, language) VALUES ($1,$2,'victim','V',$3)",
                       uuid.uuid4(), case_id, language)
    await conn.execute("INSERT INTO parties (id, case_id, role, display_name) VALUES ($1,$2,'offender','O')",
                       uuid.uuid4(), case_id)
    await conn.execute(
        "INSERT INTO devices (id, case_id, role, platform, push_token, installation_id)"
        " VALUES ($1, $2, 'victim_app', $3, $4, 'inst')", uuid.uuid4(), case_id, platform, token)
    if phone is not None or policy:
        await conn.execute(
            "INSERT INTO notification_policies (case_id, victim_phone, policy, updated_by) VALUES ($1, $2, $3, 't')",
            case_id, phone, policy or {})
    if supplier_webhook is not None:
        sid = uuid.uuid4()
        await conn.execute("INSERT INTO suppliers (id, name, webhook_url) VALUES ($1, $2, $3)", sid,
                           f"sup-{sid.hex[:6]}", supplier_webhook)
        key_id, enc = supplier_key or (f"k-{sid.hex[:6]}", b"")
        await conn.execute("INSERT INTO supplier_keys (key_id, supplier_id, secret_enc) VALUES ($1, $2, $3)",
                           key_id, sid, enc)
        await conn.execute(
            "INSERT INTO devices (id, case_id, role, supplier_id, serial) VALUES ($1, $2, 'offender_tag', $3, $4)",
            uuid.uuid4(), case_id, sid, f"TAG-{sid.hex[:6]}")
    return case_id


def outbox_for(clock: Clock | None = None, deadline_s: float = 900.0) -> Outbox:
    return Outbox(wake_channel=pg_channels.OUTBOX, defaults=DEFAULT_POLICY, deadline_s=deadline_s,
                  clock=clock or ManualClock(T0))


async def open_alert(outbox: Outbox, pool: asyncpg.Pool, case_id: uuid.UUID, *, kind: str = "proximity",
                     level: str = "violation",
                     confidence: str = "confirmed", opened_at: datetime = T0) -> uuid.UUID:
    alert_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await alert_store.open_alert(conn, outbox=outbox, alert_id=alert_id, case_id=case_id, kind=kind, level=level,
                                     confidence=confidence, opened_at=opened_at, actor="system:test")
    return alert_id


async def change(outbox: Outbox, pool: asyncpg.Pool, alert_id: uuid.UUID, name: str, *, level: str = "violation",
                 confidence: str = "confirmed", actor: str | None = "system:test", detail: dict[str, Any] | None = None,
                 status: str | None = None) -> int | None:
    async with pool.acquire() as conn, conn.transaction():
        if status is not None:
            await conn.execute("UPDATE alerts SET status = $2 WHERE id = $1", alert_id, status)
        if name in ("escalated",):
            await conn.execute("UPDATE alerts SET level = $2, max_level = $2, confidence = $3 WHERE id = $1",
                               alert_id, level, confidence)
        return await alert_store.append_change(conn, alert_id, name, outbox=outbox, level=level, confidence=confidence,
                                               actor=actor,
                                               detail=detail)


def decrypt(blob: bytes) -> str:
    """Supplier keys in these tests are stored in the clear."""
    return blob.decode() if blob else ""


def hooks(outbox: Outbox) -> AlertHooks:
    return AlertHooks(append_change=functools.partial(alert_store.append_change, outbox=outbox),
                      append_changes=functools.partial(alert_store.append_changes, outbox=outbox),
                      open_alert=functools.partial(alert_store.open_alert, outbox=outbox), decrypt=decrypt,
                      alert_log_lock=alert_store.ALERT_LOG_LOCK)


def dispatcher(pool: asyncpg.Pool, outbox: Outbox, channels: Sequence[Channel], **config: Any) -> Dispatcher:
    return Dispatcher(pool, outbox, channels, hooks(outbox), NotificationConfig(**config))


async def pool_for(url: str) -> asyncpg.Pool:
    return await create_pool(url, 1, 8)


async def rows(pool: asyncpg.Pool, where: str = "true", *args: Any) -> list[asyncpg.Record]:
    return await pool.fetch(f"SELECT * FROM outbox WHERE {where} ORDER BY id", *args)


async def changes(pool: asyncpg.Pool, alert_id: uuid.UUID) -> list[str]:
    return [r["change"] for r in await pool.fetch(
        "SELECT change FROM alert_changes WHERE alert_id = $1 ORDER BY seq", alert_id)]
