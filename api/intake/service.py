"""Position and device-event intake, shared by the supplier API (HMAC) and the victim app (device token).

One request is one transaction. Each item is validated on its own; the good ones are stored and the bad ones
are reported back (``rejected`` with the field and the reason) *and* kept in ``ingest_rejections``, in the same
transaction, so nothing anyone sent is silently dropped. A 200 therefore means every accepted item is committed.

The order of locks, the same in every writer of this module and of :mod:`api.intake.device_events`:

1. the devices' rows (``FOR NO KEY UPDATE``, sorted by id): serialises everything that concerns one device and
   re-checks, under lock, that the device is still active;
2. the fix-log lock (:data:`FIX_LOG_LOCK`), taken right before the INSERT into ``positions`` and held to commit,
   so ``positions.seq`` values commit in order and the engine, which reads ``seq > last``, never skips a fix;
3. the alert-log lock (via :mod:`api.alerts.store`), only when an alert changes, and only then the alert's row
   (the engine's order: see api/intake/device_events.py).

Coordinates are never logged: only counts, the channel and the sender.
"""

from __future__ import annotations

import json
import logging
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.intake import device_events
from api.platform import metrics
from api.platform import pg_channels
from notifications.outbox import Outbox
from api.intake.schemas import (
    APP_POSITION, SUPPLIER_EVENT, SUPPLIER_POSITION, AppPosition, SupplierEvent, SupplierPosition,
)

log = logging.getLogger(__name__)

_NOT_IN_UTF8 = re.compile("[\x00\ud800-\udfff]")
FIX_LOG_LOCK = 0x6669_786C  # "fixl": the order of commits into ``positions``
MAX_STORED_ITEM_CHARS = 8_000  # a rejected item is kept whole up to this size, truncated beyond it
UNKNOWN_SERIAL = "serial: unknown serial for this supplier"

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True)
class Sender:
    """Who sent a batch: a supplier (items name the serial) or one victim app (the device is the token's)."""

    channel: Literal["supplier", "app"]
    sender: str  # supplier key id, or ``victim_app:<device id>``; recorded with every rejection
    supplier_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None

    @classmethod
    def supplier(cls, supplier_id: uuid.UUID, key_id: str) -> "Sender":
        return cls("supplier", key_id, supplier_id=supplier_id)

    @classmethod
    def app(cls, device_id: uuid.UUID, case_id: uuid.UUID) -> "Sender":
        return cls("app", f"victim_app:{device_id}", device_id=device_id, case_id=case_id)

    @property
    def party(self) -> str:
        return "offender" if self.channel == "supplier" else "victim"


@dataclass(frozen=True)
class Device:
    id: uuid.UUID
    case_id: uuid.UUID
    serial: str | None


@dataclass
class Fix:
    """An accepted, not yet stored position."""

    index: int
    device: Device
    party: str
    recorded_at: datetime
    lat: float
    lon: float
    accuracy_m: float
    source: str
    speed_mps: float | None = None
    heading_deg: float | None = None
    battery_pct: float | None = None

    @property
    def key(self) -> tuple[uuid.UUID, datetime]:
        return (self.device.id, self.recorded_at)


@dataclass
class Outcome:
    """The per-item results of one batch, and what to keep of the rejected items."""

    size: int
    results: list[dict[str, Any] | None] = field(default_factory=list)
    rejected: list[tuple[int, Any, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.results = [None] * self.size

    def reject(self, index: int, item: Any, reason: str) -> None:
        self.results[index] = {"index": index, "status": "rejected", "error": reason}
        self.rejected.append((index, item, reason))

    def mark(self, index: int, status: Status) -> None:
        self.results[index] = {"index": index, "status": status}

    def final(self) -> list[dict[str, Any]]:
        assert all(r is not None for r in self.results), "every item gets a result"
        return self.results  # type: ignore[return-value]

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r and r["status"] == status)


# ---------------------------------------------------------------- validation (pure)

def describe(error: ValidationError) -> str:
    """``field: why`` for each problem of one item, e.g. ``lat: Input should be less than or equal to 90``."""
    parts = []
    for e in error.errors(include_url=False):
        loc = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "invalid"))
        if e.get("type") == "model_type":
            loc, msg = "item", "must be a JSON object"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        parts.append(f"{loc or 'item'}: {msg}")
    return "; ".join(parts)


def validate(adapter: TypeAdapter[Any], raw: Any) -> tuple[BaseModel | None, str | None]:
    try:
        return adapter.validate_python(raw), None
    except ValidationError as e:
        return None, describe(e)


