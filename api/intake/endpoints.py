"""Supplier API: positions and device events from ankle monitors, HMAC-authenticated (see api/auth/principals.py).

The body is parsed here, after the signature is checked, rather than by FastAPI before it: so an unsigned or
badly signed request gets 401 whatever its body, and stores nothing.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from api.intake import service as ingestion
from api.auth.principals import SupplierDep
from api.platform.context import Context
from api.platform.problems import Problem, field_error, pydantic_errors
from api.intake.schemas import (
    BatchResult, RawEventBatch, RawPositionBatch, SupplierEventBatch, SupplierPositionBatch,
)

router = APIRouter(prefix="/v1/ingest", tags=["supplier"])


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` inlined, for ``openapi_extra``."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.split("/")[-1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": _inline(model.model_json_schema())}}}}


async def read_batch(request: Request, envelope: type[BaseModel], field: str, max_items: int) -> list[Any]:
    """The items of a ``{field: [...]}`` body: 422 for bad JSON or unknown top-level fields, 413 over the limit."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except RecursionError:
        raise field_error(["body"], "the JSON nests too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise field_error(["body"], "the body is not valid JSON") from None
    try:
        batch = envelope.model_validate(data)
    except ValidationError as e:
        errors = pydantic_errors(e.errors(include_url=False))
        detail = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in errors)
        raise Problem(422, "Validation failed", detail, type_="https://afstand.example/problems/validation",
                      errors=errors) from None
    items: list[Any] = getattr(batch, field)
    if len(items) > max_items:
        raise Problem(413, "Payload too large", f"{len(items)} {field}; at most {max_items} per request",
                      errors=[{"loc": [field], "msg": f"at most {max_items} items"}])
    return items


def _ctx(request: Request) -> Context:
    return request.app.state.ctx


def _plausible(ctx: Context) -> ingestion.PlausibleTimes:
    return ingestion.PlausibleTimes.from_settings(ctx.settings)


@router.post(
    "/positions", response_model=BatchResult, openapi_extra=body_doc(SupplierPositionBatch),
    responses={401: {"description": "unknown key, bad signature or stale timestamp"}, 413: {"description": "too many items"}},
)
async def post_positions(request: Request, supplier: SupplierDep) -> BatchResult:
    """Offender-tag fixes. Each item gets a result: ``accepted`` (committed before this 200), ``duplicate``
    (already stored for this device and ``recorded_at``: redelivery is safe) or ``rejected`` with the field and
    the reason. Items may name only this supplier's active tags."""
    ctx = _ctx(request)
    items = await read_batch(request, RawPositionBatch, "positions", ctx.settings.ingest_max_items)
    sender = ingestion.Sender.supplier(supplier.supplier_id, supplier.key_id)
    return BatchResult(results=await ingestion.ingest_positions(ctx.pool, sender, items, _plausible(ctx),
                                                                     ctx.outbox))


@router.post(
    "/events", response_model=BatchResult, openapi_extra=body_doc(SupplierEventBatch),
    responses={401: {"description": "unknown key, bad signature or stale timestamp"}, 413: {"description": "too many items"}},
)
async def post_events(request: Request, supplier: SupplierDep) -> BatchResult:
    """Device events (tamper, battery, GPS, offline). They raise ``device_event`` alerts; see api/intake/device_events.py
    for which, at what level, and what restores them. Same per-item results as positions."""
    ctx = _ctx(request)
    items = await read_batch(request, RawEventBatch, "events", ctx.settings.ingest_max_items)
    sender = ingestion.Sender.supplier(supplier.supplier_id, supplier.key_id)
    return BatchResult(results=await ingestion.ingest_events(ctx.pool, sender, items, _plausible(ctx),
                                                                  ctx.outbox))
