"""Background loops of the server (engine, order reminders, retention) start and stop the same way."""

from __future__ import annotations

import asyncio


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
