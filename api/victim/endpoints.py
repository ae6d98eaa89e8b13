"""Victim app API: enrollment with a one-time code, device tokens, positions, the panic button, push token, and
the victim's own alerts.

A device token reaches only these routes (staff routes verify a different key) and only its own case: every
query below is scoped by the case id taken from the device row, never from the request.
"""

from __future__ import annotations

import hmac
import json
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.privacy import audit
from api.alerts import store as alert_store
from api.intake import service as ingestion
from api.platform import metrics
from api.auth.principals import VictimDep, mint_device_token, victim_actor
from api.platform.context import Context, get_context
from api.platform.problems import Problem, not_found
from api.intake.endpoints import body_doc, read_batch
from api.platform.staff_common import decode_cursor, encode_cursor
from api.intake.schemas import APP_POSITION, AppPositionBatch, BatchResult, RawPositionBatch
from api.victim.schemas import (
    AckOut, Enroll, Panic, PanicOut, PushToken, Refresh, TokenPair, VictimAlert, VictimAlertPage,
)
from api.platform.times import parse_rfc3339
from api.platform.secrets import token_hash

router = APIRouter(prefix="/v1/me", tags=["victim app"])
Ctx = Annotated[Context, Depends(get_context)]

LOOKUP_LEN = 8  # see api/cases/enrollments.py: code = lookup (8) + secret
PANIC_NAMESPACE = uuid.UUID("0f6f1a2e-3c4b-4d5e-9f60-7a8b9c0d1e2f")
# What the victim is shown: alerts about her own safety. Technical alerts (device_event, *_silent) and the
# offender's inclusion-zone (home curfew) alerts are for the monitoring room, which keeps her informed.
VICTIM_KINDS = ("proximity", "zone_exclusion", "panic")
ACK_CHANGE = "victim_acknowledged"

_ENROLL_PROBLEMS = {401: "Unauthorized", 409: "Conflict", 410: "Gone", 423: "Locked"}


def _enroll_problem(status: int, msg: str) -> Problem:
    return Problem(status, _ENROLL_PROBLEMS.get(status, "Validation failed"), f"code: {msg}",
                   errors=[{"loc": ["code"], "msg": msg}])


def _normalise(code: str) -> str:
    """Codes are read from paper or a message: ignore case, spaces and dashes."""
    return code.replace("-", "").replace(" ", "").upper()


async def _issue(ctx: Context, conn, device_id: uuid.UUID, case_id: uuid.UUID) -> TokenPair:  # type: ignore[no-untyped-def]
    """A new access token and a new refresh token; the refresh token replaces the device's previous one, which
    is remembered as spent until it would have expired (its reuse revokes the family: :func:`refresh_token`)."""
    await conn.execute(
        "INSERT INTO spent_refresh_tokens (token_hash, device_id, expires_at)"
        " SELECT refresh_token_hash, id, refresh_expires_at FROM devices"
        " WHERE id = $1 AND refresh_token_hash IS NOT NULL AND refresh_expires_at > now()"
        " ON CONFLICT (token_hash) DO NOTHING", device_id)
    await conn.execute("DELETE FROM spent_refresh_tokens WHERE device_id = $1 AND expires_at <= now()", device_id)
    refresh = secrets.token_urlsafe(32)
    await conn.execute(
        "UPDATE devices SET refresh_token_hash = $2, refresh_expires_at = now() + $3::interval WHERE id = $1",
        device_id, token_hash(refresh), timedelta(seconds=ctx.settings.refresh_token_ttl_s),
    )
    access = mint_device_token(ctx.key, device_id, case_id, ctx.settings.access_token_ttl_s)
    return TokenPair(device_id=device_id, access_token=access, refresh_token=refresh,
                     expires_in=ctx.settings.access_token_ttl_s)


