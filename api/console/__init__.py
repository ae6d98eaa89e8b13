"""The monitoring-room console: ``GET /console``, a page operators work incidents from.

The page is static: HTML, our own JavaScript and CSS in ``static/``, the third-party libraries vendored into
``static/vendor/`` at locked versions (``vendor.py``), and the UI's message catalogues in ``messages/``, all served
from this package, so the browser never fetches a script or style from elsewhere
(the CSP in api/platform/security_headers.py allows only 'self'). Everything the page shows comes from the public API
with the operator's own token; this router serves no case data. ``/console/config.json`` tells the page its
settings (the map's tile source) and which optional endpoints this server has, so that a button whose
endpoint is missing is hidden rather than failing.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_DIR = Path(__file__).resolve().parent
STATIC = _DIR / "static"
MESSAGES = _DIR / "messages"
LANGUAGES = ("nl", "en")
PDOK_BRT = "https://service.pdok.nl/brt/achtergrondkaart/wmts/v2_0/standaard/EPSG:3857/{z}/{x}/{y}.png"

_TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml"}

# Optional endpoints the page uses when this server has them: feature name -> (method, path).
FEATURES = {
    "track": ("GET", "/v1/cases/{case_id}/track"),
    "escalate": ("POST", "/v1/alerts/{alert_id}/escalate"),
    "message_victim": ("POST", "/v1/alerts/{alert_id}/message-victim"),
    "notes": ("POST", "/v1/alerts/{alert_id}/notes"),
    "assignments": ("GET", "/v1/cases/{case_id}/assignments"),
}


class ConsoleSettings(BaseSettings):
    """``AFSTAND_CONSOLE_TILE_URL``: XYZ template ({z}/{x}/{y}) of the map's background tiles in Web Mercator;
    empty turns tiles off. ``AFSTAND_CONSOLE_ACK_DEADLINE_S``: the default acknowledgement deadline after which
    an open alert is marked overdue (each operator can change it in the page). ``AFSTAND_CONSOLE_FLOOD_PER_MIN``:
    this many alerts raised within a minute show the flood banner (0: never)."""

    model_config = SettingsConfigDict(env_prefix="AFSTAND_CONSOLE_", extra="ignore")

    tile_url: str = PDOK_BRT
    ack_deadline_s: int = 60
    flood_per_min: int = Field(default=20, ge=0)


router = APIRouter(include_in_schema=False, tags=["console"])


@lru_cache(maxsize=None)
def _files() -> dict[str, Path]:
    """The servable files, by path under static/: a fixed set, so no path from a request ever reaches the file
    system."""
    return {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*")
            if p.is_file() and p.suffix in _TYPES and p.name != "MANIFEST.json"}


@router.get("/console")
async def console_page() -> Response:
    return FileResponse(STATIC / "index.html", media_type=_TYPES[".html"])


@router.get("/console/")
async def console_slash() -> Response:
    return RedirectResponse("/console", status_code=308)


@router.get("/console/static/{name:path}")
async def console_static(name: str) -> Response:
    path = _files().get(name)
    if path is None:
        return JSONResponse({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no such file"},
                            status_code=404, media_type="application/problem+json")
    return FileResponse(path, media_type=_TYPES[path.suffix])


@router.get("/console/messages/{language}.json")
async def console_messages(language: str) -> Response:
    if language not in LANGUAGES:
        language = "en"
    return FileResponse(MESSAGES / f"{language}.json", media_type=_TYPES[".json"])


def _features(request: Request) -> dict[str, bool]:
    """What this server offers, from its OpenAPI document (the one route table every FastAPI version exposes)."""
    try:
        paths = request.app.openapi().get("paths", {})
    except Exception:  # noqa: BLE001 - no schema: offer only what the contract guarantees
        paths = {}
    return {name: method.lower() in paths.get(path, {}) for name, (method, path) in FEATURES.items()}


@router.get("/console/config.json")
async def console_config(request: Request) -> dict[str, Any]:
    """No personal data: the tile source, defaults, the vocabularies the buttons offer, the optional features."""
    from api.alerts.lifecycle import OUTCOMES
    from api.cases.orders.schemas import ORDER_KINDS
    from api.contacts.schemas import AGENCIES, FUNCTIONS

    settings = ConsoleSettings()
    try:
        from notifications import catalogue

        templates = catalogue.operator_templates()
    except Exception:  # noqa: BLE001 - the page then offers free text only
        templates = []
    return {
        "tile_url": settings.tile_url or None,
        "ack_deadline_s": settings.ack_deadline_s,
        "flood_per_min": settings.flood_per_min,
        "outcomes": list(OUTCOMES),
        "order_kinds": list(ORDER_KINDS),
        "agencies": list(AGENCIES),
        "functions": list(FUNCTIONS),
        "message_templates": templates,
        "features": _features(request),
    }
