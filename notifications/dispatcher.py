"""Delivers outbox rows: claim, address, send, record; retry, fall back, dead-letter, and run the timers.

* **Claim** (one short transaction): due rows ``FOR UPDATE SKIP LOCKED``, at most the oldest pending row per
  ``ordering_key`` (so one victim's messages on one channel go strictly in order), marked ``sending`` with a
  lease (``next_attempt_at = now + lease``). Several dispatchers (or workers) never take the same row.
* **Send** outside any transaction, concurrently, through the channels.
* **Record** (one transaction per batch): an attempt row for every attempt, then the row's new state and its
  effects on the alert's history (``notified``, ``delivery_failed``, …) through the app's ``append_change``.
  The record only applies while the row is still ours (same ``attempts``).
* **Crash between send and record**: the row stays ``sending``; when the lease runs out any dispatcher claims
  it again and resends it with the same message key (FCM collapse key, data ``idempotency_key``) — the app shows
  it once. The lost attempt is recorded as ``unknown``. Nothing is enqueued twice: the outbox row is the unit.
* **Timers** (``channel = 'timer'``): the victim acknowledgement deadline and the automatic escalation are
  outbox rows due at a later time, so they survive restarts like everything else.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Mapping

import asyncpg

from notifications import catalogue, outbox
from notifications.channels import Channel, Delivery, Outcome
from notifications.clock import Clock, SystemClock

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:notifications"
AUTO_ESCALATION_ACTOR = "system:auto-escalation"
_NS = uuid.UUID("0b6c8f7e-8f7a-4c55-93f3-0d3f5a0e2b77")


@dataclass
class DispatcherConfig:
    batch: int = 100
    workers: int = 2
    poll_s: float = 1.0
    lease_s: float = 60.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 3600.0
    police_url: str | None = None
    police_key_id: str = "afstand"
    police_secret: str | None = None
    staff_url: str | None = None
    staff_key_id: str = "afstand"
    staff_secret: str | None = None


@dataclass
class AlertHooks:
    """What the dispatcher needs from the app, passed in so ``notifications`` never imports ``api``."""

    append_change: Callable[..., Awaitable[int | None]]
    open_alert: Callable[..., Awaitable[bool]]
    decrypt: Callable[[bytes], str] = lambda blob: ""
    on_failure: Callable[[str, str], None] = lambda channel, reason: None
    on_depth: Callable[[int], None] = lambda depth: None
    # The transaction-scoped advisory lock that append_change takes (api.alerts.repository.ALERT_LOG_LOCK).
    alert_log_lock: int | None = None


@dataclass
class _Job:
    row: asyncpg.Record
    prev_status: str
    started: datetime
    delivery: Delivery | None = None
    outcome: Outcome | None = None
    device_id: uuid.UUID | None = None
    token: str | None = None
    no_address: str | None = None  # why there is no address (not configured, no token, no phone, …)
    extra: dict[str, Any] = field(default_factory=dict)


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


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: Mapping[str, Channel],
        hooks: AlertHooks,
        config: DispatcherConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.pool = pool
        self.channels = dict(channels)
        self.hooks = hooks
        self.config = config or DispatcherConfig()
        self.clock = clock or SystemClock()
        self._wake = asyncio.Event()
        # time.monotonic() when a worker last finished a round (claimed and handled, or found nothing due).
        self.last_round: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # Test seam: called after sending and before recording (a crash there must lose nothing).
        self.after_send: Callable[[list[_Job]], Awaitable[None]] | None = None

    # ------------------------------------------------------------------ lifecycle
    def wake(self) -> None:
        """Claim due rows now: something was enqueued, or the app's listener (re)connected and whatever was
        notified while it was away must be found by claiming."""
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._tasks = [asyncio.create_task(self._loop(i), name=f"notify-{i}") for i in range(self.config.workers)]

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks = []

    async def _loop(self, worker: int) -> None:
        while not self._stopping:
            try:
                n = await self.run_once()
                self.last_round = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification dispatch failed; retrying")
                n = 0
                await asyncio.sleep(min(self.config.poll_s, 1.0))
            if n == 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_s)
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()
                if worker == 0:
                    await self._report_depth()

    async def _report_depth(self) -> None:
        try:
            depth = await self.pool.fetchval("SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending')")
            self.hooks.on_depth(int(depth))
        except Exception:  # metrics never break delivery
            pass

    # ------------------------------------------------------------------ one round
    async def run_once(self) -> int:
        """Claim, deliver and record one batch of due rows; returns how many were claimed."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, now, self.config.batch, now + timedelta(seconds=self.config.lease_s))
        if not rows:
            return 0
        jobs = [_Job(row=r, prev_status=r["prev_status"], started=now) for r in rows]
        timers = [j for j in jobs if j.row["channel"] == "timer"]
        sends = [j for j in jobs if j.row["channel"] != "timer"]
        for j in timers:
            await self._run_timer(j)
        if sends:
            await self._address(sends)
            await asyncio.gather(*(self._send(j) for j in sends))
            if self.after_send is not None:
                await self.after_send(sends)
            await self._record(sends)
        return len(rows)

    async def drain(self, max_rounds: int = 10_000) -> int:
        """Run rounds until nothing is due (tests and tools)."""
        total = 0
        for _ in range(max_rounds):
            n = await self.run_once()
            if n == 0:
                break
            total += n
        return total

    # ------------------------------------------------------------------ addressing
    async def _address(self, jobs: list[_Job]) -> None:
        case_ids = list({j.row["case_id"] for j in jobs})
        alert_ids = list({j.row["alert_id"] for j in jobs if j.row["alert_id"] is not None})
        async with self.pool.acquire() as conn:
            tokens = {
                r["case_id"]: r for r in await conn.fetch(
                    "SELECT DISTINCT ON (case_id) case_id, id, push_token, platform FROM devices"
                    " WHERE case_id = ANY($1) AND role = 'victim_app' AND revoked_at IS NULL"
                    " AND push_token IS NOT NULL ORDER BY case_id, created_at DESC",
                    case_ids,
                )
            } if any(j.row["channel"] == "push" for j in jobs) else {}
            phones = {
                r["case_id"]: r["victim_phone"] for r in await conn.fetch(
                    "SELECT case_id, victim_phone FROM notification_policies WHERE case_id = ANY($1)"
                    " AND victim_phone IS NOT NULL", case_ids,
                )
            } if any(j.row["channel"] in ("sms", "push") for j in jobs) else {}
            alerts = {
                r["id"]: r for r in await conn.fetch(
                    "SELECT a.id, a.kind, a.level, a.confidence, a.status, a.opened_at, a.raised_at, c.reference"
                    " FROM alerts a JOIN cases c ON c.id = a.case_id WHERE a.id = ANY($1)", alert_ids,
                )
            } if any(j.row["channel"] == "police_webhook" for j in jobs) else {}
            tags: dict[uuid.UUID, list[asyncpg.Record]] = {}
            if any(j.row["channel"] == "supplier_webhook" for j in jobs):
                for r in await conn.fetch(
                    "SELECT d.case_id, d.serial, s.webhook_url, k.key_id, k.secret_enc FROM devices d"
                    " JOIN suppliers s ON s.id = d.supplier_id"
                    " LEFT JOIN LATERAL (SELECT key_id, secret_enc FROM supplier_keys WHERE supplier_id = s.id"
                    "   AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1) k ON true"
                    " WHERE d.case_id = ANY($1) AND d.role = 'offender_tag' AND d.revoked_at IS NULL",
                    case_ids,
                ):
                    tags.setdefault(r["case_id"], []).append(r)
        for j in jobs:
            r = j.row
            p = r["payload"]
            ch = r["channel"]
            if ch == "push":
                j.extra["sms_possible"] = "sms" in self.channels and bool(phones.get(r["case_id"]))
            if ch not in self.channels:
                j.no_address = "not_configured"
                continue
            mkey = str(r["message_key"])
            if ch in ("push", "sms"):
                lang = p.get("language") or "nl"
                if "title" in p:  # a notice or a thread message: its text was rendered when it was stored
                    title, body = p["title"], p["body"]
                else:
                    title, body = catalogue.render(lang, p.get("template") or "violation.default", p.get("text"))
                data = {k: p[k] for k in ("alert_id", "kind", "level", "notice_id", "message_id") if p.get(k)}
                data.update(purpose=p["purpose"], idempotency_key=mkey)
                if ch == "push":
                    tok = tokens.get(r["case_id"])
                    if tok is None:
                        j.no_address = "no_push_token"
                        continue
                    j.device_id, j.token = tok["id"], tok["push_token"]
                    j.delivery = Delivery(mkey, tok["push_token"], title, body, data, bool(r["safety"]),
                                          platform=tok["platform"])
                else:
                    phone = phones.get(r["case_id"])
                    if not phone:
                        j.no_address = "no_phone_number"
                        continue
                    j.delivery = Delivery(mkey, phone, title, catalogue.sms_text(lang, title, body), data,
                                          bool(r["safety"]))
            elif ch == "police_webhook":
                a = alerts.get(r["alert_id"])
                if not self.config.police_url or a is None:
                    j.no_address = "not_configured"
                    continue
                j.delivery = Delivery(mkey, self.config.police_url, json_body={
                    "type": "escalation", "idempotency_key": mkey, "alert_id": str(a["id"]),
                    "case_reference": a["reference"], "kind": a["kind"], "level": a["level"],
                    "confidence": a["confidence"], "status": a["status"], "opened_at": _iso(a["opened_at"]),
                    "escalated_by": p.get("actor"), "reason": p.get("reason") or None,
                }, signing_key_id=self.config.police_key_id, signing_secret=self.config.police_secret)
            elif ch == "staff_webhook":
                if not self.config.staff_url:
                    j.no_address = "not_configured"
                    continue
                j.delivery = Delivery(mkey, self.config.staff_url, json_body={
                    "type": "staff_notice", "idempotency_key": mkey, **p,
                }, signing_key_id=self.config.staff_key_id, signing_secret=self.config.staff_secret)
            elif ch == "supplier_webhook":
                candidates = [t for t in tags.get(r["case_id"], []) if t["webhook_url"] and t["key_id"]]
                if not candidates:
                    j.no_address = "no_supplier_webhook"
                    continue
                t = candidates[0]
                pursuit = r["purpose"] == "pursuit_on"
                j.delivery = Delivery(mkey, t["webhook_url"], json_body={
                    "type": "reporting_rate", "idempotency_key": mkey, "alert_id": p["alert_id"],
                    "serials": sorted(x["serial"] for x in candidates if x["webhook_url"] == t["webhook_url"]),
                    "mode": "pursuit" if pursuit else "normal",
                    "interval_s": int(p.get("interval_s") or 15) if pursuit else None,
                }, signing_key_id=t["key_id"], signing_secret=self.hooks.decrypt(t["secret_enc"]))

    async def _send(self, j: _Job) -> None:
        if j.delivery is None:
            return
        channel = self.channels[j.row["channel"]]
        try:
            j.outcome = await channel.send(j.delivery)
        except Exception as e:  # a channel must not raise; if it does, it is a retry, never a loss
            j.outcome = Outcome("retry", type(e).__name__)

    # ------------------------------------------------------------------ recording
    def _backoff(self, attempts: int, retry_after_s: float | None) -> float:
        base = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** max(0, attempts - 1))
        delay = base * (0.5 + random.random() / 2)  # "equal jitter": between half and all of the step
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.config.retry_after_max_s))
        return delay

    async def _locked(self, conn: asyncpg.Connection, alert_ids: list[uuid.UUID]) -> dict[uuid.UUID, asyncpg.Record]:
        """Take the alert-log lock first, then the alerts' row locks without waiting.

        Operator routes lock an alert row and then the alert-log lock; the engine takes the alert-log lock and
        then updates alert rows. Waiting for a row while holding the log lock could deadlock with a route, so a
        busy row aborts this transaction instead (LockNotAvailableError) and the caller tries again."""
        if self.hooks.alert_log_lock is not None:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self.hooks.alert_log_lock)
        rows = await conn.fetch(
            "SELECT id, level, confidence, status FROM alerts WHERE id = ANY($1) ORDER BY id FOR UPDATE NOWAIT",
            alert_ids)
        return {r["id"]: r for r in rows}

    async def _retrying(self, work: Callable[[], Awaitable[None]]) -> None:
        for attempt in range(50):
            try:
                await work()
                return
            except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError):
                await asyncio.sleep(0.005 * (attempt + 1) * (0.5 + random.random()))
        await work()

    async def _record(self, jobs: list[_Job]) -> None:
        now = self.clock.now()
        ids = list({j.row["alert_id"] for j in jobs if j.row["alert_id"] is not None})

        async def work() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                state = await self._locked(conn, ids)
                sent = [j for j in jobs if j.no_address is None and j.outcome is not None
                        and j.outcome.result == "sent"]
                await self._record_sent(conn, sent, now, state)
                for j in jobs:
                    if j not in sent:
                        await self._record_one(conn, j, now, state.get(j.row["alert_id"]))

        await self._retrying(work)

    async def _record_sent(self, conn: asyncpg.Connection, jobs: list[_Job], now: datetime,
                           state: dict[uuid.UUID, asyncpg.Record]) -> None:
        """The common case in three statements plus one ``notified`` change per delivery."""
        if not jobs:
            return
        ours = {r["id"] for r in await conn.fetch(
            "UPDATE outbox o SET status = 'sent', sent_at = $4, provider_id = x.pid, last_error = NULL"
            " FROM unnest($1::bigint[], $2::int[], $3::text[]) AS x(id, attempts, pid)"
            " WHERE o.id = x.id AND o.attempts = x.attempts AND o.status = 'sending' RETURNING o.id",
            [j.row["id"] for j in jobs], [j.row["attempts"] for j in jobs],
            [j.outcome.provider_id if j.outcome else None for j in jobs], now,
        )}
        mine = [j for j in jobs if j.row["id"] in ours]
        lost = [j for j in mine if j.prev_status == "sending"]
        rows = [(j.row["id"], j.row["attempts"] - 1, j.started, j.started, "unknown",
                 "lease expired: the dispatcher stopped before recording", None) for j in lost]
        rows += [(j.row["id"], j.row["attempts"], j.started, now, "sent", None,
                  j.outcome.provider_id if j.outcome else None) for j in mine]
        await conn.executemany(
            "INSERT INTO delivery_attempts (outbox_id, attempt, started_at, finished_at, outcome, reason, provider_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)", rows)
        for j in mine:
            r = j.row
            await self._change(conn, j, state.get(r["alert_id"]), "notified", {
                "recipient": r["recipient"], "channel": r["channel"], "purpose": r["purpose"],
                "idempotency_key": str(r["message_key"])})

    async def _attempt(self, conn: asyncpg.Connection, j: _Job, now: datetime, outcome: str, reason: str | None,
                       provider_id: str | None = None, retry_after_s: float | None = None) -> None:
        r = j.row
        if j.prev_status == "sending":
            await conn.execute(
                "INSERT INTO delivery_attempts (outbox_id, attempt, started_at, finished_at, outcome, reason)"
                " VALUES ($1, $2, $3, $3, 'unknown', 'lease expired: the dispatcher stopped before recording')",
                r["id"], r["attempts"] - 1, j.started,
            )
        await conn.execute(
            "INSERT INTO delivery_attempts (outbox_id, attempt, started_at, finished_at, outcome, reason,"
            " provider_id, retry_after_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            r["id"], r["attempts"], j.started, now, outcome, reason, provider_id, retry_after_s,
        )

    async def _set(self, conn: asyncpg.Connection, j: _Job, status: str, **cols: Any) -> bool:
        sets = ["status = $3"] + [f"{k} = ${i}" for i, k in enumerate(cols, start=4)]
        done = await conn.fetchval(
            f"UPDATE outbox SET {', '.join(sets)} WHERE id = $1 AND attempts = $2 AND status = 'sending'"
            " RETURNING true",
            j.row["id"], j.row["attempts"], status, *cols.values(),
        )
        return bool(done)

    async def _change(self, conn: asyncpg.Connection, j: _Job, alert: asyncpg.Record | None, change: str,
                      detail: dict[str, Any], actor: str = SYSTEM_ACTOR) -> None:
        if alert is None:
            return
        await self.hooks.append_change(conn, alert["id"], change, level=alert["level"],
                                       confidence=alert["confidence"], actor=actor, detail=detail)

    async def _record_one(self, conn: asyncpg.Connection, j: _Job, now: datetime, alert: asyncpg.Record | None) -> None:
        r = j.row
        ch, recipient = r["channel"], r["recipient"]
        base = {"recipient": recipient, "channel": ch, "purpose": r["purpose"], "idempotency_key": str(r["message_key"])}

        if j.no_address is not None:
            # Nothing to send to on this channel: not retried. The victim falls back to SMS; a recipient with
            # no channel left is shown on the alert; a supplier without a webhook is skipped.
            status = "skipped" if recipient == "supplier" else "failed"
            if not await self._set(conn, j, status, last_error=j.no_address):
                return
            await self._attempt(conn, j, now, "failed", j.no_address)
            if recipient == "victim" and ch == "push" and j.extra.get("sms_possible"):
                await outbox.insert_rows(conn, [outbox.fallback_row(r, "sms", now)])
            elif recipient == "victim" and ch == "push":
                # No SMS either (no gateway or no number): say so now rather than after another round.
                why = "no_phone_number" if "sms" in self.channels else "sms_not_configured"
                await self._change(conn, j, alert, "delivery_failed",
                                   {**base, "reason": f"{j.no_address}; {why}", "final": True})
            elif recipient != "supplier":
                await self._change(conn, j, alert, "delivery_failed", {**base, "reason": j.no_address, "final": True})
            return

        o = j.outcome
        assert o is not None
        if o.result == "sent":
            if not await self._set(conn, j, "sent", sent_at=now, provider_id=o.provider_id, last_error=None):
                return
            await self._attempt(conn, j, now, "sent", None, o.provider_id)
            await self._change(conn, j, alert, "notified", base)
            return

        self.hooks.on_failure(ch, o.reason or "unknown")
        if o.result == "retry":
            nxt = now + timedelta(seconds=self._backoff(r["attempts"], o.retry_after_s))
            if nxt <= r["deadline"]:
                if await self._set(conn, j, "queued", next_attempt_at=nxt, last_error=o.reason):
                    await self._attempt(conn, j, now, "retry", o.reason, retry_after_s=o.retry_after_s)
                return
            await self._dead_letter(conn, j, now, alert, base, f"deadline passed after {r['attempts']} attempts:"
                                                             f" {o.reason}")
            return

        # Permanent failure.
        if ch == "push" and o.invalid_address:
            if not await self._set(conn, j, "failed", last_error=o.reason):
                return
            await self._attempt(conn, j, now, "failed", o.reason)
            await conn.execute(
                "UPDATE devices SET push_token = NULL, push_token_disabled_at = $3, push_token_disabled_reason = $4"
                " WHERE id = $1 AND push_token = $2", j.device_id, j.token, now, o.reason,
            )
            await self._change(conn, j, alert, "delivery_failed", {**base, "reason": o.reason, "final": False,
                                                                   "token_disabled": True})
            await self._operator_alert(conn, j, now, f"the victim cannot be reached by push ({o.reason}); "
                                                     "the app must register again", reason=o.reason or "")
            await outbox.insert_rows(conn, [outbox.fallback_row(r, "sms", now)])
            return
        await self._dead_letter(conn, j, now, alert, base, o.reason or "failed")

    async def _dead_letter(self, conn: asyncpg.Connection, j: _Job, now: datetime, alert: asyncpg.Record | None,
                           base: dict[str, Any], reason: str) -> None:
        r = j.row
        if not await self._set(conn, j, "dead", last_error=reason):
            return
        await self._attempt(conn, j, now, "failed", reason)
        await self._change(conn, j, alert, "delivery_failed", {**base, "reason": reason, "final": True})
        who = {"victim": "the victim", "police": "the police control room", "supplier": "the tag supplier"}
        await self._operator_alert(conn, j, now, f"{who.get(r['recipient'], r['recipient'])} could not be reached"
                                                 f" by {r['channel']}: {reason}", reason=reason)
        if r["recipient"] == "victim" and r["channel"] == "push":
            await outbox.insert_rows(conn, [outbox.fallback_row(r, "sms", now)])

    async def _operator_alert(self, conn: asyncpg.Connection, j: _Job, now: datetime, text: str, reason: str) -> None:
        r = j.row
        if r["case_id"] is None:  # a staff digest names no case: its failure shows on the notice itself
            return
        await self.hooks.open_alert(
            conn, alert_id=uuid.uuid5(_NS, f"{r['idempotency_key']}/{r['attempts']}/unreachable"),
            case_id=r["case_id"], kind="delivery_failed",
            level="violation" if r["safety"] else "warning", confidence="confirmed", opened_at=now,
            detail={"recipient": r["recipient"], "channel": r["channel"], "purpose": r["purpose"],
                    "reason": reason, "message": text,
                    "source_alert_id": str(r["alert_id"]) if r["alert_id"] else None},
            actor=SYSTEM_ACTOR,
        )

    # ------------------------------------------------------------------ timers
    async def _run_timer(self, j: _Job) -> None:
        await self._retrying(lambda: self._run_timer_once(j))

    async def _run_timer_once(self, j: _Job) -> None:
        r = j.row
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            alert = (await self._locked(conn, [r["alert_id"]])).get(r["alert_id"])
            action = "no_action"
            if alert is not None and r["purpose"] == "ack_check":
                acked = await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM alert_changes WHERE alert_id = $1 AND change = 'victim_acknowledged'"
                    " AND seq > $2)", alert["id"], r["change_seq"] or 0)
                if not acked:
                    of = r["payload"].get("of") or "violation"
                    await self._change(conn, j, alert, "victim_not_confirmed", {
                        "message": of, "idempotency_key": str(outbox.message_key(alert["id"], of)),
                        "fallback": "sms"})
                    push = await conn.fetchrow("SELECT * FROM outbox WHERE idempotency_key = $1",
                                               f"{outbox.message_key(alert['id'], of)}:push")
                    if push is not None:
                        await outbox.insert_rows(conn, [outbox.fallback_row(push, "sms", now)])
                    action = "victim_not_confirmed"
            elif alert is not None and r["purpose"] == "escalation_check":
                escalated = await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM alert_changes WHERE alert_id = $1 AND change = 'escalated_to_police')",
                    alert["id"])
                if alert["status"] == "open" and not escalated:
                    await self._change(conn, j, alert, "escalated_to_police",
                                       {"reason": "unacknowledged", "automatic": True}, actor=AUTO_ESCALATION_ACTOR)
                    action = "escalated_to_police"
            if await self._set(conn, j, "done", last_error=None, sent_at=now):
                await self._attempt(conn, j, now, "sent", action)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
