"""One log line per HTTP request: method, route template, status and duration; never the query string or the
body, which may carry personal data (coordinates among them).

Plain ASGI middleware rather than ``@app.middleware("http")`` (Starlette's BaseHTTPMiddleware), which runs the
rest of the application in a separate task with its own streams on every request: that costs the ingest routes
more than their own work. The high-volume ingest routes log at DEBUG, so at INFO the log is not one line per fix.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("afstand.request")


class RequestLog:
    def __init__(self, app: ASGIApp, *, quiet_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.quiet_prefixes = quiet_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the application fails before starting a response

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            level = logging.DEBUG if scope["path"].startswith(self.quiet_prefixes) else logging.INFO
            if log.isEnabledFor(level):
                route = scope.get("route")
                log.log(level, "request", extra={
                    "method": scope["method"], "path": getattr(route, "path", "unmatched"), "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                })
