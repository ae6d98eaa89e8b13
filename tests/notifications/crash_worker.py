"""A dispatcher in its own process, for the kill test: ``python -m tests.notifications.crash_worker URL FCM_URL``."""

from __future__ import annotations

import asyncio
import sys

from api.platform.database import create_pool
from notifications.channels.fcm import FcmChannel
from notifications.clock import SystemClock
from notifications.config import NotificationConfig
from notifications.dispatcher import Dispatcher
from tests.notifications import support as s


async def main(url: str, fcm_url: str) -> None:
    pool = await create_pool(url, 1, 4)
    push = FcmChannel(project_id="afstand-test", url=fcm_url, timeout_s=30)
    outbox = s.outbox_for(SystemClock())
    d = Dispatcher(pool, outbox, [push], s.hooks(outbox), NotificationConfig(lease_s=5, poll_s=0.1))
    print("ready", flush=True)
    while True:
        if await d.run_once() == 0:
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
