"""The victim app's use cases: enrollment with a one-time code, device tokens, the panic button, her alerts and
their acknowledgement, and what she is shown of her case (stage, contact persons, orders with her protective
zones, notices) and her preferences.

A device token reaches only its own case: every use case is keyed by the case bound to the device, never by the
request. Nothing here reveals the offender's position, his inclusion zones (they would show where he lives) or
internal timeline events; every text comes from the message catalogues in her language.
"""

from __future__ import annotations

import hmac
import json
import secrets
import uuid
from datetime import datetime, time, timedelta, timezone
from typing import Any

import asyncpg
from pyproj import Geod

from notifications.outbox import Outbox
from api import messages
from api.alerts import repository as alert_store
from api.auth.principals import DeviceToken, VictimDevice, mint_device_token, victim_actor
from api.cases.timeline.service import event_cursor, fetch_events
from api.contacts import repository as contact_store
from api.contacts.notices import service as notices
from api.contacts.schemas import STAGE_EVENTS, VICTIM_AGENCIES
from api.intake import service as ingestion
from api.intake.model import storable
from api.intake.protocols import json_contract
from api.intake.schemas import APP_POSITION
from api.platform import metrics
from api.platform.context import Context
from api.platform.problems import Problem, not_found
from api.platform.secrets import token_hash
from api.platform.staff_common import decode_cursor, encode_cursor, next_cursor
from api.platform.times import parse_rfc3339
from api.privacy import audit
from api.victim import repository
from api.victim.schemas import (
    AckOut, Beacon, BeaconList, ContactPerson, Enroll, NextContact, Panic, PanicOut, Preferences, QuietHours, Stage, TokenPair,
    VictimAlert, VictimAlertPage, VictimCase, VictimEvent, VictimEventPage, VictimNotice, VictimNotices,
    VictimOrder, VictimOrders,
)

LOOKUP_LEN = 8  # see api/cases/enrollments.py: code = lookup (8) + secret
PANIC_NAMESPACE = uuid.UUID("0f6f1a2e-3c4b-4d5e-9f60-7a8b9c0d1e2f")
# What the victim is shown: alerts about her own safety. Technical alerts (device_event, *_silent) and the
# offender's inclusion-zone (home curfew) alerts are for the monitoring room, which keeps her informed.
VICTIM_KINDS = ("proximity", "zone_exclusion", "panic")
# ... except a silence that went dark near her (geofence/RULES.md, R-TICK-6): she was pushed about it.
NEAR_SILENCE_KINDS = ("offender_silent", "victim_silent")
ACK_CHANGE = "victim_acknowledged"
_NOT_A_TIME = "not an RFC 3339 date-time between 1900 and 9000"
PANIC_RETRY_S = 300  # a retried panic with the same suspect recorded_at within this returns the same alert

_ENROLL_PROBLEMS = {401: "Unauthorized", 409: "Conflict", 410: "Gone", 423: "Locked"}
_GEOD = Geod(ellps="WGS84")
_CIRCLE_VERTICES = 64


def _enroll_problem(status: int, msg: str) -> Problem:
    return Problem(status, _ENROLL_PROBLEMS.get(status, "Validation failed"), f"code: {msg}",
                   errors=[{"loc": ["code"], "msg": msg}])


def _normalise(code: str) -> str:
    """Codes are read from paper or a message: ignore case, spaces and dashes."""
    return code.replace("-", "").replace(" ", "").upper()


async def _issue(ctx: Context, conn: asyncpg.Connection, device_id: uuid.UUID, case_id: uuid.UUID) -> TokenPair:
    """A new access token and a new refresh token; the refresh token replaces the device's previous one, which
    is remembered as spent until it would have expired (its reuse revokes the family: :func:`refresh_token`)."""
    refresh = secrets.token_urlsafe(32)
    await repository.replace_refresh_token(conn, device_id, token_hash(refresh),
                                           timedelta(seconds=ctx.settings.refresh_token_ttl_s))
    access = mint_device_token(ctx.key, device_id, case_id, ctx.settings.access_token_ttl_s)
    return TokenPair(device_id=device_id, access_token=access, refresh_token=refresh,
                     expires_in=ctx.settings.access_token_ttl_s)


