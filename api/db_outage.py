"""While the database is unreachable, requests answer 503 with ``Retry-After``, never 500.

A request owns one transaction, so a request that fails this way has stored nothing (a 200 means committed);
the client retries it. ``/healthz``, ``/readyz`` and ``/metrics`` never need the database to answer.
"""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.database import DatabaseUnreachable
from api.problems import Problem, problem_response

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2  # the listeners retry at most this far apart, so the service notices the database back as soon

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


def install(app: FastAPI) -> None:
    async def _unreachable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unreachable", extra={"path": request.url.path, "error": type(exc).__name__})
        return problem_response(unavailable(), request.url.path)

    for cls in UNREACHABLE:
        app.add_exception_handler(cls, _unreachable)
