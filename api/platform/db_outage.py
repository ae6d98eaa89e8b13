"""While the database is unreachable, requests answer 503 with ``Retry-After``, never 500.

A request owns one transaction, so a request that fails this way has stored nothing (a 200 means committed);
the client retries it. Once a request has found the database unreachable, every route (also those that do not
read it, such as the console's files) answers 503 at once until a probe reaches the database again; only
``/healthz``, ``/readyz`` and ``/metrics`` keep answering, as they must to report the outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from api.platform.database import DatabaseUnreachable
from api.platform.problems import Problem, problem_response

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2  # the listeners retry at most this far apart, so the service notices the database back as soon
EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
_PROBE_EVERY_S = 0.5  # while down, at most this often one request checks whether the database is back
_PROBE_TIMEOUT_S = 1.0

# Losing the server, not a statement failing: refused or timed-out connections, a backend terminated by an
# administrator or a crash, a server starting up or shutting down, a connection dropped mid-request.
UNREACHABLE: tuple[type[BaseException], ...] = (
    DatabaseUnreachable,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # asyncpg's own state errors ("another operation is in progress") follow a backend terminated in the
    # middle of a statement; no request can cause them, and the pool replaces the connection.
    asyncpg.InternalClientError,
    ConnectionError,
)


def unavailable() -> Problem:
    return Problem(503, "Service unavailable", "the database is unreachable; nothing was stored, retry later",
                   headers={"Retry-After": str(RETRY_AFTER_S)})


class Gate:
    """Whether the database is known to be unreachable, and a shared probe that finds out when it is back."""

    def __init__(self) -> None:
        self.down = False
        self._probed_at = float("-inf")
        self._lock = asyncio.Lock()

    def failed(self) -> None:
        self.down = True  # the next request probes at once: a single terminated connection costs one 503

    async def reachable(self, pool: asyncpg.Pool) -> bool:
        """True unless the database is known down and a probe (shared by concurrent requests) still fails."""
        if not self.down:
            return True
        async with self._lock:
            if self.down and time.monotonic() - self._probed_at >= _PROBE_EVERY_S:
                self._probed_at = time.monotonic()
                try:
                    await asyncio.wait_for(pool.fetchval("SELECT 1"), _PROBE_TIMEOUT_S)
                    self.down = False
                except Exception:  # not reached, for whatever reason: still down
                    pass
        return not self.down


def install(app: FastAPI) -> None:
    gate = Gate()
    app.state.database_gate = gate

    async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
        gate.failed()
        log.warning("database unreachable", extra={"path": request.url.path, "error": type(exc).__name__})
        return problem_response(unavailable(), request.url.path)

    for cls in UNREACHABLE:
        app.add_exception_handler(cls, _unreachable)

    @app.middleware("http")
    async def refuse_while_down(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        ctx = getattr(request.app.state, "ctx", None)
        if request.url.path in EXEMPT or ctx is None or await gate.reachable(ctx.pool):
            return await call_next(request)
        return problem_response(unavailable(), request.url.path)
