"""HTTP of the alerts domain: the monitoring room's queue (list, read, acknowledge, resolve, notes, the live
stream), the actions that reach people outside the room (escalate to police, message the victim), and each case's
notification policy. The use cases are in :mod:`api.alerts.service`."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect

from api.alerts import repository, service
from api.alerts.lifecycle import Action
from api.alerts.schemas import AlertPage, Escalate, MessageVictim, Note, NotificationPolicyBody, Resolve, RoomLoad
from api.auth import need_to_know as access
from api.auth.principals import Staff, require_staff
from api.platform import db_outage
from api.platform.context import Context, get_context
from api.platform.problems import Problem, not_found
from api.platform.staff_common import decode_seq_cursor

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
policy_router = APIRouter(prefix="/v1/cases", tags=["cases"])

ReadAlerts = Annotated[Staff, Depends(require_staff("operator", "case_director", "contact_person"))]
ActOnAlerts = Annotated[Staff, Depends(require_staff("operator"))]
ManagePolicy = Annotated[Staff, Depends(require_staff("case_director"))]
ReadPolicy = Annotated[Staff, Depends(require_staff("case_director", "operator", "contact_person"))]
Ctx = Annotated[Context, Depends(get_context)]

def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise not_found(what) from None


@router.get("", response_model=AlertPage)
async def list_alerts(
    ctx: Ctx,
    staff: ReadAlerts,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    case_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
    group_id: uuid.UUID | None = None,
) -> AlertPage:
    """The queue; ``group_id`` lists the silences folded into that supplier outage instead."""
    after = decode_seq_cursor(cursor)
    # Only alerts of cases the caller may reach (need-to-know, api/auth/need_to_know.py); admin sees all.
    visible = await access.visible_case_ids(ctx.pool, ctx, staff)
    items = await repository.list_alerts(ctx.pool, status=status, case_id=case_id, case_ids=visible, after_seq=after,
                                         limit=limit, group_id=group_id, outages=access.sees_outages(staff))
    return AlertPage(items=items, next_cursor=str(items[-1]["seq"]) if len(items) == limit else None)


@router.get("/load", response_model=RoomLoad)
async def room_load(
    ctx: Ctx,
    staff: ActOnAlerts,
    hours: Annotated[int, Query(ge=1, le=168)] = 24,
    deadline_s: Annotated[float, Query(ge=5, le=3600)] = 60,
    recent_s: Annotated[float, Query(ge=10, le=3600)] = 60,
) -> RoomLoad:
    """The monitoring room's load, for its own plots: alerts per hour over ``hours``, open alerts and those
    waiting past ``deadline_s`` by cause, acknowledgements per operator (how many past the deadline), and the
    alerts of the last ``recent_s`` by cause (a flood: a supplier outage is one ``supplier_outage``, device events
    by event type). Counts for the whole room, naming no case and no position. Declared before
    ``/{alert_id}`` so that "load" is never read as an alert id."""
    return RoomLoad(**await service.room_load(ctx.pool, ctx.clock.now(), hours, deadline_s, recent_s))


@router.get("/{alert_id}")
async def get_alert(alert_id: str, ctx: Ctx, staff: ReadAlerts) -> dict[str, Any]:
    """An alert with its history (CONTRACT.md). A silence carries ``near_victim`` (it went dark near the victim:
    raised after ``AFSTAND_NEAR_SILENT_S`` at violation level). Each engine change carries ``trigger``
    (``distance``, ``ble``: the victim's phone heard the tag, ``fast_approach``: a warning before the band,
    ``silence``) and, for proximity when a closing speed is known, ``eta_contact_s``; its ``detail`` adds
    ``rssi`` (dBm, for ``ble``), ``closing_speed_mps`` and ``eta_uncertainty_s``."""
    return await service.read_alert(ctx.pool, _uuid(alert_id, "alert"), staff)


@router.post("/{alert_id}/acknowledge")
async def acknowledge(alert_id: str, ctx: Ctx, staff: ActOnAlerts) -> dict[str, Any]:
    return await service.act(ctx.pool, ctx.outbox, _uuid(alert_id, "alert"), staff, Action.ACKNOWLEDGE, {})


@router.post("/{alert_id}/resolve")
async def resolve(alert_id: str, body: Resolve, ctx: Ctx, staff: ActOnAlerts) -> dict[str, Any]:
    detail = {"outcome": body.outcome, "note": body.note}
    return await service.act(ctx.pool, ctx.outbox, _uuid(alert_id, "alert"), staff, Action.RESOLVE, detail)


@router.post("/{alert_id}/notes")
async def add_note(alert_id: str, body: Note, ctx: Ctx, staff: ActOnAlerts) -> dict[str, Any]:
    """A call-log note on the alert's history (who was called, what was said)."""
    return await service.act(ctx.pool, ctx.outbox, _uuid(alert_id, "alert"), staff, Action.NOTE, {"note": body.note})


@router.post("/{alert_id}/escalate")
async def escalate(alert_id: str, ctx: Ctx, staff: ActOnAlerts, body: Escalate | None = None) -> dict[str, Any]:
    """Escalate to the police control room: a signed webhook, retried until delivered or dead-lettered."""
    detail = {"reason": (body.reason if body else None) or "operator", "automatic": False}
    return await service.act(ctx.pool, ctx.outbox, _uuid(alert_id, "alert"), staff, Action.ESCALATE_TO_POLICE, detail)


@router.post("/{alert_id}/message-victim")
async def message_victim(alert_id: str, body: MessageVictim, ctx: Ctx, staff: ActOnAlerts) -> dict[str, Any]:
    """Send the victim a message: free text or a template from the catalogues (``operator.<template>``)."""
    service.check_template(body.template)
    return await service.message_victim(ctx.pool, ctx.outbox, _uuid(alert_id, "alert"), staff, text=body.text,
                                        template=body.template, urgent=body.urgent)


@policy_router.get("/{case_id}/notification-policy")
async def get_policy(case_id: str, ctx: Ctx, staff: ReadPolicy) -> dict[str, Any]:
    return await service.get_notification_policy(ctx.pool, ctx.outbox, _uuid(case_id, "case"))


@policy_router.put("/{case_id}/notification-policy")
async def put_policy(case_id: str, body: NotificationPolicyBody, ctx: Ctx, staff: ManagePolicy) -> dict[str, Any]:
    """Replace the case's overrides (see notifications/policy.py ``CasePolicy``) and the victim's SMS number."""
    cid = _uuid(case_id, "case")
    await service.put_notification_policy(ctx.pool, ctx.outbox, cid, staff, body.victim_phone, body.policy)
    return await service.get_notification_policy(ctx.pool, ctx.outbox, cid)


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
            items = await repository.changes_after(ctx.pool, last)
            # Need-to-know (api/auth/need_to_know.py): only changes of alerts on cases this caller may reach.
            cases = {uuid.UUID(i["alert"]["case_id"]) for i in items if i["alert"]["case_id"]}
            reach = await access.reach_filter(ctx.pool, ctx, staff, cases)
            for item in items:
                alert = item["alert"]
                # A silence folded into a supplier outage is not streamed: the outage alert speaks for it.
                if alert["group_id"] is None and (uuid.UUID(alert["case_id"]) in reach if alert["case_id"]
                                                  else access.sees_outages(staff)):
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
