"""A LISTEN connection that stays up: it reconnects by itself and has its consumer resynchronise each time.

A notification only wakes a consumer early; the consumer always reads the facts from tables. So after any loss
(the server restarted, the backend was terminated, the network dropped) the listener reconnects with backoff
capped at ``max_backoff_s``, listens again and then calls ``resync``: whatever was notified while it was away is
found by reading the database, and nothing depends on the notifications that were lost.

A silent loss (a half-open TCP connection) is caught by a ping every ``ping_s`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Mapping

import asyncpg

from api.platform import background
from api.platform import metrics

log = logging.getLogger(__name__)

Wake = Callable[[], None]


class Listener:
    def __init__(
        self,
        url: str,
        name: str,
        channels: Mapping[str, Wake],
        resync: Wake,
        *,
        max_backoff_s: float = 2.0,
        ping_s: float = 5.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.name = name
        self._url = url
        self._channels = dict(channels)
        self._resync = resync
        self._max_backoff_s = max_backoff_s
        self._ping_s = ping_s
        self._connect_timeout_s = connect_timeout_s
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.connected = False
        self.reconnects = 0
        metrics.LISTENER_UP.labels(name).set(0)

    async def start(self, timeout: float = 10.0) -> None:
        """Start the loop and wait (up to ``timeout``) for the first connection, so startup listens before it
        reads; a database still unreachable then is retried in the background like any later loss."""
        self._task = asyncio.create_task(self._run(), name=f"listener-{self.name}")
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("listener not connected yet; retrying in the background", extra={"listener": self.name})

    async def stop(self) -> None:
        await background.cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        failures = 0
        ever_connected = False
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._url, timeout=self._connect_timeout_s)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c: lost.set())
                for channel, wake in self._channels.items():
                    await conn.add_listener(channel, lambda *_a, wake=wake: wake())
                self._up(True)
                if ever_connected:
                    self.reconnects += 1
                    metrics.LISTENER_RECONNECTS.labels(self.name).inc()
                    log.warning("listener reconnected; resynchronising", extra={"listener": self.name})
                ever_connected = True
                failures = 0
                # Listening first, then reading: a change committed in between is both read and notified.
                self._resync()
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), self._ping_s)
                    except asyncio.TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=self._connect_timeout_s)
                log.warning("listener lost its connection", extra={"listener": self.name})
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any loss or refusal: retry, never give up
                log.warning("listener connection failed", extra={"listener": self.name, "error": type(e).__name__})
            finally:
                self._up(False)
                if conn is not None:
                    conn.terminate()
            delay = min(self._max_backoff_s, 0.1 * 2 ** failures)
            failures += 1
            await asyncio.sleep(delay)

    def _up(self, up: bool) -> None:
        self.connected = up
        metrics.LISTENER_UP.labels(self.name).set(1 if up else 0)
        if up:
            self._connected.set()
        else:
            self._connected.clear()
