"""The notices service: what the victim and staff are told outside an alert, stored where they read it and
delivered through the notifications outbox in the same transaction.

* **To the victim** (:func:`tell_victim`): the text is rendered from the catalogues in her language and stored in
  ``victim_notices`` (``GET /v1/me/notices``) before anything is pushed, so a failed push loses nothing. Whether
  and when it is pushed is the pure rule ``notifications.policy.plan_notice``: by what the notice is (its
  urgency), her channel, her quiet hours and her update frequency, never by an alert level. Thread messages
  from staff are pushed the same way (:func:`push_to_victim`). Each push carries the notice's or message's id as
  its outbox message key, so staff see its delivery state beside it.
* **To staff** (:func:`tell_staff`): a ``staff_notices`` row for the person, or for the agency's queue when the
  case has no case director (``staff_id`` null, ``agency`` set): admins and that agency's case directors see it
  (``GET /v1/contact/orphaned``). With ``AFSTAND_STAFF_WEBHOOK_URL`` set it is also posted, signed, to that
  webhook.

Every notice has a unique ``dedupe_key``: telling twice (a restarted scheduler, a second process) stores and
sends nothing new.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from api import messages
from api.contacts import repository as contacts
from api.contacts.notices import repository
from api.contacts.notices.schemas import StaffVictimNotice, StaffVictimNoticePage
from api.platform import metrics
from api.cases.service import case_or_404
from api.platform.staff_common import decode_cursor, next_cursor
from notifications import policy
from notifications.outbox import Outbox, Row, deliveries_by_message, recent_non_safety, victim_preferences

# Whose queue a case's notices join when it has no case director: the agency that owns that kind of order.
ORDER_AGENCY = {"behavioural_order": "prosecutor"}
DEFAULT_AGENCY = "probation"  # probation supervises the electronic monitoring
_CONTACT_ORDER = ("probation", "police", "prosecutor", "victim_support")


async def victim_language(conn: asyncpg.Connection | asyncpg.Pool, case_id: Any) -> str:
    return await repository.victim_language(conn, case_id) or "nl"


def how_to_reach(row: Any, language: str) -> str | None:
    """The assignment's "how to reach" in her language when given, else its default text."""
    return (row["how_to_reach_i18n"] or {}).get(messages.resolve(language)) or row["how_to_reach"]


async def contact_text(conn: asyncpg.Connection, case_id: uuid.UUID, language: str, agency: str | None = None) -> str:
    """Who she can turn to: her contact person (``agency``'s first), or, where she has none, a helpline. Never
    a promise of a contact person the case does not have."""
    rows = await contacts.victim_contact_persons(conn, case_id)
    if not rows:
        return messages.text(language, "contact.none")
    preference = ((agency,) if agency else ()) + _CONTACT_ORDER
    r = min(rows, key=lambda x: preference.index(x["agency"]) if x["agency"] in preference else len(preference))
    reach = how_to_reach(r, language) or r["phone"]
    params = {"name": r["display_name"], "agency": messages.text(language, f"agency.{r['agency']}")}
    if reach:
        return messages.text(language, "contact.reach", reach=reach, **params)
    return messages.text(language, "contact.reach_unknown", **params)


# ---------------------------------------------------------------- the victim

async def _plan(conn: asyncpg.Connection, outbox: Outbox, case_id: uuid.UUID, urgency: str,
                now: datetime) -> policy.NoticePlan:
    row = await repository.delivery_settings(conn, case_id)
    last_update = await repository.last_update_push(conn, case_id)
    return policy.plan_notice(urgency, now, outbox.case_policy(row["policy"]), victim_preferences(row),
                              await recent_non_safety(conn, case_id, now), last_update)


async def push_to_victim(conn: asyncpg.Connection, outbox: Outbox, case_id: uuid.UUID, *, message_key: uuid.UUID,
                         purpose: str,
                         title: str, body: str, language: str, urgency: str,
                         data: dict[str, str]) -> tuple[str, str | None]:
    """Enqueue the push of something already stored where the app reads it. Returns (push_status, why)."""
    now = outbox.now()
    plan = await _plan(conn, outbox, case_id, urgency, now)
    if not plan.push:
        return "not_pushed", plan.why
    await outbox.insert_rows(conn, [Row(
        idempotency_key=f"{message_key}:push", message_key=message_key, alert_id=None, case_id=case_id,
        change_seq=None, recipient="victim", channel="push", purpose=purpose, safety=plan.safety,
        payload={"purpose": purpose, "title": title, "body": body, "language": language, **data},
        next_attempt_at=plan.at, deadline=outbox.deadline(plan.at),
        enqueued_at=now)])
    return "enqueued", plan.why


