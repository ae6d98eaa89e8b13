"""Request bodies are capped before authentication (api/platform/body_limit.py): a body over AFSTAND_MAX_BODY_BYTES is
413 at once, and the server never takes in more than the cap, whoever sends it. Tested on a real server over a
real socket, as an attacker with an unknown supplier key would send it."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import pytest

from tests.api.factories import db_val, fix, world
from tests.e2e.server import ServerProcess

CAP = 65_536
HUGE = 300 * 1024 * 1024  # what the unknown key claims to send


def _headers(extra: str) -> bytes:
    return ("POST /v1/ingest/positions HTTP/1.1\r\nHost: afstand\r\nContent-Type: application/json\r\n"
            "X-Afstand-Key: sk_unknown\r\nX-Afstand-Timestamp: " + str(int(time.time())) + "\r\n"
            "X-Afstand-Signature: " + "0" * 64 + "\r\n" + extra + "\r\n").encode()


def _stream_until_answered(sock: socket.socket, chunk: bytes, limit: int, chunked: bool) -> tuple[bytes, int]:
    """Send ``chunk`` after ``chunk`` until the server answers; returns the answer and the bytes sent by then."""
    sent = 0
    while sent < limit:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        except (BrokenPipeError, ConnectionResetError):
            break  # the server answered and closed: read its answer
        sent += len(chunk)
    return _read_answer(sock), sent


def _read_answer(sock: socket.socket) -> bytes:
    """The whole answer: the server closes the connection after a 413 (Connection: close)."""
    sock.settimeout(10)
    answer = b""
    while True:
        try:
            part = sock.recv(65_536)
        except (ConnectionResetError, TimeoutError):
            break
        if not part:
            break
        answer += part
    return answer


@pytest.fixture
def server(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    proc = ServerProcess(database_url, tmp_path / "data", AFSTAND_MAX_BODY_BYTES=str(CAP))
    proc.start()
    yield proc
    proc.stop()


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def test_a_declared_huge_body_is_refused_before_one_byte_is_read(server: ServerProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(_headers(f"Content-Length: {HUGE}\r\n"))
        answer = _read_answer(sock)  # no body byte has been sent: the answer comes on the headers alone
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer and b"AFSTAND_MAX_BODY_BYTES" in answer


def test_a_streamed_body_is_cut_off_at_the_cap_without_buffering(server: ServerProcess) -> None:
    """Chunked, so the size is unknown in advance: the server answers 413 once the cap is crossed, long before
    the 300 MB the client would send. What was sent beyond the cap sits in socket buffers, not in the server."""
    with _connect(server) as sock:
        sock.sendall(_headers("Transfer-Encoding: chunked\r\n"))
        answer, sent = _stream_until_answered(sock, b"[" * 16_384, HUGE, chunked=True)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 32 * 1024 * 1024, f"the answer came only after {sent} bytes"


def test_a_body_under_the_cap_is_served_and_a_larger_one_refused_for_everyone(make_client) -> None:  # type: ignore[no-untyped-def]
    """The cap applies before authentication and parsing: a signed, valid batch over the cap is 413 just like
    an unsigned one, and neither leaves a trace (no spent signature, no rejection, no fix)."""
    client = make_client(run_engine=False, max_body_bytes=CAP)
    w = world(client)
    small = w.supplier.positions(client, [fix(w.serial, 30)])
    assert small.status_code == 200, small.text
    big = [fix(w.serial, 40 + i) for i in range(CAP // 80)]
    before = db_val(client, "SELECT count(*) FROM hmac_seen")
    r = w.supplier.positions(client, big)
    assert r.status_code == 413 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"] == [{"loc": ["body"], "msg": f"the request body exceeds {CAP} bytes (AFSTAND_MAX_BODY_BYTES)"}]
    assert db_val(client, "SELECT count(*) FROM hmac_seen") == before
    assert db_val(client, "SELECT count(*) FROM positions") == 1
    assert db_val(client, "SELECT count(*) FROM ingest_rejections") == 0
    unsigned = client.post("/v1/cases", content=b"{" + b" " * CAP + b"}", headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 413
