"""Nothing kept longer than needed: the scheduled purge of old positions and encounters, itself audited.

Every ``retention_check_s`` the job, with ``now`` from its injected clock (tests pass one, nothing sleeps):

* deletes **positions** and the victim's phone's Bluetooth **encounters** (which may hold her position and what
  it heard) recorded before ``now - retention_positions_days`` (default 30 days), and the **rejected items**
  (``ingest_rejections``, which may hold coordinates) received before that cut-off;
* keeps every position or encounter that is **evidence for an alert** of its case, until the case has been closed
  for ``retention_evidence_days_after_close`` (default 2,557 days, about 7 years). An entry is evidence when

  - its ``seq`` is listed in the alert's ``evidence`` (the engine's proving fixes), or is the panic's ``fix_seq``;
  - or it was recorded in the alert's window ``[opened_at - margin, end + margin]``, where ``end`` is the
    ``cleared_at`` fix time, else the time the alert was resolved, else ``now`` (an alert still running keeps
    everything of its case from its opening on), and ``margin`` is ``retention_evidence_margin_s`` (10 min):
    the approach before an alert and the retreat after it are what a court wants to see.

  A case that is not closed keeps its evidence indefinitely;
* never deletes an entry the engine has not yet processed (``seq`` above the lowest ``engine_progress.last_seq``,
  positions and encounters sharing the seq): with no progress marker at all, it deletes none;
* writes one audit record per case it purged from and one summary record per run (counts and cut-offs, never a
  coordinate), actor ``system:retention``.

Deletes run in batches of :data:`BATCH`, each in its own transaction, so the engine and ingestion are never
held up for long. A session advisory lock makes concurrent runs (two server processes) skip rather than race.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import asyncpg

from api.platform.clock import utcnow
from api.intake import repository as log_writer  # the one writer of positions, encounters and rejections
from api.platform import background
from api.privacy import audit, repository
from api.platform.settings import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ACTOR = "system:retention"
BATCH = 5000

@dataclass
class Report:
    ran: bool = True
    cutoff: datetime | None = None
    evidence_cutoff: datetime | None = None
    engine_last_seq: int = 0
    positions_purged: int = 0
    positions_kept_as_evidence: int = 0
    encounters_purged: int = 0
    encounters_kept_as_evidence: int = 0
    rejections_purged: int = 0
    cases: dict[str, int] = field(default_factory=dict)  # case id -> positions purged
    encounter_cases: dict[str, int] = field(default_factory=dict)  # case id -> encounters purged


async def purge(pool: asyncpg.Pool, settings: Settings, now: datetime) -> Report:
    """One retention run as of ``now``. Safe to run at any time and in several processes at once."""
    cutoff = now - timedelta(days=settings.retention_positions_days)
    evidence_cutoff = now - timedelta(days=settings.retention_evidence_days_after_close)
    margin = timedelta(seconds=settings.retention_evidence_margin_s)
    report = Report(cutoff=cutoff, evidence_cutoff=evidence_cutoff)
    async with pool.acquire() as lock_conn:
        if not await repository.try_retention_lock(lock_conn):
            return Report(ran=False)
        try:
            max_seq = await repository.engine_processed_up_to(pool)
            report.engine_last_seq = max_seq
            cases = await repository.cases_for_retention(pool)
            for case in cases:
                expired = case["status"] == "closed" and case["closed_at"] is not None \
                    and case["closed_at"] < evidence_cutoff
                purged: dict[str, int] = {}
                kept: dict[str, int] = {}
                for table in log_writer.LOG_TABLES:
                    purged[table] = await _purge_case(pool, table, case["id"], cutoff, max_seq, margin, now, expired)
                    kept[table] = await repository.count_old(pool, table, case["id"], cutoff, max_seq)
                report.positions_kept_as_evidence += kept["positions"]
                report.encounters_kept_as_evidence += kept["encounters"]
                if purged["positions"]:
                    report.positions_purged += purged["positions"]
                    report.cases[str(case["id"])] = purged["positions"]
                if purged["encounters"]:
                    report.encounters_purged += purged["encounters"]
                    report.encounter_cases[str(case["id"])] = purged["encounters"]
                if any(purged.values()):
                    await audit.record(pool, actor=ACTOR, role="system", action="retention.purge_case",
                                       case_id=case["id"], reason="retention period ended", detail={
                                           "positions_purged": purged["positions"],
                                           "positions_kept_as_evidence": kept["positions"],
                                           "encounters_purged": purged["encounters"],
                                           "encounters_kept_as_evidence": kept["encounters"],
                                           "cutoff": cutoff.isoformat(), "evidence_expired": expired})
            report.rejections_purged = await log_writer.purge_rejections(pool, cutoff)
            await audit.record(pool, actor=ACTOR, role="system", action="retention.purge",
                               reason="retention period ended", detail={
                                   "cutoff": cutoff.isoformat(), "evidence_cutoff": evidence_cutoff.isoformat(),
                                   "engine_last_seq": max_seq, "positions_purged": report.positions_purged,
                                   "positions_kept_as_evidence": report.positions_kept_as_evidence,
                                   "encounters_purged": report.encounters_purged,
                                   "encounters_kept_as_evidence": report.encounters_kept_as_evidence,
                                   "rejections_purged": report.rejections_purged,
                                   "cases_purged": len(report.cases.keys() | report.encounter_cases.keys()),
                               })
        finally:
            await repository.release_retention_lock(lock_conn)
    log.info("retention purge", extra={"positions_purged": report.positions_purged,
                                       "positions_kept": report.positions_kept_as_evidence,
                                       "encounters_purged": report.encounters_purged,
                                       "encounters_kept": report.encounters_kept_as_evidence,
                                       "rejections_purged": report.rejections_purged})
    return report


async def _purge_case(pool: asyncpg.Pool, table: str, case_id: uuid.UUID, cutoff: datetime, max_seq: int,
                      margin: timedelta, now: datetime, evidence_expired: bool) -> int:
    total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            n = await log_writer.purge_log(
                conn, table, case_id, recorded_before=cutoff, max_seq=max_seq, limit=BATCH,
                evidence_margin=None if evidence_expired else margin, now=now)
        total += n
        if n < BATCH:
            return total


class RetentionJob:
    """Runs :func:`purge` every ``retention_check_s`` seconds; ``clock`` gives ``now`` (tests inject one)."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, clock: Clock = utcnow) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock
        # The first run comes one interval after start, so a restart loop cannot turn into a purge loop.
        self._periodic = background.Periodic("retention", settings.retention_check_s, self.run_once,
                                             first_after_interval=True)

    async def start(self) -> None:
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def run_once(self) -> Report:
        return await purge(self.pool, self.settings, self.clock())
