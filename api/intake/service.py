"""Position and device-event intake, shared by the supplier API (HMAC) and the victim app (device token).

A protocol decoder (:mod:`api.intake.protocols`) turns the body into candidates with per-item errors; this
module checks their times and devices, stores them and wakes the engine. One request is one transaction. Each
item is validated on its own; the good ones are stored and the bad ones
are reported back (``rejected`` with the field and the reason) *and* kept in ``ingest_rejections``, in the same
transaction, so nothing anyone sent is silently dropped. A 200 therefore means every accepted item is committed.

The order of locks, the same in every writer of this module and of :mod:`api.intake.device_events`:

1. the devices' rows (``FOR NO KEY UPDATE``, sorted by id): serialises everything that concerns one device and
   re-checks, under lock, that the device is still active;
2. the fix-log lock (:data:`api.intake.repository.FIX_LOG_LOCK`), taken right before the INSERT into
   ``positions`` and held to commit, so ``positions.seq`` values commit in order and the engine, which reads
   ``seq > last``, never skips a fix. The common case takes it once per group of concurrent requests, in one
   statement (:mod:`api.intake.fix_log`, ARCHITECTURE.md "The fix log: group commit");
3. the alert-log lock (via :mod:`api.alerts.repository`), only when an alert changes, and only then the alert's row
   (the engine's order: see api/intake/device_events.py).

Coordinates are never logged: only counts, the channel and the sender.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg

from api.auth.principals import device_revoked
from api.intake import beacons, device_events, repository
from api.intake.fix_log import FixLog, Member, PendingFix
from api.intake.model import Device, IncomingFix, BatchOutcome, Sender, Status
from api.intake.protocols import Decoded
from api.intake.schemas import AppPosition, SupplierEvent, SupplierPosition
from api.platform import metrics, secrets
from notifications.outbox import Outbox

log = logging.getLogger(__name__)

UNKNOWN_SERIAL = "serial: unknown serial for this supplier"


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


def _plausible(decoded: list[Decoded], plausible: PlausibleTimes, now: datetime,
               outcome: BatchOutcome) -> list[tuple[int, Any]]:
    """The candidates with a plausible time, by index; every other item is rejected with its reason."""
    valid: list[tuple[int, Any]] = []
    for i, item in enumerate(decoded):
        error = item.error or plausible.refusal(item.candidate.recorded_at, now)
        if error is not None:
            outcome.reject(i, item.raw, error)
        else:
            valid.append((i, item.candidate))
    return valid


# ---------------------------------------------------------------- steps (call inside a transaction)

async def lock_app_device(conn: asyncpg.Connection, sender: Sender) -> Device | None:
    """The app's own device, row-locked, or None once it is revoked."""
    return await repository.lock_app_device(conn, sender)


async def keep_rejections(conn: asyncpg.Connection, sender: Sender, kind: str, outcome: BatchOutcome) -> None:
    """Keep every rejected item of the batch in ``ingest_rejections``: nothing anyone sent is silently dropped."""
    await repository.keep_rejections(conn, sender, kind, outcome)


async def store_fixes(conn: asyncpg.Connection, fixes: list[IncomingFix], outcome: BatchOutcome, received_at: datetime, *,
                      outbox: Outbox) -> dict[int, int]:
    """Insert the candidates, mark each ``accepted`` or ``duplicate`` (also a repeat inside the batch), update the
    devices, and let a fresh fix clear an open ``device_offline`` alert. Returns ``{item index: seq}``."""
    first: dict[tuple, IncomingFix] = {}
    for f in fixes:
        if f.key in first:
            outcome.mark(f.index, "duplicate")
        else:
            first[f.key] = f
    # Asked before the fix-log lock so the lock is held as briefly as possible; the device rows are locked, so no
    # offline alert of these devices opens meanwhile.
    offline = await repository.offline_devices(
        conn, {f.device.id for f in first.values()}, {f.device.case_id for f in first.values()}
    )
    stored = await repository.insert_fixes(conn, list(first.values()), received_at)
    accepted: list[IncomingFix] = []
    seqs: dict[int, int] = {}
    for key, f in first.items():
        if key in stored:
            outcome.mark(f.index, "accepted")
            accepted.append(f)
            seqs[f.index] = stored[key]
        else:
            outcome.mark(f.index, "duplicate")
    await repository.mark_seen(conn, accepted)
    contact: dict[uuid.UUID, datetime] = {}
    for f in accepted:
        if f.device.id in offline:
            contact[f.device.id] = max(contact.get(f.device.id, f.recorded_at), f.recorded_at)
    for device_id, at in contact.items():
        await device_events.restore_on_contact(conn, device_id, at, via="position", outbox=outbox)
    return seqs


