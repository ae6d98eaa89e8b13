"""The adapter that feeds one pure engine from an ordered log of fixes and stores its decisions.

An :class:`EngineRunner` watches either every case, reading ``positions`` itself (:class:`PostgresFixLog`, the
default), or the cases of one partition, reading the partition's subject on NATS JetStream
(:class:`api.monitoring.jetstream.PartitionLog`). It runs under a lease (api/cluster/leases.py): started when the
lease is granted, stopped when it is lost or handed over, and every transaction that stores its decisions first
checks, in the database, that the lease is still its own, so a process that lost the lease cannot commit a
decision after another has taken over.

Flow: read the next fixes after its position, skip any at or below it (a transport may repeat a fix: JetStream's
duplicate window is minutes, a relay may publish again after a crash), let :class:`geofence.Engine` decide, and
in ONE transaction store the alert changes and advance its durable progress marker. A crash before that commit
replays the batch; a crash after it does not. The engine's decisions are deterministic in log order and alert
writes are keyed by ``(episode_id, n)``, so a replay raises nothing twice.

Configuration (cases, orders, zones, devices) is loaded by version: triggers bump ``config_version`` and log
the changed case in ``config_changes`` in the same transaction as each change (migrations/0006). The runner
remembers the version it loaded and, when woken by ``afstand_config``, when its listener reconnects, and at least
every ``engine_reconcile_s``, reloads the cases changed since (only those of its partition). A lost notification
costs at most one reconciliation period, never a change.
"""

from __future__ import annotations

import asyncio
import gc

import asyncpg
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Awaitable, Callable

from api.alerts.repository import apply_engine_changes
from api.cluster.leases import Lease, LeaseLost
from api.cluster.partitioning import partition_of
from api.monitoring import repository, snapshot
from api.monitoring.config import load_cases
from api.monitoring.fix_log import FixLog, LogPosition
from api.platform import background, metrics
from api.platform.context import Context
from geofence import Engine, EngineSettings
from geofence.model import AlertChange, Fix, FixStatus
from geofence.state import SnapshotRefused

log = logging.getLogger(__name__)

ENGINE_ID = "main"  # the engine over the whole log (no partitions)
CONFIG_CHANGES_KEPT = "1 day"  # config_changes rows older than this are pruned; an engine further behind reloads all


def engine_settings(ctx: Context) -> EngineSettings:
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
        near_silent_s=s.near_silent_s,
        ble_lapse_s=s.ble_lapse_s,
        fast_approach_s=s.fast_approach_s,
    )


