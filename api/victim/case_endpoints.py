"""What the victim's app shows about her case: its stage, her contact persons, the next agreed contact, the
victim-visible timeline, the orders that protect her with her own protective zones, and her preferences.

Every text comes from the message catalogues (api/messages) in the victim's language. Nothing here reveals the
offender's position, his inclusion zones (they would show where he lives) or internal timeline events. A device
token reaches only its own case: every query is keyed by the case bound to the token.
"""

from __future__ import annotations

from datetime import datetime, time, timezone
from typing import Any

import asyncpg
from fastapi import APIRouter
from pyproj import Geod

from api import messages
from api.privacy import audit
from api.contacts import notices
from api.auth.principals import VictimDep
from api.contacts.notices import victim_language
from api.platform.staff_common import Ctx, Limit, decode_cursor, next_cursor
from api.cases.timeline.service import event_cursor, fetch_events
from api.contacts.schemas import (
    STAGE_EVENTS, VICTIM_AGENCIES, ContactPerson, NextContact, Preferences, QuietHours, Stage,
    VictimCase,
    VictimEvent, VictimEventPage, VictimNotice, VictimNotices, VictimOrder, VictimOrders,
)

router = APIRouter(prefix="/v1/me", tags=["victim app"])

_GEOD = Geod(ellps="WGS84")
_CIRCLE_VERTICES = 64


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


# ---------------------------------------------------------------- case

@router.get("/case", response_model=VictimCase)
async def my_case(ctx: Ctx, dev: VictimDep) -> VictimCase:
    async with ctx.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        lang = await victim_language(conn, dev.case_id)
        stage_row = await conn.fetchrow(
            "SELECT kind, occurred_at FROM timeline_events WHERE case_id = $1 AND visibility = 'victim'"
            " AND kind = ANY($2) ORDER BY occurred_at DESC, created_at DESC LIMIT 1", dev.case_id, list(STAGE_EVENTS))
        if stage_row is None:
            code, since = "registered", await conn.fetchval("SELECT created_at FROM cases WHERE id = $1", dev.case_id)
        else:
            code, since = stage_row["kind"], stage_row["occurred_at"]
        assigned = {r["agency"]: r for r in await conn.fetch(
            "SELECT a.agency, a.how_to_reach, a.how_to_reach_i18n, a.when_to_reach, s.display_name, s.role_title,"
            " s.phone, s.email"
            " FROM case_assignments a JOIN staff_members s ON s.id = a.staff_id"
            " WHERE a.case_id = $1 AND a.function = 'contact_person' AND a.ended_at IS NULL AND s.active",
            dev.case_id)}
        nxt = await conn.fetchrow(
            "SELECT next_due_at, agency, channel FROM contact_agreements WHERE case_id = $1 AND active"
            " ORDER BY next_due_at LIMIT 1", dev.case_id)
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


# ---------------------------------------------------------------- timeline

@router.get("/timeline", response_model=VictimEventPage)
async def my_timeline(ctx: Ctx, dev: VictimDep, limit: Limit = 50, cursor: str | None = None) -> VictimEventPage:
    """Victim-visible events, newest first. Internal events are filtered in the query, never after it."""
    async with ctx.pool.acquire() as conn:
        lang = await victim_language(conn, dev.case_id)
        rows = await fetch_events(conn, dev.case_id, limit, cursor, victim_only=True)
    return VictimEventPage(
        items=[VictimEvent(id=r["id"], kind=r["kind"], title=render_event(lang, r["kind"], r["detail"]),
                           note=r["note"], occurred_at=r["occurred_at"]) for r in rows[:limit]],
        next_cursor=event_cursor(rows, limit),
    )


# ---------------------------------------------------------------- orders

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


@router.get("/orders", response_model=VictimOrders)
async def my_orders(ctx: Ctx, dev: VictimDep) -> VictimOrders:
    """The orders that protect the victim, in plain words, until when; each with her protective zones as GeoJSON.
    Only exclusion zones are shown: inclusion zones are where the offender must stay, i.e. where he lives."""
    now = datetime.now(timezone.utc)
    async with ctx.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
        lang = await victim_language(conn, dev.case_id)
        orders = await conn.fetch("SELECT id, kind, valid_from, valid_until, expiry_handled_until FROM orders"
                                  " WHERE case_id = $1"
                                  " ORDER BY valid_from, id", dev.case_id)
        zones = await conn.fetch("SELECT id, order_id, name, geometry, schedule FROM zones WHERE case_id = $1"
                                 " AND kind = 'exclusion' ORDER BY created_at, id", dev.case_id)
    items = []
    for o in orders:
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


