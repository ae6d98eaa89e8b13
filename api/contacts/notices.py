"""Notices: what the victim and staff are told outside an alert, stored where they read it and delivered through
the notifications outbox in the same transaction.

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
from api.platform import metrics
from notifications import policy
from notifications.outbox import Outbox, Row, insert_rows, recent_non_safety, victim_preferences

# Whose queue a case's notices join when it has no case director: the agency that owns that kind of order.
ORDER_AGENCY = {"behavioural_order": "prosecutor"}
DEFAULT_AGENCY = "probation"  # probation supervises the electronic monitoring
_CONTACT_ORDER = ("probation", "police", "prosecutor", "victim_support")


async def victim_language(conn: asyncpg.Connection | asyncpg.Pool, case_id: Any) -> str:
    return await conn.fetchval("SELECT language FROM parties WHERE case_id = $1 AND role = 'victim'", case_id) or "nl"


def how_to_reach(row: Any, language: str) -> str | None:
    """The assignment's "how to reach" in her language when given, else its default text."""
    return (row["how_to_reach_i18n"] or {}).get(messages.resolve(language)) or row["how_to_reach"]


async def contact_text(conn: asyncpg.Connection, case_id: uuid.UUID, language: str, agency: str | None = None) -> str:
    """Who she can turn to: her contact person (``agency``'s first), or, where she has none, a helpline. Never
    a promise of a contact person the case does not have."""
    rows = await conn.fetch(
        "SELECT a.agency, a.how_to_reach, a.how_to_reach_i18n, s.display_name, s.phone FROM case_assignments a"
        " JOIN staff_members s ON s.id = a.staff_id WHERE a.case_id = $1 AND a.function = 'contact_person'"
        " AND a.ended_at IS NULL AND s.active", case_id)
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
    row = await conn.fetchrow(
        "SELECT np.policy, vp.channel, vp.quiet_start, vp.quiet_end, vp.update_frequency FROM cases c"
        " LEFT JOIN notification_policies np ON np.case_id = c.id LEFT JOIN victim_preferences vp ON vp.case_id = c.id"
        " WHERE c.id = $1", case_id)
    last_update = await conn.fetchval(
        "SELECT max(o.next_attempt_at) FROM victim_notices n JOIN outbox o ON o.message_key = n.id"
        " WHERE n.case_id = $1 AND n.urgency = 'update' AND o.channel = 'push'", case_id)
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
    await insert_rows(conn, [Row(
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
    notice_id = await conn.fetchval(
        "INSERT INTO victim_notices (id, case_id, kind, dedupe_key, language, title, body, urgency)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        uuid.uuid4(), case_id, kind, key, language, title, body, urgency)
    if notice_id is None:
        return None
    status, why = await push_to_victim(conn, outbox, case_id, message_key=notice_id, purpose=f"notice.{kind}",
                                       title=title, body=body, language=language, urgency=urgency,
                                       data={"notice_id": str(notice_id), "kind": kind})
    await conn.execute("UPDATE victim_notices SET push_status = $2, push_detail = $3 WHERE id = $1",
                       notice_id, status, why)
    metrics.NOTICES.labels("victim", kind, status).inc()
    return notice_id


# ---------------------------------------------------------------- staff

async def owner_agency(conn: asyncpg.Connection, case_id: uuid.UUID, order_kind: str | None = None) -> str:
    """The agency whose queue holds a case's notices while it has no case director: the agency of the case
    director who left, else the agency that owns the order."""
    left = await conn.fetchval(
        "SELECT a.agency FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id WHERE a.case_id = $1"
        " AND a.function = 'case_director' AND (a.ended_at IS NOT NULL OR NOT s.active)"
        " ORDER BY coalesce(a.ended_at, s.deactivated_at) DESC NULLS LAST LIMIT 1", case_id)
    return left or ORDER_AGENCY.get(order_kind or "", DEFAULT_AGENCY)


async def recipients(conn: asyncpg.Connection, case_id: uuid.UUID, function: str = "case_director",
                     order_kind: str | None = None) -> list[tuple[uuid.UUID | None, str | None]]:
    """(staff_id, None) per active holder of ``function`` on the case (contact persons fall back to the case
    directors); else one (None, agency) for the agency's queue, so no notice is stored without anyone to see it."""
    for fn in dict.fromkeys((function, "case_director")):
        rows = await conn.fetch(
            "SELECT DISTINCT a.staff_id FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id"
            " WHERE a.case_id = $1 AND a.function = $2 AND a.ended_at IS NULL AND s.active", case_id, fn)
        if rows:
            return [(r["staff_id"], None) for r in rows]
    return [(None, await owner_agency(conn, case_id, order_kind))]


async def tell_staff(conn: asyncpg.Connection, outbox: Outbox, staff_id: uuid.UUID | None, case_id: uuid.UUID | None,
                     kind: str, key: str, payload: dict[str, Any], *, agency: str | None = None) -> bool:
    """Record a notice for a staff member, or for ``agency``'s queue (``staff_id`` None), and post it to the staff
    webhook when one is configured. False when it was recorded before."""
    notice_id = await conn.fetchval(
        "INSERT INTO staff_notices (id, staff_id, case_id, kind, dedupe_key, payload, agency)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        uuid.uuid4(), staff_id, case_id, kind, f"{key}:{staff_id or f'agency:{agency}'}", payload,
        None if staff_id else agency)
    if notice_id is None:
        return False
    metrics.NOTICES.labels("staff" if staff_id else "agency_queue", kind,
                           "enqueued" if outbox.staff_webhook else "listed").inc()
    if outbox.staff_webhook:
        now = outbox.now()
        who = await conn.fetchrow(
            "SELECT (SELECT sub FROM staff_members WHERE id = $1) AS sub,"
            " (SELECT reference FROM cases WHERE id = $2) AS reference", staff_id, case_id)
        await insert_rows(conn, [Row(
            idempotency_key=f"{notice_id}:staff_webhook", message_key=notice_id, alert_id=None, case_id=case_id,
            change_seq=None, recipient="staff", channel="staff_webhook", purpose=kind, safety=False,
            payload={"notice_id": str(notice_id), "kind": kind, "case_id": str(case_id) if case_id else None,
                     "case_reference": who["reference"], "staff_sub": who["sub"], "agency": None if staff_id else agency,
                     "detail": payload},
            next_attempt_at=now, deadline=outbox.deadline(now),
            enqueued_at=now)])
        await conn.execute("UPDATE staff_notices SET delivery = 'enqueued' WHERE id = $1", notice_id)
    return True
