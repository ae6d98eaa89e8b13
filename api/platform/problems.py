"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "https://afstand.example/problems/"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type_: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_ or _TYPE_BASE + title.lower().replace(" ", "-")
        self.errors = errors
        self.headers = headers
        self.extensions = extensions or {}  # RFC 9457 extension members, e.g. a refused zone's findings


def field_error(loc: list[str | int], msg: str, status: int = 422) -> Problem:
    """A validation problem about one field."""
    return Problem(
        status,
        "Validation failed",
        f"{'.'.join(str(p) for p in loc)}: {msg}",
        type_=_TYPE_BASE + "validation",
        errors=[{"loc": loc, "msg": msg}],
    )


def not_found(what: str) -> Problem:
    return Problem(404, "Not found", f"{what} does not exist or is not yours to see")


def conflict(detail: str) -> Problem:
    return Problem(409, "Conflict", detail)


def problem_response(p: Problem, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {**p.extensions, "type": p.type, "title": p.title, "status": p.status, "detail": p.detail}
    if instance:
        body["instance"] = instance
    if p.errors is not None:
        body["errors"] = p.errors
    return JSONResponse(body, status_code=p.status, media_type=PROBLEM_JSON, headers=p.headers)


def pydantic_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = [p for p in e.get("loc", ()) if p != "body"] or ["body"]
        out.append({"loc": loc, "msg": e.get("msg", "invalid")})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = pydantic_errors(exc.errors())
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem_response(
            Problem(422, "Validation failed", detail, type_=_TYPE_BASE + "validation", errors=errors), request.url.path
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
                 405: "Method not allowed", 413: "Payload too large"}.get(exc.status_code, "Error")
        # FastAPI answers 400 only when it cannot parse a body (not JSON, invalid UTF-8, nested too deeply).
        errors = [{"loc": ["body"], "msg": str(exc.detail)}] if exc.status_code == 400 else None
        return problem_response(
            Problem(exc.status_code, title, str(exc.detail), errors=errors, headers=getattr(exc, "headers", None)),
            request.url.path,
        )

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    @app.exception_handler(asyncpg.UntranslatableCharacterError)
    async def _bad_text(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL stores no NUL character in text or jsonb: a client's string with one is a client mistake.
        return problem_response(
            Problem(422, "Validation failed", "text may not contain NUL (\\u0000) characters",
                    type_=_TYPE_BASE + "validation", errors=[{"loc": ["body"], "msg": "NUL character in text"}]),
            request.url.path)

    @app.exception_handler(UnicodeEncodeError)
    async def _unpaired_surrogate(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # Python's JSON parser accepts "\ud800" (and CESU-8 bytes) as a lone UTF-16 surrogate, which no UTF-8
        # text can hold: the client's mistake. Any other encoding failure is the server's.
        if exc.reason != "surrogates not allowed":
            return await _unexpected(request, exc)
        return problem_response(
            Problem(422, "Validation failed", "text may not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)",
                    type_=_TYPE_BASE + "validation",
                    errors=[{"loc": ["body"], "msg": "unpaired surrogate in text"}]),
            request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(Problem(500, "Internal error", "The server failed; the error is logged."))