@dataclass(frozen=True)
class PlausibleTimes:
    """When a device can really have recorded something. Before ``since`` no fix of this service exists: such
    times come from GPS week-rollover faults (1999, 2019 …) or unset clocks. More than ``ahead_s`` ahead of the
    server clock, a device clock is wrong, and a fix from the future must not open or hold an episode."""

    since: datetime
    ahead_s: float

    @classmethod
    def from_settings(cls, settings: Any) -> "PlausibleTimes":
        return cls(settings.plausible_since.astimezone(timezone.utc), settings.future_tolerance_s)

    def refusal(self, recorded_at: datetime, now: datetime) -> str | None:
        """Why ``recorded_at`` cannot be a real device time, or None when it can."""
        if recorded_at < self.since:
            return (f"recorded_at: before {self.since.isoformat().replace('+00:00', 'Z')}, earlier than any real fix"
                    " (a GPS week-rollover fault or an unset device clock)")
        if recorded_at > now + timedelta(seconds=self.ahead_s):
            return f"recorded_at: more than {self.ahead_s:g} s ahead of server time (a wrong device clock)"
        return None


def storable(value: Any, depth: int = 0) -> Any:
    """A JSON value PostgreSQL's jsonb accepts: no NaN/Infinity (Python's json parses them), no NUL characters and
    no unpaired UTF-16 surrogates (Python's json lets ``"\\ud800"`` and CESU-8 bytes through; UTF-8 has no
    such characters)."""
    if depth > 32:
        return "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return _NOT_IN_UTF8.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(str(k)): storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v, depth + 1) for v in value]
    return value


def _kept_item(item: Any) -> Any:
    clean = storable(item)
    text = json.dumps(clean)
    if len(text) > MAX_STORED_ITEM_CHARS:
        return {"truncated": text[:MAX_STORED_ITEM_CHARS]}
    return clean


# ---------------------------------------------------------------- database steps (call inside a transaction)

async def lock_supplier_devices(
    conn: asyncpg.Connection, supplier_id: uuid.UUID, serials: set[str]
) -> dict[str, Device]:
    """The supplier's active offender tags among ``serials``, row-locked in id order (see the module doc)."""
    if not serials:
        return {}
    rows = await conn.fetch(
        "SELECT id, case_id, serial FROM devices WHERE supplier_id = $1 AND serial = ANY($2::text[])"
        " AND role = 'offender_tag' AND revoked_at IS NULL ORDER BY id FOR NO KEY UPDATE",
        supplier_id, sorted(serials),
    )
    return {r["serial"]: Device(r["id"], r["case_id"], r["serial"]) for r in rows}


async def lock_app_device(conn: asyncpg.Connection, sender: Sender) -> Device | None:
    row = await conn.fetchrow(
        "SELECT id, case_id FROM devices WHERE id = $1 AND role = 'victim_app' AND revoked_at IS NULL"
        " FOR NO KEY UPDATE",
        sender.device_id,
    )
    return Device(row["id"], row["case_id"], None) if row else None


async def keep_rejections(conn: asyncpg.Connection, sender: Sender, kind: str, outcome: Outcome) -> None:
    if not outcome.rejected:
        return
    await conn.executemany(
        "INSERT INTO ingest_rejections (channel, sender, item_index, item, reason) VALUES ($1, $2, $3, $4, $5)",
        [(f"{sender.channel}:{kind}", sender.sender, i, _kept_item(item), storable(reason)[:2000])
         for i, item, reason in outcome.rejected],
    )


async def insert_fixes(conn: asyncpg.Connection, fixes: list[Fix], received_at: datetime) -> dict[tuple, int]:
    """Append ``fixes`` to the log in recorded_at order; returns ``{(device_id, recorded_at): seq}`` of those
    stored. A fix already in the log (same device and time) is not stored again: idempotent redelivery."""
    if not fixes:
        return {}
    fixes = sorted(fixes, key=lambda f: (f.recorded_at, f.index))
    columns = (
        [f.device.id for f in fixes], [f.device.case_id for f in fixes], [f.party for f in fixes],
        [f.recorded_at for f in fixes], [f.lat for f in fixes], [f.lon for f in fixes],
        [f.accuracy_m for f in fixes], [f.source for f in fixes], [f.speed_mps for f in fixes],
        [f.heading_deg for f in fixes], [f.battery_pct for f in fixes],
    )
    # Right before the INSERT and held until commit: seq values become visible in order.
    await conn.execute("SELECT pg_advisory_xact_lock($1)", FIX_LOG_LOCK)
    rows = await conn.fetch(
        "INSERT INTO positions (device_id, case_id, party, recorded_at, received_at, lat, lon, accuracy_m, source,"
        " speed_mps, heading_deg, battery_pct)"
        " SELECT u.device_id, u.case_id, u.party, u.recorded_at, $12, u.lat, u.lon, u.accuracy_m, u.source,"
        " u.speed_mps, u.heading_deg, u.battery_pct"
        " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::float8[], $6::float8[],"
        " $7::float8[], $8::text[], $9::float8[], $10::float8[], $11::float8[])"
        " WITH ORDINALITY AS u(device_id, case_id, party, recorded_at, lat, lon, accuracy_m, source, speed_mps,"
        " heading_deg, battery_pct, ord)"
        " ORDER BY u.ord"
        " ON CONFLICT (device_id, recorded_at) DO NOTHING RETURNING seq, device_id, recorded_at",
        *columns, received_at,
    )
    if rows:
        await conn.execute("SELECT pg_notify($1, '')", pg_channels.FIXES)
    return {(r["device_id"], r["recorded_at"]): r["seq"] for r in rows}


