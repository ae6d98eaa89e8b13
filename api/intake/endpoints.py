"""Supplier API: positions and device events from ankle monitors, HMAC-authenticated (see api/auth/principals.py).

The body is decoded here, after the signature is checked, rather than by FastAPI before it: so an unsigned or
badly signed request gets 401 whatever its body, and stores nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.auth.principals import SupplierDep
from api.intake import protocols, service as ingestion
from api.intake.schemas import BatchResult, SupplierEventBatch, SupplierPositionBatch, body_doc
from api.platform.context import Context

router = APIRouter(prefix="/v1/ingest", tags=["supplier"])


def _ctx(request: Request) -> Context:
    return request.app.state.ctx


def _plausible(ctx: Context) -> ingestion.PlausibleTimes:
    return ingestion.PlausibleTimes.from_settings(ctx.settings)


def _protocol(request: Request) -> protocols.SupplierProtocol:
    return protocols.for_content_type(request.headers.get("content-type"))


@router.post(
    "/positions", response_model=BatchResult, openapi_extra=body_doc(SupplierPositionBatch),
    responses={401: {"description": "unknown key, bad signature or stale timestamp"}, 413: {"description": "too many items"}},
)
async def post_positions(request: Request, supplier: SupplierDep) -> BatchResult:
    """Offender-tag fixes. Each item gets a result: ``accepted`` (committed before this 200), ``duplicate``
    (already stored for this device and ``recorded_at``: redelivery is safe) or ``rejected`` with the field and
    the reason. Items may name only this supplier's active tags."""
    ctx = _ctx(request)
    decoded = _protocol(request).decode_positions(await request.body(), ctx.settings.ingest_max_items)
    sender = ingestion.Sender.supplier(supplier.supplier_id, supplier.key_id)
    return BatchResult(results=await ingestion.ingest_positions(ctx.pool, sender, decoded, _plausible(ctx),
                                                                     ctx.outbox, ctx.fix_log))


@router.post(
    "/events", response_model=BatchResult, openapi_extra=body_doc(SupplierEventBatch),
    responses={401: {"description": "unknown key, bad signature or stale timestamp"}, 413: {"description": "too many items"}},
)
async def post_events(request: Request, supplier: SupplierDep) -> BatchResult:
    """Device events (tamper, battery, GPS, offline). They raise ``device_event`` alerts; see api/intake/device_events.py
    for which, at what level, and what restores them. Same per-item results as positions."""
    ctx = _ctx(request)
    decoded = _protocol(request).decode_events(await request.body(), ctx.settings.ingest_max_items)
    sender = ingestion.Sender.supplier(supplier.supplier_id, supplier.key_id)
    return BatchResult(results=await ingestion.ingest_events(ctx.pool, sender, decoded, _plausible(ctx),
                                                                  ctx.outbox))