def to_fix(index: int, item: SupplierPosition | AppPosition, device: Device, party: str) -> IncomingFix:
    return IncomingFix(
        index=index, device=device, party=party, recorded_at=item.recorded_at.astimezone(timezone.utc),
        lat=item.lat, lon=item.lon, accuracy_m=item.accuracy_m, source=item.source,
        speed_mps=getattr(item, "speed_mps", None), heading_deg=getattr(item, "heading_deg", None),
        battery_pct=getattr(item, "battery_pct", None),
    )


# ---------------------------------------------------------------- the two intakes

def _log_counts(message: str, sender: Sender, size: int, outcome: BatchOutcome, **extra: Any) -> None:
    """At INFO only when something was rejected: the request log already has a line for every batch."""
    level = logging.INFO if outcome.rejected else logging.DEBUG
    if log.isEnabledFor(level):
        counts = {status: outcome.count(status) for status in ("accepted", "duplicate", "rejected")}
        log.log(level, message, extra={**extra, "sender": sender.sender, "items": size, **counts})


def _statuses(outcome: BatchOutcome) -> list[tuple[Status, int]]:
    statuses: tuple[Status, ...] = ("accepted", "duplicate", "rejected")
    return [(s, n) for s in statuses if (n := outcome.count(s))]


async def ingest_positions(pool: asyncpg.Pool, sender: Sender, decoded: list[Decoded],
                           plausible: PlausibleTimes, outbox: Outbox, fix_log: FixLog) -> list[dict[str, Any]]:
    """Check, store and report one decoded batch of positions; see the module doc for the guarantees.

    A batch whose every item is well formed goes to the fix log's group commit (api/intake/fix_log.py), which
    stores it with other requests' fixes in one statement. Only when that finds something to decide item by
    item (a serial that is not the supplier's tag, a device whose offline alert a fix restores), or the batch
    has rejected items to keep, does the batch take its own transaction."""
    now = datetime.now(timezone.utc)
    outcome = BatchOutcome(len(decoded))
    valid = _plausible(decoded, plausible, now, outcome)
    if valid and not outcome.rejected:
        appended = await _append_grouped(fix_log, sender, valid, outcome, now)
        if appended:
            return _reported(sender, decoded, outcome)
        outcome = BatchOutcome(len(decoded))
        valid = _plausible(decoded, plausible, now, outcome)
    async with pool.acquire() as conn, conn.transaction():
        if sender.channel == "supplier":
            devices = await repository.lock_supplier_devices(conn, sender.supplier_id, {m.serial for _, m in valid})  # type: ignore[arg-type]
        else:
            device = await repository.lock_app_device(conn, sender)
            if device is None:
                raise device_revoked()  # nothing is kept for a caller whose device no longer counts
            devices = {None: device}
        fixes: list[IncomingFix] = []
        for i, model in valid:
            device = devices.get(getattr(model, "serial", None))
            if device is None:
                # Another supplier's serial and a serial nobody has look the same: nothing is revealed.
                outcome.reject(i, decoded[i].raw, UNKNOWN_SERIAL)
            else:
                fixes.append(to_fix(i, model, device, sender.party))
        await repository.keep_rejections(conn, sender, "positions", outcome)
        await store_fixes(conn, fixes, outcome, now, outbox=outbox)
    return _reported(sender, decoded, outcome)


async def _append_grouped(fix_log: FixLog, sender: Sender, valid: list[tuple[int, Any]], outcome: BatchOutcome,
                          now: datetime) -> bool:
    """The batch through the group commit: True when it was stored (``outcome`` then holds every result), False
    when it needs its own transaction."""
    first: dict[tuple, int] = {}
    pending: list[PendingFix] = []
    indexes: list[int] = []
    for i, model in valid:
        at = model.recorded_at.astimezone(timezone.utc)
        serial = getattr(model, "serial", None)
        if (serial, at) in first:
            outcome.mark(i, "duplicate")  # a repeat inside the batch
            continue
        first[(serial, at)] = i
        indexes.append(i)
        pending.append(PendingFix(serial, at, model.lat, model.lon, model.accuracy_m, model.source,
                                  getattr(model, "speed_mps", None), getattr(model, "heading_deg", None),
                                  getattr(model, "battery_pct", None)))
    appended = await fix_log.append(Member(now, pending, supplier_id=sender.supplier_id,
                                           device_id=sender.device_id if sender.channel == "app" else None,
                                           issued_at=sender.issued_at))
    if appended.status == "revoked":
        raise device_revoked()
    if appended.status != "ok":
        return False
    for k, i in enumerate(indexes):
        outcome.mark(i, "accepted" if k in appended.seqs else "duplicate")
    return True