@router.post("/enroll", status_code=201, response_model=TokenPair, responses={
    400: {"description": "the code is not valid"}, 409: {"description": "the code was used already"},
    410: {"description": "the code expired"}, 423: {"description": "too many wrong tries: the code is locked"},
})
async def enroll(body: Enroll, ctx: Ctx) -> TokenPair:
    """Bind this app installation to the victim's case with the one-time code staff issued. The code expires
    after 24 h, works once, and locks after 5 wrong tries (then even the right code fails: ask for a new one)."""
    code = _normalise(body.code)
    lookup, secret = code[:LOOKUP_LEN], code[LOOKUP_LEN:]
    failure: Problem | None = None
    pair: TokenPair | None = None
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT e.lookup, e.secret_hash, e.case_id, e.expires_at, e.used_at, e.failed_attempts, c.status"
            " FROM enrollments e JOIN cases c ON c.id = e.case_id WHERE e.lookup = $1 FOR UPDATE OF e",
            lookup,
        )
        max_failures = ctx.settings.enrollment_max_failures
        if row is None or not secret:
            failure = _enroll_problem(400, "this code is not valid")
        elif row["failed_attempts"] >= max_failures:
            failure = _enroll_problem(423, "this code is locked after too many wrong tries; ask for a new code")
        elif not hmac.compare_digest(token_hash(secret), row["secret_hash"]):
            # Committed although the request fails: that is what makes the lock work.
            failures = await conn.fetchval(
                "UPDATE enrollments SET failed_attempts = failed_attempts + 1 WHERE lookup = $1 RETURNING failed_attempts",
                lookup,
            )
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
            # The same installation enrolling again (a reinstall, a new code) replaces its earlier device.
            await conn.execute(
                "UPDATE devices SET revoked_at = now(), refresh_token_hash = NULL, refresh_expires_at = NULL"
                " WHERE case_id = $1 AND role = 'victim_app' AND installation_id = $2 AND revoked_at IS NULL",
                case_id, body.installation_id,
            )
            await conn.execute(
                "INSERT INTO devices (id, case_id, role, installation_id, platform, push_token)"
                " VALUES ($1, $2, 'victim_app', $3, $4, $5)",
                device_id, case_id, body.installation_id, body.platform, body.push_token,
            )
            await conn.execute("UPDATE enrollments SET used_at = now() WHERE lookup = $1", lookup)
            pair = await _issue(ctx, conn, device_id, case_id)
            await audit.record(conn, actor=victim_actor(device_id), role="victim_app", action="enrollment.redeem",
                               case_id=case_id, detail={"lookup": lookup, "device_id": str(device_id),
                                                        "platform": body.platform})
    if failure is not None:
        raise failure
    assert pair is not None
    return pair


@router.post("/token", response_model=TokenPair, responses={401: {"description": "unknown, used or expired token"}})
async def refresh_token(body: Refresh, ctx: Ctx) -> TokenPair:
    """Trade the refresh token for a new access token and a new refresh token; the old one stops working.

    A refresh token that was already traded in is proof that two parties hold the same token family (one of
    them a thief). The whole family is revoked: the device's current refresh token and every access token
    issued so far. The device stays registered, so the engine keeps expecting the victim's positions and raises
    ``victim_silent`` when they stop; the app must enroll again with a new code. Audited as
    ``device.token_reuse``."""
    presented = token_hash(body.refresh_token)
    pair: TokenPair | None = None
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, case_id, refresh_expires_at FROM devices WHERE refresh_token_hash = $1"
            " AND role = 'victim_app' AND revoked_at IS NULL FOR NO KEY UPDATE",
            presented,
        )
        if row is not None and row["refresh_expires_at"] is not None and row["refresh_expires_at"] > datetime.now(timezone.utc):
            pair = await _issue(ctx, conn, row["id"], row["case_id"])
        elif row is None:
            await _revoke_family_on_reuse(conn, presented)  # committed although the request fails
    if pair is None:
        raise Problem(401, "Unauthorized", "refresh token unknown, already used, expired or revoked",
                      headers={"WWW-Authenticate": "Bearer"})
    return pair


