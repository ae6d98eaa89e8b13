"""Background loops of the server (engine, order reminders, retention) start and stop the same way."""

from __future__ import annotations

import asyncio


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a loop and wait until it has really stopped, so shutdown never leaves it mid-transaction."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
