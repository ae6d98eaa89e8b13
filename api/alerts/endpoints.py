"""The monitoring room's alert queue: list, read, acknowledge, resolve, and the live stream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field

from api.auth import need_to_know as access
from api.alerts import store as alert_store
from api.privacy import audit
from api.platform import db_outage
from api.auth.principals import Staff, require_staff
from api.platform.context import Context, get_context
from api.platform.problems import Problem, conflict, not_found
from api.platform.staff_common import decode_seq_cursor

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

ReadAlerts = Annotated[Staff, Depends(require_staff("operator", "case_director", "contact_person"))]
ActOnAlerts = Annotated[Staff, Depends(require_staff("operator"))]
Ctx = Annotated[Context, Depends(get_context)]

OUTCOMES = (
    "offender_contacted_complied", "police_dispatched", "false_alarm_gps", "victim_safe_confirmed",
    "technical_fault", "order_expired", "other",
)


class AlertPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class Resolve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]
    note: str | None = Field(default=None, max_length=4000)


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=4000)


def _alert_id(alert_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(alert_id)
    except ValueError:
        raise not_found("alert") from None


@router.get("", response_model=AlertPage)
async def list_alerts(
    ctx: Ctx,
    staff: ReadAlerts,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    case_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> AlertPage:
    after = decode_seq_cursor(cursor)
    # Only alerts of cases the caller may reach (need-to-know, api/auth/need_to_know.py); admin sees all.
    visible = await access.visible_case_ids(ctx.pool, ctx, staff)
    items = await alert_store.list_alerts(ctx.pool, status=status, case_id=case_id, case_ids=visible, after_seq=after,
                                          limit=limit)
    return AlertPage(items=items, next_cursor=str(items[-1]["seq"]) if len(items) == limit else None)


@router.get("/{alert_id}")
async def get_alert(alert_id: str, ctx: Ctx, staff: ReadAlerts) -> dict[str, Any]:
    alert = await alert_store.fetch_alert(ctx.pool, _alert_id(alert_id))
    if alert is None:
        raise not_found("alert")
    # Its evidence names the victim's fixes: a read of personal data, audited before it is answered.
    await audit.record(ctx.pool, actor=staff.actor, role=staff.role, action="alert.read",
                       case_id=uuid.UUID(alert["case_id"]), detail={"alert_id": alert["id"]})
    return alert


async def _operator_action(ctx: Context, alert_id: uuid.UUID, staff: Staff, change: str, detail: dict[str, Any],
                           new_status: str | None, allowed_from: tuple[str, ...]) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn, conn.transaction():
        await alert_store.lock_alert_log(conn)
        row = await conn.fetchrow("SELECT status, level, confidence, case_id FROM alerts WHERE id = $1 FOR UPDATE", alert_id)
        if row is None:
            raise not_found("alert")
        if row["status"] not in allowed_from:
            raise conflict(f"the alert is {row['status']}; {change} is possible only when it is {' or '.join(allowed_from)}")
        if new_status is not None:
            await conn.execute(
                "UPDATE alerts SET status = $2, outcome = COALESCE($3, outcome) WHERE id = $1",
                alert_id, new_status, detail.get("outcome"),
            )
        await alert_store.append_change(
            conn, alert_id, change, outbox=ctx.outbox, level=row["level"], confidence=row["confidence"],
            actor=staff.actor, detail=detail,
        )
        await audit.record(conn, actor=staff.actor, role=staff.role, action=f"alert.{change}",
                           case_id=row["case_id"], detail={"alert_id": str(alert_id)})
    alert = await alert_store.fetch_alert(ctx.pool, alert_id)
    assert alert is not None
    return alert


@router.post("/{alert_id}/acknowledge")
async def acknowledge(alert_id: str, ctx: Ctx, staff: ActOnAlerts) -> dict[str, Any]:
    return await _operator_action(ctx, _alert_id(alert_id), staff, "acknowledged", {}, "acknowledged", ("open",))


@router.post("/{alert_id}/resolve")
async def resolve(alert_id: str, body: Resolve, ctx: Ctx, staff: ActOnAlerts) -> dict[str, Any]:
    detail = {"outcome": body.outcome, "note": body.note}
    return await _operator_action(ctx, _alert_id(alert_id), staff, "resolved", detail, "resolved", ("open", "acknowledged"))


@router.post("/{alert_id}/notes")
async def add_note(alert_id: str, body: Note, ctx: Ctx, staff: ActOnAlerts) -> dict[str, Any]:
    """A call-log note on the alert's history (who was called, what was said)."""
    return await _operator_action(
        ctx, _alert_id(alert_id), staff, "note", {"note": body.note}, None, ("open", "acknowledged", "resolved")
    )


@router.websocket("/stream")
async def stream(websocket: WebSocket, after: Annotated[int, Query(le=2**63 - 1)] = 0) -> None:  # a bigint seq
    """Every alert change as ``{seq, change, alert}``, oldest first, from ``seq > after``; then live.

    The token comes in the Authorization header or, for browsers that cannot set headers on a WebSocket,
    as the ``token`` query parameter.
    """
    ctx: Context = websocket.app.state.ctx
    header = websocket.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else websocket.query_params.get("token", "")
    try:
        staff = await access.staff_from_token(ctx, token)
        if staff.role not in ("admin", "operator", "case_director", "contact_person"):
            raise Problem(403, "Forbidden", "this role may not follow the alert stream")
    except Problem as p:
        await websocket.close(code=4401 if p.status == 401 else 4403, reason=p.detail[:120])
        return
    except db_outage.UNREACHABLE:
        await websocket.close(code=1013, reason="database unreachable")
        return
    await websocket.accept()
    last = max(after, 0)
    hub = ctx.hub
    assert hub is not None
    # Reading the socket is how a client's close, and the server's shutdown (uvicorn closes with 1012, on which
    # the console reconnects), end this handler at once rather than at its next send.
    client_gone = asyncio.create_task(_until_disconnect(websocket))
    try:
        while not client_gone.done():
            version = hub.version
            items = await alert_store.changes_after(ctx.pool, last)
            # Need-to-know (api/auth/need_to_know.py): only changes of alerts on cases this caller may reach.
            reach = await access.reach_filter(ctx.pool, ctx, staff, {uuid.UUID(i["alert"]["case_id"]) for i in items})
            for item in items:
                if uuid.UUID(item["alert"]["case_id"]) in reach:
                    await websocket.send_json(item)
                last = item["seq"]
            if not items:
                woken = asyncio.create_task(hub.wait(version, timeout=5.0))
                await asyncio.wait({woken, client_gone}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
    except (WebSocketDisconnect, asyncio.CancelledError):
        return
    except db_outage.UNREACHABLE:
        # 1013 "try again later": the console shows it is reconnecting, and resumes after the last seq it saw.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client may be gone already
            await websocket.close(code=1013, reason="database unreachable")
    finally:
        client_gone.cancel()


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # nothing a client sends is needed: the stream is one-way
