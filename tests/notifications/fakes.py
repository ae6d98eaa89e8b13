"""Local fake providers on 127.0.0.1: FCM HTTP v1, a police control-room webhook, an SMS gateway.

One threaded HTTP/1.1 server with a scriptable answer. Modes: ``ok``, ``unregistered``, ``invalid_token``,
``quota`` (429 + Retry-After), ``unavailable`` (503), ``hang`` (answers after ``hang_s``), ``error_400``.
``script`` is a list of modes used one per request before falling back to ``mode``.
"""

from __future__ import annotations

import json
import threading
import time
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

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
