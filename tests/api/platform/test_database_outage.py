"""While the database is unreachable every route but the health routes answers 503 with Retry-After, a problem
document; once a probe reaches it again, requests are served. (tests/chaos/ stops a real server for this.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

from api.platform.database import create_pool
from api.platform.db_outage import Gate


def test_the_gate_opens_only_when_a_probe_reaches_the_database(database_url: str, tmp_path: Path) -> None:
    async def run() -> None:
        nowhere = await create_pool(f"postgresql://postgres@/x?host={tmp_path}/no-server", 0, 2, timeout=1.0)
        reachable = await create_pool(database_url, 1, 2)
        try:
            gate = Gate()
            assert await gate.reachable(nowhere)  # nothing has failed yet: requests go through
            gate.failed()
            assert not await gate.reachable(nowhere)  # the probe finds no server
            assert not await gate.reachable(reachable)  # probes are spaced: too soon for another
            await asyncio.sleep(0.6)
            assert await gate.reachable(reachable)
            assert not gate.down
        finally:
            await nowhere.close()
            await reachable.close()

    asyncio.run(run())