# ---------------------------------------------------------------- enrollment and tokens

async def enroll(ctx: Context, body: Enroll) -> TokenPair:
    """Redeem a one-time code: it expires, works once, and locks after too many wrong tries."""
    code = _normalise(body.code)
    lookup, secret = code[:LOOKUP_LEN], code[LOOKUP_LEN:]
    failure: Problem | None = None
    pair: TokenPair | None = None
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await repository.lock_enrollment(conn, lookup)
        max_failures = ctx.settings.enrollment_max_failures
        if row is None or not secret:
            failure = _enroll_problem(400, "this code is not valid")
        elif row["failed_attempts"] >= max_failures:
            failure = _enroll_problem(423, "this code is locked after too many wrong tries; ask for a new code")
        elif not hmac.compare_digest(token_hash(secret), row["secret_hash"]):
            # Committed although the request fails: that is what makes the lock work.
            failures = await repository.count_failed_attempt(conn, lookup)
            if failures >= max_failures:
                await audit.record(conn, actor=f"enrollment:{lookup}", role="victim_app", action="enrollment.locked",
                                   case_id=row["case_id"], detail={"lookup": lookup, "failed_attempts": failures})
                failure = _enroll_problem(423, "this code is locked after too many wrong tries; ask for a new code")
            else:
                failure = _enroll_problem(400, "this code is not valid")
        elif row["used_at"] is not None:
            failure = _enroll_problem(409, "this code has been used already; ask for a new code")
        elif row["expires_at"] <= datetime.now(timezone.utc):
            failure = _enroll_problem(410, "this code has expired; ask for a new code")
        elif row["status"] != "active":
            failure = _enroll_problem(410, "this case is closed")
        else:
            case_id = row["case_id"]
            device_id = uuid.uuid4()
            await repository.revoke_installation(conn, case_id, body.installation_id)
            await repository.insert_app_device(conn, device_id, case_id, body.installation_id, body.platform,
                                               body.push_token)
            await repository.mark_enrollment_used(conn, lookup)
            pair = await _issue(ctx, conn, device_id, case_id)
            await audit.record(conn, actor=victim_actor(device_id), role="victim_app", action="enrollment.redeem",
                               case_id=case_id, detail={"lookup": lookup, "device_id": str(device_id),
                                                        "platform": body.platform})
    if failure is not None:
        raise failure
    assert pair is not None
    return pair


async def refresh_token(ctx: Context, presented_token: str) -> TokenPair:
    """Trade a refresh token in; a token traded in before revokes its whole family (see the route)."""
    presented = token_hash(presented_token)
    pair: TokenPair | None = None
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await repository.lock_device_by_refresh(conn, presented)
        if row is not None and row["refresh_expires_at"] is not None and row["refresh_expires_at"] > datetime.now(timezone.utc):
            pair = await _issue(ctx, conn, row["id"], row["case_id"])
        elif row is None:
            await _revoke_family_on_reuse(conn, presented)  # committed although the request fails
    if pair is None:
        raise Problem(401, "Unauthorized", "refresh token unknown, already used, expired or revoked",
                      headers={"WWW-Authenticate": "Bearer"})
    return pair


async def _revoke_family_on_reuse(conn: asyncpg.Connection, presented: str) -> None:
    device = await repository.lock_device_by_spent(conn, presented)
    if device is None:
        return
    await repository.revoke_token_family(conn, device["id"])
    await audit.record(conn, actor=victim_actor(device["id"]), role="victim_app", action="device.token_reuse",
                       case_id=device["case_id"], detail={"device_id": str(device["id"]), "revoked": "token_family"})


