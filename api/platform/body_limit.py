"""A cap on request bodies, applied before anything reads them: routing, authentication, parsing.

Pure ASGI, so the body is never gathered here: a ``Content-Length`` over the cap is answered 413 at once, before
one byte of the body is read; a body without one (chunked) is counted as the application reads it, and the read
that crosses the cap ends the request with 413. Either way no more than the cap is ever taken in, whoever the
caller is (an unknown supplier key cannot make the server buffer 300 MB to find out it is unknown).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.platform.problems import Problem, problem_response


class BodyTooLarge(Exception):
    """Raised into the application by the read that crosses the cap; the middleware answers 413."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the application answers to a cut-off body, the answer is the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        msg = f"the request body exceeds {self.max_bytes} bytes (AFSTAND_MAX_BODY_BYTES)"
        response = problem_response(
            Problem(413, "Payload too large", msg, errors=[{"loc": ["body"], "msg": msg}],
                    headers={"Connection": "close"}),
            scope.get("path"))
        await response(scope, receive, send)
