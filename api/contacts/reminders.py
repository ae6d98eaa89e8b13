"""Orders that never lapse unnoticed, and follow-ups that are not forgotten: a scheduler driven by a clock.

Every ``order_check_s`` the scheduler, with ``now`` from its injected clock (tests pass a fake one, nothing sleeps):

* **Reminds** the case's case directors (or, when it has none, its agency's queue) 14, 7 and 2 days (``AFSTAND_ORDER_REMINDER_DAYS``) before an order ends,
  until it is extended (a new end date starts a new series) or deliberately let go. When several thresholds
  are due at once (an order imposed 5 days before its end) only the most urgent is sent.
* **Tells the victim before protection ends**: ``AFSTAND_VICTIM_ORDER_NOTICE_DAYS`` (7) before an order ends
  while no decision about an extension has been taken, a notice in her language says when it ends and whom to
  contact (api/contacts/notices stores and pushes it). Extending or letting an order go tells her too
  (api/cases/order_terms.py).
* **Handles expiry** once per end date: the engine already stops enforcing at ``valid_until``, and marking the
  order handled bumps the configuration version, so it reloads the case; the operator sees an ``order_ended``
  alert (level warning, opened at the end time) in the alert queue; the victim gets a victim-visible timeline
  event and a notice in her language, pushed because it is a notice to her (not because of the alert).
* **Sends the daily digest** of overdue contact agreements to each contact person once per local day, from
  ``AFSTAND_DIGEST_HOUR`` on.

Every notice has a unique ``dedupe_key``, and expiry is marked on the order in the same transaction, so running
twice, in two processes, or after a crash never tells anyone twice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable

import asyncpg

from api.platform.clock import utcnow
from api.platform import background
from api import messages
from api.alerts import repository as alert_store
from api.privacy import audit
from api.contacts import repository
from api.contacts.notices import service as notices
from api.contacts.service import fetch_overdue
from api.cases.timeline.service import add_event
from api.platform.settings import Settings
from notifications.outbox import Outbox

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SYSTEM_ACTOR = "system:order-scheduler"
ORDER_ENDED_KIND = "order_ended"  # the alert kind the monitoring room sees when an order ends
_NS = uuid.UUID("0b7e3d52-51a4-4c55-9d0e-4f7c1a8e2b90")


@dataclass
class Report:
    reminders: int = 0
    victim_warnings: int = 0
    expired: int = 0
    digests: int = 0


def _order_payload(o: asyncpg.Record) -> dict[str, Any]:
    return {"order_id": str(o["id"]), "order_kind": o["kind"], "reference": o["reference"],
            "case_reference": o["case_reference"], "valid_until": o["valid_until"].isoformat()}


async def send_reminders(pool: asyncpg.Pool, outbox: Outbox, reminder_days: tuple[int, ...], now: datetime) -> int:
    if not reminder_days:
        return 0
    horizon = now + timedelta(days=max(reminder_days))
    sent = 0
    async with pool.acquire() as conn, conn.transaction():
        orders = await repository.orders_ending(conn, now, horizon)
        for o in orders:
            left = o["valid_until"] - now
            due = [d for d in reminder_days if left <= timedelta(days=d)]
            if not due:
                continue
            days = min(due)
            payload = {**_order_payload(o), "days_before": days, "days_left": round(left / timedelta(days=1), 2)}
            key = f"order_reminder:{o['id']}:{o['valid_until'].isoformat()}:{days}"
            for staff_id, agency in await notices.recipients(conn, o["case_id"], order_kind=o["kind"]):
                sent += await notices.tell_staff(conn, outbox, staff_id, o["case_id"], "order_reminder", key,
                                                 payload, agency=agency)
    return sent


async def warn_victims(pool: asyncpg.Pool, outbox: Outbox, days: float, now: datetime) -> int:
    """Tell the victim, once per end date, that an order ends within ``days`` while no extension is decided
    (an extension moves the end date; a decision to let it go has told her already)."""
    if days <= 0:
        return 0
    sent = 0
    async with pool.acquire() as conn, conn.transaction():
        orders = await repository.orders_ending_with_victim(conn, now, now + timedelta(days=days))
        for o in orders:
            sent += await tell_victim_about_order(conn, outbox, o, "order_ending",
                                                  f"order_ending:{o['id']}:{o['valid_until'].isoformat()}") is not None
    return sent


async def tell_victim_about_order(conn: asyncpg.Connection, outbox: Outbox, o: Any, kind: str, key: str,
                                  urgency: str = "important") -> uuid.UUID | None:
    """A notice about one order in her words: which protection, until when, and whom to contact."""
    lang = await notices.victim_language(conn, o["case_id"])
    params = {"order": messages.text(lang, f"order.{o['kind']}.title"), "date": messages.date(lang, o["valid_until"]),
              "contact": await notices.contact_text(conn, o["case_id"], lang,
                                                    notices.ORDER_AGENCY.get(o["kind"], notices.DEFAULT_AGENCY))}
    return await notices.tell_victim(conn, outbox, o["case_id"], kind, key, urgency=urgency, params=params)


async def handle_expiries(pool: asyncpg.Pool, outbox: Outbox, now: datetime) -> int:
    """Each order past its end, not yet handled for that end, in its own transaction (SKIP LOCKED: another process
    handling the same order is left to it)."""
    handled = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            o = await repository.claim_expired_order(conn, now)
            if o is None:
                return handled
            await _expire(conn, outbox, o)
            handled += 1


async def _expire(conn: asyncpg.Connection, outbox: Outbox, o: asyncpg.Record) -> None:
    until: datetime = o["valid_until"]
    case_id = o["case_id"]
    await repository.mark_expiry_handled(conn, o["id"])
    let_go = o["let_go_at"] is not None
    await add_event(conn, case_id, "order_expired", visibility="victim", actor=SYSTEM_ACTOR, occurred_at=until,
                    detail={"order_id": str(o["id"]), "order_kind": o["kind"], "until": until.isoformat(),
                            "let_go": let_go})
    # The monitoring room sees it in its queue; the victim is told by her notice below, not by this alert.
    alert_id = uuid.uuid5(_NS, f"{o['id']}/{until.isoformat()}")
    await alert_store.lock_alert_log(conn)  # the alert writers' common lock order (see alert_store)
    await alert_store.open_alert(
        conn, outbox=outbox, alert_id=alert_id, case_id=case_id, kind=ORDER_ENDED_KIND, level="warning",
        confidence="confirmed", opened_at=until, actor=SYSTEM_ACTOR,
        detail={"reason": "order_expired", "order_id": str(o["id"]), "order_kind": o["kind"],
                "reference": o["reference"], "let_go": let_go, "let_go_reason": o["let_go_reason"]})
    if await repository.has_victim(conn, case_id):
        await tell_victim_about_order(conn, outbox, o, "order_expired", f"order_expired:{o['id']}:{until.isoformat()}")
    for staff_id, agency in await notices.recipients(conn, case_id, order_kind=o["kind"]):
        await notices.tell_staff(conn, outbox, staff_id, case_id, "order_expired",
                                 f"order_expired:{o['id']}:{until.isoformat()}",
                                 {**_order_payload(o), "let_go": let_go, "alert_id": str(alert_id)}, agency=agency)
    await audit.record(conn, actor=SYSTEM_ACTOR, role="system", action="order.expire", case_id=case_id,
                       detail={"order_id": str(o["id"]), "valid_until": until.isoformat(), "let_go": let_go,
                               "alert_id": str(alert_id)})


async def send_daily_digest(pool: asyncpg.Pool, outbox: Outbox, now: datetime, local_day: date) -> int:
    """One digest per contact person with overdue agreements per local day. Agreements nobody holds are not
    digested to anyone: they are on ``GET /v1/contact/overdue`` (staff_id null) and the orphaned list."""
    sent = 0
    async with pool.acquire() as conn, conn.transaction():
        groups, _ = await fetch_overdue(conn, now)
        for group in groups:
            if group.staff_id is None:
                continue
            payload = {"date": local_day.isoformat(), "items": [i.model_dump(mode="json") for i in group.items]}
            sent += await notices.tell_staff(conn, outbox, group.staff_id, None, "contact_digest",
                                             f"contact_digest:{local_day.isoformat()}", payload)
    return sent


class OrderScheduler:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, outbox: Outbox, clock: Clock = utcnow) -> None:
        self.pool = pool
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self._periodic = background.Periodic(
            "order scheduler", settings.order_check_s, self.run_once,
            worth_logging=lambda r: bool(r.reminders or r.victim_warnings or r.expired or r.digests))

    async def run_once(self) -> Report:
        now = self.clock()
        report = Report()
        report.reminders = await send_reminders(self.pool, self.outbox, tuple(self.settings.order_reminder_days), now)
        report.victim_warnings = await warn_victims(self.pool, self.outbox, self.settings.victim_order_notice_days, now)
        report.expired = await handle_expiries(self.pool, self.outbox, now)
        local = now.astimezone(messages.DISPLAY_TZ)
        if local.hour >= self.settings.digest_hour:
            report.digests = await send_daily_digest(self.pool, self.outbox, now, local.date())
        return report

    @property
    def running(self) -> bool:
        return self._periodic.running

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
