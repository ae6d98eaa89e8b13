"""Liveness and readiness for the process supervisor and load balancer.

``/readyz`` tells the truth about each part and names the one that is unwell: the database (reachable,
migrations applied), each LISTEN connection, the watch (every engine duty held by a live process; the ones held
here caught up with the log, the log lag and the configuration lag within their bounds; the relay keeping up;
this process keeping its leases) and the notification dispatcher (finished a round within its bound). Any of
these unwell: 503.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.platform.context import Context
from api.platform.migrate import pending

router = APIRouter(tags=["health"])

_DB_CHECK_TIMEOUT_S = 2.0  # a readiness probe must answer even when the database does not


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _database(ctx: Context) -> tuple[bool, dict[str, bool], dict[str, Any]]:
    """What only the database can tell: its health, and how the watch stands (api/monitoring/watch.py)."""
    async with ctx.pool.acquire() as conn:
        migrations_pending = bool(await pending(conn))
        checks: dict[str, bool] = {}
        detail: dict[str, Any] = {}
        if ctx.watch is not None:
            checks, detail = await ctx.watch.readiness(conn, ctx.keeper)
    return migrations_pending, checks, detail


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready per role: an API process when it can serve (database, alert stream); an engine or dispatcher
    process when it keeps its leases and the duties it holds are keeping up; any of them not ready while a duty
    of the watch (the engine, a partition, the relay) is held by no live process."""
    ctx: Context = request.app.state.ctx
    s = ctx.settings
    checks: dict[str, bool] = {}
    detail: dict[str, Any] = {"role": s.role}
    try:
        migrations_pending, watch_checks, watch_detail = await asyncio.wait_for(_database(ctx), _DB_CHECK_TIMEOUT_S)
        checks["database"] = True
        checks["migrations"] = not migrations_pending
        checks.update(watch_checks)
        detail.update(watch_detail)
    except Exception as e:  # unreachable, timed out, refused: all mean not ready
        checks["database"] = checks["migrations"] = False
        detail["database"] = type(e).__name__
    for listener in ctx.listeners:
        checks[f"listener:{listener.name}"] = listener.connected
    service = ctx.notifications
    if s.notify_enabled and service is not None:
        last = service.dispatcher.last_round
        age = None if last is None else time.monotonic() - last
        detail["dispatcher_last_round_s"] = None if age is None else round(age, 3)
        checks["dispatcher"] = age is not None and age <= s.ready_dispatch_s
    ok = all(checks.values())
    body = {"status": "ready" if ok else "not ready", "checks": checks,
            "unwell": [name for name, good in checks.items() if not good], "detail": detail}
    return JSONResponse(body, status_code=200 if ok else 503)
