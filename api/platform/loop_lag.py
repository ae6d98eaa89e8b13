"""How late the event loop runs what is due: a small task sleeps ``interval_s`` and measures how much later than
that it wakes up. Anything that holds the loop (a synchronous call, a long computation, a full garbage
collection) shows here, whoever caused it: every request, stream and background job of the process waits that
long. Exported as a histogram and as the largest lag of the current minute (``/metrics``).

It runs for the application's lifetime as an ASGI wrapper around the lifespan, so the app factory adds it like
any middleware and the lifespan code does not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LAG = Histogram(
    "afstand_event_loop_lag_seconds", "How much later than due the event loop ran the lag probe",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
LAG_MAX = Gauge("afstand_event_loop_lag_max_seconds", "The largest event-loop lag seen in the current minute")
WINDOW_S = 60.0


async def watch(interval_s: float) -> None:
    """Measure until cancelled."""
    loop = asyncio.get_running_loop()
    window_start, window_max = time.monotonic(), 0.0
    while True:
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        lag = max(0.0, loop.time() - due)
        LAG.observe(lag)
        now = time.monotonic()
        if now - window_start >= WINDOW_S:
            window_start, window_max = now, 0.0
        window_max = max(window_max, lag)
        LAG_MAX.set(window_max)


class LoopLagMonitor:
    """Runs :func:`watch` from the application's startup to its shutdown."""

    def __init__(self, app: ASGIApp, *, interval_s: float) -> None:
        self.app = app
        self.interval_s = interval_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        task = asyncio.create_task(watch(self.interval_s), name="event-loop-lag")

        async def receive_and_stop() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                task.cancel()
            return message

        try:
            await self.app(scope, receive_and_stop, send)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