async def _revoke_family_on_reuse(conn, presented: str) -> None:  # type: ignore[no-untyped-def]
    device = await conn.fetchrow(
        "SELECT d.id, d.case_id FROM spent_refresh_tokens s JOIN devices d ON d.id = s.device_id"
        " WHERE s.token_hash = $1 AND s.expires_at > now() AND d.revoked_at IS NULL FOR NO KEY UPDATE OF d",
        presented)
    if device is None:
        return
    await conn.execute(
        "UPDATE devices SET refresh_token_hash = NULL, refresh_expires_at = NULL, tokens_revoked_at = now()"
        " WHERE id = $1", device["id"])
    await audit.record(conn, actor=victim_actor(device["id"]), role="victim_app", action="device.token_reuse",
                       case_id=device["case_id"], detail={"device_id": str(device["id"]), "revoked": "token_family"})


@router.post("/positions", response_model=BatchResult, openapi_extra=body_doc(AppPositionBatch),
             responses={413: {"description": "too many items"}})
async def post_positions(request: Request, device: VictimDep) -> BatchResult:
    """The victim's own positions; the same per-item results as the supplier API."""
    ctx: Context = request.app.state.ctx
    items = await read_batch(request, RawPositionBatch, "positions", ctx.settings.ingest_max_items)
    sender = ingestion.Sender.app(device.device_id, device.case_id)
    return BatchResult(results=await ingestion.ingest_positions(
        ctx.pool, sender, items, ingestion.PlausibleTimes.from_settings(ctx.settings), ctx.outbox))


@router.post("/panic", status_code=201, response_model=PanicOut)
async def panic(body: Panic, ctx: Ctx, device: VictimDep) -> PanicOut:
    """Raise a ``panic`` alert at once: violation, confirmed. Pressing again with the same ``recorded_at`` (a
    retried request) returns the same alert. A position sent along is stored as a victim fix; if it is bad
    or partial the alert is raised all the same and ``position`` says why the fix was not stored.

    Never refused for its time: a ``recorded_at`` that is not an RFC 3339 time, or not a plausible one (before
    ``AFSTAND_PLAUSIBLE_SINCE``, ahead of server time), raises the alert at server time, marked
    ``clock_suspect``; the claimed value is kept in its detail."""
    now = datetime.now(timezone.utc)
    sender = ingestion.Sender.app(device.device_id, device.case_id)
    claimed = parse_rfc3339(body.recorded_at)
    suspicion = (ingestion.PlausibleTimes.from_settings(ctx.settings).refusal(claimed, now) if claimed
                 else "recorded_at: " + _NOT_A_TIME)
    opened_at = claimed if claimed and suspicion is None else now
    given = {k: getattr(body, k) for k in ("lat", "lon", "accuracy_m") if getattr(body, k) is not None}
    outcome = ingestion.Outcome(1 if given else 0)
    fix = None
    if given:
        raw = {"recorded_at": body.recorded_at, **given}
        model, error = ingestion.validate(APP_POSITION, raw)
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
                    else await _recent_suspect_panic(conn, locked.id, claim) or uuid.uuid4())
        await ingestion.keep_rejections(conn, sender, "panic", outcome)
        seqs = (await ingestion.store_fixes(conn, [ingestion.to_fix(0, fix, locked, "victim")], outcome, now,
                                            outbox=ctx.outbox) if fix else {})
        if 0 in seqs:
            detail["fix_seq"] = seqs[0]  # the victim's position is the fix with this seq; no coordinates here
        await alert_store.open_alert(
            conn, outbox=ctx.outbox, alert_id=alert_id, case_id=locked.case_id, kind="panic", level="violation",
            confidence="confirmed", opened_at=opened_at, subject_id=str(locked.id), device_id=locked.id,
            late=now - opened_at > timedelta(seconds=ctx.settings.future_tolerance_s), detail=detail,
            actor=device.actor,
        )
    if given:
        status = outcome.results[0]["status"]  # type: ignore[index]
        metrics.FIXES.labels(source="app", outcome=status).inc()
    return PanicOut(alert_id=alert_id, position=outcome.results[0] if given else None,
                    clock_suspect=suspicion is not None)


_NOT_A_TIME = "not an RFC 3339 date-time between 1900 and 9000"
PANIC_RETRY_S = 300  # a retried panic with the same suspect recorded_at within this returns the same alert


