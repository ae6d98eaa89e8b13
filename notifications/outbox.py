"""The transactional outbox: notification rows written in the transaction of the alert change that causes them.

The only writer of ``outbox`` (and its ``delivery_attempts``): enqueueing here, and the dispatcher's claim and
record through the functions below. ``api.alerts.repository.append_change`` calls :meth:`Outbox.enqueue_for_change` after it stored a
change, on the same connection and inside the same transaction: the change and its notifications commit
together or not at all. Rows carry a deterministic ``idempotency_key`` (UNIQUE, inserted with ON CONFLICT DO
NOTHING), so a replayed or repeated decision never enqueues twice. The ``message_key`` (a UUID derived from the alert and the message)
travels in every payload so the victim's app can drop a resend after a crash between send and record.

This module never imports ``api``: ``api`` imports it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

import asyncpg

from notifications import policy
from notifications.clock import Clock, SystemClock, iso

_NS = uuid.UUID("5d1f6a3e-3c0b-4bb7-9a59-2f8e7e0d9a11")


def message_key(alert_id: uuid.UUID | str, key: str) -> uuid.UUID:
    return uuid.uuid5(_NS, f"{alert_id}/{key}")


def ordering_key(recipient: str, case_id: uuid.UUID | str, channel: str, safety: bool) -> str | None:
    """Per victim (case), per channel, per class: delivered strictly in order. Timers need no order."""
    if channel == "timer":
        return None
    return f"{recipient}:{case_id}:{channel}:{'safety' if safety else 'info'}"


@dataclass(frozen=True)
class Row:
    idempotency_key: str
    message_key: uuid.UUID
    alert_id: uuid.UUID | None
    case_id: uuid.UUID
    change_seq: int | None
    recipient: str
    channel: str
    purpose: str
    safety: bool
    payload: Mapping[str, Any]
    next_attempt_at: datetime
    deadline: datetime
    enqueued_at: datetime


# The case's side of a decision; the alert's side (``id, kind, case_id, status, max_level``) comes from the
# statement that stored the change, so enqueueing reads no alert row again.
_LOOKUP = (
    "SELECT np.policy, vp.channel, vp.quiet_start, vp.quiet_end, vp.update_frequency,"
    " EXISTS (SELECT 1 FROM parties p WHERE p.case_id = $1 AND p.role = 'victim') AS has_victim,"
    " COALESCE((SELECT p.language FROM parties p WHERE p.case_id = $1 AND p.role = 'victim'), 'nl') AS language"
    " FROM (SELECT 1) one LEFT JOIN notification_policies np ON np.case_id = $1"
    " LEFT JOIN victim_preferences vp ON vp.case_id = $1"
)


def victim_preferences(row: Mapping[str, Any] | None) -> policy.VictimPreferences:
    """Her preferences from a row with ``channel, quiet_start, quiet_end, update_frequency`` (any may be null)."""
    if row is None or row["channel"] is None:
        return policy.VictimPreferences()
    quiet = (policy.QuietHours(row["quiet_start"], row["quiet_end"])
             if row["quiet_start"] is not None and row["quiet_end"] is not None else None)
    return policy.VictimPreferences(row["channel"], quiet, row["update_frequency"] or "on_change")


@dataclass(frozen=True)
class Outbox:
    """Enqueueing with this process's settings: the case policy's defaults, how long a message is retried, and
    the clock (a test's manual one, or the app's, which the demo may shift). Built once by the app and passed to
    whoever enqueues; it holds no connection and no state that changes."""

    wake_channel: str  # NOTIFYed when rows are new; the app names it (api/platform/pg_channels.py)
    defaults: policy.CasePolicy = policy.DEFAULT_POLICY
    deadline_s: float = 900.0  # retry until this long after enqueueing, then dead-letter
    staff_webhook: bool = False  # staff notices are posted to a configured webhook
    clock: Clock = field(default_factory=SystemClock)

    def now(self) -> datetime:
        return self.clock.now()

    def deadline(self, at: datetime) -> datetime:
        return at + timedelta(seconds=self.deadline_s)

    def case_policy(self, stored: Mapping[str, Any] | None) -> policy.CasePolicy:
        """The defaults with a case's stored overrides; overrides that no longer validate are ignored field by
        field rather than silencing every notification of the case."""
        try:
            return self.defaults.with_overrides(stored)
        except ValueError:
            p = self.defaults
            for k, v in (stored or {}).items():
                try:
                    p = p.with_overrides({k: v})
                except ValueError:
                    continue
            return p

    async def enqueue_for_change(
        self,
        conn: asyncpg.Connection,
        *,
        alert: Mapping[str, Any] | None,
        seq: int,
        change: str,
        level: str,
        confidence: str,
        actor: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Decide and enqueue the notifications of one stored change of ``alert`` (its ``id, kind, case_id,
        status, max_level`` as the change left them; None: no such alert). Returns rows inserted. Call in its
        transaction."""
        if alert is None or not policy.may_notify(change, level):
            return 0
        alert_id = alert["id"]
        case_id = alert["case_id"]
        c = await conn.fetchrow(_LOOKUP, case_id)
        # Her own quiet hours hold for every non-safety message, unless staff set the case's.
        p = policy.with_preferences(self.case_policy(c["policy"]), victim_preferences(c))
        facts = policy.ChangeFacts(
            alert_id=str(alert_id), case_id=str(case_id), kind=alert["kind"], change=change, level=level,
            confidence=confidence, max_level=_max_level(alert["max_level"], level), status=alert["status"], seq=seq,
            actor=actor, detail=detail or {}, has_victim=c["has_victim"],
        )
        intents = [i for i in policy.decide(facts, p) if i.channel != "stream"]
        if not intents:
            return 0
        now = self.now()
        rows: list[Row] = []
        for it in intents:
            at = now + timedelta(seconds=it.delay_s)
            if it.recipient == "victim" and not it.safety:
                at = policy.release_time(at, p, await recent_non_safety(conn, case_id, now))
            mkey = message_key(alert_id, it.key)
            payload = {
                "alert_id": str(alert_id), "kind": alert["kind"], "level": level, "confidence": confidence,
                "purpose": it.purpose, "template": it.template, "language": c["language"], "change_seq": seq,
                **{k: v for k, v in it.params.items()},
            }
            rows.append(Row(
                idempotency_key=f"{mkey}:{it.channel}", message_key=mkey, alert_id=alert_id, case_id=case_id,
                change_seq=seq, recipient=it.recipient, channel=it.channel, purpose=it.purpose, safety=it.safety,
                payload=payload, next_attempt_at=at, deadline=self.deadline(at), enqueued_at=now,
            ))
        return await self.insert_rows(conn, rows)

    async def insert_rows(self, conn: asyncpg.Connection, rows: list[Row]) -> int:
        """Insert rows, skipping any whose idempotency key exists; NOTIFY the dispatchers when something is new."""
        if not rows:
            return 0
        # One round trip: insert what is new and, if anything was, wake the dispatchers (NOTIFY at commit).
        inserted = await conn.fetchval(
            "WITH ins AS (INSERT INTO outbox (idempotency_key, message_key, alert_id, case_id, change_seq, recipient,"
            " channel, purpose, safety, ordering_key, payload, enqueued_at, next_attempt_at, deadline)"
            " SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[], $6::text[],"
            " $7::text[], $8::text[], $9::bool[], $10::text[], $11::jsonb[], $12::timestamptz[],"
            " $13::timestamptz[], $14::timestamptz[])"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id)"
            " SELECT c.n FROM (SELECT count(*) AS n FROM ins) c"
            " LEFT JOIN LATERAL (SELECT pg_notify($15, '')) notify ON c.n > 0",
            [r.idempotency_key for r in rows], [r.message_key for r in rows], [r.alert_id for r in rows],
            [r.case_id for r in rows], [r.change_seq for r in rows], [r.recipient for r in rows],
            [r.channel for r in rows], [r.purpose for r in rows], [r.safety for r in rows],
            [ordering_key(r.recipient, r.case_id, r.channel, r.safety) for r in rows],
            [dict(r.payload) for r in rows], [r.enqueued_at for r in rows], [r.next_attempt_at for r in rows],
            [r.deadline for r in rows], self.wake_channel,
        )
        return int(inserted or 0)

    def fallback_row(self, original: Mapping[str, Any], channel: str, now: datetime) -> Row:
        """The same message (same message key) on another channel, e.g. SMS after push failed."""
        return Row(
            idempotency_key=f"{original['message_key']}:{channel}", message_key=original["message_key"],
            alert_id=original["alert_id"], case_id=original["case_id"], change_seq=original["change_seq"],
            recipient=original["recipient"], channel=channel, purpose=original["purpose"],
            safety=original["safety"], payload=dict(original["payload"]), next_attempt_at=now,
            deadline=self.deadline(now), enqueued_at=now,
        )


