"""The FastAPI application: wiring only. Each router owns one part of the contract."""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.auth import rate_limits as abuse
from api.auth import need_to_know as access
from api.platform import db_outage
from api.platform import openapi_doc
from api.platform import pg_channels
from api.platform import problems
from api.platform.context import Context
from api.platform.database import connect, create_pool, resolve_url
from api.platform.migrate import apply_migrations
from api.platform.pg_listener import Listener
from api.cluster.jobs import ClusterJobs
from api.cluster.leases import LeaseKeeper, Member
from api.monitoring.watch import ENGINE_LEASE, Watch, check_partition_count, jetstream_config
from api.alerts import endpoints as alerts
from api.cases import endpoints as cases
from api.platform import health_endpoints as health
from api.intake import endpoints as ingest
from api.intake.fix_log import FixLog
from api.victim import endpoints as me
from api.contacts.thread import endpoints as thread
from api.contacts import endpoints as contacts
from api.cases.feasibility import endpoints as feasibility
from api.cases.orders import endpoints as orders
from api.cases.devices import endpoints as devices
from api.cases.risk import endpoints as risk
from api.cases.timeline import endpoints as timeline
from api.privacy import endpoints as privacy
from api.auth import endpoints as access_routes  # need-to-know grants, watch lists, supplier keys
from api.auth.oidc import OIDCVerifier
from api.auth.principals import STAFF_ROLES
from api.platform.secrets import server_key
from api.platform.security_headers import SecurityHeaders
from api.platform.settings import Settings
from api.alerts.stream import AlertHub
from api.platform.body_limit import BodyLimit
from api.platform.loop_lag import LoopLagMonitor
from api.platform.request_log import RequestLog
from api.platform.clock import OffsetClock
from notifications import policy
from notifications.config import NotificationConfig, PushConfig, SmsConfig, WebhookTarget
from notifications.service import NotificationService, outbox_for

log = logging.getLogger("afstand")

SCHEDULERS_LEASE = "schedulers"  # order reminders, expiries, the daily digest and retention: once cluster-wide