class EngineRunner:
    """One engine over one log. A :class:`api.cluster.leases.Duty`: restartable, each start begins afresh from
    the stored snapshot and progress marker."""

    def __init__(self, ctx: Context, fix_log: FixLog, engine_id: str = ENGINE_ID, *,
                 pool: asyncpg.Pool | None = None, partition: tuple[int, int] | None = None,
                 may_tick: Callable[[], Awaitable[bool]] | None = None) -> None:
        self.ctx = ctx
        self.pool = pool or ctx.pool  # an engine on a loop of its own brings a pool of that loop
        self.log = fix_log
        self.engine_id = engine_id
        self.partition = partition  # (this partition, of how many); None: every case
        self._may_tick = may_tick  # besides being caught up: may clock-driven checks run now?
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.started = asyncio.Event()  # set once the snapshot is restored and the cases loaded
        self.lease: Lease | None = None
        self._reset()

    def _reset(self) -> None:
        self.engine = Engine(engine_settings(self.ctx))
        self.position = LogPosition()
        self.caught_up = False
        self.config_version = 0  # the configuration version the engine holds
        self._check_config = False
        self._last_reconcile = time.monotonic()
        self._last_tick = 0.0
        self._last_snapshot = time.monotonic()
        self._lag_measured = 0.0
        self._snapshotting: asyncio.Task[None] | None = None
        self._unstored: tuple[list[AlertChange], LogPosition, dict[str, datetime]] | None = None
        self.started.clear()

    @property
    def last_seq(self) -> int:
        return self.position.seq

    @property
    def ready(self) -> bool:
        return self.caught_up

    # ------------------------------------------------------------------ the Duty

    async def start(self, lease: Lease | None = None) -> None:
        """Begin watching (returns at once; :attr:`started` is set once the state is restored)."""
        self._reset()
        self.lease = lease
        self._task = asyncio.create_task(self._main(), name=f"engine-{self.engine_id}")

    async def stop(self, *, handover: bool = False) -> None:
        """Stop deciding. ``handover``: the lease is still ours, so save a snapshot for the next holder."""
        await background.cancel(self._task)
        self._task = None
        await background.cancel(self._snapshotting)
        self._snapshotting = None
        if handover and self.started.is_set():
            try:
                await self._save(snapshot_now=True)
            except Exception as e:  # the next holder replays from the last marker instead
                log.warning("no snapshot at handover", extra={"engine": self.engine_id, "error": type(e).__name__})
        await self.log.close()

    async def wait_started(self) -> None:
        await self.started.wait()

    def wake(self) -> None:
        """New fixes may be in the log."""
        self._wake.set()

    def config_due(self) -> None:
        """A configuration change was notified, or the listener (re)connected: compare versions at once."""
        self._check_config = True
        self._wake.set()

    # ------------------------------------------------------------------ restore

    async def _restore(self) -> None:
        pool = self.pool
        snap = await repository.read_snapshot(pool, self.engine_id)
        restored_at_version = 0
        if snap is not None:
            try:
                self.engine = snapshot.decode(snap.state, engine_settings(self.ctx))
                self.position = LogPosition(snap.last_seq, snap.stream_seq)
                restored_at_version = snap.config_version
            except SnapshotRefused as e:
                # A snapshot of another engine version: replay the whole log instead (alert writes are idempotent).
                log.warning("engine snapshot refused; replaying the log", extra={"reason": str(e)})
        marker = await repository.progress_marker(pool, self.engine_id)
        log.info("engine starting", extra={"engine": self.engine_id, "snapshot_seq": self.position.seq,
                                           "progress_seq": marker or 0})
        # Fixes between the snapshot and the marker are evaluated again; their alert writes are idempotent.
        if restored_at_version:
            # The snapshot holds every case as configured at its version: load only what changed since (every
            # case, when that history was pruned). Restoring is as costly as configuring, so not doing both
            # halves a restart.
            self.config_version = restored_at_version
            await self._load_changed()
        else:
            # The version is read before the cases: a change committed in between is loaded now and again later.
            self.config_version = await repository.config_version(pool)
            await self._reload(None)
        # Case configuration is long-lived: moving it out of the collector's generations keeps GC pauses out
        # of the per-batch latency (bench/README.md measured the difference).
        gc.freeze()
        await self.log.open(self.position, self.wake)
        self.started.set()

    # ------------------------------------------------------------------ configuration

    def _mine(self, case_id: object) -> bool:
        return self.partition is None or partition_of(str(case_id), self.partition[1]) == self.partition[0]

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
        rows = await repository.config_changes_after(self.pool, self.config_version)
        head = rows[0]["head"]
        changes = [r for r in rows if r["version"] is not None]
        metrics.ENGINE_CONFIG_LAG.set(max((r["age_s"] for r in changes), default=0.0))
        if head == self.config_version:
            return
        if changes and changes[0]["version"] == self.config_version + 1:
            mine = list({r["case_id"] for r in changes if self._mine(r["case_id"])})
            if mine:
                await self._reload(mine)
        else:
            log.warning("configuration history pruned past the engine's version; reloading every case",
                        extra={"engine_version": self.config_version, "head": head})
            await self._reload(None)
        self.config_version = head
        metrics.ENGINE_CONFIG_LAG.set(0.0)

    async def _reload(self, case_ids: list[uuid.UUID] | None) -> None:
        """Configure the given cases (``None``: all of this engine's) as the database has them; drop those no
        longer active."""
        pool = self.pool
        configs = [c for c in await load_cases(pool, case_ids, self.partition) if self._mine(c.case_id)]
        if case_ids is None:
            gone = {c for c in await repository.inactive_case_ids(pool) if self._mine(c)}
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
        if self.partition is None or self.partition[0] == 0:  # one pruner is enough
            await repository.prune_config_changes(pool, CONFIG_CHANGES_KEPT)

    # ------------------------------------------------------------------ the loop

    async def _main(self) -> None:
        while not self.started.is_set():
            try:
                await self._restore()
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                log.error("engine stopped: its lease is no longer its own", extra={"engine": self.engine_id})
                return
            except Exception:
                log.exception("engine restore failed; retrying", extra={"engine": self.engine_id})
                self._reset()
                await asyncio.sleep(1.0)
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                log.error("engine stopped: its lease is no longer its own", extra={"engine": self.engine_id})
                self.caught_up = False
                return
            except Exception:
                # The engine must keep running: log, back off, and retry the same batch.
                log.exception("engine step failed; retrying", extra={"engine": self.engine_id})
                await asyncio.sleep(1.0)

    async def _step(self) -> None:
        if self._unstored is not None:
            await self._flush()
        if self._check_config or time.monotonic() - self._last_reconcile >= self.ctx.settings.engine_reconcile_s:
            await self._sync_config()
        self._wake.clear()  # before reading: a wake-up that comes while we read is kept for the wait below
        batch = await self.log.read(self.ctx.settings.engine_batch_size, self.position)
        if self.partition is not None:
            metrics.PARTITION_LOG_LAG.labels(str(self.partition[0])).set(batch.pending)
        moved = batch.position != self.position
        if moved:
            await self._process(batch.fixes, batch.position)
        elif self.partition is None:
            metrics.ENGINE_LOG_LAG.set(0.0)
        self.caught_up = batch.caught_up
        # No clock-driven check until every fix in the log is evaluated (geofence/RULES.md, R-TICK-3): after a
        # start, a restore or a catch-up the replayed fixes decide first, so a tick never judges on stale state.
        if self.caught_up and time.monotonic() - self._last_tick >= self.ctx.settings.engine_tick_s:
            if self._may_tick is None or await self._may_tick():
                self._last_tick = time.monotonic()
                changes = self.engine.tick(self.ctx.clock.now())
                if changes:
                    await self._store(changes, None)
        # Nothing to do until woken: caught up, or the log has nothing for us yet (a JetStream fetch under way).
        if (self.caught_up or not moved) and not self._check_config:
            try:
                await asyncio.wait_for(self._wake.wait(), self.ctx.settings.engine_poll_s)
                if self.ctx.settings.engine_coalesce_s > 0:
                    # Commits arriving together are read as one batch: one engine pass, one store.
                    await asyncio.sleep(self.ctx.settings.engine_coalesce_s)
            except asyncio.TimeoutError:
                pass

    async def _process(self, fixes: list[Fix], position: LogPosition) -> None:
        # A fix at or below the position was evaluated before: a transport repeated it.
        fresh = [f for f in fixes if int(f.fix_id) > self.position.seq]
        verdicts, changes = self.engine.process(fresh)
        for v in verdicts:
            if v.status is not FixStatus.ACCEPTED:
                metrics.FIXES.labels("engine", v.status.value).inc()
        # The engine has moved on: its decisions must be stored before anything else is read, however many
        # attempts that takes (the loop retries _flush first).
        self._unstored = (changes, position, {f.fix_id: f.received_at for f in fresh})
        await self._flush()

    async def _flush(self) -> None:
        assert self._unstored is not None
        changes, position, received = self._unstored
        await self._store(changes, position)
        self._unstored = None
        self.position = position
        now = datetime.now(timezone.utc)
        for c in changes:
            if c.evidence and c.evidence[-1] in received:
                metrics.FIX_TO_ALERT.observe((now - received[c.evidence[-1]]).total_seconds())
        # The lag is a gauge for operators: measured at most once a second, not after every batch.
        if self.partition is None and time.monotonic() - self._lag_measured >= 1.0:
            self._lag_measured = time.monotonic()
            lag = await repository.log_lag(self.pool, self.position.seq)
            metrics.ENGINE_LAG.set(max(lag["head"] - self.position.seq, 0))
            metrics.ENGINE_LOG_LAG.set(max(lag["age_s"] or 0.0, 0.0))

    async def _store(self, changes: list[AlertChange], position: LogPosition | None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            if self.lease is not None:
                await self.lease.check(conn)
            await apply_engine_changes(conn, changes, outbox=self.ctx.outbox,
                                       hold_silences=self.ctx.settings.outage_check_s > 0)
            if position is not None:
                await repository.advance_progress(conn, self.engine_id, position.seq, position.stream_seq)
        snapshot_due = position is not None and (
            time.monotonic() - self._last_snapshot >= self.ctx.settings.engine_snapshot_every_s
        )
        if snapshot_due and (self._snapshotting is None or self._snapshotting.done()):
            assert position is not None
            self._last_snapshot = time.monotonic()
            # The state is copied out as plain data now, as of this stored position; encoding and writing it
            # happen beside the engine, which goes on with the next batch.
            self._snapshotting = asyncio.create_task(
                self._write_snapshot(position, self.engine.snapshot(), self.config_version))

    async def _write_snapshot(self, position: LogPosition, state: dict, config_version: int) -> None:
        try:
            data = await asyncio.to_thread(snapshot.encode_plain, state)
            async with self.pool.acquire() as conn, conn.transaction():
                if self.lease is not None:
                    await self.lease.check(conn)
                await repository.save_snapshot(conn, self.engine_id, position, data, config_version)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the next one is due soon; a restart meanwhile replays a little more
            log.warning("engine snapshot not saved", extra={"engine": self.engine_id, "error": type(e).__name__})

    async def _save(self, *, snapshot_now: bool) -> None:
        """Progress and a snapshot as of now (a clean handover)."""
        if self._unstored is not None:
            await self._flush()  # a snapshot must never hold decisions that are not stored
        async with self.pool.acquire() as conn, conn.transaction():
            if self.lease is not None:
                await self.lease.check(conn)
            await repository.advance_progress(conn, self.engine_id, self.position.seq, self.position.stream_seq)
            if snapshot_now:
                await repository.save_snapshot(conn, self.engine_id, self.position, snapshot.encode(self.engine),
                                               self.config_version)