async def set_push_token(pool: asyncpg.Pool, device: VictimDevice, push_token: str) -> None:
    await repository.set_push_token(pool, device.device_id, push_token)


# ---------------------------------------------------------------- positions and the panic button

async def post_positions(ctx: Context, token: DeviceToken, decoded: list[Any]) -> list[dict[str, Any]]:
    """Her own positions, through the same intake as the supplier's; the intake checks the device and its token
    family where it stores them (one statement instead of a lookup first)."""
    sender = ingestion.Sender.app(token.device_id, token.case_id, token.issued_at)
    return await ingestion.ingest_positions(ctx.pool, sender, decoded,
                                            ingestion.PlausibleTimes.from_settings(ctx.settings), ctx.outbox,
                                            ctx.fix_log)


# ---------------------------------------------------------------- Bluetooth contact

async def beacons(ctx: Context, device: VictimDevice) -> BeaconList:
    found = await ingestion.case_beacons(ctx.pool, ctx.key, device.case_id, datetime.now(timezone.utc))
    return BeaconList(beacons=[Beacon(beacon_id=b.beacon_id, valid_from=b.valid_from, valid_until=b.valid_until)
                               for b in found])


async def post_encounters(ctx: Context, device: VictimDevice, decoded: list[Any]) -> list[dict[str, Any]]:
    sender = ingestion.Sender.app(device.device_id, device.case_id)
    return await ingestion.ingest_encounters(ctx.pool, ctx.key, sender, decoded,
                                             ingestion.PlausibleTimes.from_settings(ctx.settings))


async def panic(ctx: Context, device: VictimDevice, body: Panic) -> PanicOut:
    """A ``panic`` alert at once; a position sent along is stored as a victim fix when it is a good one, and a
    time that is no plausible one raises the alert at server time, marked ``clock_suspect``."""
    now = datetime.now(timezone.utc)
    sender = ingestion.Sender.app(device.device_id, device.case_id)
    claimed = parse_rfc3339(body.recorded_at)
    suspicion = (ingestion.PlausibleTimes.from_settings(ctx.settings).refusal(claimed, now) if claimed
                 else "recorded_at: " + _NOT_A_TIME)
    opened_at = claimed if claimed and suspicion is None else now
    given = {k: getattr(body, k) for k in ("lat", "lon", "accuracy_m") if getattr(body, k) is not None}
    outcome = ingestion.BatchOutcome(1 if given else 0)
    fix = None
    if given:
        raw = {"recorded_at": body.recorded_at, **given}
        model, error = json_contract.validate(APP_POSITION, raw)
        error = error or suspicion  # a fix needs a real time; the alert does not
        if error is not None:
            outcome.reject(0, raw, error)
        else:
            fix = model
    claim = _claimed_text(body.recorded_at, claimed)
    detail = {"source": "victim_app", "recorded_at": claim}
    if suspicion is not None:
        detail["clock_suspect"] = True
    async with ctx.pool.acquire() as conn, conn.transaction():
        locked = await ingestion.lock_app_device(conn, sender)
        if locked is None:
            raise Problem(401, "Unauthorized", "this device has been revoked", headers={"WWW-Authenticate": "Bearer"})
        alert_id = (uuid.uuid5(PANIC_NAMESPACE, f"{device.device_id}/{claim}") if suspicion is None
                    else await repository.recent_suspect_panic(conn, locked.id, claim, float(PANIC_RETRY_S))
                    or uuid.uuid4())
        await ingestion.keep_rejections(conn, sender, "panic", outcome)
        seqs = await ingestion.store_fixes(conn, [ingestion.to_fix(0, fix, locked, "victim")], outcome, now,
                                            outbox=ctx.outbox) if fix else {}
        if 0 in seqs:
            detail["fix_seq"] = seqs[0]  # the victim's position is the fix with this seq; no coordinates here
        await alert_store.open_alert(
            conn, outbox=ctx.outbox, alert_id=alert_id, case_id=locked.case_id, kind="panic", level="violation", confidence="confirmed",
            opened_at=opened_at, subject_id=str(locked.id), device_id=locked.id,
            late=now - opened_at > timedelta(seconds=ctx.settings.future_tolerance_s), detail=detail,
            actor=device.actor,
        )
    if given:
        status = outcome.results[0]["status"]  # type: ignore[index]
        metrics.FIXES.labels(source="app", outcome=status).inc()
    return PanicOut(alert_id=alert_id, position=outcome.results[0] if given else None,
                    clock_suspect=suspicion is not None)


