"""What a request handler may reach: settings, the pool, the server key and the live services, each a typed
field built by the app factory (api/app.py); nothing is looked up by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg
from fastapi import Request

from api.platform.clock import OffsetClock
from api.platform.settings import Settings
from notifications.outbox import Outbox

if TYPE_CHECKING:
    from api.alerts.stream import AlertHub
    from api.auth.oidc import OIDCVerifier
    from api.cluster.leases import LeaseKeeper
    from api.monitoring.watch import Watch
    from api.auth.rate_limits import TokenBuckets
    from api.intake.fix_log import FixLog
    from api.contacts.reminders import OrderScheduler
    from api.monitoring.runner import EngineRunner
    from api.platform.pg_listener import Listener
    from api.privacy.retention import RetentionJob
    from notifications.service import NotificationService


@dataclass
class Context:
    settings: Settings
    pool: asyncpg.Pool
    key: bytes
    outbox: Outbox  # every writer of an alert change or a notice enqueues through it
    rate_limits: "TokenBuckets"  # the login-like routes' buckets (api/auth/rate_limits.py)
    fix_log: "FixLog"  # the intake's group commit into positions (api/intake/fix_log.py)
    oidc: "OIDCVerifier | None" = None  # with AFSTAND_OIDC_ISSUER: verifies staff tokens (api/auth/principals.py)
    clock: OffsetClock = field(default_factory=OffsetClock)  # scheduler, engine and notifications (api/platform/clock.py)
    engine: "EngineRunner | None" = None  # the engine over the PostgreSQL log, when this process may run it
    watch: "Watch | None" = None  # this process's engine-side duties (api/monitoring/watch.py)
    keeper: "LeaseKeeper | None" = None  # its leases (api/cluster/leases.py); None in an API process
    hub: "AlertHub | None" = None
    notifications: "NotificationService | None" = None
    order_scheduler: "OrderScheduler | None" = None
    retention: "RetentionJob | None" = None
    listeners: "list[Listener]" = field(default_factory=list)  # each reported by /readyz
    # time.monotonic() of the last purge of seen supplier signatures (api/auth/principals.py).
    hmac_pruned_at: float = float("-inf")


async def get_context(request: Request) -> Context:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a hop per request for an attribute read.
    return request.app.state.ctx
