"""The adapter that feeds the pure engine from the fix log and stores its decisions.

Flow: ingestion commits fixes to ``positions`` (the ordered log, ``seq``) and NOTIFYs ``afstand_fixes``;
this runner reads ``seq > last_seq`` in batches, lets :class:`geofence.Engine` decide, and in ONE transaction
stores the alert changes and advances its durable progress marker. A crash before that commit replays the
batch; a crash after it does not. Either way the engine's decisions are deterministic in log order and alert
writes are keyed by ``(episode_id, n)``, so nothing is evaluated twice into a second alert.

Configuration (cases, orders, zones, devices) is loaded by version: triggers bump ``config_version`` and log
the changed case in ``config_changes`` in the same transaction as each change (migrations/0006). The runner
remembers the version it loaded and, when woken by ``afstand_config``, when its listener reconnects, and at least
every ``engine_reconcile_s``, reloads the cases changed since. A lost notification costs at most one
reconciliation period, never a change.

Scale-out seam: today one runner reads the whole log. Partitioning means one runner per hash(case_id) range
reading the same kind of ordered, per-case log (e.g. a NATS JetStream subject per partition); nothing in
``geofence/`` changes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from datetime import datetime, timezone

import asyncpg

from api.platform import background
from api.platform import metrics
from api.platform import pg_channels
from api.alerts.repository import apply_engine_changes
from api.platform.context import Context
from api.monitoring import repository, snapshot
from api.monitoring.config import load_cases
from api.platform.pg_listener import Listener
from geofence import Engine, EngineSettings
from geofence.model import AlertChange, Fix, FixStatus, Party
from geofence.state import SnapshotRefused

log = logging.getLogger(__name__)

ENGINE_ID = "main"
CONFIG_CHANGES_KEPT = "1 day"  # config_changes rows older than this are pruned; an engine further behind reloads all


def _engine_settings(ctx: Context) -> EngineSettings:
    s = ctx.settings
    return EngineSettings(
        victim_max_age_s=s.victim_max_age_s,
        coarse_accuracy_m=s.coarse_accuracy_m,
        offender_silent_s=s.offender_silent_s,
        victim_silent_s=s.victim_silent_s,
        history_s=s.history_s,
        walking_speed_mps=s.walking_speed_mps,
        delivery_window_s=s.delivery_window_s,
        clock_fix_max_age_s=s.clock_fix_max_age_s,
    )


def _fix(row: asyncpg.Record) -> Fix:
    return Fix(
        fix_id=str(row["seq"]),
        device_id=str(row["device_id"]),
        case_id=str(row["case_id"]),
        party=Party(row["party"]),
        recorded_at=row["recorded_at"],
        received_at=row["received_at"],
        lat=row["lat"],
        lon=row["lon"],
        accuracy_m=row["accuracy_m"],
        source=row["source"],
        speed_mps=row["speed_mps"],
    )


class EngineRunner:
    def __init__(self, ctx: Context, url: str) -> None:
        self.ctx = ctx
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        wakes = {pg_channels.FIXES: self._wake.set, pg_channels.CONFIG: self._config_due}
        self.listener = Listener(url, "engine", wakes, resync=self._config_due)
        self.engine = Engine(_engine_settings(ctx))
        self.last_seq = 0
        self.caught_up = False
        self.config_version = 0  # the configuration version the engine holds
        self._check_config = False
        self._last_reconcile = time.monotonic()
        self._last_tick = 0.0
        self._last_snapshot = time.monotonic()

    async def start(self) -> None:
        pool = self.ctx.pool
        snap = await repository.read_snapshot(pool, ENGINE_ID)
        if snap is not None:
            try:
                self.engine = snapshot.decode(snap[1], _engine_settings(self.ctx))
                self.last_seq = snap[0]
            except SnapshotRefused as e:
                # A snapshot of another engine version: replay the whole log instead (alert writes are idempotent).
                log.warning("engine snapshot refused; replaying the log", extra={"reason": str(e)})
        marker = await repository.progress_marker(pool, ENGINE_ID)
        log.info("engine starting", extra={"snapshot_seq": self.last_seq, "progress_seq": marker or 0})
        # Fixes between the snapshot and the marker are evaluated again; their alert writes are idempotent.
        # The version is read before the cases: a change committed in between is loaded now and again later.
        self.config_version = await repository.config_version(pool)
        await self._reload(None)
        # Case configuration is long-lived: moving it out of the collector's generations keeps GC pauses out
        # of the per-batch latency (bench/README.md measured the difference).
        gc.freeze()
        await self.listener.start()
        self._task = asyncio.create_task(self._run(), name="engine")

    async def stop(self) -> None:
        await background.cancel(self._task)
        await self.listener.stop()

    def _config_due(self) -> None:
        """A configuration change was notified, or the listener (re)connected: compare versions at once."""
        self._check_config = True
        self._wake.set()

    async def _sync_config(self) -> None:
        """Load every case changed after the version the engine holds; all cases when that history was pruned."""
        self._check_config = False
        self._last_reconcile = time.monotonic()
        try:
            await self._load_changed()
        except BaseException:
            self._check_config = True  # a notification consumed by a failed attempt must not wait for the timer
            raise

    async def _load_changed(self) -> None:
        rows = await repository.config_changes_after(self.ctx.pool, self.config_version)
        head = rows[0]["head"]
        changes = [r for r in rows if r["version"] is not None]
        metrics.ENGINE_CONFIG_LAG.set(max((r["age_s"] for r in changes), default=0.0))
        if head == self.config_version:
            return
        if changes and changes[0]["version"] == self.config_version + 1:
            await self._reload(list({r["case_id"] for r in changes}))
        else:
            log.warning("configuration history pruned past the engine's version; reloading every case",
                        extra={"engine_version": self.config_version, "head": head})
            await self._reload(None)
        self.config_version = head
        metrics.ENGINE_CONFIG_LAG.set(0.0)

    async def _reload(self, case_ids: list[uuid.UUID] | None) -> None:
        """Configure the given cases (``None``: all) as the database has them; drop those no longer active."""
        pool = self.ctx.pool
        configs = await load_cases(pool, case_ids)
        if case_ids is None:
            gone = await repository.inactive_case_ids(pool)
        else:
            gone = set(map(str, case_ids)) - {c.case_id for c in configs}
        now = self.ctx.clock.now()
        changes: list[AlertChange] = []
        for cfg in configs:
            changes += self.engine.configure(cfg, now)
        for cid in gone:
            changes += self.engine.remove_case(cid, now)
        if changes:
            await self._store(changes, None)
        await repository.prune_config_changes(pool, CONFIG_CHANGES_KEPT)

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The engine must keep running: log, back off, and retry the same batch.
                log.exception("engine step failed; retrying")
                await asyncio.sleep(1.0)

    async def _step(self) -> None:
        if self._check_config or time.monotonic() - self._last_reconcile >= self.ctx.settings.engine_reconcile_s:
            await self._sync_config()
        batch = await repository.positions_after(self.ctx.pool, self.last_seq, self.ctx.settings.engine_batch_size)
        if batch:
            await self._process(batch)
        else:
            metrics.ENGINE_LOG_LAG.set(0.0)
        self.caught_up = len(batch) < self.ctx.settings.engine_batch_size
        # No clock-driven check until every fix in the log is evaluated (geofence/RULES.md, R-TICK-3): after a
        # start, a restore or a catch-up the replayed fixes decide first, so a tick never judges on stale state.
        if self.caught_up and time.monotonic() - self._last_tick >= self.ctx.settings.engine_tick_s:
            self._last_tick = time.monotonic()
            changes = self.engine.tick(self.ctx.clock.now())
            if changes:
                await self._store(changes, None)
        if self.caught_up and not self._check_config:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.ctx.settings.engine_poll_s)
            except asyncio.TimeoutError:
                pass

    async def _process(self, batch: list[asyncpg.Record]) -> None:
        fixes = [_fix(r) for r in batch]
        verdicts, changes = self.engine.process(fixes)
        for v in verdicts:
            if v.status is not FixStatus.ACCEPTED:
                metrics.FIXES.labels("engine", v.status.value).inc()
        received = {f.fix_id: f.received_at for f in fixes}
        await self._store(changes, batch[-1]["seq"])
        self.last_seq = batch[-1]["seq"]
        now = datetime.now(timezone.utc)
        for c in changes:
            if c.evidence and c.evidence[-1] in received:
                metrics.FIX_TO_ALERT.observe((now - received[c.evidence[-1]]).total_seconds())
        lag = await repository.log_lag(self.ctx.pool, self.last_seq)
        metrics.ENGINE_LAG.set(max(lag["head"] - self.last_seq, 0))
        metrics.ENGINE_LOG_LAG.set(max(lag["age_s"] or 0.0, 0.0))

    async def _store(self, changes: list[AlertChange], last_seq: int | None) -> None:
        snapshot_due = last_seq is not None and (
            time.monotonic() - self._last_snapshot >= self.ctx.settings.engine_snapshot_every_s
        )
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            await apply_engine_changes(conn, changes, outbox=self.ctx.outbox,
                                       hold_silences=self.ctx.settings.outage_check_s > 0)
            if last_seq is not None:
                await repository.advance_progress(conn, ENGINE_ID, last_seq)
            if snapshot_due:
                await repository.save_snapshot(conn, ENGINE_ID, last_seq, snapshot.encode(self.engine))
        if snapshot_due:
            self._last_snapshot = time.monotonic()
