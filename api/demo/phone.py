"""The demo's simulated victim phone: an FCM HTTP v1 endpoint on loopback that shows each push as the phone
would, and hands the alert ids to the simulated app so it can confirm them (``POST /v1/me/alerts/{id}/ack``).

Only ``afstand demo`` uses it; the real service talks to FCM through its push channel unchanged, pointed here by
``AFSTAND_FCM_URL`` exactly as a private relay would be configured.
"""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SimulatedPhone:
    def __init__(self) -> None:
        self.received: "queue.Queue[dict[str, Any]]" = queue.Queue()
        phone = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # the demo prints its own lines
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                message = body.get("message", {})
                phone.received.put(message)
                answer = json.dumps({"name": f"projects/afstand-demo/messages/{phone.received.qsize()}"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="demo-phone")
        self._thread.start()

    @property
    def fcm_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1/projects/{{0}}/messages:send"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
