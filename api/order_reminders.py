"""Orders that never lapse unnoticed, and follow-ups that are not forgotten: a scheduler driven by a clock.

Every ``order_check_s`` the scheduler, with ``now`` from its injected clock (tests pass a fake one, nothing sleeps):

* **Reminds** the case's case directors 14, 7 and 2 days (``AFSTAND_ORDER_REMINDER_DAYS``) before an order ends,
  until it is extended (a new end date starts a new series) or deliberately let go. When several thresholds
  are due at once (an order imposed 5 days before its end) only the most urgent is sent.
* **Handles expiry** once per end date: the engine already stops enforcing at ``valid_until``, and marking the
  order handled bumps the configuration version, so it reloads the case; the operator sees an ``order_ended``
  alert (level warning, opened at the end time) in the alert queue; the victim gets a victim-visible timeline
  event and a notice in her language, and the notifications outbox pushes her the ``order_ended`` message (its
  policy reacts to the alert).
* **Sends the daily digest** of overdue contact agreements to each contact person once per local day, from
  ``AFSTAND_DIGEST_HOUR`` on.

Every notice has a unique ``dedupe_key``, and expiry is marked on the order in the same transaction, so running
twice, in two processes, or after a crash never tells anyone twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import asyncpg

from api import background
from api import alert_store, audit, messages
from api.routers.contacts import fetch_overdue
from api.routers.timeline import add_event
from api.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SYSTEM_ACTOR = "system:order-scheduler"
ORDER_ENDED_KIND = "order_ended"  # the alert kind notifications/policy.py tells the victim about
_NS = uuid.UUID("0b7e3d52-51a4-4c55-9d0e-4f7c1a8e2b90")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Report:
    reminders: int = 0
    expired: int = 0
    digests: int = 0


async def _case_directors(conn: asyncpg.Connection, case_id: uuid.UUID) -> list[uuid.UUID | None]:
    """The case's active case directors; ``[None]`` when it has none, so the notice is still recorded (as an
    unaddressed one an admin can find) rather than lost."""
    rows = await conn.fetch(
        "SELECT DISTINCT a.staff_id FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id"
        " WHERE a.case_id = $1 AND a.function = 'case_director' AND a.ended_at IS NULL AND s.active", case_id)
    return [r["staff_id"] for r in rows] or [None]


async def _notice(conn: asyncpg.Connection, staff_id: uuid.UUID | None, case_id: uuid.UUID | None, kind: str,
                  key: str, payload: dict[str, Any]) -> bool:
    return bool(await conn.fetchval(
        "INSERT INTO staff_notices (id, staff_id, case_id, kind, dedupe_key, payload) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (dedupe_key) DO NOTHING RETURNING true",
        uuid.uuid4(), staff_id, case_id, kind, f"{key}:{staff_id or 'unassigned'}", payload))


def _order_payload(o: asyncpg.Record) -> dict[str, Any]:
    return {"order_id": str(o["id"]), "order_kind": o["kind"], "reference": o["reference"],
            "case_reference": o["case_reference"], "valid_until": o["valid_until"].isoformat()}


async def send_reminders(pool: asyncpg.Pool, reminder_days: tuple[int, ...], now: datetime) -> int:
    if not reminder_days:
        return 0
    horizon = now + timedelta(days=max(reminder_days))
    sent = 0
    async with pool.acquire() as conn, conn.transaction():
        orders = await conn.fetch(
            "SELECT o.id, o.case_id, o.kind, o.reference, o.valid_until, c.reference AS case_reference"
            " FROM orders o JOIN cases c ON c.id = o.case_id"
            " WHERE c.status = 'active' AND o.let_go_at IS NULL AND o.valid_until > $1 AND o.valid_until <= $2",
            now, horizon)
        for o in orders:
            left = o["valid_until"] - now
            due = [d for d in reminder_days if left <= timedelta(days=d)]
            if not due:
                continue
            days = min(due)
            payload = {**_order_payload(o), "days_before": days, "days_left": round(left / timedelta(days=1), 2)}
            for staff_id in await _case_directors(conn, o["case_id"]):
                key = f"order_reminder:{o['id']}:{o['valid_until'].isoformat()}:{days}"
                sent += await _notice(conn, staff_id, o["case_id"], "order_reminder", key, payload)
    return sent


async def handle_expiries(pool: asyncpg.Pool, now: datetime) -> int:
    """Each order past its end, not yet handled for that end, in its own transaction (SKIP LOCKED: another process
    handling the same order is left to it)."""
    handled = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            o = await conn.fetchrow(
                "SELECT o.id, o.case_id, o.kind, o.reference, o.valid_until, o.let_go_at, o.let_go_reason,"
                " c.reference AS case_reference FROM orders o JOIN cases c ON c.id = o.case_id"
                " WHERE c.status = 'active' AND o.valid_until <= $1"
                " AND o.expiry_handled_until IS DISTINCT FROM o.valid_until"
                " ORDER BY o.valid_until, o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED", now)
            if o is None:
                return handled
            await _expire(conn, o)
            handled += 1


async def _expire(conn: asyncpg.Connection, o: asyncpg.Record) -> None:
    until: datetime = o["valid_until"]
    case_id = o["case_id"]
    await conn.execute("UPDATE orders SET expiry_handled_until = valid_until WHERE id = $1", o["id"])
    let_go = o["let_go_at"] is not None
    await add_event(conn, case_id, "order_expired", visibility="victim", actor=SYSTEM_ACTOR, occurred_at=until,
                    detail={"order_id": str(o["id"]), "order_kind": o["kind"], "until": until.isoformat(),
                            "let_go": let_go})
    # The monitoring room sees it in its queue; the outbox policy tells the victim (order_ended, non-safety).
    alert_id = uuid.uuid5(_NS, f"{o['id']}/{until.isoformat()}")
    await alert_store.lock_alert_log(conn)  # the alert writers' common lock order (see alert_store)
    await alert_store.open_alert(
        conn, alert_id=alert_id, case_id=case_id, kind=ORDER_ENDED_KIND, level="warning", confidence="confirmed",
        opened_at=until, actor=SYSTEM_ACTOR,
        detail={"reason": "order_expired", "order_id": str(o["id"]), "order_kind": o["kind"],
                "reference": o["reference"], "let_go": let_go, "let_go_reason": o["let_go_reason"]})
    lang = await conn.fetchval("SELECT language FROM parties WHERE case_id = $1 AND role = 'victim'", case_id)
    params = {"order": messages.text(lang, f"order.{o['kind']}.title"), "date": messages.date(lang, until)}
    # The full text in her language; ``enqueued`` when the outbox holds the push for it (its policy may decline,
    # e.g. a case whose victim has no app), else ``pending``.
    pushed = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox WHERE alert_id = $1 AND recipient = 'victim')",
                                 alert_id)
    await conn.execute(
        "INSERT INTO victim_notices (id, case_id, kind, dedupe_key, language, title, body, push_status)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING",
        uuid.uuid4(), case_id, "order_expired", f"order_expired:{o['id']}:{until.isoformat()}", messages.resolve(lang),
        messages.text(lang, "notice.order_expired.title"), messages.text(lang, "notice.order_expired.body", **params),
        "enqueued" if pushed else "pending")
    for staff_id in await _case_directors(conn, case_id):
        await _notice(conn, staff_id, case_id, "order_expired", f"order_expired:{o['id']}:{until.isoformat()}",
                      {**_order_payload(o), "let_go": let_go, "alert_id": str(alert_id)})
    await audit.record(conn, actor=SYSTEM_ACTOR, role="system", action="order.expire", case_id=case_id,
                       detail={"order_id": str(o["id"]), "valid_until": until.isoformat(), "let_go": let_go,
                               "alert_id": str(alert_id)})


async def send_daily_digest(pool: asyncpg.Pool, now: datetime, local_day: date) -> int:
    """One digest per contact person with overdue agreements per local day. Agreements nobody holds are not
    digested to anyone: they are on ``GET /v1/contact/overdue`` (staff_id null) and the orphaned list."""
    sent = 0
    async with pool.acquire() as conn, conn.transaction():
        for group in await fetch_overdue(conn, now):
            if group.staff_id is None:
                continue
            payload = {"date": local_day.isoformat(), "items": [i.model_dump(mode="json") for i in group.items]}
            sent += await _notice(conn, group.staff_id, None, "contact_digest",
                                  f"contact_digest:{local_day.isoformat()}", payload)
    return sent


class OrderScheduler:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, clock: Clock = utcnow) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> Report:
        now = self.clock()
        report = Report()
        report.reminders = await send_reminders(self.pool, tuple(self.settings.order_reminder_days), now)
        report.expired = await handle_expiries(self.pool, now)
        local = now.astimezone(messages.DISPLAY_TZ)
        if local.hour >= self.settings.digest_hour:
            report.digests = await send_daily_digest(self.pool, now, local.date())
        return report

    async def start(self) -> None:
        if self.settings.order_check_s > 0:
            self._task = asyncio.create_task(self._loop(), name="order-scheduler")

    async def stop(self) -> None:
        await background.cancel(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                report = await self.run_once()
                if report.reminders or report.expired or report.digests:
                    log.info("order scheduler", extra=vars(report))
            except asyncio.CancelledError:
                raise
            except Exception:  # a failed round is logged and retried next round; the loop never dies
                log.exception("order scheduler round failed")
            await asyncio.sleep(self.settings.order_check_s)
