"""The FastAPI application: wiring only. Each router owns one part of the contract."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api import abuse, access, db_outage, openapi_doc, pg_channels, problems
from api.context import Context
from api.database import connect, create_pool, resolve_url
from api.migrate import apply_migrations
from api.pg_listener import Listener
from api.routers import alert_actions, alerts, cases, health, ingest, me
from api.routers import case_messages, contacts, feasibility, order_terms, risk, timeline, victim_case
from api.routers import audit as audit_routes, evidence as evidence_routes, track  # privacy (issue 6)
from api.routers import access as access_routes  # need-to-know grants, watch lists, supplier keys (issue 6)
from api.secrets import server_key
from api.security_headers import SecurityHeaders
from api.settings import Settings
from api.stream import AlertHub

log = logging.getLogger("afstand")


def create_app(settings: Settings, *, run_engine: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = resolve_url(settings.database_url, settings.data_dir)
        conn = await connect(url)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()
        pool = await create_pool(url, settings.db_pool_min, settings.db_pool_max, settings.db_connect_timeout_s)
        ctx = Context(settings=settings, pool=pool, key=server_key(settings))
        ctx.hub = AlertHub(url)
        await ctx.hub.start()
        ctx.listeners.append(ctx.hub.listener)
        if run_engine:
            from api.engine_runner import EngineRunner  # imports the engine core only when it runs

            ctx.engine = EngineRunner(ctx, url)
            await ctx.engine.start()
            ctx.listeners.append(ctx.engine.listener)
        notifier = _notifications(settings, ctx)
        await notifier.start()
        dispatch_listener = None
        if settings.notify_enabled:
            wake = notifier.dispatcher.wake
            dispatch_listener = Listener(url, "dispatcher", {pg_channels.OUTBOX: wake}, wake)
            ctx.listeners.append(dispatch_listener)
            await dispatch_listener.start()
        from api.order_reminders import OrderScheduler  # order reminders, expiry, daily digest (issue 5)

        ctx.extras["order_scheduler"] = scheduler = OrderScheduler(pool, settings)
        await scheduler.start()
        from api.retention import RetentionJob  # the scheduled purge of old positions (issue 6)

        ctx.extras["retention"] = retention = RetentionJob(pool, settings)
        await retention.start()
        app.state.ctx = ctx
        log.info("afstand ready", extra={"engine": run_engine})
        try:
            yield
        finally:
            await retention.stop()
            await scheduler.stop()
            if dispatch_listener is not None:
                await dispatch_listener.stop()
            await notifier.stop()
            if ctx.engine:
                await ctx.engine.stop()
            await ctx.hub.stop()
            try:
                await asyncio.wait_for(pool.close(), settings.shutdown_grace_s)
            except asyncio.TimeoutError:
                pool.terminate()  # a connection stuck on an unreachable server must not hold up the exit

    app = FastAPI(
        title="Afstand",
        version="0.1.0",
        description="Proximity and zone monitoring that protects victims of stalking. See CONTRACT.md.",
        lifespan=lifespan,
        # Every route: rate limits on login-like routes, and need-to-know on every staff route that names a
        # case or an alert (api/abuse.py, api/access.py; SECURITY.md).
        dependencies=[Depends(abuse.rate_limit), Depends(access.need_to_know)],
    )
    problems.install(app)
    db_outage.install(app)  # 503 with Retry-After while the database is unreachable
    openapi_doc.install(app)  # errors documented as problem documents (issue 6)
    app.add_middleware(SecurityHeaders)

    @app.middleware("http")
    async def request_log(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response = await call_next(request)
        # Path and status only: query strings and bodies may carry personal data.
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.scope.get("route").path if request.scope.get("route") else "unmatched",
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in (health.router, cases.router, alerts.router, alert_actions.router, alert_actions.policy_router,
                   ingest.router, me.router, victim_case.router, case_messages.victim_router,
                   case_messages.staff_router, contacts.router, timeline.router, order_terms.router, risk.router,
                   feasibility.router):
        app.include_router(router)
    for router in (track.router, audit_routes.router, evidence_routes.router, access_routes.router):
        app.include_router(router)
    from api.console import router as console_router  # the monitoring-room console page (issue 7)

    app.include_router(console_router)
    return app


def _notifications(settings: Settings, ctx: Context):  # type: ignore[no-untyped-def]
    """The outbox dispatcher (notifications/), given the alert writers so that package never imports api."""
    from api import alert_store, metrics
    from api.secrets import decrypt
    from notifications.service import NotificationService

    service = NotificationService.from_settings(
        settings, pool=ctx.pool, append_change=alert_store.append_change, open_alert=alert_store.open_alert,
        decrypt=lambda blob: decrypt(ctx.key, blob),
        on_failure=lambda channel, reason: metrics.DELIVERY_FAILURES.labels(channel, reason).inc(),
        on_depth=metrics.OUTBOX_DEPTH.set, alert_log_lock=alert_store.ALERT_LOG_LOCK,
    )
    ctx.extras["notifications"] = service
    if not settings.notify_enabled:
        service.dispatcher.config.workers = 0
    return service