def _max_level(stored: str, level: str) -> str:
    return stored if policy.LEVEL_RANK.get(stored, 0) >= policy.LEVEL_RANK.get(level, 0) else level




async def recent_non_safety(conn: asyncpg.Connection, case_id: uuid.UUID, now: datetime) -> list[datetime]:
    """When this victim's non-safety pushes of the last hour (and those still waiting) go, oldest first."""
    rows = await conn.fetch(
        "SELECT next_attempt_at FROM outbox WHERE case_id = $1 AND recipient = 'victim' AND NOT safety"
        " AND channel = 'push' AND next_attempt_at > $2 ORDER BY next_attempt_at", case_id, now - timedelta(hours=1))
    return [r["next_attempt_at"] for r in rows]


_STATUS_VIEW = {"queued": "queued", "sending": "queued", "sent": "sent", "failed": "failed", "dead": "failed",
                "skipped": "skipped"}


_DELIVERY_COLUMNS = ("id, recipient, channel, purpose, status, attempts, last_error, enqueued_at, next_attempt_at,"
                     " sent_at, message_key")


async def deliveries_for_alert(conn: asyncpg.Connection | asyncpg.Pool, alert_id: uuid.UUID) -> list[dict[str, Any]]:
    """Delivery status per recipient and channel, for ``GET /v1/alerts/{id}`` (timers left out)."""
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM outbox WHERE alert_id = $1 AND channel <> 'timer' ORDER BY id", alert_id)
    return [_delivery(r) for r in rows]


