"""Who is calling: staff (bearer JWT), victim app devices (bearer device token), suppliers (HMAC).

Each kind of caller has one FastAPI dependency; routes declare which one they accept, so a supplier key can
never read alerts and a victim token reaches only ``/v1/me/…``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, AsyncIterator, Callable

import jwt
from fastapi import Depends, Request

from api.platform.context import Context, get_context
from api.auth import repository
from api.auth.oidc import NoRole, OIDCVerifier, TokenRejected
from api.platform.problems import Problem
from api.platform.secrets import decrypt, derive

_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

STAFF_ROLES = ("admin", "operator", "case_director", "contact_person", "auditor")
DEV_ISSUER = "afstand-dev"
AUDIENCE = "afstand"


@dataclass(frozen=True)
class Staff:
    sub: str
    role: str

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.sub}"


def victim_actor(device_id: uuid.UUID) -> str:
    """How a victim's app appears in the audit log and an alert's history. Every actor has the form
    ``KIND:NAME`` (``operator:jan``, ``victim_app:<device id>``, ``system:retention``); the database refuses
    any other (migrations/0007_hardening.sql)."""
    return f"victim_app:{device_id}"


@dataclass(frozen=True)
class VictimDevice:
    device_id: uuid.UUID
    case_id: uuid.UUID

    @property
    def actor(self) -> str:
        return victim_actor(self.device_id)


@dataclass(frozen=True)
class Supplier:
    supplier_id: uuid.UUID
    key_id: str


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("a bearer token is required in the Authorization header")
    return token.strip()


def mint_staff_token(key: bytes, role: str, sub: str, ttl_s: int = 12 * 3600, now: float | None = None) -> str:
    if role not in STAFF_ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(STAFF_ROLES)}")
    iat = int(now if now is not None else time.time())
    claims = {"iss": DEV_ISSUER, "aud": AUDIENCE, "sub": sub, "role": role, "iat": iat, "exp": iat + ttl_s}
    return jwt.encode(claims, derive(key, "staff-tokens"), algorithm="HS256")


def mint_device_token(key: bytes, device_id: uuid.UUID, case_id: uuid.UUID, ttl_s: int) -> str:
    iat = int(time.time())
    claims = {"aud": "afstand-device", "sub": str(device_id), "case": str(case_id), "iat": iat, "exp": iat + ttl_s}
    return jwt.encode(claims, derive(key, "device-tokens"), algorithm="HS256")


def decode_staff_token(ctx: Context, token: str) -> Staff:
    """The staff member behind a bearer token. With ``AFSTAND_OIDC_ISSUER`` set, only the issuer's tokens count
    (api/auth/oidc.py) and development tokens are refused; without it, the HS256 development tokens of
    ``afstand dev-token``."""
    if ctx.settings.oidc_issuer:
        return _decode_oidc(ctx, token)
    try:
        claims = jwt.decode(
            token,
            derive(ctx.key, "staff-tokens"),
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=DEV_ISSUER,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as e:
        raise _unauthorized(f"staff token rejected: {e}") from None
    role = claims.get("role")
    if role not in STAFF_ROLES:
        raise Problem(403, "Forbidden", "the token carries no staff role")
    return Staff(sub=str(claims["sub"]), role=role)


def oidc_verifier(ctx: Context) -> OIDCVerifier:
    assert ctx.oidc is not None, "built by the app when AFSTAND_OIDC_ISSUER is set"
    return ctx.oidc


def _decode_oidc(ctx: Context, token: str) -> Staff:
    try:
        identity = oidc_verifier(ctx).verify(token)
    except TokenRejected as e:
        raise _unauthorized(f"staff token rejected: {e}") from None
    except NoRole as e:
        raise Problem(403, "Forbidden", str(e)) from None
    return Staff(sub=identity.sub, role=identity.role)


def staff_principal(request: Request, ctx: Annotated[Context, Depends(get_context)]) -> Staff:
    return decode_staff_token(ctx, _bearer(request))


def require_staff(*roles: str) -> Callable[..., Staff]:
    """A dependency that admits staff with one of ``roles`` (admin is always admitted)."""
    allowed = set(roles) | {"admin"}

    def dependency(staff: Annotated[Staff, Depends(staff_principal)]) -> Staff:
        if staff.role not in allowed:
            raise Problem(403, "Forbidden", f"role {staff.role} may not do this; needs one of {sorted(allowed)}")
        return staff

    return dependency


@dataclass(frozen=True)
class DeviceToken:
    """A verified device token, not yet checked against the device: whoever takes it must check, in the same
    statement that uses the device, that neither the device nor (since ``issued_at``) its tokens are revoked."""

    device_id: uuid.UUID
    case_id: uuid.UUID
    issued_at: datetime


def device_revoked() -> Problem:
    return _unauthorized("this device has been revoked")


async def device_token(request: Request, ctx: Annotated[Context, Depends(get_context)]) -> DeviceToken:
    """The claims of the request's device token (signature, audience and expiry checked), without a database
    read: for the ingest route, which checks the device where it stores the fix."""
    token = _bearer(request)
    try:
        claims = jwt.decode(
            token, derive(ctx.key, "device-tokens"), algorithms=["HS256"], audience="afstand-device",
            options={"require": ["exp", "sub"]},
        )
        return DeviceToken(uuid.UUID(claims["sub"]), uuid.UUID(str(claims.get("case"))),
                           datetime.fromtimestamp(float(claims.get("iat", 0)), timezone.utc))
    except jwt.PyJWTError as e:
        raise _unauthorized(f"device token rejected: {e}") from None
    except (ValueError, TypeError, OverflowError):
        raise _unauthorized("device token rejected: malformed claims") from None


async def victim_device(token: Annotated[DeviceToken, Depends(device_token)],
                        ctx: Annotated[Context, Depends(get_context)]) -> VictimDevice:
    # Checked on every request so that revoking a device, or its token family, kills its tokens at once.
    case_id = await repository.victim_device_case(ctx.pool, token.device_id, token.issued_at.timestamp())
    if case_id is None:
        raise device_revoked()
    return VictimDevice(device_id=token.device_id, case_id=case_id)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


async def supplier_principal(request: Request, ctx: Annotated[Context, Depends(get_context)]) -> AsyncIterator[Supplier]:
    """An ankle-monitor supplier, by HMAC over timestamp and body. Any of these gets 401 and nothing stored: a
    missing header, a timestamp outside the window, an unknown or revoked key, a bad signature, and a signature
    seen before (a replayed request: each attempt, retries included, must be signed anew). Each supplier may
    have two active keys at once, so it can switch to a rotated key before the old one is revoked."""
    key_id = request.headers.get("x-afstand-key")
    ts = request.headers.get("x-afstand-timestamp")
    signature = request.headers.get("x-afstand-signature")
    if not key_id or not ts or not signature:
        raise Problem(401, "Unauthorized", "X-Afstand-Key, X-Afstand-Timestamp and X-Afstand-Signature are required")
    # Each header's form is checked before it is used: any value a client sends is a 401, never a 500 (a
    # 400-digit timestamp does not fit a float, a non-ASCII signature cannot be compared in constant time).
    if not _UNIX_SECONDS.fullmatch(ts):
        raise Problem(401, "Unauthorized", "X-Afstand-Timestamp must be UNIX seconds")
    if not _HEX_SHA256.fullmatch(signature):
        raise Problem(401, "Unauthorized", "X-Afstand-Signature must be 64 hexadecimal characters")
    if abs(time.time() - int(ts)) > ctx.settings.hmac_window_s:
        raise Problem(401, "Unauthorized", f"X-Afstand-Timestamp is more than {ctx.settings.hmac_window_s} s from server time")
    row = await repository.active_key(ctx.pool, key_id)
    body = await request.body()
    # Compare against a computed signature even for unknown keys, so timing does not reveal which keys exist.
    secret = decrypt(ctx.key, row["secret_enc"]) if row else "unknown-key"
    signature = signature.lower()
    if not hmac.compare_digest(sign(secret, ts, body), signature) or row is None:
        raise Problem(401, "Unauthorized", "unknown key or bad signature")
    await _prune_seen(ctx)
    # Claimed before the handler runs: of two identical requests, however close, exactly one gets past here.
    if not await repository.claim_signature(ctx.pool, signature, key_id):
        raise Problem(401, "Unauthorized", "this signature was used already (a replayed request); sign each request anew")
    try:
        yield Supplier(supplier_id=row["supplier_id"], key_id=key_id)
    except Problem:
        raise  # the client's mistake: the signature stays used
    except Exception:
        # The server failed before answering: free the signature so the supplier's identical retry is served.
        await repository.release_signature(ctx.pool, signature)
        raise


async def _prune_seen(ctx: Context) -> None:
    """Forget signatures older than the timestamp window (twice over): their timestamps are refused anyway."""
    now = time.monotonic()
    if now - ctx.hmac_pruned_at < ctx.settings.hmac_seen_prune_s:
        return
    ctx.hmac_pruned_at = now
    await repository.forget_signatures_older_than(ctx.pool, 2.0 * ctx.settings.hmac_window_s)


StaffDep = Annotated[Staff, Depends(staff_principal)]
VictimDep = Annotated[VictimDevice, Depends(victim_device)]
DeviceTokenDep = Annotated[DeviceToken, Depends(device_token)]
SupplierDep = Annotated[Supplier, Depends(supplier_principal)]
