"""Every ``/v1/me`` route of the victim app: enrollment with a one-time code, device tokens, her positions, the
panic button, her push token, her alerts; her case, timeline, orders, notices, preferences and message thread.

A device token reaches only these routes (staff routes verify a different key) and only its own case: the case
id is taken from the device, never from the request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.auth.principals import DeviceTokenDep, VictimDep
from api.contacts.thread import service as thread
from api.contacts.thread.schemas import MessageIn, MessageOut, MessagePage
from api.intake.protocols import json_contract
from api.intake.schemas import AppEncounterBatch, AppPositionBatch, BatchResult, body_doc
from api.platform.context import Context
from api.platform.staff_common import Ctx, Limit
from api.victim import service
from api.victim.schemas import (
    AckOut, BeaconList, Enroll, Panic, PanicOut, Preferences, PushToken, Refresh, TokenPair, VictimAlertPage,
    VictimCase, VictimEventPage, VictimNotices, VictimOrders,
)

router = APIRouter(prefix="/v1/me", tags=["victim app"])
# The app's positions: the hot path, mounted without the staff and login guards the other routes carry (api/app.py).
ingest_router = APIRouter(prefix="/v1/me", tags=["victim app"])
INGEST_PATH = "/v1/me/positions"


@router.post("/enroll", status_code=201, response_model=TokenPair, responses={
    400: {"description": "the code is not valid"}, 409: {"description": "the code was used already"},
    410: {"description": "the code expired"}, 423: {"description": "too many wrong tries: the code is locked"},
})
async def enroll(body: Enroll, ctx: Ctx) -> TokenPair:
    """Bind this app installation to the victim's case with the one-time code staff issued. The code expires
    after 24 h, works once, and locks after 5 wrong tries (then even the right code fails: ask for a new one)."""
    return await service.enroll(ctx, body)


@router.post("/token", response_model=TokenPair, responses={401: {"description": "unknown, used or expired token"}})
async def refresh_token(body: Refresh, ctx: Ctx) -> TokenPair:
    """Trade the refresh token for a new access token and a new refresh token; the old one stops working.

    A refresh token that was already traded in is proof that two parties hold the same token family (one of
    them a thief). The whole family is revoked: the device's current refresh token and every access token
    issued so far. The device stays registered, so the engine keeps expecting the victim's positions and raises
    ``victim_silent`` when they stop; the app must enroll again with a new code. Audited as
    ``device.token_reuse``."""
    return await service.refresh_token(ctx, body.refresh_token)


@ingest_router.post(INGEST_PATH.removeprefix("/v1/me"), response_model=BatchResult, openapi_extra=body_doc(AppPositionBatch),
             responses={413: {"description": "too many items"}})
async def post_positions(request: Request, token: DeviceTokenDep) -> BatchResult:
    """The victim's own positions; the same per-item results as the supplier API. A revoked device (or token
    family) gets 401, as on every other route, and stores nothing."""
    ctx: Context = request.app.state.ctx
    decoded = json_contract.decode_app_positions(await request.body(), ctx.settings.ingest_max_items)
    return BatchResult(results=await service.post_positions(ctx, token, decoded))


@router.get("/beacons", response_model=BeaconList)
async def my_beacons(ctx: Ctx, device: VictimDep) -> BeaconList:
    """The rotating Bluetooth identifiers her case's tag advertises from the current period (1,024 s) for the
    next 24 hours, each with its validity (CONTRACT.md, beacon identifiers). The app listens for these and
    reports only matches; never the tag's key or serial, so nothing lets the phone recognise the tag later.
    Empty when the tag has no Bluetooth key."""
    return await service.beacons(ctx, device)


@router.post("/encounters", response_model=BatchResult, openapi_extra=body_doc(AppEncounterBatch),
             responses={413: {"description": "too many items"}})
async def post_encounters(request: Request, ctx: Ctx, device: VictimDep) -> BatchResult:
    """The phone heard her case's tag: one item per match of an identifier from ``GET /v1/me/beacons``, with the
    signal strength and, when it has one, her position. Per-item results as for positions: an identifier that is
    not her case's tag's at the item's ``recorded_at`` (± one period) is rejected with the reason (stale, or not
    this case's tag). A match is proof of proximity: a confirmed proximity violation (trigger ``ble``)."""
    decoded = json_contract.decode_app_encounters(await request.body(), ctx.settings.ingest_max_items)
    return BatchResult(results=await service.post_encounters(ctx, device, decoded))


