"""The OpenAPI document says what the API really answers: every error is an RFC 9457 problem document.

FastAPI documents only its own 422 (``HTTPValidationError``, ``application/json``), while api/platform/problems.py answers
every client mistake — 401, 403, 404, 409, 413, 422, 429 … — as ``application/problem+json``. This replaces the
422 and adds a ``4XX`` problem response to every operation, so clients (and the schemathesis fuzz test in
tests/api/privacy/test_fuzz.py) can rely on the schema for error bodies too."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["loc", "msg"],
            "properties": {"loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                           "msg": {"type": "string"}}}},
    },
}
_REF = {"$ref": "#/components/schemas/Problem"}
_PROBLEM = {"application/problem+json": {"schema": _REF}}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": _PROBLEM}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if "422" in responses:
                responses["422"] = _problem_response("Validation failed: `errors` names each field")
            for code, response in responses.items():
                # Error codes documented with a description only: their body is a problem document too.
                if code[0] == "4" and "content" not in response:
                    response["content"] = _PROBLEM
            responses.setdefault("4XX", _problem_response(
                "A client mistake (401 unauthenticated, 403 forbidden, 404 unknown or not yours, 409 conflict,"
                " 413 too large, 429 too many requests, …) as an RFC 9457 problem document"))
    schemas = schema["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes,
                openapi_version=app.openapi_version, tags=app.openapi_tags, servers=app.servers))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
