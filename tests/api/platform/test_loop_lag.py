"""The event-loop lag monitor (api/platform/loop_lag.py): a blocked loop shows as lag, and the app exports it."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY

from api.platform import loop_lag


def _count() -> float:
    return REGISTRY.get_sample_value("afstand_event_loop_lag_seconds_count") or 0.0


def test_a_blocked_loop_is_measured_as_lag() -> None:
    async def scenario() -> float:
        watcher = asyncio.create_task(loop_lag.watch(0.01))
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # holds the loop, as a synchronous call on it would
        await asyncio.sleep(0.05)
        watcher.cancel()
        return REGISTRY.get_sample_value("afstand_event_loop_lag_max_seconds") or 0.0

    before = _count()
    worst = asyncio.run(scenario())
    assert worst >= 0.15
    assert _count() > before + 2
    over_100ms = REGISTRY.get_sample_value("afstand_event_loop_lag_seconds_bucket", {"le": "0.1"})
    assert over_100ms is not None and over_100ms < _count()  # the blocked wake-up fell in a bucket above 0.1 s


def test_the_app_runs_the_monitor_and_exports_it(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, loop_lag_interval_s=0.01)
    before = _count()
    deadline = time.monotonic() + 5
    while _count() < before + 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _count() >= before + 3
    text = client.get("/metrics").text
    assert "afstand_event_loop_lag_seconds_bucket" in text and "afstand_event_loop_lag_max_seconds" in text
