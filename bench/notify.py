"""Notification benchmark: alert changes through the transactional outbox to a fake FCM on loopback.

``python -m bench.notify [--changes 10000] [--rate 1500] [--cases 1000]``

An embedded PostgreSQL (fresh data dir), 1,000 cases each with a victim app token, and the real path: each
alert change is written through ``api.alerts.repository`` (which enqueues the push in the same transaction), the
dispatcher (as the app runs it: LISTEN/NOTIFY wake-up, 2 workers, batches of 100, ``--connections`` to it) claims it
and sends it through the real FCM channel (FCM HTTP v1 over httpx) to a fake FCM in another process, then
records the attempt and the batch's ``notified`` changes. Changes are offered at ``--rate`` per second (``0``: as fast as possible). ``--queued`` enqueues them all
before the dispatcher starts, to measure the delivery side alone. The CPU each part spent per delivery (this
process, PostgreSQL, the fake FCM) is printed before the JSON line.

Enqueue-to-FCM latency runs from the commit of the alert change to the fake FCM receiving the request.
Last line JSON: ``{"deliveries_per_s": …, "p99_enqueue_to_fcm_ms": …}``. Whatever ends the run (the end, an
error, Ctrl-C, SIGTERM), the fake FCM and the embedded PostgreSQL it started are stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing
import resource
import signal
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil


def _fake_fcm(port_q: "multiprocessing.Queue[int]") -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    arrivals: dict[str, float] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle on, the client's delayed ACK holds each answer ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            return

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            t = time.time()
            key = json.loads(body)["message"]["data"]["alert_id"]
            arrivals.setdefault(key, t)
            raw = b'{"name": "projects/bench/messages/1"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802
            raw = json.dumps(arrivals).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # the dispatcher opens its connections all at once

    server = Server(("127.0.0.1", 0), Handler)
    port_q.put(server.server_address[1])
    server.serve_forever()


async def _run(args: argparse.Namespace, url: str, fcm_port: int, cpu: "_Cpu") -> dict[str, Any]:
    from api.alerts import repository as alert_store
    from api.platform import pg_channels
    from api.platform.database import create_pool
    from api.platform.migrate import apply_migrations
    from api.platform.pg_listener import Listener
    from api.app import notification_config
    from api.platform.settings import Settings
    from notifications.dispatcher import AlertHooks
    from notifications.service import NotificationService, outbox_for

    settings = Settings(database_url=url, fcm_project_id="bench", notify_concurrency=args.connections,
                        fcm_url=f"http://127.0.0.1:{fcm_port}/v1/projects/{{0}}/messages:send")
    pool = await create_pool(url, 4, 12)
    async with pool.acquire() as conn:
        await apply_migrations(conn)
        cases = [uuid.uuid4() for _ in range(args.cases)]
        await conn.executemany("INSERT INTO cases (id, reference, created_by) VALUES ($1, $2, 'bench')",
                               [(c, f"B-{i}") for i, c in enumerate(cases)])
        await conn.executemany("INSERT INTO parties (id, case_id, role, display_name, language)"
                               " VALUES ($1, $2, 'victim', 'V', 'nl')", [(uuid.uuid4(), c) for c in cases])
        await conn.executemany("INSERT INTO devices (id, case_id, role, platform, push_token, installation_id)"
                               " VALUES ($1, $2, 'victim_app', 'android', $3, 'i')",
                               [(uuid.uuid4(), c, f"tok-{i}") for i, c in enumerate(cases)])
        # The push path only: the acknowledgement / escalation timers and pursuit webhooks are left out.
        await conn.executemany("INSERT INTO notification_policies (case_id, policy, updated_by) VALUES ($1, $2, 'b')",
                               [(c, {"auto_escalate": False, "pursuit": False, "victim_ack_deadline_s": 3600})
                                for c in cases])
    config = notification_config(settings)
    outbox = outbox_for(config, pg_channels.OUTBOX)
    hooks = AlertHooks(append_change=functools.partial(alert_store.append_change, outbox=outbox),
                       append_changes=functools.partial(alert_store.append_changes, outbox=outbox),
                       open_alert=functools.partial(alert_store.open_alert, outbox=outbox), decrypt=lambda b: "",
                       alert_log_lock=alert_store.ALERT_LOG_LOCK)
    service = NotificationService.build(config, pool=pool, outbox=outbox, hooks=hooks)
    wake = service.dispatcher.wake
    listener = Listener(url, "dispatcher", {pg_channels.OUTBOX: wake}, wake)  # as the app wakes it
    try:
        if args.queued:  # the delivery side alone: everything waits in the outbox when the dispatcher starts
            committed, _, enqueue_s = await _offer(args, pool, outbox, cases)
        before = cpu.seconds()
        started = time.time()
        await service.start()
        await listener.start()
        if not args.queued:
            committed, started, enqueue_s = await _offer(args, pool, outbox, cases)
        arrivals = await _arrivals(fcm_port, args.changes)
        used = {k: v - before[k] for k, v in cpu.seconds().items()}
        # Let the last records commit, then check nothing is left behind.
        for _ in range(100):
            left = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending') AND channel <> 'timer'")
            if left == 0:
                break
            await asyncio.sleep(0.1)
        sent_rows = await pool.fetchval("SELECT count(*) FROM outbox WHERE status = 'sent'")
    finally:
        await listener.stop()
        await service.stop()
        await pool.close()

    if not arrivals:
        raise RuntimeError("no delivery reached the fake FCM")
    latencies = sorted((arrivals[k] - committed[k]) * 1000 for k in committed if k in arrivals)
    last = max(arrivals.values())
    return {
        "changes": args.changes,
        "offered_rate_per_s": args.rate or None,
        "enqueue_s": round(enqueue_s, 2),
        "delivered": len(arrivals),
        "recorded_sent": sent_rows,
        "left_in_outbox": left,
        **{f"cpu_ms_per_delivery_{k}": round(v * 1000 / max(1, len(arrivals)), 3) for k, v in used.items()},
        "p50_enqueue_to_fcm_ms": round(statistics.median(latencies), 1),
        "deliveries_per_s": round(len(arrivals) / (last - started), 1),
        "p99_enqueue_to_fcm_ms": round(latencies[int(0.99 * (len(latencies) - 1))], 1),
    }


async def _offer(args: argparse.Namespace, pool: Any, outbox: Any,
                 cases: list[uuid.UUID]) -> tuple[dict[str, float], float, float]:
    """Write the alert changes at the offered rate; returns when each committed, the start and the time taken."""
    from api.alerts import repository as alert_store

    committed: dict[str, float] = {}
    started = time.time()
    sent = 0
    now = datetime.now(timezone.utc)
    while sent < args.changes:
        n = min(args.per_tx, args.changes - sent)
        ids = [uuid.uuid4() for _ in range(n)]
        async with pool.acquire() as conn, conn.transaction():
            for k, alert_id in enumerate(ids):
                await alert_store.open_alert(conn, outbox=outbox, alert_id=alert_id,
                                             case_id=cases[(sent + k) % len(cases)],
                                             kind="proximity", level="violation", confidence="confirmed",
                                             opened_at=now, actor="system:bench")
        t = time.time()
        for alert_id in ids:
            committed[str(alert_id)] = t
        sent += n
        if args.rate:
            ahead = started + sent / args.rate - time.time()
            if ahead > 0:
                await asyncio.sleep(ahead)
    return committed, started, time.time() - started


async def _arrivals(fcm_port: int, expected: int) -> dict[str, float]:
    """When the fake FCM first received each alert's push, once all arrived (or after 120 s)."""
    import httpx

    async with httpx.AsyncClient() as http:
        deadline = time.time() + 120
        while True:
            arrivals: dict[str, float] = (await http.get(f"http://127.0.0.1:{fcm_port}/stats")).json()
            if len(arrivals) >= expected or time.time() > deadline:
                return arrivals
            await asyncio.sleep(0.2)


