"""Background loops of the server (engine, order reminders, retention) start and stop the same way."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a loop and wait until it has really stopped, so shutdown never leaves it mid-transaction.

    The cancellation is repeated until the task ends: Python 3.11's ``asyncio.wait_for`` can swallow one that
    arrives just as its timeout fires, and the loop would then run on while shutdown waits for it forever.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    try:
        await task
    except asyncio.CancelledError:
        pass


class Periodic:
    """A job's round, run every ``interval_s`` from ``start()`` until ``stop()`` (no task at all when the interval
    is 0: the job is off). A failed round is logged and the next one comes on time; the loop never dies.
    ``first_after_interval``: wait one interval before the first round (a restart loop must not become a purge
    loop). ``worth_logging(report)``: log the round's report at INFO when it did something."""

    def __init__(self, name: str, interval_s: float, run_once: Callable[[], Awaitable[Any]], *,
                 first_after_interval: bool = False, worth_logging: Callable[[Any], bool] = lambda report: False) -> None:
        self.name = name
        self.interval_s = interval_s
        self.run_once = run_once
        self.first_after_interval = first_after_interval
        self.worth_logging = worth_logging
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _loop(self) -> None:
        if self.first_after_interval:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                report = await self.run_once()
                if self.worth_logging(report):
                    log.info(self.name, extra=vars(report))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("round failed; the next one comes on time", extra={"job": self.name})
            await asyncio.sleep(self.interval_s)
