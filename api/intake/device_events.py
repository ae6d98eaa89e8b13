"""Device events from ankle-monitor suppliers become ``device_event`` alerts for the monitoring room.

The policy is a small pure table (:data:`POLICY`, :func:`decide`); the adapter below applies its decisions
through :mod:`api.alerts.repository`, in the transaction that stores the event.

=====================  ===========  =========  =======================================================
event                  family       level      restored by
=====================  ===========  =========  =======================================================
strap_tamper           tamper       violation  never by itself: strap_restored / case_restored are
case_tamper            tamper       violation  attached as a ``note``; only an operator resolves it
battery_low            battery      warning    charging (note + cleared)
battery_critical       battery      violation  charging (note + cleared); escalates an open battery_low
gps_lost               gps          warning    gps_restored (note + cleared)
device_offline         offline      warning    device_online, any other event or any position
=====================  ===========  =========  =======================================================

Why these levels: a tamper is a deliberate act against the order (in a US case tamper alerts that cleared by
themselves were ignored, and the wearer killed) so it is a violation that stays open until an operator
resolves it. A critical battery means the tag is about to go dark: act now (violation). Low battery, lost GPS
and an offline tag are warnings: the tag still exists and often recovers by itself; the engine's own
``offender_silent`` alert escalates a silence that lasts.

One open alert per (device, family): a second tamper while one is open is attached to it as a ``note``, not
a new alert. Alert ids are uuid5 of (device, type, recorded_at), and events are stored once (unique key), so
a redelivered event never raises a second alert. Every alert is confirmed: the tag itself reported it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from api.alerts import repository as alert_store
from api.intake import repository
from notifications.outbox import Outbox

ALERT_NAMESPACE = uuid.UUID("6b1f0c3e-9a53-4f0e-8f0d-1d3e5a7c2b90")
LATE_AFTER = timedelta(seconds=300)  # an event this old when it arrives raises a ``late`` alert
_RANK = {"warning": 1, "violation": 2}


@dataclass(frozen=True)
class Rule:
    family: str
    opens: str | None = None  # the level of the alert this event raises; None: it only restores
    restores: bool = False


POLICY: dict[str, Rule] = {
    "strap_tamper": Rule("tamper", opens="violation"),
    "case_tamper": Rule("tamper", opens="violation"),
    "strap_restored": Rule("tamper", restores=True),
    "case_restored": Rule("tamper", restores=True),
    "battery_low": Rule("battery", opens="warning"),
    "battery_critical": Rule("battery", opens="violation"),
    "charging": Rule("battery", restores=True),
    "gps_lost": Rule("gps", opens="warning"),
    "gps_restored": Rule("gps", restores=True),
    "device_offline": Rule("offline", opens="warning"),
    "device_online": Rule("offline", restores=True),
}
NEVER_CLEARS = frozenset({"tamper"})  # only an operator ends these
RESTORING_TYPES = {fam: tuple(t for t, r in POLICY.items() if r.family == fam and r.restores)
                   for fam in {r.family for r in POLICY.values()}}


@dataclass(frozen=True)
class Open:
    level: str


@dataclass(frozen=True)
class Attach:
    change: Literal["note", "escalated"]
    level: str  # the alert's level after the change
    clears: bool = False  # also append ``cleared`` and set cleared_at / clear_reason "restored"


@dataclass(frozen=True)
class Ignore:
    reason: str


Decision = Open | Attach | Ignore


def alert_id_for(device_id: uuid.UUID, event_type: str, recorded_at: datetime) -> uuid.UUID:
    return uuid.uuid5(ALERT_NAMESPACE, f"{device_id}/{event_type}/{recorded_at.isoformat()}")


def decide(event_type: str, current_level: str | None, current_opened_at: datetime | None,
           recorded_at: datetime) -> Decision:
    """What one event does, given the open alert of its family for the device (``None`` if there is none)."""
    rule = POLICY[event_type]
    if rule.opens is not None:
        if current_level is None:
            return Open(rule.opens)
        if _RANK[rule.opens] > _RANK[current_level]:
            return Attach("escalated", rule.opens)
        return Attach("note", current_level)
    if current_level is None:
        return Ignore("nothing open to restore")
    if current_opened_at is not None and recorded_at < current_opened_at:
        return Ignore("restoring event older than the alert")
    return Attach("note", current_level, clears=rule.family not in NEVER_CLEARS)


# ---------------------------------------------------------------- adapter (call inside the event's transaction)

@dataclass(frozen=True)
class _Current:
    id: uuid.UUID
    level: str
    confidence: str
    opened_at: datetime


async def _open_in_family(conn: asyncpg.Connection, device_id: uuid.UUID, family: str) -> _Current | None:
    # The caller holds the device's row lock, so no other writer opens or clears one of these meanwhile.
    row = await repository.open_device_alert(conn, device_id, family)
    return _Current(row["id"], row["level"], row["confidence"], row["opened_at"]) if row else None


async def _attach(conn: asyncpg.Connection, current: _Current, decision: Attach, *, event_type: str,
                  recorded_at: datetime, via: str, outbox: Outbox) -> None:
    # The alert-log lock before the alert's row, in the order append_change and the engine take them.
    await alert_store.lock_alert_log(conn)
    if decision.change == "escalated":
        await alert_store.raise_level(conn, current.id, decision.level)
    if decision.clears:
        await alert_store.mark_cleared(conn, current.id, recorded_at, "restored")
    detail = {"event": event_type, "via": via, "recorded_at": recorded_at.isoformat()}
    if decision.clears or (decision.change == "note" and POLICY.get(event_type, Rule("")).restores):
        detail["restores"] = True
    await alert_store.append_change(
        conn, current.id, decision.change, outbox=outbox, level=decision.level, confidence=current.confidence,
        fix_at=recorded_at, detail=detail,
    )
    if decision.clears:
        await alert_store.append_change(
            conn, current.id, "cleared", outbox=outbox, level=decision.level, confidence=current.confidence,
            fix_at=recorded_at, detail={"reason": "restored"},
        )


async def _restored_since(conn: asyncpg.Connection, device_id: uuid.UUID, family: str,
                          after: datetime) -> tuple[datetime, str] | None:
    """The first restoring event (or, for ``offline``, any contact) recorded after ``after``: an event that
    arrives late may already be over."""
    if family in NEVER_CLEARS:
        return None
    if family == "offline":
        at = await repository.first_contact_after(conn, device_id, after)
        return (at, "contact") if at else None
    row = await repository.first_event_after(conn, device_id, after, list(RESTORING_TYPES.get(family, ())))
    return (row["recorded_at"], row["type"]) if row else None


async def apply_event(conn: asyncpg.Connection, *, device_id: uuid.UUID, case_id: uuid.UUID, serial: str | None,
                      event_type: str, recorded_at: datetime, event_id: int, received_at: datetime,
                      outbox: Outbox) -> None:
    """Apply the policy to one newly stored event (the caller stored it and holds the device's row lock)."""
    if event_type not in ("device_offline", "device_online"):
        await restore_on_contact(conn, device_id, recorded_at, via=event_type, outbox=outbox)
    rule = POLICY[event_type]
    current = await _open_in_family(conn, device_id, rule.family)
    decision = decide(event_type, current.level if current else None, current.opened_at if current else None,
                      recorded_at)
    if isinstance(decision, Ignore):
        return
    if isinstance(decision, Attach):
        assert current is not None
        await _attach(conn, current, decision, event_type=event_type, recorded_at=recorded_at, via=event_type,
                      outbox=outbox)
        return
    alert_id = alert_id_for(device_id, event_type, recorded_at)
    opened = await alert_store.open_alert(
        conn, outbox=outbox, alert_id=alert_id, case_id=case_id, kind="device_event", level=decision.level,
        confidence="confirmed", opened_at=recorded_at, subject_id=str(device_id), device_id=device_id,
        late=received_at - recorded_at > LATE_AFTER,
        detail={"family": rule.family, "event": event_type, "serial": serial, "event_id": event_id},
    )
    if not opened:
        return
    over = await _restored_since(conn, device_id, rule.family, recorded_at)
    if over is not None:
        at, via = over
        current = _Current(alert_id, decision.level, "confirmed", recorded_at)
        await _attach(conn, current, Attach("note", decision.level, clears=True), event_type=via,
                      recorded_at=at, via=via, outbox=outbox)


async def restore_on_contact(conn: asyncpg.Connection, device_id: uuid.UUID, at: datetime, *, via: str,
                             outbox: Outbox) -> None:
    """A position or any event from the tag shows it is online again: clear its open ``device_offline`` alert
    (only when the contact is newer than the alert). The caller holds the device's row lock."""
    current = await _open_in_family(conn, device_id, "offline")
    if current is None or at < current.opened_at:
        return
    await _attach(conn, current, Attach("note", current.level, clears=True), event_type=via, recorded_at=at, via=via,
                  outbox=outbox)
