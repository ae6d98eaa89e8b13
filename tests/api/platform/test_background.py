"""Stopping a background loop waits until it has really stopped, even when one cancellation is lost."""

from __future__ import annotations

import asyncio

from api.platform import background


def test_a_loop_that_loses_a_cancellation_is_still_stopped() -> None:
    async def run() -> list[str]:
        seen: list[str] = []

        async def loop() -> None:
            # What Python 3.11's asyncio.wait_for does when its timeout fires as the cancellation arrives:
            # the CancelledError is swallowed once and the loop goes on.
            swallowed = False
            while True:
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    if swallowed:
                        seen.append("stopped")
                        raise
                    swallowed = True
                    seen.append("swallowed")

        task = asyncio.create_task(loop())
        await asyncio.sleep(0.05)
        stopping = asyncio.create_task(background.cancel(task))
        done, _ = await asyncio.wait({stopping}, timeout=3)
        assert done, "the loop still runs"
        assert task.cancelled()
        return seen

    assert asyncio.run(run()) == ["swallowed", "stopped"]
