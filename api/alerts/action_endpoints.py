"""Operator actions that reach people outside the monitoring room: escalate to police, message the victim;
and each case's notification policy (overrides of notifications/policy.py and the victim's SMS number).

Each action is an alert change written through ``alert_store.append_change``; the notifications it causes are
enqueued in the same transaction by the outbox (notifications/outbox.py), so an answered request means the
message is durably queued.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Awaitable, Callable

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from api import messages
from api.privacy import audit
from api.contacts import notices
from api.alerts import store as alert_store
from api.auth.principals import Staff, require_staff
from api.platform.context import Context, get_context
from api.platform.problems import Problem, conflict, field_error, not_found
from notifications import catalogue, outbox, policy

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
policy_router = APIRouter(prefix="/v1/cases", tags=["cases"])

ActOnAlerts = Annotated[Staff, Depends(require_staff("operator"))]
ManagePolicy = Annotated[Staff, Depends(require_staff("case_director"))]
ReadPolicy = Annotated[Staff, Depends(require_staff("case_director", "operator", "contact_person"))]
Ctx = Annotated[Context, Depends(get_context)]


class Escalate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=1000)


class MessageVictim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, min_length=1, max_length=500)
    template: str | None = Field(default=None, max_length=64)
    urgent: StrictBool = False

    @model_validator(mode="after")
    def _one_of(self) -> "MessageVictim":
        if (self.text is None) == (self.template is None):
            raise ValueError("give exactly one of text or template")
        return self


class NotificationPolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    victim_phone: str | None = Field(default=None, max_length=32)
    policy: dict[str, Any] = Field(default_factory=dict)


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise not_found(what) from None


async def _act(ctx: Context, alert_id: uuid.UUID, staff: Staff, change: str, detail: dict[str, Any],
               allowed_from: tuple[str, ...], once: bool = False,
               then: Callable[[Any, Any, int], Awaitable[None]] | None = None) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT status, level, confidence, case_id FROM alerts WHERE id = $1 FOR UPDATE", alert_id)
        if row is None:
            raise not_found("alert")
        if row["status"] not in allowed_from:
            raise conflict(f"the alert is {row['status']}; {change} is possible only when it is "
                           f"{' or '.join(allowed_from)}")
        if once and await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM alert_changes WHERE alert_id = $1 AND change = $2)", alert_id, change):
            raise conflict(f"this alert has already been {change.replace('_', ' ')}")
        if change == "victim_messaged":
            has_victim = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM parties WHERE case_id = $1 AND role = 'victim')", row["case_id"])
            if not has_victim:
                raise conflict("this case has no victim to message")
        seq = await alert_store.append_change(
            conn, alert_id, change, outbox=ctx.outbox, level=row["level"], confidence=row["confidence"],
            actor=staff.actor, detail=detail)
        if then is not None:
            await then(conn, row, seq)
        await audit.record(conn, actor=staff.actor, role=staff.role, action=f"alert.{change}", case_id=row["case_id"],
                           detail={"alert_id": str(alert_id)})
    alert = await alert_store.fetch_alert(ctx.pool, alert_id)
    assert alert is not None
    return alert


@router.post("/{alert_id}/escalate")
async def escalate(alert_id: str, ctx: Ctx, staff: ActOnAlerts, body: Escalate | None = None) -> dict[str, Any]:
    """Escalate to the police control room: a signed webhook, retried until delivered or dead-lettered."""
    detail = {"reason": (body.reason if body else None) or "operator", "automatic": False}
    return await _act(ctx, _uuid(alert_id, "alert"), staff, "escalated_to_police", detail,
                      ("open", "acknowledged"), once=True)


@router.post("/{alert_id}/message-victim")
async def message_victim(alert_id: str, body: MessageVictim, ctx: Ctx, staff: ActOnAlerts) -> dict[str, Any]:
    """Send the victim a message: free text or a template from the catalogues (``operator.<template>``)."""
    if body.template is not None and body.template not in catalogue.operator_templates():
        raise field_error(["template"], f"unknown template; one of {', '.join(catalogue.operator_templates())}")
    detail: dict[str, Any] = {"urgent": body.urgent}
    if body.template is not None:
        detail["template"] = body.template
    else:
        detail["text"] = body.text
    aid = _uuid(alert_id, "alert")

    async def into_thread(conn: Any, alert: Any, seq: int) -> None:
        """The message also lands in her thread (``GET /v1/me/messages``), linked to its push: if the push
        fails she still reads it, and staff see how it was delivered."""
        language = messages.resolve(await notices.victim_language(conn, alert["case_id"]))
        text = body.text if body.template is None else catalogue.render(language, f"operator.{body.template}")[1]
        key = outbox.message_key(aid, f"message:{seq}")
        pushed = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM outbox WHERE message_key = $1)", key)
        await conn.execute(
            "INSERT INTO case_messages (id, case_id, sender, author, body, push_status, push_detail, message_key,"
            " alert_id) VALUES ($1, $2, 'staff', $3, $4, $5, $6, $7, $8)",
            uuid.uuid4(), alert["case_id"], messages.text(language, "author.monitoring_room"), text,
            "enqueued" if pushed else "not_pushed", None if pushed else "case_policy_no_victim_notifications", key, aid)

    return await _act(ctx, aid, staff, "victim_messaged", detail, ("open", "acknowledged", "resolved"),
                      then=into_thread)


_PHONE = re.compile(r"\+[1-9]\d{6,14}")


@policy_router.get("/{case_id}/notification-policy")
async def get_policy(case_id: str, ctx: Ctx, staff: ReadPolicy) -> dict[str, Any]:
    cid = _uuid(case_id, "case")
    if not await ctx.pool.fetchval("SELECT EXISTS (SELECT 1 FROM cases WHERE id = $1)", cid):
        raise not_found("case")
    row = await ctx.pool.fetchrow("SELECT victim_phone, policy FROM notification_policies WHERE case_id = $1", cid)
    prefs_row = await ctx.pool.fetchrow("SELECT channel, quiet_start, quiet_end, update_frequency"
                                        " FROM victim_preferences WHERE case_id = $1", cid)
    stored = row["policy"] if row else {}
    case = ctx.outbox.case_policy(stored)
    prefs = outbox.victim_preferences(prefs_row)
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
        "case_id": str(cid),
        "victim_phone_set": bool(row and row["victim_phone"]),
        "overrides": stored,
        "victim_preferences": {"channel": prefs.channel, "update_frequency": prefs.update_frequency,
                               "quiet_hours": prefs.quiet_hours.as_dict() if prefs.quiet_hours else None},
        "effective": effective,
    }


@policy_router.put("/{case_id}/notification-policy")
async def put_policy(case_id: str, body: NotificationPolicyBody, ctx: Ctx, staff: ManagePolicy) -> dict[str, Any]:
    """Replace the case's overrides (see notifications/policy.py ``CasePolicy``) and the victim's SMS number."""
    cid = _uuid(case_id, "case")
    if body.victim_phone is not None and not _PHONE.fullmatch(body.victim_phone):
        raise field_error(["victim_phone"], "an international number in E.164 form, e.g. +31612345678")
    try:
        ctx.outbox.defaults.with_overrides(body.policy)
    except ValueError as e:
        raise field_error(["policy"], str(e)) from None
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM cases WHERE id = $1)", cid):
            raise not_found("case")
        await conn.execute(
            "INSERT INTO notification_policies (case_id, victim_phone, policy, updated_by) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (case_id) DO UPDATE SET victim_phone = EXCLUDED.victim_phone, policy = EXCLUDED.policy,"
            " updated_at = now(), updated_by = EXCLUDED.updated_by",
            cid, body.victim_phone, body.policy, staff.actor,
        )
        # The number itself is personal data: the audit log records that it changed, not what it is.
        await audit.record(conn, actor=staff.actor, role=staff.role, action="case.notification_policy", case_id=cid,
                           detail={"overrides": sorted(body.policy), "victim_phone_set": body.victim_phone is not None})
    return await get_policy(case_id, ctx, staff)


__all__ = ["router", "policy_router", "Problem"]
