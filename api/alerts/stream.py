"""Wakes WebSocket clients when alert changes commit, through PostgreSQL LISTEN/NOTIFY.

Clients never receive data through the notification itself: each reads ``seq > last`` from the table, so a
missed or coalesced notification costs latency, never a change. When the listener reconnects after a loss, every
client is woken to read what it missed meanwhile.
"""

from __future__ import annotations

import asyncio
import logging

from api.platform import pg_channels
from api.platform.pg_listener import Listener

log = logging.getLogger(__name__)


class AlertHub:
    def __init__(self, url: str) -> None:
        self.listener = Listener(url, "alert_stream", {pg_channels.ALERT_CHANGES: self._on_notify}, self._on_notify)
        self._version = 0
        self._cond = asyncio.Condition()

    async def start(self) -> None:
        await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()

    def _on_notify(self) -> None:
        asyncio.get_running_loop().create_task(self.poke())

    async def poke(self) -> None:
        async with self._cond:
            self._version += 1
            self._cond.notify_all()

    @property
    def version(self) -> int:
        return self._version

    async def wait(self, seen_version: int, timeout: float) -> int:
        """Return once a change newer than ``seen_version`` was announced, or after ``timeout`` seconds."""
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: self._version != seen_version), timeout)
            except asyncio.TimeoutError:
                pass
            return self._version
