"""SIGTERM ends ``afstand serve`` within 10 s even with operators' alert streams open, and each stream sees a
clean close with a code the console reconnects on (1012, service restart), not a dropped connection."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.auth.principals import mint_staff_token
from tests.chaos.support import wait_ready
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.slow

CLIENTS = 3
CONSOLE_GIVES_UP_ON = {4401, 4403}  # api/console/static/console.js reconnects on every other close code


def test_sigterm_with_three_stream_clients_exits_within_10_s_and_closes_them_cleanly(
        database_url: str, tmp_path: Path) -> None:
    # A long grace period: the streams must end because their handlers notice the close, not because uvicorn
    # cancels them when the grace period runs out.
    server = ServerProcess(database_url, tmp_path / "data", AFSTAND_SHUTDOWN_GRACE_S="30")
    server.start()
    try:
        wait_ready(server, 60)
        token = mint_staff_token(server.key, "operator", "sigterm-test")
        ws_url = server.base.replace("http://", "ws://") + "/v1/alerts/stream?after=0"
        closes: list[tuple[int | None, str | None]] = []
        connected = threading.Barrier(CLIENTS + 1, timeout=20)

        def client() -> None:
            with connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10) as ws:
                connected.wait()
                try:
                    while True:
                        ws.recv(timeout=30)
                except ConnectionClosed as e:
                    closes.append((e.rcvd.code if e.rcvd else None, type(e).__name__))
                except TimeoutError:
                    closes.append((None, "no close within 30 s"))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        connected.wait()
        time.sleep(0.5)  # each handler is now waiting for alert changes
        assert server.proc is not None
        started = time.monotonic()
        server.proc.terminate()
        server.proc.wait(35)
        took = time.monotonic() - started
        for t in threads:
            t.join(5)
    finally:
        server.stop()
    assert took <= 10, f"SIGTERM took {took:.1f} s"
    assert server.proc.returncode is not None
    assert len(closes) == CLIENTS, closes
    for code, _ in closes:
        assert code is not None, closes  # a close frame was received: not a dropped connection (1006)
        assert code == 1012 and code not in CONSOLE_GIVES_UP_ON, closes