async def mark_seen(conn: asyncpg.Connection, stored: list[Fix]) -> None:
    """devices.last_seen_at = newest fix time; last_battery_pct from the newest fix that reports it."""
    newest: dict[uuid.UUID, list[Any]] = {}
    for f in stored:
        entry = newest.setdefault(f.device.id, [f.recorded_at, None, None])
        entry[0] = max(entry[0], f.recorded_at)
        if f.battery_pct is not None and (entry[2] is None or f.recorded_at >= entry[2]):
            entry[1], entry[2] = f.battery_pct, f.recorded_at
    if not newest:
        return
    ids = list(newest)
    await conn.execute(
        "UPDATE devices d SET last_seen_at = GREATEST(d.last_seen_at, u.seen),"
        " last_battery_pct = CASE WHEN u.battery IS NOT NULL"
        "   AND (d.last_seen_at IS NULL OR u.battery_at >= d.last_seen_at) THEN u.battery ELSE d.last_battery_pct END"
        " FROM unnest($1::uuid[], $2::timestamptz[], $3::float8[], $4::timestamptz[]) AS u(id, seen, battery, battery_at)"
        " WHERE d.id = u.id",
        ids, [newest[i][0] for i in ids], [newest[i][1] for i in ids], [newest[i][2] for i in ids],
    )


async def store_fixes(conn: asyncpg.Connection, fixes: list[Fix], outcome: Outcome, received_at: datetime, *,
                      outbox: Outbox) -> dict[int, int]:
    """Insert the candidates, mark each ``accepted`` or ``duplicate`` (also a repeat inside the batch), update the
    devices, and let a fresh fix clear an open ``device_offline`` alert. Returns ``{item index: seq}``."""
    first: dict[tuple, Fix] = {}
    for f in fixes:
        if f.key in first:
            outcome.mark(f.index, "duplicate")
        else:
            first[f.key] = f
    # Asked before the fix-log lock so the lock is held as briefly as possible; the device rows are locked, so no
    # offline alert of these devices opens meanwhile.
    offline = await device_events.offline_devices(
        conn, {f.device.id for f in first.values()}, {f.device.case_id for f in first.values()}
    )
    stored = await insert_fixes(conn, list(first.values()), received_at)
    accepted: list[Fix] = []
    seqs: dict[int, int] = {}
    for key, f in first.items():
        if key in stored:
            outcome.mark(f.index, "accepted")
            accepted.append(f)
            seqs[f.index] = stored[key]
        else:
            outcome.mark(f.index, "duplicate")
    await mark_seen(conn, accepted)
    contact: dict[uuid.UUID, datetime] = {}
    for f in accepted:
        if f.device.id in offline:
            contact[f.device.id] = max(contact.get(f.device.id, f.recorded_at), f.recorded_at)
    for device_id, at in contact.items():
        await device_events.restore_on_contact(conn, device_id, at, via="position", outbox=outbox)
    return seqs


def to_fix(index: int, item: SupplierPosition | AppPosition, device: Device, party: str) -> Fix:
    return Fix(
        index=index, device=device, party=party, recorded_at=item.recorded_at.astimezone(timezone.utc),
        lat=item.lat, lon=item.lon, accuracy_m=item.accuracy_m, source=item.source,
        speed_mps=getattr(item, "speed_mps", None), heading_deg=getattr(item, "heading_deg", None),
        battery_pct=getattr(item, "battery_pct", None),
    )


# ---------------------------------------------------------------- the two intakes

def _count(source: str, outcome: Outcome) -> None:
    for status in ("accepted", "duplicate", "rejected"):
        n = outcome.count(status)  # type: ignore[arg-type]
        if n:
            metrics.FIXES.labels(source=source, outcome=status).inc(n)