class _Cpu:
    """CPU seconds used so far by each part: this process (enqueueing and dispatching), PostgreSQL (the
    postmaster, its live backends and those that exited) and the fake FCM."""

    def __init__(self, pgdata: Path, fake_pid: int) -> None:
        self.pgdata = pgdata
        self.fake = psutil.Process(fake_pid)

    def seconds(self) -> dict[str, float]:
        me = resource.getrusage(resource.RUSAGE_SELF)
        postmaster = psutil.Process(int((self.pgdata / "postmaster.pid").read_text().split()[0]))
        t = postmaster.cpu_times()
        pg = t.user + t.system + t.children_user + t.children_system
        for child in postmaster.children():
            try:
                c = child.cpu_times()
                pg += c.user + c.system
            except psutil.NoSuchProcess:  # exited between the listing and the reading: in children_* next time
                pass
        f = self.fake.cpu_times()
        return {"bench": me.ru_utime + me.ru_stime, "postgres": pg, "fake_fcm": f.user + f.system}


def _stop_on_sigterm(signum: int, frame: Any) -> None:  # noqa: ARG001
    # As Ctrl-C does: unwind, so the finally blocks stop the fake FCM and the embedded PostgreSQL.
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1500, help="alert changes offered per second; 0 = unpaced")
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--per-tx", type=int, default=10, help="alert changes per transaction (the engine batches)")
    # The fake answers in well under a millisecond, so a few requests in flight keep up; over plain http it speaks
    # HTTP/1.1, where each extra pooled connection costs httpx CPU on every event (FCM itself is one HTTP/2
    # connection whatever AFSTAND_NOTIFY_CONCURRENCY says, and needs the requests in flight that its round trip
    # takes).
    parser.add_argument("--connections", type=int, default=4, help="AFSTAND_NOTIFY_CONCURRENCY for the run")
    parser.add_argument("--queued", action="store_true",
                        help="enqueue everything first, then start the dispatcher: the delivery side alone (latency"
                             " then includes the wait in the outbox)")
    args = parser.parse_args()

    from api.platform.database import embedded_database

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    ctx = multiprocessing.get_context("spawn")
    port_q: "multiprocessing.Queue[int]" = ctx.Queue()
    fake = ctx.Process(target=_fake_fcm, args=(port_q,), daemon=True)
    fake.start()
    try:
        port = port_q.get(timeout=30)
        with tempfile.TemporaryDirectory(prefix="afstand-bench-notify-") as tmp, embedded_database(Path(tmp)) as url:
            print(f"data_dir: {tmp}", flush=True)
            result = asyncio.run(_run(args, url, port, _Cpu(Path(tmp) / "pg", fake.pid)))
    finally:
        fake.terminate()
        fake.join(10)
    for k, v in result.items():
        if k not in ("deliveries_per_s", "p99_enqueue_to_fcm_ms"):
            print(f"{k}: {v}")
    print(json.dumps({"deliveries_per_s": result["deliveries_per_s"],
                      "p99_enqueue_to_fcm_ms": result["p99_enqueue_to_fcm_ms"]}))


if __name__ == "__main__":
    main()
