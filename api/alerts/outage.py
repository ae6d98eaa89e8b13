"""Floods of silence: when many tags of one supplier fall silent together the monitoring room sees one
``supplier_outage`` alert, not one alert per tag (ARCHITECTURE.md, "Floods of silence").

The engine judges each tag alone (geofence/RULES.md, R-TICK-4/5); whether silences belong together needs the
tag → supplier mapping and spans every case, so it is decided here, cluster-wide, by :meth:`OutageMonitor.run_once`,
which a scheduler loop calls and which is idempotent (the caller may run it under a lease):

1. The engine's runner stores a silence that may belong to an outage *held* (``alerts.held_since``): stored,
   but with no change yet, so nothing reaches the stream or anyone's phone. Never held: a silence near the victim
   (R-TICK-5), of a tag with an open tamper alert, of a device without a supplier (the victim's phone).
2. Per supplier with held silences: when an outage of it is open, or at least ``outage_min_devices`` of its tags
   and ``outage_min_share`` of its active tags fell silent within ``outage_window_s``, the held silences are
   folded into the outage (``group_id``), in batches of ``outage_batch`` per transaction so the alert-log lock
   is never held across the flood. Otherwise a silence held for ``outage_hold_s`` is released: its opened change
   is written then and it is an ordinary alert.
3. Once an outage has lasted ``outage_victim_after_s`` the victims of the cases whose tag is still silent are
   told (a notice, api/contacts/notices), and told again when their tag reports; the outage clears when every
   tag of it reports again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import asyncpg

from api.alerts import repository
from api.contacts.notices import service as notices
from api.platform import background
from api.platform.settings import Settings
from notifications.outbox import Outbox

log = logging.getLogger(__name__)

_NS = uuid.UUID("0c7f4d52-5a0e-4a57-9d0b-6f2f0f8f4c11")


def is_outage(silent: int, active: int, min_devices: int, min_share: float) -> bool:
    """Enough tags of one supplier silent together to be the supplier's fault rather than each wearer's."""
    return silent >= min_devices and silent >= min_share * active


def outage_id(supplier_id: uuid.UUID, first_silence: uuid.UUID) -> uuid.UUID:
    """Derived from the supplier and the outage's first silence: two rounds deciding the same outage (a lease
    handed over mid-round) name the same alert."""
    return uuid.uuid5(_NS, f"{supplier_id}/{first_silence}")


@dataclass
class Report:
    grouped: int = 0
    released: int = 0
    outages_opened: int = 0
    outages_cleared: int = 0
    victims_told: int = 0


class OutageMonitor:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, outbox: Outbox) -> None:
        self.pool = pool
        self.settings = settings
        self.outbox = outbox
        self._periodic = background.Periodic(
            "outage monitor", settings.outage_check_s, self.run_once,
            worth_logging=lambda r: bool(r.grouped or r.released or r.outages_opened or r.outages_cleared))

    async def run_once(self) -> Report:
        s = self.settings
        report = Report()
        async with self.pool.acquire() as conn:
            suppliers = await repository.held_by_supplier(conn, s.outage_window_s, s.outage_hold_s)
        for sup in suppliers:
            outage = sup["outage"]
            if outage is None and is_outage(sup["silent"], sup["active"], s.outage_min_devices, s.outage_min_share):
                outage = outage_id(sup["supplier_id"], sup["ids"][0])
                async with self.pool.acquire() as conn, conn.transaction():
                    if await repository.open_outage(conn, outbox=self.outbox, outage_id=outage,
                                                    supplier_id=sup["supplier_id"]):
                        report.outages_opened += 1
                log.warning("supplier outage", extra={"supplier_id": str(sup["supplier_id"]),
                                                      "silent": sup["silent"], "active": sup["active"]})
            if outage is not None:
                report.grouped += await self._group(outage, list(sup["ids"]))
            elif sup["due"]:
                report.released += await self._release(list(sup["due"]))
        async with self.pool.acquire() as conn:
            outages = await repository.open_outages(conn)
        for o in outages:
            if o["age_s"] >= s.outage_victim_after_s:
                report.victims_told += await self._tell_victims(o["id"])
            if not o["silent"]:
                async with self.pool.acquire() as conn, conn.transaction():
                    await repository.clear_outage(conn, o["id"], outbox=self.outbox)
                report.outages_cleared += 1
                # Victims told of the outage hear that their tag reports again.
                report.victims_told += await self._tell_victims(o["id"])
        return report

    async def _group(self, outage: uuid.UUID, ids: list[uuid.UUID]) -> int:
        """Fold the held silences into the outage, one batch per transaction: the alert-log lock is held for one
        batch at a time, so a real violation waits at most that long."""
        grouped = 0
        for i in range(0, len(ids), self.settings.outage_batch):
            async with self.pool.acquire() as conn, conn.transaction():
                grouped += await repository.group_held(conn, outage, ids[i:i + self.settings.outage_batch])
        if grouped:
            async with self.pool.acquire() as conn, conn.transaction():
                await repository.lock_alert_log(conn)
                detail = await repository.describe_outage(conn, outage)
                # One change per round on the outage alert: the console sees its count and its cases grow.
                await repository.append_change(conn, outage, "grouped", outbox=self.outbox, level="violation",
                                               confidence="confirmed", detail={"added": grouped,
                                                                               "devices": detail["devices"]})
        return grouped

    async def _release(self, ids: list[uuid.UUID]) -> int:
        released = 0
        for i in range(0, len(ids), self.settings.outage_batch):
            async with self.pool.acquire() as conn, conn.transaction():
                released += len(await repository.release_held(conn, ids[i:i + self.settings.outage_batch],
                                                              outbox=self.outbox))
        return released

    async def _tell_victims(self, outage: uuid.UUID) -> int:
        """A notice to each victim whose offender's tag is silent in the outage (and one when it reports again),
        once each: the silence's alert remembers that she was told."""
        told = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await repository.cases_to_tell(conn, outage, self.settings.outage_batch)
                if not rows:
                    return told
                for resumed in (False, True):
                    cases = [r["case_id"] for r in rows if r["resumed"] is resumed]
                    kind = "monitoring_resumed" if resumed else "monitoring_interrupted"
                    for case_id in cases:
                        await notices.tell_victim(conn, self.outbox, case_id, kind, f"{kind}:{outage}:{case_id}",
                                                  urgency="important")
                    if cases:
                        await repository.mark_told(conn, outage, cases, resumed)
                told += len(rows)

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
