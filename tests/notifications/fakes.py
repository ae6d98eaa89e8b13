"""Local fake providers on 127.0.0.1: FCM HTTP v1, a police control-room webhook, an SMS gateway.

One threaded HTTP/1.1 server with a scriptable answer. Modes: ``ok``, ``unregistered``, ``invalid_token``,
``quota`` (429 + Retry-After), ``unavailable`` (503), ``unauthenticated`` (401), ``hang`` (answers after
``hang_s``), ``error_400``. ``script`` is a list of modes used one per request before falling back to ``mode``.
The FCM fake is also Google's OAuth2 token endpoint (``token_url``): it answers a service account's signed JWT
with an access token and keeps the requests in ``token_requests``.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def _fcm_error(code: int, status: str, fcm_code: str | None, message: str) -> dict[str, Any]:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}] if fcm_code else []
    return {"error": {"code": code, "message": message, "status": status, "details": details}}


FCM_ANSWERS: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
    "unregistered": (404, _fcm_error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."), {}),
    "invalid_token": (400, _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                                      "The registration token is not a valid FCM registration token"), {}),
    "quota": (429, _fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded."), {"Retry-After": "7"}),
    "unavailable": (503, _fcm_error(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."), {}),
    "unauthenticated": (401, _fcm_error(401, "UNAUTHENTICATED", None,
                                        "Request had invalid authentication credentials."), {}),
    "error_400": (400, _fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received."), {}),
}


@dataclass
class FakeServer:
    kind: str = "fcm"  # fcm | http
    mode: str = "ok"
    script: list[str] = field(default_factory=list)
    hang_s: float = 3.0
    received: list[Received] = field(default_factory=list)
    on_request: Callable[[Received], None] | None = None
    token_requests: list[dict[str, str]] = field(default_factory=list)
    token_ttl_s: int = 3600

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the client's delayed ACK holds each answer.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                if fake.kind == "fcm" and self.path == "/token":
                    self._token(body)
                    return
                rec = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                with fake._lock:
                    fake.received.append(rec)
                    fake._counter += 1
                    mode = fake.script.pop(0) if fake.script else fake.mode
                    count = fake._counter
                if fake.on_request is not None:
                    fake.on_request(rec)
                if mode == "hang":
                    time.sleep(fake.hang_s)
                    mode = "ok"
                if mode == "ok":
                    payload: dict[str, Any] = (
                        {"name": f"projects/test/messages/{count}"} if fake.kind == "fcm" else {"id": f"msg-{count}"}
                    )
                    self._answer(200, payload, {})
                elif fake.kind == "fcm" and mode in FCM_ANSWERS:
                    self._answer(*FCM_ANSWERS[mode])
                elif mode == "quota":
                    self._answer(429, {"error": "slow down"}, {"Retry-After": "7"})
                elif mode == "unavailable":
                    self._answer(503, {"error": "down"}, {})
                else:
                    self._answer(400, {"error": "bad request"}, {})

            def _token(self, body: bytes) -> None:
                form = dict(urllib.parse.parse_qsl(body.decode()))
                with fake._lock:
                    fake.token_requests.append(form)
                    n = len(fake.token_requests)
                self._answer(200, {"access_token": f"fake-access-{n}", "expires_in": fake.token_ttl_s,
                                   "token_type": "Bearer"}, {})

            def _answer(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                raw = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(raw)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # a client may open its connections all at once

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return self.base + "/token"

    @property
    def fcm_url(self) -> str:
        return self.base + "/v1/projects/{0}/messages:send"

    def messages(self) -> list[dict[str, Any]]:
        """FCM requests' ``message`` objects, in arrival order."""
        return [r.json["message"] for r in list(self.received)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakeServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