def create_app(settings: Settings, *, run_engine: bool = True) -> FastAPI:
    """The process for ``settings.role``: ``all`` (everything, the default), ``api`` (the HTTP API and alert
    streams only), ``engine`` (engines, the relay, the cluster's scheduled jobs) or ``dispatcher``
    (notifications, the relay, the scheduled jobs). Engine and dispatcher processes serve only /healthz, /readyz
    and /metrics. ``run_engine=False`` leaves the engine and the relay out whatever the role (tests)."""
    role = settings.role
    serves_api = role in ("all", "api")
    runs_engine = run_engine and role in ("all", "engine")
    dispatches = role in ("all", "dispatcher")
    keeps_leases = role != "api"  # engines, the relay and the scheduled jobs move between these processes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = resolve_url(settings.database_url, settings.data_dir)
        conn = await connect(url)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()
        pool = await create_pool(url, settings.db_pool_min, settings.db_pool_max, settings.db_connect_timeout_s)
        clock = OffsetClock(settings.dev_clock_offset_s)
        notify = notification_config(settings)
        ctx = Context(
            settings=settings, pool=pool, key=server_key(settings), clock=clock, outbox=outbox_for(notify, pg_channels.OUTBOX, clock),
            rate_limits=abuse.TokenBuckets(settings.rate_limit_per_min, settings.rate_limit_burst,
                                           settings.rate_limit_max_keys),
            fix_log=FixLog(pool), oidc=_oidc_verifier(settings),
        )
        if serves_api:
            ctx.hub = AlertHub(url)
            await ctx.hub.start()
            ctx.listeners.append(ctx.hub.listener)
        stream = jetstream_config(settings)
        if stream is not None and keeps_leases:
            await check_partition_count(pool, stream.partitions)
        ctx.watch = watch = Watch(ctx, url, runs_engine=runs_engine, runs_relay=run_engine and keeps_leases,
                                  stream=stream, reports_coverage=run_engine)
        await watch.start()
        ctx.engine = watch.engine
        if watch.listener is not None:
            ctx.listeners.append(watch.listener)
        dispatch_listener = None
        if dispatches:
            ctx.notifications = notifier = _notifications(notify, ctx)
            await notifier.start()
            if settings.notify_enabled:
                wake = notifier.dispatcher.wake
                dispatch_listener = Listener(url, "dispatcher", {pg_channels.OUTBOX: wake}, wake)
                ctx.listeners.append(dispatch_listener)
                await dispatch_listener.start()
        from api.contacts.reminders import OrderScheduler  # order reminders, expiry, daily digest
        from api.privacy.retention import RetentionJob  # the scheduled purge of old positions

        ctx.order_scheduler = OrderScheduler(pool, settings, ctx.outbox, clock=ctx.clock)
        ctx.retention = RetentionJob(pool, settings)
        from api.alerts.outage import OutageMonitor  # supplier outages: one alert, run once cluster-wide

        outages = OutageMonitor(pool, settings, ctx.outbox)
        if keeps_leases:
            ctx.keeper = LeaseKeeper(
                url, pool, Member.this_process(role, watch.partitions > 0),
                singles=[*watch.singles(),
                         (SCHEDULERS_LEASE, ClusterJobs([ctx.order_scheduler, ctx.retention, outages]))],
                partitions=watch.partitions, partition_duty=watch.partition_duty,
                ttl_s=settings.lease_ttl_s, round_s=settings.lease_round_s,
            )
            await ctx.keeper.start()
            if watch.engine is not None and ctx.keeper.holds(ENGINE_LEASE):
                # As a single process always did: ready to judge fixes when it says it has started.
                await asyncio.wait_for(watch.engine.wait_started(), settings.startup_timeout_s)
        app.state.ctx = ctx
        metrics_listener = _metrics_listener(settings)
        log.info("afstand ready", extra={"role": role, "engine": runs_engine, "nats": stream is not None})
        try:
            yield
        finally:
            if metrics_listener is not None:
                metrics_listener.shutdown()
                metrics_listener.server_close()
            if ctx.keeper is not None:
                await ctx.keeper.stop()  # hands every duty over and releases its lease
            if dispatch_listener is not None:
                await dispatch_listener.stop()
            if ctx.notifications is not None:
                await ctx.notifications.stop()
            await watch.stop()
            if ctx.hub is not None:
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
    )
    # Every router but the two ingest routers: rate limits on login-like routes, and need-to-know on every staff
    # route that names a case or an alert (api/auth/rate_limits.py, api/auth/need_to_know.py; SECURITY.md). The
    # ingest routes take neither (no staff, no login secret) and are the hot path; tests/api/auth checks the split.
    guards = [Depends(abuse.rate_limit), Depends(access.need_to_know)]
    problems.install(app)
    db_outage.install(app)  # 503 with Retry-After while the database is unreachable
    openapi_doc.install(app)  # errors documented as problem documents
    # Added first, so the security headers and the request log wrap its 413; it still runs before routing,
    # authentication and parsing, which are all inside it.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLog, quiet_prefixes=(ingest.router.prefix + "/", me.INGEST_PATH))
    app.add_middleware(LoopLagMonitor, interval_s=settings.loop_lag_interval_s)

    if settings.trusted_proxies.strip():
        # Outermost: the client address every layer sees (the rate limits of api/auth/rate_limits.py) is taken from
        # X-Forwarded-For only when the peer is a listed proxy, walking the header from the right past listed
        # proxies. Without the setting the header is ignored, so no client can choose its own address.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # Metrics reveal load and alert counts: on their own listener (AFSTAND_METRICS_PORT) they are not served
        # here at all; with AFSTAND_METRICS_TOKEN set, only to a scraper that presents it.
        if settings.metrics_port is not None:
            raise problems.not_found("route")
        if settings.metrics_token is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                     settings.metrics_token.encode()):
                raise problems.Problem(401, "Unauthorized", "/metrics needs the bearer token AFSTAND_METRICS_TOKEN",
                                       headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(health.router, dependencies=guards)
    if not serves_api:
        return app
    for router in (cases.router, alerts.router, alerts.policy_router, me.router, thread.staff_router, contacts.router, timeline.router,
                   orders.terms_router, orders.worklist_router, devices.worklist_router, risk.router,
                   feasibility.router):
        app.include_router(router, dependencies=guards)
    for router in (privacy.track_router, privacy.audit_router, privacy.evidence_router, access_routes.router):
        app.include_router(router, dependencies=guards)
    from api.console import router as console_router  # the monitoring-room console page

    app.include_router(console_router, dependencies=guards)
    for router in (ingest.router, me.ingest_router):
        app.include_router(router)
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker process of ``afstand serve`` with ``AFSTAND_WORKERS`` > 1, from the environment the
    command prepared."""
    from api.platform.logs import configure_logging
    from api.platform.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def _metrics_listener(settings: Settings):  # type: ignore[no-untyped-def]
    """prometheus_client's own HTTP server on AFSTAND_METRICS_HOST:AFSTAND_METRICS_PORT, when set: a port the
    firewall opens to the scraper only, away from the public API."""
    if settings.metrics_port is None:
        return None
    server, _ = start_http_server(settings.metrics_port, addr=settings.metrics_host)
    return server


def notification_config(settings: Settings) -> NotificationConfig:
    """The notification layer's settings, from ours (notifications/ never reads api's Settings)."""
    def webhook(url: str | None, key_id: str, secret: str | None) -> WebhookTarget | None:
        return WebhookTarget(url, key_id, secret) if url else None

    return NotificationConfig(
        defaults=policy.CasePolicy(
            victim_ack_deadline_s=float(settings.victim_ack_deadline_s),
            auto_escalate_after_s=float(settings.auto_escalate_after_s),
            pursuit_interval_s=int(settings.pursuit_interval_s),
        ),
        deadline_s=float(settings.notify_deadline_s), dispatch=settings.notify_enabled,
        workers=settings.notify_workers, batch=settings.notify_batch, concurrency=settings.notify_concurrency,
        poll_s=settings.notify_poll_s, lease_s=settings.notify_lease_s,
        backoff_base_s=settings.notify_backoff_base_s, backoff_max_s=settings.notify_backoff_max_s,
        push=PushConfig(
            project_id=settings.fcm_project_id, url=settings.fcm_url, credentials_file=settings.fcm_credentials_file,
            timeout_s=settings.fcm_timeout_s, ttl_s=settings.fcm_ttl_s, critical=settings.fcm_critical_alerts,
        ) if settings.fcm_project_id else None,
        sms=SmsConfig(settings.sms_url, settings.sms_api_key, settings.sms_sender) if settings.sms_url else None,
        police=webhook(settings.police_webhook_url, settings.police_webhook_key_id, settings.police_webhook_secret),
        staff=webhook(settings.staff_webhook_url, settings.staff_webhook_key_id, settings.staff_webhook_secret),
        webhook_timeout_s=settings.webhook_timeout_s,
    )


def _oidc_verifier(settings: Settings) -> OIDCVerifier | None:
    s = settings
    if not s.oidc_issuer:
        return None
    return OIDCVerifier(
        s.oidc_issuer, s.oidc_audience, s.oidc_roles_claim, STAFF_ROLES, cache_s=s.oidc_jwks_cache_s,
        min_refresh_s=s.oidc_jwks_min_refresh_s, leeway_s=s.oidc_leeway_s, timeout_s=s.oidc_http_timeout_s,
    )


def _notifications(config: NotificationConfig, ctx: Context) -> NotificationService:
    """The outbox dispatcher (notifications/), given the alert writers so that package never imports api."""
    from api.alerts import repository as alert_store
    from api.platform import metrics
    from api.platform.secrets import decrypt
    from notifications.dispatcher import AlertHooks

    hooks = AlertHooks(
        append_change=functools.partial(alert_store.append_change, outbox=ctx.outbox),
        append_changes=functools.partial(alert_store.append_changes, outbox=ctx.outbox),
        open_alert=functools.partial(alert_store.open_alert, outbox=ctx.outbox),
        decrypt=lambda blob: decrypt(ctx.key, blob),
        on_failure=lambda channel, reason: metrics.DELIVERY_FAILURES.labels(channel, reason).inc(),
        on_depth=metrics.OUTBOX_DEPTH.set, alert_log_lock=alert_store.ALERT_LOG_LOCK,
    )
    return NotificationService.build(config, pool=ctx.pool, outbox=ctx.outbox, hooks=hooks)
