"""Rate limits on the routes that take a secret from an unauthenticated caller (enrollment codes, refresh tokens).

A small in-process token bucket per client IP and route: ``AFSTAND_RATE_LIMIT_BURST`` requests at once, refilled
at ``AFSTAND_RATE_LIMIT_PER_MIN`` per minute. Over the limit the answer is 429 (problem+json) with
``Retry-After``. The limiter is applied application-wide (api/app.py) and acts only on the routes in
:data:`LIMITED`, so the list of login-like routes lives here, in one place.

In-process means per server process: behind several processes each has its own buckets, so the effective limit
is multiplied by their number (SECURITY.md says so). The client IP is the connection's peer; behind the TLS proxy,
list the proxy in ``AFSTAND_TRUSTED_PROXIES`` so that the client named in its ``X-Forwarded-For`` counts rather
than the proxy for everyone. From any other peer that header is ignored: a client cannot pick its own bucket.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from starlette.requests import HTTPConnection

from api.platform.context import Context
from api.platform.problems import Problem

# Login-like routes: each takes a secret (a code or a token) from a caller who has not yet proved anything.
LIMITED: frozenset[tuple[str, str]] = frozenset({
    ("POST", "/v1/me/enroll"),
    ("POST", "/v1/me/token"),
})


class TokenBuckets:
    def __init__(self, per_min: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = per_min / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[tuple[str, ...], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: tuple[str, ...], now: float | None = None) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)  # the least recently seen client
        return wait


async def rate_limit(conn: HTTPConnection) -> None:
    if conn.scope.get("type") != "http":
        return
    method = conn.scope.get("method", "")
    path = conn.url.path.rstrip("/") or "/"
    if (method, path) not in LIMITED:
        return
    ctx: Context = conn.app.state.ctx
    if not ctx.settings.rate_limit_enabled:
        return
    client = conn.client.host if conn.client else "unknown"
    wait = ctx.rate_limits.take((client, method, path))
    if wait > 0:
        raise Problem(429, "Too many requests", f"too many requests to {path} from this address; retry later",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})