async def ingest_positions(pool: asyncpg.Pool, sender: Sender, items: list[Any],
                           plausible: PlausibleTimes, outbox: Outbox) -> list[dict[str, Any]]:
    """Validate, store and report one batch of positions; see the module doc for the guarantees."""
    outcome = Outcome(len(items))
    now = datetime.now(timezone.utc)
    adapter = SUPPLIER_POSITION if sender.channel == "supplier" else APP_POSITION
    valid: list[tuple[int, Any]] = []
    for i, raw in enumerate(items):
        model, error = validate(adapter, raw)
        error = error or plausible.refusal(model.recorded_at, now)  # type: ignore[union-attr]
        if error is not None:
            outcome.reject(i, raw, error)
        else:
            valid.append((i, model))
    async with pool.acquire() as conn, conn.transaction():
        if sender.channel == "supplier":
            devices = await lock_supplier_devices(conn, sender.supplier_id, {m.serial for _, m in valid})  # type: ignore[arg-type]
        else:
            device = await lock_app_device(conn, sender)
            devices = {None: device} if device else {}
        fixes: list[Fix] = []
        for i, model in valid:
            device = devices.get(getattr(model, "serial", None))
            if device is None:
                # Another supplier's serial and a serial nobody has look the same: nothing is revealed.
                outcome.reject(i, items[i], UNKNOWN_SERIAL if sender.channel == "supplier" else "device: revoked")
            else:
                fixes.append(to_fix(i, model, device, sender.party))
        await keep_rejections(conn, sender, "positions", outcome)
        await store_fixes(conn, fixes, outcome, now, outbox=outbox)
    _count(sender.channel, outcome)
    log.info("positions received", extra={
        "channel": sender.channel, "sender": sender.sender, "items": len(items),
        "accepted": outcome.count("accepted"), "duplicate": outcome.count("duplicate"),
        "rejected": outcome.count("rejected"),
    })
    return outcome.final()


async def ingest_events(pool: asyncpg.Pool, sender: Sender, items: list[Any],
                        plausible: PlausibleTimes, outbox: Outbox) -> list[dict[str, Any]]:
    """Validate and store one batch of supplier device events; each new one goes through the alert policy."""
    outcome = Outcome(len(items))
    now = datetime.now(timezone.utc)
    valid: list[tuple[int, SupplierEvent]] = []
    for i, raw in enumerate(items):
        model, error = validate(SUPPLIER_EVENT, raw)
        if error is None and model.detail is not None and len(json.dumps(storable(model.detail))) > 4096:  # type: ignore[union-attr]
            error = "detail: at most 4 KB as JSON"
        error = error or plausible.refusal(model.recorded_at, now)  # type: ignore[union-attr]
        if error is not None:
            outcome.reject(i, raw, error)
        else:
            valid.append((i, model))  # type: ignore[arg-type]
    async with pool.acquire() as conn, conn.transaction():
        devices = await lock_supplier_devices(conn, sender.supplier_id, {m.serial for _, m in valid})  # type: ignore[arg-type]
        accepted: list[tuple[int, SupplierEvent, Device]] = []
        for i, model in valid:
            device = devices.get(model.serial)
            if device is None:
                outcome.reject(i, items[i], UNKNOWN_SERIAL)
            else:
                accepted.append((i, model, device))
        await keep_rejections(conn, sender, "events", outcome)
        # Oldest first, so a restoring event that comes in the same batch finds the alert it restores.
        accepted.sort(key=lambda a: (a[1].recorded_at, a[0]))
        seen: dict[uuid.UUID, datetime] = {}
        for i, model, device in accepted:
            at = model.recorded_at.astimezone(timezone.utc)
            event_id = await conn.fetchval(
                "INSERT INTO device_events (device_id, case_id, recorded_at, received_at, type, detail)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, recorded_at, type) DO NOTHING RETURNING id",
                device.id, device.case_id, at, now, model.type,
                storable(model.detail) if model.detail is not None else None,
            )
            if event_id is None:
                outcome.mark(i, "duplicate")
                continue
            outcome.mark(i, "accepted")
            seen[device.id] = max(seen.get(device.id, at), at)
            await device_events.apply_event(
                conn, device_id=device.id, case_id=device.case_id, serial=device.serial, event_type=model.type,
                recorded_at=at, event_id=event_id, received_at=now, outbox=outbox,
            )
        if seen:
            ids = list(seen)
            await conn.execute(
                "UPDATE devices d SET last_seen_at = GREATEST(d.last_seen_at, u.seen)"
                " FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, seen) WHERE d.id = u.id",
                ids, [seen[i] for i in ids],
            )
    for status in ("accepted", "duplicate", "rejected"):
        n = outcome.count(status)  # type: ignore[arg-type]
        if n:
            metrics.EVENTS.labels(outcome=status).inc(n)
    log.info("device events received", extra={
        "sender": sender.sender, "items": len(items), "accepted": outcome.count("accepted"),
        "duplicate": outcome.count("duplicate"), "rejected": outcome.count("rejected"),
    })
    return outcome.final()
