"""Delivers outbox rows: claim, address, send, record; retry, fall back, dead-letter, and run the timers.

* **Claim** (one short transaction): due rows ``FOR UPDATE SKIP LOCKED``, at most the oldest pending row per
  ``ordering_key`` (so one victim's messages on one channel go strictly in order), marked ``sending`` with a
  lease (``next_attempt_at = now + lease``). Several dispatchers (or workers) never take the same row.
* **Address**: each channel finds its recipients' addresses itself (``notifications/channels``).
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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Mapping, Sequence

import asyncpg

from notifications import outbox, policy
from notifications.channels import Channel, Delivery, Outcome
from notifications.config import NotificationConfig
from notifications.outbox import Outbox

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:notifications"
AUTO_ESCALATION_ACTOR = "system:auto-escalation"
_NS = uuid.UUID("0b6c8f7e-8f7a-4c55-93f3-0d3f5a0e2b77")


@dataclass
class AlertHooks:
    """What the dispatcher needs from the app, passed in so ``notifications`` never imports ``api``."""

    append_change: Callable[..., Awaitable[int | None]]
    # Many changes in one go (api.alerts.repository.append_changes): the ``notified`` changes of a batch.
    append_changes: Callable[[asyncpg.Connection, Sequence[Mapping[str, Any]]], Awaitable[list[int]]]
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
    no_address: str | None = None  # why there is no address (not configured, no token, no phone, …)
    # With no address here: why the fallback channel cannot reach her either (None: it can).
    fallback_blocked: str | None = None


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        outbox: Outbox,
        channels: Sequence[Channel],
        hooks: AlertHooks,
        config: NotificationConfig | None = None,
    ) -> None:
        self.pool = pool
        self.outbox = outbox
        self.clock = outbox.clock
        # The outbox names a row's channel; this is the one place that name is looked up.
        self.channels: dict[str, Channel] = {c.name: c for c in channels}
        self.hooks = hooks
        self.config = config or NotificationConfig()
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
        workers = self.config.workers if self.config.dispatch else 0  # off: another process delivers
        self._tasks = [asyncio.create_task(self._loop(i), name=f"notify-{i}") for i in range(workers)]

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
            self.hooks.on_depth(await outbox.depth(self.pool))
        except Exception:  # metrics never break delivery
            pass

    # ------------------------------------------------------------------ one round
    async def run_once(self) -> int:
        """Claim, deliver and record one batch of due rows; returns how many were claimed."""
        now = self.clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await outbox.claim(conn, now, self.config.batch, now + timedelta(seconds=self.config.lease_s))
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
        by_channel: dict[str, list[_Job]] = {}
        for j in jobs:
            by_channel.setdefault(j.row["channel"], []).append(j)
        async with self.pool.acquire() as conn:
            for name, group in by_channel.items():
                channel = self.channels.get(name)
                found: list[Delivery | str] = (await channel.address(conn, [j.row for j in group]) if channel
                                               else ["not_configured"] * len(group))
                for j, f in zip(group, found):
                    if isinstance(f, Delivery):
                        j.delivery = f
                    else:
                        j.no_address = f
                        await self._fallback_reach(conn, j)

    async def _fallback_reach(self, conn: asyncpg.Connection, j: _Job) -> None:
        """A victim message with no address on its channel: can the fallback channel reach her?"""
        fallback = policy.FALLBACK.get(j.row["channel"])
        if fallback is None or j.row["recipient"] != "victim":
            return
        channel = self.channels.get(fallback)
        if channel is None:
            j.fallback_blocked = f"{fallback}_not_configured"
            return
        found = (await channel.address(conn, [j.row]))[0]
        j.fallback_blocked = None if isinstance(found, Delivery) else found

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
        """The common case in a handful of statements, whatever the batch size: one ``notified`` change per
        delivery, all written at once."""
        if not jobs:
            return
        ours = await outbox.mark_sent(conn, [(j.row["id"], j.row["attempts"],
                                              j.outcome.provider_id if j.outcome else None) for j in jobs], now)
        mine = [j for j in jobs if j.row["id"] in ours]
        rows = [outbox.lost_attempt(j.row, j.started) for j in mine if j.prev_status == "sending"]
        rows += [(j.row["id"], j.row["attempts"], j.started, now, "sent", None,
                  j.outcome.provider_id if j.outcome else None, None) for j in mine]
        await outbox.record_attempts(conn, rows)
        await self.hooks.append_changes(conn, [
            {"alert_id": alert["id"], "change": "notified", "level": alert["level"],
             "confidence": alert["confidence"], "actor": SYSTEM_ACTOR,
             "detail": {"recipient": j.row["recipient"], "channel": j.row["channel"], "purpose": j.row["purpose"],
                        "idempotency_key": str(j.row["message_key"])}}
            for j in mine if (alert := state.get(j.row["alert_id"])) is not None])

    async def _attempt(self, conn: asyncpg.Connection, j: _Job, now: datetime, outcome: str, reason: str | None,
                       provider_id: str | None = None, retry_after_s: float | None = None) -> None:
        r = j.row
        lost = [outbox.lost_attempt(r, j.started)] if j.prev_status == "sending" else []
        await outbox.record_attempts(conn, lost + [
            (r["id"], r["attempts"], j.started, now, outcome, reason, provider_id, retry_after_s)])

    async def _set(self, conn: asyncpg.Connection, j: _Job, status: str, **cols: Any) -> bool:
        return await outbox.set_status(conn, j.row, status, **cols)

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
            fallback = policy.FALLBACK.get(ch) if recipient == "victim" else None
            if fallback and j.fallback_blocked is None:
                await self.outbox.insert_rows(conn, [self.outbox.fallback_row(r, fallback, now)])
            elif fallback:
                # The fallback cannot reach her either (no gateway or no number): say so now rather than after
                # another round.
                await self._change(conn, j, alert, "delivery_failed",
                                   {**base, "reason": f"{j.no_address}; {j.fallback_blocked}", "final": True})
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

        # Permanent failure. A dead address on a channel with a fallback (a push token FCM no longer knows) is
        # forgotten, and the message goes by the fallback; anything else is dead-lettered.
        fallback = policy.FALLBACK.get(ch)
        if fallback and o.invalid_address and j.delivery is not None:
            if not await self._set(conn, j, "failed", last_error=o.reason):
                return
            await self._attempt(conn, j, now, "failed", o.reason)
            await self.channels[ch].forget_address(conn, j.delivery, o.reason, now)
            await self._change(conn, j, alert, "delivery_failed", {**base, "reason": o.reason, "final": False,
                                                                   "token_disabled": True})
            await self._operator_alert(conn, j, now, f"the victim cannot be reached by {ch} ({o.reason}); "
                                                     "the app must register again", reason=o.reason or "")
            await self.outbox.insert_rows(conn, [self.outbox.fallback_row(r, fallback, now)])
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
        fallback = policy.FALLBACK.get(r["channel"])
        if r["recipient"] == "victim" and fallback:
            await self.outbox.insert_rows(conn, [self.outbox.fallback_row(r, fallback, now)])

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
                    fallback = policy.FALLBACK["push"]  # the safety message went by push (policy.decide)
                    await self._change(conn, j, alert, "victim_not_confirmed", {
                        "message": of, "idempotency_key": str(outbox.message_key(alert["id"], of)),
                        "fallback": fallback})
                    push = await outbox.find(conn, f"{outbox.message_key(alert['id'], of)}:push")
                    if push is not None:
                        await self.outbox.insert_rows(conn, [self.outbox.fallback_row(push, fallback, now)])
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

