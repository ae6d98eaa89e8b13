"""Liveness and readiness for the process supervisor and load balancer.

``/readyz`` tells the truth about each part and names the one that is unwell: the database (reachable,
migrations applied), each LISTEN connection, the engine (caught up with the log, the log lag within its bound,
its configuration no older than the database's beyond its bound) and the notification dispatcher (finished a
round within its bound). Any of these unwell: 503.
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


async def _database(ctx: Context) -> dict[str, Any]:
    """What only the database can tell: its health and how far the engine trails it."""
    engine = ctx.engine
    async with ctx.pool.acquire() as conn:
        facts: dict[str, Any] = {"migrations_pending": bool(await pending(conn))}
        if engine is not None:
            row = await conn.fetchrow(
                "SELECT extract(epoch FROM clock_timestamp() - (SELECT min(changed_at) FROM config_changes"
                "   WHERE version > $1))::float8 AS config_lag_s,"
                " extract(epoch FROM clock_timestamp() - (SELECT received_at FROM positions WHERE seq > $2"
                "   ORDER BY seq LIMIT 1))::float8 AS log_lag_s",
                engine.config_version, engine.last_seq)
            facts["config_lag_s"] = row["config_lag_s"] or 0.0
            facts["log_lag_s"] = row["log_lag_s"] or 0.0
    return facts


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    ctx: Context = request.app.state.ctx
    s = ctx.settings
    checks: dict[str, bool] = {}
    detail: dict[str, Any] = {}
    try:
        facts = await asyncio.wait_for(_database(ctx), _DB_CHECK_TIMEOUT_S)
        checks["database"] = True
        checks["migrations"] = not facts["migrations_pending"]
    except Exception as e:  # unreachable, timed out, refused: all mean not ready
        facts = {}
        checks["database"] = checks["migrations"] = False
        detail["database"] = type(e).__name__
    for listener in ctx.listeners:
        checks[f"listener:{listener.name}"] = listener.connected
    if ctx.engine is not None:
        checks["engine"] = ctx.engine.caught_up
        if facts:
            detail["engine_config_lag_s"] = round(facts["config_lag_s"], 3)
            detail["engine_log_lag_s"] = round(facts["log_lag_s"], 3)
            checks["engine_config"] = facts["config_lag_s"] <= s.ready_config_lag_s
            checks["engine_log_lag"] = facts["log_lag_s"] <= s.ready_log_lag_s
        else:
            checks["engine_config"] = checks["engine_log_lag"] = False
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
