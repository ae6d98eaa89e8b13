"""Today's JSON contract (CONTRACT.md "Supplier API" and the victim app's positions): ``{positions: [...]}`` and
``{events: [...]}``.

Two steps. The envelope is strict: a body that is not JSON or has an unknown top-level field is a 422 for the
whole request, and a list over the limit is a 413. Each item is then validated on its own against the schemas
of :mod:`api.intake.schemas`, so one bad item is reported while the good ones go on.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from api.intake.model import storable
from api.intake.protocols.base import Decoded, SupplierProtocol
from api.intake.schemas import (
    APP_ENCOUNTER, APP_POSITION, SUPPLIER_EVENT, SUPPLIER_POSITION, RawEncounterBatch, RawEventBatch, RawPositionBatch,
)
from api.platform.problems import Problem, field_error, pydantic_errors

MAX_DETAIL_BYTES = 4096


def read_items(raw: bytes, envelope: type[BaseModel], field: str, max_items: int) -> list[Any]:
    """The items of a ``{field: [...]}`` body: 422 for bad JSON or unknown top-level fields, 413 over the limit."""
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


def describe(error: ValidationError) -> str:
    """``field: why`` for each problem of one item, e.g. ``lat: Input should be less than or equal to 90``."""
    parts = []
    for e in error.errors(include_url=False):
        loc = ".".join(str(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "invalid"))
        if e.get("type") == "model_type":
            loc, msg = "item", "must be a JSON object"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        parts.append(f"{loc or 'item'}: {msg}")
    return "; ".join(parts)


def validate(adapter: TypeAdapter[Any], raw: Any) -> tuple[BaseModel | None, str | None]:
    try:
        return adapter.validate_python(raw), None
    except ValidationError as e:
        return None, describe(e)


def _decode(adapter: TypeAdapter[Any], raw: Any) -> Decoded:
    model, error = validate(adapter, raw)
    return Decoded(raw, model, error)


def _decode_event(raw: Any) -> Decoded:
    model, error = validate(SUPPLIER_EVENT, raw)
    if model is not None and model.detail is not None \
            and len(json.dumps(storable(model.detail))) > MAX_DETAIL_BYTES:  # type: ignore[attr-defined]
        return Decoded(raw, None, "detail: at most 4 KB as JSON")
    return Decoded(raw, model, error)


def decode_positions(body: bytes, max_items: int) -> list[Decoded]:
    return [_decode(SUPPLIER_POSITION, raw) for raw in read_items(body, RawPositionBatch, "positions", max_items)]


def decode_events(body: bytes, max_items: int) -> list[Decoded]:
    return [_decode_event(raw) for raw in read_items(body, RawEventBatch, "events", max_items)]


def decode_app_positions(body: bytes, max_items: int) -> list[Decoded]:
    """The victim app's positions: the same envelope, items without a serial (the device is the token's)."""
    return [_decode(APP_POSITION, raw) for raw in read_items(body, RawPositionBatch, "positions", max_items)]


def decode_app_encounters(body: bytes, max_items: int) -> list[Decoded]:
    """The victim app's Bluetooth encounters: ``{encounters: [...]}``, each item on its own."""
    return [_decode(APP_ENCOUNTER, raw) for raw in read_items(body, RawEncounterBatch, "encounters", max_items)]


PROTOCOL = SupplierProtocol(
    name="afstand-json", media_types=("application/json",),
    decode_positions=decode_positions, decode_events=decode_events,
)