def _claimed_text(value: Any, parsed: datetime | None) -> str:
    """What the app claimed, as stored text: the UTC time when it is one (the idempotency key of a retried press),
    else the value itself, bounded and without NUL (PostgreSQL stores none)."""
    if parsed is not None:
        return parsed.isoformat()
    text = value if isinstance(value, str) else json.dumps(value)
    return storable(text[:64])


# ---------------------------------------------------------------- her alerts

async def alerts(pool: asyncpg.Pool, device: VictimDevice, limit: int, cursor: str | None) -> VictimAlertPage:
    after_at, after_id = decode_cursor(cursor)
    rows = await repository.alerts_page(pool, device.case_id, list(VICTIM_KINDS), list(NEAR_SILENCE_KINDS),
                                        after_at, after_id, limit)
    lang = await notices.victim_language(pool, device.case_id)
    items = [VictimAlert(**{k: v for k, v in dict(r).items() if k != "ble"},
                         title=messages.text(lang, f"alert.{r['kind']}{'.ble' if r['ble'] else ''}.title"),
                         state="closed" if r["status"] == "resolved" or r["cleared_at"] else "active")
             for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return VictimAlertPage(items=items, next_cursor=encode_cursor(last["opened_at"], last["id"]) if last else None)


async def acknowledge(pool: asyncpg.Pool, outbox: Outbox, device: VictimDevice, alert_id: str) -> AckOut:
    """Recorded once per device; repeating it returns the first acknowledgement."""
    try:
        aid = uuid.UUID(alert_id)
    except ValueError:
        raise not_found("alert") from None
    actor = device.actor
    async with pool.acquire() as conn, conn.transaction():
        # The device's row lock makes a repeated ack from the same app wait, then find the first one.
        await repository.lock_device(conn, device.device_id)
        row = await repository.alert_of_case(conn, aid, device.case_id, list(VICTIM_KINDS), list(NEAR_SILENCE_KINDS))
        if row is None:
            raise not_found("alert")
        at = await repository.first_change_by(conn, aid, ACK_CHANGE, actor)
        if at is None:
            seq = await alert_store.append_change(conn, aid, ACK_CHANGE, outbox=outbox, level=row["level"],
                                                  confidence=row["confidence"], actor=actor)
            at = await repository.change_time(conn, seq)
    return AckOut(alert_id=aid, acknowledged_at=at)


# ---------------------------------------------------------------- her case

def render_event(language: str, kind: str, detail: dict[str, Any]) -> str:
    """An event's title in the victim's language; placeholders come from ids and codes in ``detail``."""
    params: dict[str, str] = {}
    if "order_kind" in detail:
        params["order"] = messages.text(language, f"order.{detail['order_kind']}.title")
    if "until" in detail:
        params["date"] = messages.date(language, datetime.fromisoformat(detail["until"]))
    if "agency" in detail:
        params["agency"] = messages.text(language, f"agency.{detail['agency']}")
    template = messages.text(language, f"event.{kind}.title")
    return template.format(**params) if params else template


async def case(ctx: Context, dev: VictimDevice) -> VictimCase:
    async with ctx.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        lang = await notices.victim_language(conn, dev.case_id)
        stage_row = await repository.latest_stage(conn, dev.case_id, list(STAGE_EVENTS))
        if stage_row is None:
            code, since = "registered", await repository.case_created_at(conn, dev.case_id)
        else:
            code, since = stage_row["kind"], stage_row["occurred_at"]
        assigned = {r["agency"]: r for r in await contact_store.victim_contact_persons(conn, dev.case_id)}
        nxt = await contact_store.next_agreed_contact(conn, dev.case_id)
        # A missed follow-up is shown as such, with whom to call, never as an agreed date in the past.
        agency_name = messages.text(lang, f"agency.{nxt['agency']}") if nxt else ""
        overdue_text = None if nxt is None or nxt["next_due_at"] >= ctx.clock.now() else messages.text(
            lang, "contact.overdue", agency=agency_name[:1].upper() + agency_name[1:],
            date=messages.date(lang, nxt["next_due_at"]),
            contact=await notices.contact_text(conn, dev.case_id, lang, nxt["agency"]))
    contacts = []
    for agency in VICTIM_AGENCIES:
        r = assigned.get(agency)
        base = {"agency": agency, "agency_name": messages.text(lang, f"agency.{agency}")}
        if r is None:
            contacts.append(ContactPerson(**base, assigned=False, note=messages.text(lang, "contact.unassigned")))
        else:
            contacts.append(ContactPerson(
                **base, assigned=True, name=r["display_name"], role=r["role_title"],
                function=messages.text(lang, "function.contact_person"), how_to_reach=notices.how_to_reach(r, lang),
                when_to_reach=r["when_to_reach"], phone=r["phone"], email=r["email"]))
    next_contact = None
    if nxt is not None:
        next_contact = NextContact(
            due_at=nxt["next_due_at"], agency=nxt["agency"], channel=nxt["channel"], overdue=overdue_text is not None,
            text=overdue_text or messages.text(lang, "contact.next", date=messages.date(lang, nxt["next_due_at"]),
                                               channel=messages.text(lang, f"channel.{nxt['channel']}")))
    return VictimCase(
        language=messages.resolve(lang),
        stage=Stage(code=code, title=messages.text(lang, f"stage.{code}.title"),
                    description=messages.text(lang, f"stage.{code}.description"), since=since),
        contact_persons=contacts,
        next_contact=next_contact,
    )


async def timeline(pool: asyncpg.Pool, dev: VictimDevice, limit: int, cursor: str | None) -> VictimEventPage:
    """Internal events are filtered in the query, never after it."""
    async with pool.acquire() as conn:
        lang = await notices.victim_language(conn, dev.case_id)
        rows = await fetch_events(conn, dev.case_id, limit, cursor, victim_only=True)
    return VictimEventPage(
        items=[VictimEvent(id=r["id"], kind=r["kind"], title=render_event(lang, r["kind"], r["detail"]),
                           note=r["note"], occurred_at=r["occurred_at"]) for r in rows[:limit]],
        next_cursor=event_cursor(rows, limit),
    )


def _circle_ring(lon: float, lat: float, radius_m: float) -> list[list[float]]:
    azimuths = [360.0 * i / _CIRCLE_VERTICES for i in range(_CIRCLE_VERTICES)]
    lons, lats, _ = _GEOD.fwd([lon] * _CIRCLE_VERTICES, [lat] * _CIRCLE_VERTICES, azimuths, [radius_m] * _CIRCLE_VERTICES)
    ring = [[round(x, 7), round(y, 7)] for x, y in zip(lons, lats)]
    return ring + [ring[0]]


def zone_feature(z: asyncpg.Record, lang: str) -> dict[str, Any]:
    g = z["geometry"]
    if g.get("type") == "Circle":
        lon, lat = g["center"]
        geometry = {"type": "Polygon", "coordinates": [_circle_ring(lon, lat, g["radius_m"])]}
    else:
        geometry = {"type": g["type"], "coordinates": g["coordinates"]}
    return {"type": "Feature", "id": str(z["id"]), "geometry": geometry, "properties": {
        "name": z["name"], "order_id": str(z["order_id"]), "description": messages.text(lang, "zone.exclusion.description"),
        "schedule": z["schedule"]}}


def order_status(valid_from: datetime, valid_until: datetime | None, now: datetime) -> str:
    if now < valid_from:
        return "upcoming"
    return "active" if valid_until is None or now < valid_until else "expired"


async def orders(pool: asyncpg.Pool, dev: VictimDevice) -> VictimOrders:
    now = datetime.now(timezone.utc)
    async with pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        lang = await notices.victim_language(conn, dev.case_id)
        stored = await repository.orders(conn, dev.case_id)
        zones = await repository.exclusion_zones(conn, dev.case_id)
    items = []
    for o in stored:
        status = order_status(o["valid_from"], o["valid_until"], now)
        if o["valid_until"] is not None and o["expiry_handled_until"] == o["valid_until"]:
            status = "expired"  # the scheduler has ended it (and told her): never show it as in force
        until = (messages.text(lang, "order.until", date=messages.date(lang, o["valid_until"]))
                 if o["valid_until"] else messages.text(lang, "order.until_further_notice"))
        items.append(VictimOrder(
            id=o["id"], kind=o["kind"], title=messages.text(lang, f"order.{o['kind']}.title"),
            forbids=messages.text(lang, f"order.{o['kind']}.forbids"), status=status,
            status_text=messages.text(lang, f"order.status.{status}"), valid_from=o["valid_from"],
            valid_until=o["valid_until"], until_text=until,
            zones={"type": "FeatureCollection",
                   "features": [zone_feature(z, lang) for z in zones if z["order_id"] == o["id"]]},
        ))
    return VictimOrders(items=items)


async def notices_page(pool: asyncpg.Pool, dev: VictimDevice, limit: int, cursor: str | None) -> VictimNotices:
    rows = await notices.victim_notices(pool, dev.case_id, limit, cursor)
    return VictimNotices(items=[VictimNotice(**{k: r[k] for k in VictimNotice.model_fields}) for r in rows[:limit]],
                         next_cursor=next_cursor(rows, limit))


# ---------------------------------------------------------------- her preferences

def _hhmm(t: time | None) -> str | None:
    return None if t is None else t.strftime("%H:%M")


async def _preferences(conn: asyncpg.Connection, case_id: Any) -> Preferences:
    lang = await notices.victim_language(conn, case_id)
    note = messages.text(lang, "preferences.quiet_hours_note")
    row = await repository.preferences(conn, case_id)
    if row is None:
        return Preferences(language=lang, channel="app", quiet_hours=None, update_frequency="on_change",
                              quiet_hours_note=note)
    quiet = None if row["quiet_start"] is None else QuietHours(start=_hhmm(row["quiet_start"]), end=_hhmm(row["quiet_end"]))
    return Preferences(language=lang, channel=row["channel"], quiet_hours=quiet,
                          update_frequency=row["update_frequency"], quiet_hours_note=note)


async def preferences(pool: asyncpg.Pool, dev: VictimDevice) -> Preferences:
    async with pool.acquire() as conn:
        return await _preferences(conn, dev.case_id)


async def save_preferences(pool: asyncpg.Pool, dev: VictimDevice, body: Preferences) -> Preferences:
    """The language is the case's victim language, used by every text the victim gets."""
    quiet = body.quiet_hours
    qs, qe = (time.fromisoformat(quiet.start), time.fromisoformat(quiet.end)) if quiet else (None, None)
    async with pool.acquire() as conn, conn.transaction():
        await repository.set_language(conn, dev.case_id, body.language)
        await repository.save_preferences(conn, dev.case_id, body.channel, qs, qe, body.update_frequency)
        await audit.record(conn, actor=dev.actor, role="victim_app", action="victim.preferences", case_id=dev.case_id,
                           detail={"language": body.language, "channel": body.channel,
                                   "quiet_hours": quiet is not None, "update_frequency": body.update_frequency})
        return await _preferences(conn, dev.case_id)
