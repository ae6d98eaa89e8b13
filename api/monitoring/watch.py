"""What one process contributes to the watch, by its role, and how it reports on it.

Without NATS (the default) the engine reads ``positions`` itself and runs under the ``engine`` lease: a second
process of role ``all`` or ``engine`` stands by and takes over when the first stops renewing. With
``AFSTAND_NATS_URL`` the relay publishes the log to JetStream under the ``relay`` lease, and the engine processes
share the partitions, one engine per partition (api/cluster/leases.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS

from api.cluster import repository as cluster_repository
from api.cluster.leases import Duty, LeaseKeeper
from api.cluster.partitioning import partition_engine_id, partition_lease
from api.monitoring import jetstream, repository
from api.monitoring.fix_log import PostgresFixLog
from api.monitoring.jetstream import JetStreamConfig, PartitionLog
from api.monitoring.relay import Relay
from api.monitoring.engine_thread import EngineThread, ThreadedEngine
from api.monitoring.runner import EngineRunner
from api.platform import pg_channels
from api.platform.context import Context
from api.platform.pg_listener import Listener
from api.platform.settings import Settings

log = logging.getLogger(__name__)

ENGINE_LEASE = "engine"
RELAY_LEASE = "relay"


def jetstream_config(settings: Settings) -> JetStreamConfig | None:
    if not settings.nats_url:
        return None
    return JetStreamConfig(url=settings.nats_url, stream=settings.nats_stream,
                           subject_prefix=settings.nats_subject_prefix, partitions=settings.partitions,
                           max_age_s=settings.nats_max_age_s, replicas=settings.nats_replicas)


@dataclass
class Watch:
    """The engine-side duties of this process; :meth:`singles` and :meth:`partition_duty` feed its LeaseKeeper."""

    ctx: Context
    url: str
    runs_engine: bool  # role all or engine
    runs_relay: bool  # role all, engine or dispatcher, with NATS
    reports_coverage: bool = True  # /readyz says whether every duty of the watch is held somewhere
    stream: JetStreamConfig | None = None
    nats: NATS | None = None
    engine: EngineRunner | ThreadedEngine | None = None  # over the PostgreSQL log
    thread: EngineThread | None = None
    relay: Relay | None = None
    listener: Listener | None = None
    runners: dict[int, EngineRunner] = field(default_factory=dict)  # the partitions' engines made here

    async def start(self) -> None:
        if self.stream is not None and (self.runs_engine or self.runs_relay):
            self.nats = await jetstream.connect(self.stream, f"afstand-{self.ctx.settings.role}")
            js = self.nats.jetstream()
            await jetstream.ensure_stream(js, self.stream)
            if self.runs_relay:
                self.relay = Relay(self.ctx.pool, js, self.stream)
        elif self.runs_engine and self.ctx.settings.engine_thread and self.ctx.settings.role == "all":
            self.thread = EngineThread()
            self.thread.start()
            ctx = self.ctx
            self.engine = ThreadedEngine(self.thread, self.url,
                                         lambda pool: EngineRunner(ctx, PostgresFixLog(pool), pool=pool),
                                         connect_timeout_s=ctx.settings.db_connect_timeout_s)
        elif self.runs_engine:
            self.engine = EngineRunner(self.ctx, PostgresFixLog(self.ctx.pool))
        wakes: dict[str, Any] = {}
        if self.engine is not None:
            wakes = {pg_channels.FIXES: self.engine.wake, pg_channels.CONFIG: self.engine.config_due}
        else:
            if self.relay is not None:
                wakes[pg_channels.FIXES] = self.relay.wake
            if self.runs_engine:
                wakes[pg_channels.CONFIG] = self._config_due
        if wakes:
            self.listener = Listener(self.url, "engine", wakes, resync=self._resync)
            await self.listener.start()

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
        if isinstance(self.engine, ThreadedEngine):
            await self.engine.close()
        if self.nats is not None:
            await self.nats.close()

    def _config_due(self) -> None:
        for runner in self.runners.values():
            runner.config_due()

    def _resync(self) -> None:
        if self.engine is not None:
            self.engine.config_due()
        if self.relay is not None:
            self.relay.wake()
        self._config_due()

    # ------------------------------------------------------------------ duties for the lease keeper

    def singles(self) -> list[tuple[str, Duty]]:
        out: list[tuple[str, Duty]] = []
        if self.engine is not None:
            out.append((ENGINE_LEASE, self.engine))
        if self.relay is not None:
            out.append((RELAY_LEASE, self.relay))
        return out

    @property
    def partitions(self) -> int:
        return self.stream.partitions if self.stream is not None and self.runs_engine else 0

    def partition_duty(self, partition: int) -> EngineRunner:
        assert self.stream is not None and self.nats is not None
        runner = EngineRunner(
            self.ctx, PartitionLog(self.nats, self.stream, partition),
            partition_engine_id(partition), partition=(partition, self.stream.partitions),
            may_tick=self._relay_caught_up,
        )
        self.runners[partition] = runner
        return runner

    async def _relay_caught_up(self) -> bool:
        lag = await repository.relay_lag(self.ctx.pool)
        return lag["age_s"] <= self.ctx.settings.relay_max_lag_s

    # ------------------------------------------------------------------ readiness

    async def readiness(self, conn: asyncpg.Connection, keeper: LeaseKeeper | None) -> tuple[dict[str, bool], dict[str, Any]]:
        """Checks and details for /readyz. The watch is impaired when any duty is unowned cluster-wide, or this
        process owns one it is not keeping up with."""
        s = self.ctx.settings
        checks: dict[str, bool] = {}
        detail: dict[str, Any] = {}
        table = {r["name"]: r for r in await cluster_repository.leases(conn)}

        def owned(name: str) -> bool:
            row = table.get(name)
            return row is not None and row["live"]

        if keeper is not None:
            checks["leases"] = keeper.healthy
        if not self.reports_coverage:
            return checks, detail
        if self.stream is None:
            checks["engine_owned"] = owned(ENGINE_LEASE)
            if self.engine is not None and keeper is not None and keeper.holds(ENGINE_LEASE):
                engine = self.engine
                checks["engine"] = engine.caught_up
                row = await repository.engine_lags(conn, engine.config_version, engine.last_seq)
                detail["engine_config_lag_s"] = round(row["config_lag_s"] or 0.0, 3)
                detail["engine_log_lag_s"] = round(row["log_lag_s"] or 0.0, 3)
                checks["engine_config"] = (row["config_lag_s"] or 0.0) <= s.ready_config_lag_s
                checks["engine_log_lag"] = (row["log_lag_s"] or 0.0) <= s.ready_log_lag_s
            return checks, detail
        unowned = [p for p in range(self.stream.partitions) if not owned(partition_lease(p))]
        detail["partitions_unowned"] = unowned
        checks["partitions_owned"] = not unowned
        checks["relay_owned"] = owned(RELAY_LEASE)
        relay = await repository.relay_lag(conn)
        detail["relay_lag_s"] = round(relay["age_s"], 3)
        checks["relay_lag"] = relay["age_s"] <= s.ready_log_lag_s
        if self.nats is not None:
            checks["nats"] = self.nats.is_connected
        if keeper is not None:
            mine = sorted(int(n.split(":")[1]) for n in keeper.duties() if n.startswith("partition:"))
            detail["partitions_here"] = mine
            behind = [p for p in mine if not self.runners[p].caught_up]
            detail["partitions_catching_up"] = behind
            checks["partitions_caught_up"] = not behind
        return checks, detail


async def check_partition_count(pool: asyncpg.Pool, partitions: int) -> None:
    """Refuse to start with another partition count than the log was published with."""
    row = await repository.relay_start(pool, partitions)
    if row["partitions"] != partitions:
        raise SystemExit(
            f"afstand: AFSTAND_PARTITIONS={partitions} but the fix log was published to {row['partitions']}"
            " partitions; stop every engine and follow README, deployment, 'changing the number of partitions'")