@router.get("/notices", response_model=VictimNotices)
async def my_notices(ctx: Ctx, dev: VictimDep, limit: Limit = 50, cursor: str | None = None) -> VictimNotices:
    """What she was told outside the thread (a protection ends soon, was extended, will not be extended, has
    ended), in her language, newest first. Stored before any push, so it is here even when a push failed."""
    rows = await fetch_notices(ctx.pool, dev.case_id, limit, cursor)
    return VictimNotices(items=[VictimNotice(**{k: r[k] for k in VictimNotice.model_fields}) for r in rows[:limit]],
                         next_cursor=next_cursor(rows, limit))


async def fetch_notices(conn: asyncpg.Connection | asyncpg.Pool, case_id: Any, limit: int,
                        cursor: str | None) -> list[asyncpg.Record]:
    """Newest first, keyset on (created_at, id), ``limit + 1`` rows."""
    before_at, before_id = decode_cursor(cursor)
    return await conn.fetch(
        "SELECT id, kind, title, body, created_at, urgency, push_status, push_detail FROM victim_notices"
        " WHERE case_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))"
        " ORDER BY created_at DESC, id DESC LIMIT $4", case_id, before_at, before_id, limit + 1)


# ---------------------------------------------------------------- preferences

def _hhmm(t: time | None) -> str | None:
    return None if t is None else t.strftime("%H:%M")


async def _preferences(conn: asyncpg.Connection, case_id: Any) -> Preferences:
    lang = await victim_language(conn, case_id)
    note = messages.text(lang, "preferences.quiet_hours_note")
    row = await conn.fetchrow("SELECT channel, quiet_start, quiet_end, update_frequency FROM victim_preferences"
                              " WHERE case_id = $1", case_id)
    if row is None:
        return Preferences(language=lang, channel="app", quiet_hours=None, update_frequency="on_change",
                              quiet_hours_note=note)
    quiet = None if row["quiet_start"] is None else QuietHours(start=_hhmm(row["quiet_start"]), end=_hhmm(row["quiet_end"]))
    return Preferences(language=lang, channel=row["channel"], quiet_hours=quiet,
                          update_frequency=row["update_frequency"], quiet_hours_note=note)


@router.get("/preferences", response_model=Preferences)
async def get_preferences(ctx: Ctx, dev: VictimDep) -> Preferences:
    async with ctx.pool.acquire() as conn:
        return await _preferences(conn, dev.case_id)


@router.put("/preferences", response_model=Preferences)
async def put_preferences(body: Preferences, ctx: Ctx, dev: VictimDep) -> Preferences:
    """Language, preferred channel (only ``app`` gets pushes; with another channel she reads notices in the app
    and staff reach her their way), quiet hours (updates and messages wait; safety alerts never do) and how often
    she wants to be updated (notices of the ``update`` kind are pushed at most once per period). The language is
    the case's victim language, used by every text the victim gets."""
    quiet = body.quiet_hours
    qs, qe = (time.fromisoformat(quiet.start), time.fromisoformat(quiet.end)) if quiet else (None, None)
    async with ctx.pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE parties SET language = $2 WHERE case_id = $1 AND role = 'victim'",
                           dev.case_id, body.language)
        await conn.execute(
            "INSERT INTO victim_preferences (case_id, channel, quiet_start, quiet_end, update_frequency)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id) DO UPDATE SET channel = $2, quiet_start = $3,"
            " quiet_end = $4, update_frequency = $5, updated_at = now()",
            dev.case_id, body.channel, qs, qe, body.update_frequency)
        await audit.record(conn, actor=dev.actor, role="victim_app", action="victim.preferences", case_id=dev.case_id,
                           detail={"language": body.language, "channel": body.channel,
                                   "quiet_hours": quiet is not None, "update_frequency": body.update_frequency})
        return await _preferences(conn, dev.case_id)