def _claimed_text(value: Any, parsed: datetime | None) -> str:
    """What the app claimed, as stored text: the UTC time when it is one (the idempotency key of a retried press),
    else the value itself, bounded and without NUL (PostgreSQL stores none)."""
    if parsed is not None:
        return parsed.isoformat()
    text = value if isinstance(value, str) else json.dumps(value)
    return ingestion.storable(text[:64])


async def _recent_suspect_panic(conn, device_id: uuid.UUID, claim: str) -> uuid.UUID | None:  # type: ignore[no-untyped-def]
    """A clock-suspect panic of this device with the same claimed time, raised moments ago: the same press
    retried. A stuck clock pressed again later raises a new alert (the device row is locked meanwhile)."""
    return await conn.fetchval(
        "SELECT id FROM alerts WHERE device_id = $1 AND kind = 'panic' AND detail->>'clock_suspect' = 'true'"
        " AND detail->>'recorded_at' = $2 AND raised_at > now() - make_interval(secs => $3)"
        " ORDER BY raised_at DESC LIMIT 1",
        device_id, claim, float(PANIC_RETRY_S))


@router.put("/push-token", status_code=204, response_class=Response)
async def put_push_token(body: PushToken, ctx: Ctx, device: VictimDep) -> Response:
    """Register or replace the push token alerts are sent to."""
    await ctx.pool.execute("UPDATE devices SET push_token = $2 WHERE id = $1", device.device_id, body.push_token)
    return Response(status_code=204)


@router.get("/alerts", response_model=VictimAlertPage)
async def my_alerts(ctx: Ctx, device: VictimDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                    cursor: str | None = None) -> VictimAlertPage:
    """The alerts of the victim's own case that concern her safety, newest first. Never the offender's
    position, the distance, the zone, the evidence or any device id."""
    after_at, after_id = decode_cursor(cursor)
    rows = await ctx.pool.fetch(
        "SELECT id, kind, level, confidence, status, opened_at, cleared_at FROM alerts"
        " WHERE case_id = $1 AND kind = ANY($2::text[])"
        " AND ($3::timestamptz IS NULL OR (opened_at, id) < ($3, $4)) ORDER BY opened_at DESC, id DESC LIMIT $5",
        device.case_id, list(VICTIM_KINDS), after_at, after_id, limit + 1,
    )
    items = [VictimAlert(**dict(r), state="closed" if r["status"] == "resolved" or r["cleared_at"] else "active")
             for r in rows[:limit]]
    more = len(rows) > limit
    return VictimAlertPage(items=items, next_cursor=encode_cursor(rows[limit - 1]["opened_at"], rows[limit - 1]["id"]) if more else None)


@router.post("/alerts/{alert_id}/ack", response_model=AckOut)
async def ack_alert(alert_id: str, ctx: Ctx, device: VictimDep) -> AckOut:
    """The app showed this alert to the victim. Recorded once per device (``victim_acknowledged`` in the alert's
    history); repeating it returns the first acknowledgement."""
    try:
        aid = uuid.UUID(alert_id)
    except ValueError:
        raise not_found("alert") from None
    actor = device.actor
    async with ctx.pool.acquire() as conn, conn.transaction():
        # The device's row lock makes a repeated ack from the same app wait, then find the first one.
        await conn.execute("SELECT 1 FROM devices WHERE id = $1 FOR NO KEY UPDATE", device.device_id)
        row = await conn.fetchrow(
            "SELECT level, confidence FROM alerts WHERE id = $1 AND case_id = $2 AND kind = ANY($3::text[])",
            aid, device.case_id, list(VICTIM_KINDS),
        )
        if row is None:
            raise not_found("alert")
        at = await conn.fetchval(
            "SELECT at FROM alert_changes WHERE alert_id = $1 AND change = $2 AND actor = $3 ORDER BY seq LIMIT 1",
            aid, ACK_CHANGE, actor,
        )
        if at is None:
            seq = await alert_store.append_change(conn, aid, ACK_CHANGE, outbox=ctx.outbox, level=row["level"],
                                                  confidence=row["confidence"], actor=actor)
            at = await conn.fetchval("SELECT at FROM alert_changes WHERE seq = $1", seq)
    return AckOut(alert_id=aid, acknowledged_at=at)
