"""The monitoring room's use cases on alerts: acknowledge, resolve, note, escalate to the police, message the
victim; and each case's notification policy.

Every operator action runs in one transaction: the alert-log lock and the alert's row, the lifecycle's verdict
(:mod:`api.alerts.lifecycle`), the change through :func:`api.alerts.repository.append_change` (which enqueues the
notifications it causes in the same transaction, notifications/outbox.py) and the audit record. An answered
request therefore means the change is stored and its messages are durably queued.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Awaitable, Callable

import asyncpg

from api import messages
from api.alerts import repository
from api.alerts.lifecycle import ONCE, Action, Refused, transition
from api.auth.principals import Staff
from api.contacts.notices import service as notices
from api.contacts.thread import service as thread
from api.privacy import audit
from api.platform.problems import conflict, field_error, not_found
from notifications import catalogue, policy
from notifications.outbox import Outbox, message_key, victim_preferences

_PHONE = re.compile(r"\+[1-9]\d{6,14}")

AfterChange = Callable[[asyncpg.Connection, asyncpg.Record, int], Awaitable[None]]


async def read_alert(pool: asyncpg.Pool, alert_id: uuid.UUID, staff: Staff) -> dict[str, Any]:
    alert = await repository.fetch_alert(pool, alert_id)
    if alert is None:
        raise not_found("alert")
    # Its evidence names the victim's fixes: a read of personal data, audited before it is answered.
    await audit.record(pool, actor=staff.actor, role=staff.role, action="alert.read",
                       case_id=uuid.UUID(alert["case_id"]) if alert["case_id"] else None,
                       detail={"alert_id": alert["id"]})
    return alert


async def act(pool: asyncpg.Pool, outbox: Outbox, alert_id: uuid.UUID, staff: Staff, action: Action,
              detail: dict[str, Any], then: AfterChange | None = None) -> dict[str, Any]:
    """Apply one operator action; returns the alert as it is afterwards."""
    async with pool.acquire() as conn, conn.transaction():
        row = await repository.lock_for_action(conn, alert_id)
        if row is None:
            raise not_found("alert")
        try:
            status = transition(row["status"], action)
        except Refused as e:
            raise conflict(str(e)) from None
        if action in ONCE and await repository.has_change(conn, alert_id, action.value):
            raise conflict(f"this alert has already been {action.value.replace('_', ' ')}")
        if action is Action.MESSAGE_VICTIM and not await repository.case_has_victim(conn, row["case_id"]):
            raise conflict("this case has no victim to message")
        if status.value != row["status"]:
            await repository.set_status(conn, alert_id, status.value, detail.get("outcome"))
        seq = await repository.append_change(conn, alert_id, action.value, outbox=outbox, level=row["level"],
                                             confidence=row["confidence"], actor=staff.actor, detail=detail)
        if then is not None:
            await then(conn, row, seq)
        await audit.record(conn, actor=staff.actor, role=staff.role, action=f"alert.{action.value}",
                           case_id=row["case_id"], detail={"alert_id": str(alert_id)})
    alert = await repository.fetch_alert(pool, alert_id)
    assert alert is not None
    return alert


def check_template(template: str | None) -> None:
    if template is not None and template not in catalogue.operator_templates():
        raise field_error(["template"], f"unknown template; one of {', '.join(catalogue.operator_templates())}")


async def message_victim(pool: asyncpg.Pool, outbox: Outbox, alert_id: uuid.UUID, staff: Staff, *, text: str | None,
                         template: str | None, urgent: bool) -> dict[str, Any]:
    """Send the victim free text or a checked template (:func:`check_template`)."""
    detail: dict[str, Any] = {"urgent": urgent}
    if template is not None:
        detail["template"] = template
    else:
        detail["text"] = text

    async def into_thread(conn: asyncpg.Connection, alert: asyncpg.Record, seq: int) -> None:
        """The message also lands in her thread, linked to its push: if the push fails she still reads it,
        and staff see how it was delivered."""
        language = messages.resolve(await notices.victim_language(conn, alert["case_id"]))
        body = text if template is None else catalogue.render(language, f"operator.{template}")[1]
        key = message_key(alert_id, f"message:{seq}")
        await thread.record_from_monitoring_room(conn, alert["case_id"], alert_id,
                                                 messages.text(language, "author.monitoring_room"), body, key)

    return await act(pool, outbox, alert_id, staff, Action.MESSAGE_VICTIM, detail, then=into_thread)


async def get_notification_policy(pool: asyncpg.Pool, outbox: Outbox, case_id: uuid.UUID) -> dict[str, Any]:
    if not await repository.case_exists(pool, case_id):
        raise not_found("case")
    row, prefs_row = await repository.notification_policy(pool, case_id)
    stored = row["policy"] if row else {}
    case = outbox.case_policy(stored)
    prefs = victim_preferences(prefs_row)
    quiet = policy.effective_quiet_hours(case, prefs)
    # What is applied: the case's settings with the victim's own preferences where staff did not override them.
    effective = policy.with_preferences(case, prefs).as_dict()
    period = policy.FREQUENCY_PERIOD[prefs.update_frequency]
    effective.update({
        "quiet_hours_source": None if quiet is None else ("case" if case.quiet_hours is not None else "victim"),
        "safety_ignores_quiet_hours": True,
        "victim_channel": prefs.channel,
        "push_non_safety": case.notify_victim and prefs.channel == "app",
        "update_frequency": prefs.update_frequency,
        "update_min_interval_days": None if period is None else period.days,
    })
    return {
        "case_id": str(case_id),
        "victim_phone_set": bool(row and row["victim_phone"]),
        "overrides": stored,
        "victim_preferences": {"channel": prefs.channel, "update_frequency": prefs.update_frequency,
                               "quiet_hours": prefs.quiet_hours.as_dict() if prefs.quiet_hours else None},
        "effective": effective,
    }


async def put_notification_policy(pool: asyncpg.Pool, outbox: Outbox, case_id: uuid.UUID, staff: Staff, victim_phone: str | None,
                                  overrides: dict[str, Any]) -> None:
    """Replace the case's overrides (notifications/policy.py ``CasePolicy``) and the victim's SMS number."""
    if victim_phone is not None and not _PHONE.fullmatch(victim_phone):
        raise field_error(["victim_phone"], "an international number in E.164 form, e.g. +31612345678")
    try:
        outbox.defaults.with_overrides(overrides)
    except ValueError as e:
        raise field_error(["policy"], str(e)) from None
    async with pool.acquire() as conn, conn.transaction():
        if not await repository.case_exists(conn, case_id):
            raise not_found("case")
        await repository.put_notification_policy(conn, case_id, victim_phone, overrides, staff.actor)
        # The number itself is personal data: the audit log records that it changed, not what it is.
        await audit.record(conn, actor=staff.actor, role=staff.role, action="case.notification_policy",
                           case_id=case_id,
                           detail={"overrides": sorted(overrides), "victim_phone_set": victim_phone is not None})


async def room_load(pool: asyncpg.Pool, now: datetime, hours: int, deadline_s: float, recent_s: float) -> dict[str, Any]:
    """The monitoring room's load as counts only (no case, no position): alerts per hour, what is open and how much
    of it has waited past the deadline, each operator's acknowledgements, and what the last minutes brought by
    cause (what a flood is made of). One REPEATABLE READ snapshot, so the figures agree with each other."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        per_hour = await repository.alerts_per_hour(conn, now, hours)
        open_rows = await repository.open_unacknowledged(conn, now, deadline_s)
        operators = await repository.acknowledgements_by_operator(conn, now, hours * 3600.0, deadline_s)
        recent = await repository.recent_by_cause(conn, now, recent_s)
    return {
        "at": now, "deadline_s": deadline_s,
        "hours": [dict(r) for r in per_hour],
        "open": sum(r["open"] for r in open_rows), "open_overdue": sum(r["overdue"] for r in open_rows),
        "open_by_cause": [dict(r) for r in open_rows],
        "operators": [{**dict(r), "median_s": round(r["median_s"], 1)} for r in operators],
        "recent_s": recent_s, "recent": sum(r["alerts"] for r in recent), "recent_by_cause": [dict(r) for r in recent],
    }