@router.post("/panic", status_code=201, response_model=PanicOut)
async def panic(body: Panic, ctx: Ctx, device: VictimDep) -> PanicOut:
    """Raise a ``panic`` alert at once: violation, confirmed. Pressing again with the same ``recorded_at`` (a
    retried request) returns the same alert. A position sent along is stored as a victim fix; if it is bad
    or partial the alert is raised all the same and ``position`` says why the fix was not stored.

    Never refused for its time: a ``recorded_at`` that is not an RFC 3339 time, or not a plausible one (before
    ``AFSTAND_PLAUSIBLE_SINCE``, ahead of server time), raises the alert at server time, marked
    ``clock_suspect``; the claimed value is kept in its detail."""
    return await service.panic(ctx, device, body)


@router.put("/push-token", status_code=204, response_class=Response)
async def put_push_token(body: PushToken, ctx: Ctx, device: VictimDep) -> Response:
    """Register or replace the push token alerts are sent to."""
    await service.set_push_token(ctx.pool, device, body.push_token)
    return Response(status_code=204)


@router.get("/alerts", response_model=VictimAlertPage)
async def my_alerts(ctx: Ctx, device: VictimDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                    cursor: str | None = None) -> VictimAlertPage:
    """The alerts of the victim's own case that concern her safety, newest first. Never the offender's
    position, the distance, the zone, the evidence or any device id."""
    return await service.alerts(ctx.pool, device, limit, cursor)


@router.post("/alerts/{alert_id}/ack", response_model=AckOut)
async def ack_alert(alert_id: str, ctx: Ctx, device: VictimDep) -> AckOut:
    """The app showed this alert to the victim. Recorded once per device (``victim_acknowledged`` in the alert's
    history); repeating it returns the first acknowledgement."""
    return await service.acknowledge(ctx.pool, ctx.outbox, device, alert_id)


# ---------------------------------------------------------------- her case

@router.get("/case", response_model=VictimCase)
async def my_case(ctx: Ctx, dev: VictimDep) -> VictimCase:
    return await service.case(ctx, dev)


@router.get("/timeline", response_model=VictimEventPage)
async def my_timeline(ctx: Ctx, dev: VictimDep, limit: Limit = 50, cursor: str | None = None) -> VictimEventPage:
    """Victim-visible events, newest first. Internal events are filtered in the query, never after it."""
    return await service.timeline(ctx.pool, dev, limit, cursor)


@router.get("/orders", response_model=VictimOrders)
async def my_orders(ctx: Ctx, dev: VictimDep) -> VictimOrders:
    """The orders that protect the victim, in plain words, until when; each with her protective zones as GeoJSON.
    Only exclusion zones are shown: inclusion zones are where the offender must stay, i.e. where he lives."""
    return await service.orders(ctx.pool, dev)


@router.get("/notices", response_model=VictimNotices)
async def my_notices(ctx: Ctx, dev: VictimDep, limit: Limit = 50, cursor: str | None = None) -> VictimNotices:
    """What she was told outside the thread (a protection ends soon, was extended, will not be extended, has
    ended), in her language, newest first. Stored before any push, so it is here even when a push failed."""
    return await service.notices_page(ctx.pool, dev, limit, cursor)


@router.get("/preferences", response_model=Preferences)
async def get_preferences(ctx: Ctx, dev: VictimDep) -> Preferences:
    return await service.preferences(ctx.pool, dev)


@router.put("/preferences", response_model=Preferences)
async def put_preferences(body: Preferences, ctx: Ctx, dev: VictimDep) -> Preferences:
    """Language, preferred channel (only ``app`` gets pushes; with another channel she reads notices in the app
    and staff reach her their way), quiet hours (updates and messages wait; safety alerts never do) and how often
    she wants to be updated (notices of the ``update`` kind are pushed at most once per period). The language is
    the case's victim language, used by every text the victim gets."""
    return await service.save_preferences(ctx.pool, dev, body)


# ---------------------------------------------------------------- her message thread

@router.get("/messages", response_model=MessagePage)
async def my_messages(ctx: Ctx, dev: VictimDep, limit: Limit = 100, cursor: str | None = None) -> MessagePage:
    return await thread.victim_thread(ctx.pool, dev, limit, cursor)


@router.post("/messages", status_code=201, response_model=MessageOut)
async def send_message(body: MessageIn, ctx: Ctx, dev: VictimDep) -> MessageOut:
    return await thread.send_from_victim(ctx.pool, ctx.outbox, dev, body.body)


@router.post("/messages/{message_id}/read", response_model=MessagePage)
async def victim_read(message_id: str, ctx: Ctx, dev: VictimDep) -> MessagePage:
    """The victim has read this staff message (and every earlier one); returns the thread."""
    return await thread.read_by_victim(ctx.pool, dev, message_id)
