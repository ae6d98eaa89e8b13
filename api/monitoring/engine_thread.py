"""The engine of a single process on an event loop of its own, in its own thread.

In one process (role ``all``) the API's HTTP and JSON work and the engine would otherwise share one event loop,
and under load the engine waits behind requests (measured: 5 s behind at 8,000 fixes/s). On a loop of its own
it is scheduled by the interpreter beside the HTTP loop (the GIL is handed over every few milliseconds), so it
gets its share whatever the API is doing, and its own work (a batch, a snapshot) never holds up a request.
asyncpg pools belong to one loop, so the engine has its own small pool. Processes of role ``engine`` have no HTTP
to compete with and run their engines on the main loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Coroutine, TypeVar

import asyncpg

from api.cluster.leases import Lease
from api.monitoring.runner import EngineRunner
from api.platform.database import create_pool

T = TypeVar("T")


class EngineThread:
    def __init__(self, name: str = "engine") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the engine's loop and wait for it from the caller's."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def soon(self, fn: Callable[[], None]) -> None:
        self.loop.call_soon_threadsafe(fn)

    async def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, 10)
        if not self._thread.is_alive():
            self.loop.close()


class ThreadedEngine:
    """An :class:`EngineRunner` living on an :class:`EngineThread`, seen from the main loop as the same duty."""

    def __init__(self, thread: EngineThread, url: str, make_runner: Callable[[asyncpg.Pool], EngineRunner], *,
                 pool_size: int = 4, connect_timeout_s: float = 5.0) -> None:
        self.thread = thread
        self.url = url
        self.make_runner = make_runner
        self.pool_size = pool_size
        self.connect_timeout_s = connect_timeout_s
        self.pool: asyncpg.Pool | None = None
        self.runner: EngineRunner | None = None

    async def _start(self, lease: Lease | None) -> None:
        if self.pool is None:
            self.pool = await create_pool(self.url, 1, self.pool_size, self.connect_timeout_s)
        if self.runner is None:
            self.runner = self.make_runner(self.pool)
        await self.runner.start(lease)

    async def start(self, lease: Lease | None = None) -> None:
        await self.thread.call(self._start(lease))

    async def stop(self, *, handover: bool = False) -> None:
        if self.runner is not None:
            await self.thread.call(self.runner.stop(handover=handover))

    async def close(self) -> None:
        """After the last stop: the pool, then the thread."""
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await self.thread.call(pool.close())
        await self.thread.close()

    async def wait_started(self) -> None:
        assert self.runner is not None
        await self.thread.call(self.runner.started.wait())

    # Wake-ups come from the main loop's listener.
    def wake(self) -> None:
        if self.runner is not None:
            self.thread.soon(self.runner.wake)

    def config_due(self) -> None:
        if self.runner is not None:
            self.thread.soon(self.runner.config_due)

    # What /readyz and the tests read: plain attributes, safe to read from another thread.
    @property
    def ready(self) -> bool:
        return self.runner is not None and self.runner.caught_up

    @property
    def caught_up(self) -> bool:
        return self.ready

    @property
    def config_version(self) -> int:
        return self.runner.config_version if self.runner is not None else 0

    @property
    def last_seq(self) -> int:
        return self.runner.last_seq if self.runner is not None else 0

