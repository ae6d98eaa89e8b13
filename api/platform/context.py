"""What a request handler may reach: settings, the pool, the server key and the live services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncpg
from fastapi import Request

from api.platform.clock import OffsetClock
from api.platform.settings import Settings

if TYPE_CHECKING:
    from api.monitoring.runner import EngineRunner
    from api.platform.pg_listener import Listener
    from api.alerts.stream import AlertHub


@dataclass
class Context:
    settings: Settings
    pool: asyncpg.Pool
    key: bytes
    engine: "EngineRunner | None" = None
    hub: "AlertHub | None" = None
    listeners: "list[Listener]" = field(default_factory=list)  # each reported by /readyz
    extras: dict[str, Any] = field(default_factory=dict)
    clock: OffsetClock = field(default_factory=OffsetClock)  # scheduler, engine and notifications (api/platform/clock.py)


def get_context(request: Request) -> Context:
    return request.app.state.ctx
