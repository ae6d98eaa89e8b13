"""Liveness and readiness for the process supervisor and load balancer."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.platform.migrate import pending

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    checks: dict[str, bool] = {}
    try:
        async with ctx.pool.acquire() as conn:
            checks["database"] = await conn.fetchval("SELECT true")
            checks["migrations"] = not await pending(conn)
    except Exception:
        checks["database"] = False
        checks["migrations"] = False
    checks["engine"] = ctx.engine is None or ctx.engine.caught_up
    ok = all(checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)