async def deliveries_by_message(conn: asyncpg.Connection | asyncpg.Pool,
                                message_keys: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Delivery status of each message (push, its SMS fallback, a webhook), by message key."""
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM outbox WHERE message_key = ANY($1::uuid[]) AND channel <> 'timer'"
        " ORDER BY id", message_keys)
    out: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["message_key"], []).append(_delivery(r))
    return out


def _delivery(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "recipient": r["recipient"],
        "channel": r["channel"],
        "purpose": r["purpose"],
        "status": _STATUS_VIEW.get(r["status"], r["status"]),
        "dead_lettered": r["status"] == "dead",
        "reason": r["last_error"],
        "attempts": r["attempts"],
        "queued_at": iso(r["enqueued_at"]),
        "next_attempt_at": iso(r["next_attempt_at"]) if r["status"] in ("queued", "sending") else None,
        "sent_at": iso(r["sent_at"]),
        "idempotency_key": str(r["message_key"]),
    }


# ---------------------------------------------------------------- the dispatcher's claim and record

_CLAIM = """
WITH due AS (
    SELECT o.id, o.status AS prev_status FROM outbox o
    WHERE o.status IN ('queued', 'sending') AND o.next_attempt_at <= $1
      AND (o.ordering_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM outbox p WHERE p.ordering_key = o.ordering_key AND p.id < o.id
              AND p.status IN ('queued', 'sending')))
    ORDER BY o.next_attempt_at, o.id
    LIMIT $2
    FOR UPDATE OF o SKIP LOCKED
)
UPDATE outbox o SET status = 'sending', attempts = o.attempts + 1, next_attempt_at = $3
FROM due WHERE o.id = due.id
RETURNING o.*, due.prev_status
"""

LOST_ATTEMPT = "lease expired: the dispatcher stopped before recording"


async def claim(conn: asyncpg.Connection, now: datetime, batch: int, lease_until: datetime) -> list[asyncpg.Record]:
    """Due rows, at most the oldest pending one per ordering key, marked ``sending`` until ``lease_until``."""
    return await conn.fetch(_CLAIM, now, batch, lease_until)


async def depth(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')"))


async def mark_sent(conn: asyncpg.Connection, rows: Sequence[tuple[int, int, str | None]],
                    now: datetime) -> set[int]:
    """(id, attempts, provider id) of rows sent; returns the ids still ours (same attempt, still sending)."""
    return {r["id"] for r in await conn.fetch(
        "UPDATE outbox o SET status = 'sent', sent_at = $4, provider_id = x.pid, last_error = NULL"
        " FROM unnest($1::bigint[], $2::int[], $3::text[]) AS x(id, attempts, pid)"
        " WHERE o.id = x.id AND o.attempts = x.attempts AND o.status = 'sending' RETURNING o.id",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], now,
    )}


async def set_status(conn: asyncpg.Connection, row: Mapping[str, Any], status: str, **cols: Any) -> bool:
    """Move a claimed row on, if it is still ours (same attempt, still sending)."""
    sets = ["status = $3"] + [f"{k} = ${i}" for i, k in enumerate(cols, start=4)]
    done = await conn.fetchval(
        f"UPDATE outbox SET {', '.join(sets)} WHERE id = $1 AND attempts = $2 AND status = 'sending'"
        " RETURNING true",
        row["id"], row["attempts"], status, *cols.values(),
    )
    return bool(done)


async def record_attempts(conn: asyncpg.Connection, attempts: Sequence[tuple[Any, ...]]) -> None:
    """Attempt rows: (outbox id, attempt, started, finished, outcome, reason, provider id, retry after)."""
    await conn.executemany(
        "INSERT INTO delivery_attempts (outbox_id, attempt, started_at, finished_at, outcome, reason,"
        " provider_id, retry_after_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", attempts)


def lost_attempt(row: Mapping[str, Any], started: datetime) -> tuple[Any, ...]:
    """The attempt of a dispatcher that sent and stopped before recording (the row was claimed again)."""
    return (row["id"], row["attempts"] - 1, started, started, "unknown", LOST_ATTEMPT, None, None)


async def find(conn: asyncpg.Connection, idempotency_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM outbox WHERE idempotency_key = $1", idempotency_key)
