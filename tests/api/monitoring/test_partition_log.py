"""The partition log on NATS JetStream survives the NATS server going away: a reader resumes from the last
message it took, in order, with nothing skipped and nothing twice; a repeated publish is dropped. Runs its own
nats-server (the binary on this machine) so it can stop and restart it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from api.cluster.partitioning import partition_of
from api.monitoring import jetstream
from api.monitoring.fix_log import LogPosition
from api.monitoring.jetstream import JetStreamConfig, PartitionLog, publish_in_order
from tests.e2e.server import free_port

NATS = shutil.which("nats-server")
pytestmark = pytest.mark.skipif(NATS is None, reason="needs the nats-server binary")

CASE = uuid.UUID("00000003-0000-4000-8000-000000000000")  # partition 3 of 16


class NatsServer:
    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.store = store
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert NATS is not None
        self.proc = subprocess.Popen([NATS, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)


def _rows(first: int, count: int) -> list[dict]:
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [{"seq": s, "device_id": uuid.UUID(int=7), "case_id": CASE, "party": "offender",
             "recorded_at": at + timedelta(seconds=s), "received_at": at + timedelta(seconds=s), "lat": 52.0,
             "lon": 5.0, "accuracy_m": 8.0, "source": "gps", "speed_mps": None, "tag_id": None, "rssi": None}
            for s in range(first, first + count)]


async def _take(log: PartitionLog, position: LogPosition, want: int, timeout: float = 20) -> tuple[list[int], LogPosition]:
    """Read as the engine does: a fix at or below the position was seen before and is skipped."""
    seqs: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(seqs) < want:
        assert loop.time() < deadline, f"only {seqs}"
        batch = await log.read(1000, position)
        seqs += [int(f.fix_id) for f in batch.fixes if int(f.fix_id) > max([position.seq, *seqs])]
        position = batch.position
        await asyncio.sleep(0.05)
    return seqs, position


async def test_a_reader_resumes_in_order_after_nats_restarts(tmp_path: Path) -> None:
    assert partition_of(CASE, 16) == 3
    server = NatsServer(tmp_path / "nats")
    server.start()
    config = JetStreamConfig(url=f"nats://127.0.0.1:{server.port}", stream="T_RESTART", subject_prefix="t-restart")
    nc = None
    try:
        for _ in range(50):
            try:
                nc = await jetstream.connect(config, "test")
                break
            except Exception:
                await asyncio.sleep(0.1)
        assert nc is not None
        js = nc.jetstream()
        await jetstream.ensure_stream(js, config)
        await publish_in_order(js, config, _rows(1, 5))
        await publish_in_order(js, config, _rows(3, 2))  # a relay publishing again after a crash: dropped
        log = PartitionLog(nc, config, 3, fetch_wait_s=0.2, check_idle_s=1.0)
        await log.open(LogPosition(), lambda: None)
        seqs, position = await _take(log, LogPosition(), 5)
        assert seqs == [1, 2, 3, 4, 5]

        server.stop()  # NATS goes away, then comes back with its stored stream
        await asyncio.sleep(1.0)
        server.start()
        for _ in range(100):
            try:
                await publish_in_order(js, config, _rows(6, 5))
                break
            except Exception:  # still reconnecting
                await asyncio.sleep(0.2)
        more, position = await _take(log, position, 5)
        assert more == [6, 7, 8, 9, 10]
        assert position.seq == 10
        await log.close()
    finally:
        if nc is not None:
            await nc.close()
        server.stop()
