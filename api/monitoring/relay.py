"""The relay: every committed fix, from ``positions`` to its partition on NATS JetStream, in log order.

It runs under the cluster-wide ``relay`` lease in one process at a time. It reads the rows after its durable
position, publishes them (:func:`api.monitoring.jetstream.publish_in_order`), and only then advances the
position, in a transaction that checks the lease. A crash between publishing and advancing publishes the same
rows again: JetStream drops those within its duplicate window by ``Nats-Msg-Id``; an engine skips the rest by
seq. Because ``positions`` becomes visible in seq order (api/intake) and each relay publishes a partition's rows
one after another, a partition's subject never holds a fix before one of lower seq that it lacks: every
committed fix reaches its engine, in case order.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from nats.js import JetStreamContext

from api.cluster.leases import Lease, LeaseLost
from api.monitoring import repository
from api.monitoring.jetstream import JetStreamConfig, publish_in_order
from api.platform import background, metrics

log = logging.getLogger(__name__)


class PartitionCountChanged(RuntimeError):
    """The log was published to another number of partitions; engines would look for cases in the wrong place."""


class Relay:
    """A :class:`api.cluster.leases.Duty`."""

    def __init__(self, pool: asyncpg.Pool, js: JetStreamContext, config: JetStreamConfig, *,
                 batch: int = 2000, poll_s: float = 1.0) -> None:
        self.pool = pool
        self.js = js
        self.config = config
        self.batch = batch
        self.poll_s = poll_s
        self.last_seq = 0
        self.running = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.running

    def wake(self) -> None:
        self._wake.set()

    async def start(self, lease: Lease) -> None:
        self._task = asyncio.create_task(self._main(lease), name="relay")

    async def stop(self, *, handover: bool) -> None:
        await background.cancel(self._task)
        self._task = None
        self.running = False

    async def _main(self, lease: Lease) -> None:
        while True:
            try:
                await self._run(lease)
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                log.error("relay stopped: its lease is no longer its own")
                self.running = False
                return
            except PartitionCountChanged:
                log.critical("relay refused: the stored partition count differs from AFSTAND_PARTITIONS")
                self.running = False
                return
            except Exception as e:
                self.running = False
                log.warning("relay interrupted; publishing again from its stored position",
                            extra={"error": type(e).__name__})
                await asyncio.sleep(0.5)

    async def _run(self, lease: Lease) -> None:
        row = await repository.relay_start(self.pool, self.config.partitions)
        if row["partitions"] != self.config.partitions:
            raise PartitionCountChanged()
        self.last_seq = row["last_seq"]
        self.running = True
        while True:
            rows = await repository.positions_after(self.pool, self.last_seq, self.batch)
            if rows:
                if not lease.valid():
                    raise LeaseLost(lease.name)
                await publish_in_order(self.js, self.config, rows)
                async with self.pool.acquire() as conn, conn.transaction():
                    await lease.check(conn)
                    await repository.advance_relay(conn, rows[-1]["seq"])
                self.last_seq = rows[-1]["seq"]
                if len(rows) == self.batch:
                    continue
            lag = await repository.relay_lag(self.pool)
            metrics.RELAY_LAG.set(lag["age_s"])
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except asyncio.TimeoutError:
                pass