async def tell_victim(conn: asyncpg.Connection, outbox: Outbox, case_id: uuid.UUID, kind: str, key: str, *,
                      urgency: str,
                      params: dict[str, str] | None = None) -> uuid.UUID | None:
    """Store the notice ``notice.<kind>`` in her language and push it as her preferences allow. Returns its id,
    or None when a notice with this ``key`` exists already."""
    language = messages.resolve(await victim_language(conn, case_id))
    title = messages.text(language, f"notice.{kind}.title", **(params or {}))
    body = messages.text(language, f"notice.{kind}.body", **(params or {}))
    notice_id = await repository.insert_victim_notice(conn, case_id, kind, key, language, title, body, urgency)
    if notice_id is None:
        return None
    status, why = await push_to_victim(conn, outbox, case_id, message_key=notice_id, purpose=f"notice.{kind}",
                                       title=title, body=body, language=language, urgency=urgency,
                                       data={"notice_id": str(notice_id), "kind": kind})
    await repository.set_victim_notice_push(conn, notice_id, status, why)
    metrics.NOTICES.labels("victim", kind, status).inc()
    return notice_id


async def victim_notices(conn: asyncpg.Connection | asyncpg.Pool, case_id: Any, limit: int,
                         cursor: str | None) -> list[asyncpg.Record]:
    """What she was told, newest first, ``limit + 1`` rows (the last one only says there is more)."""
    before_at, before_id = decode_cursor(cursor)
    return await repository.fetch_victim_notices(conn, case_id, limit, before_at, before_id)


async def victim_notices_for_staff(pool: asyncpg.Pool, case_id: str, limit: int,
                                   cursor: str | None) -> StaffVictimNoticePage:
    """What the victim was told, each with how it was delivered."""
    async with pool.acquire() as conn:
        cid = await case_or_404(conn, case_id)
        rows = await victim_notices(conn, cid, limit, cursor)
        sent = await deliveries_by_message(conn, [r["id"] for r in rows[:limit]])
    return StaffVictimNoticePage(
        items=[StaffVictimNotice(**dict(r), deliveries=sent.get(r["id"], [])) for r in rows[:limit]],
        next_cursor=next_cursor(rows, limit))


# ---------------------------------------------------------------- staff

async def owner_agency(conn: asyncpg.Connection, case_id: uuid.UUID, order_kind: str | None = None) -> str:
    """The agency whose queue holds a case's notices while it has no case director: the agency of the case
    director who left, else the agency that owns the order."""
    left = await repository.departed_director_agency(conn, case_id)
    return left or ORDER_AGENCY.get(order_kind or "", DEFAULT_AGENCY)


async def recipients(conn: asyncpg.Connection, case_id: uuid.UUID, function: str = "case_director",
                     order_kind: str | None = None) -> list[tuple[uuid.UUID | None, str | None]]:
    """(staff_id, None) per active holder of ``function`` on the case (contact persons fall back to the case
    directors); else one (None, agency) for the agency's queue, so no notice is stored without anyone to see it."""
    for fn in dict.fromkeys((function, "case_director")):
        holders = await repository.active_holders(conn, case_id, fn)
        if holders:
            return [(staff_id, None) for staff_id in holders]
    return [(None, await owner_agency(conn, case_id, order_kind))]


async def tell_staff(conn: asyncpg.Connection, outbox: Outbox, staff_id: uuid.UUID | None, case_id: uuid.UUID | None,
                     kind: str, key: str, payload: dict[str, Any], *, agency: str | None = None) -> bool:
    """Record a notice for a staff member, or for ``agency``'s queue (``staff_id`` None), and post it to the staff
    webhook when one is configured. False when it was recorded before."""
    notice_id = await repository.insert_staff_notice(conn, staff_id, case_id, kind,
                                                     f"{key}:{staff_id or f'agency:{agency}'}", payload,
                                                     None if staff_id else agency)
    if notice_id is None:
        return False
    metrics.NOTICES.labels("staff" if staff_id else "agency_queue", kind,
                           "enqueued" if outbox.staff_webhook else "listed").inc()
    if outbox.staff_webhook:
        now = outbox.now()
        who = await repository.webhook_names(conn, staff_id, case_id)
        await outbox.insert_rows(conn, [Row(
            idempotency_key=f"{notice_id}:staff_webhook", message_key=notice_id, alert_id=None, case_id=case_id,
            change_seq=None, recipient="staff", channel="staff_webhook", purpose=kind, safety=False,
            payload={"notice_id": str(notice_id), "kind": kind, "case_id": str(case_id) if case_id else None,
                     "case_reference": who["reference"], "staff_sub": who["sub"], "agency": None if staff_id else agency,
                     "detail": payload},
            next_attempt_at=now, deadline=outbox.deadline(now),
            enqueued_at=now)])
        await repository.mark_staff_notice_enqueued(conn, notice_id)
    return True
