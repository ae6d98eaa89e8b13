"""Which routes carry the application's guards (rate limits on login-like routes, need-to-know on staff routes
that name a case or an alert): every route but the two ingest routes, which take no staff token and no login
secret and are the hot path. A router added to the app without the guards fails here."""

from __future__ import annotations

from typing import Any

from fastapi.routing import iter_route_contexts

from api.app import create_app
from api.auth.need_to_know import need_to_know
from api.auth.rate_limits import rate_limit
from api.platform.settings import Settings

INGEST = {"/v1/ingest/positions", "/v1/ingest/events", "/v1/me/positions"}
# Served by the app itself, not by a router: neither names a case nor takes a login secret.
UNGUARDED_APP_ROUTES = {"/metrics"}


def _calls(route: Any) -> set[Any]:
    found, stack = set(), [route.dependant]
    while stack:
        dep = stack.pop()
        found.add(dep.call)
        stack.extend(dep.dependencies)
    return found


def test_every_route_but_ingest_carries_rate_limit_and_need_to_know(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=tmp_path))
    routes = [r for r in iter_route_contexts(app.routes) if getattr(r, "dependant", None) is not None]
    assert {r.path for r in routes} >= INGEST
    for route in routes:
        calls = _calls(route)
        if route.path in INGEST:
            assert not {rate_limit, need_to_know} & calls, f"{route.path} runs guards it does not need"
        elif route.path not in UNGUARDED_APP_ROUTES:
            assert {rate_limit, need_to_know} <= calls, f"{route.path} lacks the app's guards"
