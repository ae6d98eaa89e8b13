"""SIGKILL a dispatcher after FCM has received a message and before the dispatcher recorded it: nothing is
lost, nothing is enqueued twice, and the resend carries the same idempotency / collapse keys so the app shows
it once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from notifications.channels.fcm import FcmChannel
from notifications.clock import ManualClock
from tests.notifications import support as s
from tests.notifications.fakes import FakeServer

ROOT = Path(__file__).resolve().parents[2]


def test_kill_between_send_and_record_loses_nothing_and_duplicates_nothing(database_url: str) -> None:
    arrived = threading.Event()
    with FakeServer() as fcm:
        fcm.script = ["hang"]  # the first request is received, then held while we kill the sender
        fcm.hang_s = 3
        fcm.on_request = lambda rec: arrived.set()

        async def enqueue() -> tuple[object, int]:
            outbox = s.outbox_for(ManualClock(datetime.now(timezone.utc) - timedelta(seconds=1)))
            pool = await s.pool_for(database_url)
            try:
                async with pool.acquire() as conn:
                    case_id = await s.make_case(conn, policy={"auto_escalate": False, "pursuit": False,
                                                              "victim_ack_deadline_s": 3600})
                alert_id = await s.open_alert(outbox, pool, case_id)
                return alert_id, await pool.fetchval("SELECT count(*) FROM outbox")
            finally:
                await pool.close()

        alert_id, enqueued = asyncio.run(enqueue())
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.notifications.crash_worker", database_url, fcm.fcm_url],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert arrived.wait(30), worker.stderr.read().decode() if worker.poll() is not None else "no request"
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
        finally:
            if worker.poll() is None:
                worker.kill()
        assert len(fcm.received) == 1

        async def recover() -> None:
            clock = ManualClock(datetime.now(timezone.utc))
            outbox = s.outbox_for(clock)
            pool = await s.pool_for(database_url)
            push = FcmChannel(project_id="afstand-test", url=fcm.fcm_url, timeout_s=5)
            try:
                [row] = await s.rows(pool, "channel = 'push'")
                assert row["status"] == "sending" and row["attempts"] == 1  # sent, never recorded
                d = s.dispatcher(pool, outbox, [push])
                assert await d.drain() == 0  # the lease still holds: nobody resends yet
                clock.advance(6)  # the killed worker's lease (5 s) has run out
                await d.drain()
                [row] = await s.rows(pool, "channel = 'push'")
                assert row["status"] == "sent" and row["attempts"] == 2
                assert await pool.fetchval("SELECT count(*) FROM outbox") == enqueued  # nothing enqueued twice
                outcomes = [(a["attempt"], a["outcome"]) for a in await pool.fetch(
                    "SELECT attempt, outcome FROM delivery_attempts WHERE outbox_id = $1 ORDER BY attempt", row["id"])]
                assert outcomes == [(1, "unknown"), (2, "sent")]
                assert (await s.changes(pool, alert_id)).count("notified") == 1
            finally:
                await push.close()
                await pool.close()

        asyncio.run(recover())
        time.sleep(0.1)
        first, second = (r.json["message"] for r in fcm.received[:2])
        assert len(fcm.received) == 2
        # The app dedupes on the idempotency key; FCM / APNs collapse on the same key.
        assert first["data"]["idempotency_key"] == second["data"]["idempotency_key"]
        assert first["android"]["collapse_key"] == second["android"]["collapse_key"]
        assert first["apns"]["headers"]["apns-collapse-id"] == second["apns"]["headers"]["apns-collapse-id"]
        assert first == second