def _reported(sender: Sender, decoded: list[Decoded], outcome: BatchOutcome) -> list[dict[str, Any]]:
    for status, n in _statuses(outcome):
        metrics.FIXES.labels(source=sender.channel, outcome=status).inc(n)
    _log_counts("positions received", sender, len(decoded), outcome, channel=sender.channel)
    return outcome.final()


async def case_beacons(pool: asyncpg.Pool, key: bytes, case_id: uuid.UUID, now: datetime) -> list[beacons.Beacon]:
    """The identifiers the case's tags advertise for the coming 24 hours, in time order."""
    found: list[beacons.Beacon] = []
    for r in await repository.tag_keys(pool, case_id):
        found += beacons.schedule(beacons.parse_key(secrets.decrypt(key, r["ble_key_enc"], secrets.BLE_KEYS)), now)
    return sorted(found, key=lambda b: (b.valid_from, b.beacon_id))


async def ingest_encounters(pool: asyncpg.Pool, key: bytes, sender: Sender, decoded: list[Decoded],
                            plausible: PlausibleTimes) -> list[dict[str, Any]]:
    """Check, store and report the phone's Bluetooth encounters: each must be an identifier of its own case's tag
    valid at its recorded_at (api/intake/beacons.py); a stale one or one of no tag of the case is rejected with
    its reason and kept, the good ones go into the engine's log beside the fixes."""
    now = datetime.now(timezone.utc)
    outcome = BatchOutcome(len(decoded))
    valid = _plausible(decoded, plausible, now, outcome)
    async with pool.acquire() as conn, conn.transaction():
        device = await repository.lock_app_device(conn, sender)
        if device is None:
            raise device_revoked()
        keys = {r["id"]: beacons.parse_key(secrets.decrypt(key, r["ble_key_enc"], secrets.BLE_KEYS))
                for r in await repository.tag_keys(conn, device.case_id)}
        matcher = beacons.Matcher(keys)
        items: list[tuple[Any, ...]] = []
        seen: set[tuple[datetime, str]] = set()
        for i, model in valid:
            at = model.recorded_at.astimezone(timezone.utc)
            tag, why = matcher.match(model.beacon_id, at)
            if tag is None:
                outcome.reject(i, decoded[i].raw, why or "beacon_id: no match")
            elif (at, model.beacon_id) in seen:
                outcome.mark(i, "duplicate")
            else:
                seen.add((at, model.beacon_id))
                items.append((i, tag, at, model.beacon_id, model.rssi, model.lat, model.lon, model.accuracy_m))
        await repository.keep_rejections(conn, sender, "encounters", outcome)
        stored = await repository.insert_encounters(conn, device, items, now)
        for it in items:
            outcome.mark(it[0], "accepted" if it[0] in stored else "duplicate")
    for status, n in _statuses(outcome):
        metrics.ENCOUNTERS.labels(outcome=status).inc(n)
    _log_counts("encounters received", sender, len(decoded), outcome, channel=sender.channel)
    return outcome.final()


async def ingest_events(pool: asyncpg.Pool, sender: Sender, decoded: list[Decoded],
                        plausible: PlausibleTimes, outbox: Outbox) -> list[dict[str, Any]]:
    """Check and store one decoded batch of supplier device events; each new one goes through the alert policy."""
    outcome = BatchOutcome(len(decoded))
    now = datetime.now(timezone.utc)
    valid: list[tuple[int, SupplierEvent]] = _plausible(decoded, plausible, now, outcome)
    async with pool.acquire() as conn, conn.transaction():
        devices = await repository.lock_supplier_devices(conn, sender.supplier_id, {m.serial for _, m in valid})  # type: ignore[arg-type]
        accepted: list[tuple[int, SupplierEvent, Device]] = []
        for i, model in valid:
            device = devices.get(model.serial)
            if device is None:
                outcome.reject(i, decoded[i].raw, UNKNOWN_SERIAL)
            else:
                accepted.append((i, model, device))
        await repository.keep_rejections(conn, sender, "events", outcome)
        # Oldest first, so a restoring event that comes in the same batch finds the alert it restores.
        accepted.sort(key=lambda a: (a[1].recorded_at, a[0]))
        seen: dict[uuid.UUID, datetime] = {}
        for i, model, device in accepted:
            at = model.recorded_at.astimezone(timezone.utc)
            event_id = await repository.insert_device_event(
                conn, device, recorded_at=at, received_at=now, event_type=model.type, detail=model.detail,
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
        await repository.mark_event_seen(conn, seen)
    for status, n in _statuses(outcome):
        metrics.EVENTS.labels(outcome=status).inc(n)
    _log_counts("device events received", sender, len(decoded), outcome)
    return outcome.final()
