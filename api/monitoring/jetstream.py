"""The fix log on NATS JetStream: one stream, one subject per partition, read by the partition's engine.

The relay (api/monitoring/relay.py) publishes each committed row of ``positions`` to
``<prefix>.fixes.<partition>`` with ``Nats-Msg-Id`` = its ``seq``, so JetStream drops a retried publish inside
its duplicate window; an engine skips any fix at or below its position for repeats outside it. A partition's
messages are published one after another, each after the previous one's acknowledgement, so a partition's
subject holds its fixes in log order whatever fails (ARCHITECTURE.md, "The ordered log on JetStream").

Coordinates travel on the bus: NATS must be private to the deployment (TLS and credentials in the URL or the
NATS context; README, deployment).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from api.cluster.partitioning import partition_of
from api.monitoring.fix_log import LogBatch, LogPosition, Wake, fix_from_row
from api.platform import background
from geofence.model import Encounter, Fix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JetStreamConfig:
    url: str
    stream: str = "AFSTAND_FIXES"
    subject_prefix: str = "afstand"
    partitions: int = 16
    max_age_s: float = 7 * 24 * 3600.0  # must exceed the longest outage of an engine partition
    replicas: int = 1  # 3 on a three-node NATS cluster
    duplicate_window_s: float = 120.0
    publish_timeout_s: float = 5.0

    def subject(self, partition: int) -> str:
        return f"{self.subject_prefix}.fixes.{partition}"


async def connect(config: JetStreamConfig, name: str) -> NATS:
    """A connection that reconnects by itself for as long as the process lives."""
    async def on_disconnect() -> None:
        log.warning("NATS disconnected; reconnecting", extra={"nats": name})

    async def on_reconnect() -> None:
        log.info("NATS reconnected", extra={"nats": name})

    async def on_error(e: Exception) -> None:
        log.warning("NATS error", extra={"nats": name, "error": type(e).__name__})

    return await nats.connect(config.url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                              connect_timeout=5, allow_reconnect=True, disconnected_cb=on_disconnect,
                              reconnected_cb=on_reconnect, error_cb=on_error)


async def ensure_stream(js: JetStreamContext, config: JetStreamConfig) -> None:
    """Create the stream, or bring an existing one to these settings."""
    cfg = StreamConfig(
        name=config.stream, subjects=[f"{config.subject_prefix}.fixes.*"], storage=StorageType.FILE,
        max_age=config.max_age_s, num_replicas=config.replicas, duplicate_window=config.duplicate_window_s,
    )
    try:
        await js.add_stream(cfg)
    except nats.js.errors.BadRequestError:  # exists with other settings
        await js.update_stream(cfg)


def encode(row: Mapping[str, Any]) -> bytes:
    return json.dumps({
        "seq": row["seq"], "device_id": str(row["device_id"]), "case_id": str(row["case_id"]),
        "party": row["party"], "recorded_at": row["recorded_at"].isoformat(),
        "received_at": row["received_at"].isoformat(), "lat": row["lat"], "lon": row["lon"],
        "accuracy_m": row["accuracy_m"], "source": row["source"], "speed_mps": row["speed_mps"],
        "tag_id": None if row["tag_id"] is None else str(row["tag_id"]), "rssi": row["rssi"],
    }, separators=(",", ":")).encode()


def decode(payload: bytes) -> Fix | Encounter:
    row = json.loads(payload)
    row["recorded_at"] = datetime.fromisoformat(row["recorded_at"])
    row["received_at"] = datetime.fromisoformat(row["received_at"])
    return fix_from_row(row)


async def publish_in_order(js: JetStreamContext, config: JetStreamConfig, rows: Sequence[Mapping[str, Any]]) -> None:
    """Publish rows of ``positions`` (in seq order) to their partitions: within a partition one after another,
    each after the previous one is acknowledged; the partitions side by side. Raises if any publish fails; the
    caller publishes the same rows again (duplicates are dropped or skipped)."""
    by_partition: dict[int, list[Mapping[str, Any]]] = collections.defaultdict(list)
    for row in rows:
        by_partition[partition_of(row["case_id"], config.partitions)].append(row)

    async def one_partition(partition: int, items: list[Mapping[str, Any]]) -> None:
        subject = config.subject(partition)
        for row in items:
            await js.publish(subject, encode(row), stream=config.stream, timeout=config.publish_timeout_s,
                             headers={"Nats-Msg-Id": str(row["seq"])})

    async with asyncio.TaskGroup() as group:
        for partition, items in by_partition.items():
            group.create_task(one_partition(partition, items))


class PartitionLog:
    """One partition's subject as a :class:`api.monitoring.fix_log.FixLog`.

    A fetch loop reads ahead into a small buffer through an ephemeral pull consumer that starts just after the
    engine's stream position. The position in this process is the truth: when anything goes wrong (NATS away, a
    consumer lost, a gap in the consumer's sequence) the consumer is made again from the position after the last
    message taken, so nothing is skipped and nothing needs acknowledging. An ephemeral consumer does not survive
    a NATS restart, and fetching from a lost one only ever times out, which looks like an idle partition; so the
    consumer is made again after every reconnection, and an idle one is asked every ``check_idle_s`` whether it
    still exists.
    """

    def __init__(self, nc: NATS, config: JetStreamConfig, partition: int, *,
                 fetch_batch: int = 1000, fetch_wait_s: float = 1.0, buffered_batches: int = 4,
                 check_idle_s: float = 5.0) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.check_idle_s = check_idle_s
        self.config = config
        self.partition = partition
        self.fetch_batch = fetch_batch
        self.fetch_wait_s = fetch_wait_s
        self.buffered_batches = buffered_batches
        self._ready: collections.deque[tuple[Fix | Encounter, int]] = collections.deque()
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_stream_seq = 1
        self._pending: int | None = None  # messages beyond what was fetched, as the server last said

    async def open(self, after: LogPosition, wake: Wake) -> None:
        self._next_stream_seq = after.stream_seq + 1
        self._task = asyncio.create_task(self._fetch_loop(wake), name=f"partition-log-{self.partition}")

    async def close(self) -> None:
        await background.cancel(self._task)
        self._task = None

    async def read(self, limit: int, after: LogPosition) -> LogBatch:
        fixes: list[Fix | Encounter] = []
        position = after
        while self._ready and len(fixes) < limit:
            fix, stream_seq = self._ready.popleft()
            fixes.append(fix)
            position = LogPosition(max(position.seq, int(fix.fix_id)), stream_seq)
        self._room.set()
        pending = len(self._ready) + (self._pending or 0)
        return LogBatch(fixes, position, caught_up=self._pending == 0 and not self._ready, pending=pending)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        start = self._next_stream_seq
        cfg = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start > 1 else DeliverPolicy.ALL,
            opt_start_seq=start if start > 1 else None, ack_policy=AckPolicy.NONE,
            filter_subject=self.config.subject(self.partition), inactive_threshold=60.0, mem_storage=True,
        )
        return await self.js.pull_subscribe(self.config.subject(self.partition), durable=None,
                                            stream=self.config.stream, config=cfg)

    async def _fetch_loop(self, wake: Wake) -> None:
        sub = None
        consumer_seq = 0
        reconnects = self.nc.stats["reconnects"]
        idle_since = asyncio.get_running_loop().time()
        while True:
            try:
                if self.nc.stats["reconnects"] != reconnects:  # the consumer may be gone with the old connection
                    reconnects = self.nc.stats["reconnects"]
                    raise _Gap("NATS reconnected")
                if sub is None:
                    sub, consumer_seq = await self._subscribe(), 0
                    idle_since = asyncio.get_running_loop().time()
                if len(self._ready) >= self.fetch_batch * self.buffered_batches:
                    self._room.clear()
                    await self._room.wait()
                    continue
                try:
                    msgs = await sub.fetch(self.fetch_batch, timeout=self.fetch_wait_s)
                except TimeoutError:  # nothing arrived within fetch_wait_s (nats.errors.TimeoutError is one)
                    now = asyncio.get_running_loop().time()
                    if now - idle_since >= self.check_idle_s:
                        idle_since = now
                        await sub.consumer_info()  # raises when the consumer no longer exists
                    if not self._ready:
                        self._pending = 0
                    wake()
                    continue
                for msg in msgs:
                    meta = msg.metadata
                    if meta.sequence.consumer != consumer_seq + 1:
                        raise _Gap(f"consumer sequence {meta.sequence.consumer} after {consumer_seq}")
                    consumer_seq = meta.sequence.consumer
                    self._ready.append((decode(msg.data), meta.sequence.stream))
                    self._next_stream_seq = meta.sequence.stream + 1
                    self._pending = meta.num_pending
                idle_since = asyncio.get_running_loop().time()
                wake()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("partition log interrupted; reading again from the last message taken",
                            extra={"partition": self.partition, "error": type(e).__name__})
                if sub is not None:
                    try:
                        await sub.unsubscribe()
                    except Exception:  # the connection may be gone; the server drops the consumer when idle
                        pass
                sub = None
                await asyncio.sleep(0.5)


class _Gap(Exception):
    """The consumer skipped messages (it was recreated by the server, or a delivery was lost)."""
