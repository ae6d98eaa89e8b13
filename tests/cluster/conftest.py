"""The cluster tests run real processes against the machine's NATS JetStream and one PostgreSQL (the
machine's when TEST_DATABASE_URL is set, else the embedded one).

NATS: AFSTAND_TEST_NATS_URL, else nats://127.0.0.1:4222; when nothing answers there and a ``nats-server`` binary is
on the PATH, one is started for the session on a free port. Without either the tests are skipped, saying why
(CI has the machine's NATS)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import _server
from tests.e2e.server import free_port


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("AFSTAND_TEST_NATS_URL", "nats://127.0.0.1:4222")
    if _answers(url):
        yield url
        return
    binary = shutil.which("nats-server")
    if binary is None:
        pytest.skip(f"no NATS at {url} and no nats-server binary to start one")
    port = free_port()
    store = tmp_path_factory.mktemp("nats")
    proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"nats://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not _answers(url):
        assert time.monotonic() < deadline, "nats-server did not start"
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def cluster_database_url(embedded_dir: Path) -> str:
    return _server("service" if os.environ.get("TEST_DATABASE_URL") else "embedded", embedded_dir).fresh()


@pytest.fixture
def stream_names() -> dict[str, str]:
    """A stream and subjects of this test's own, so runs never see each other's fixes."""
    tag = uuid.uuid4().hex[:10]
    return {"AFSTAND_NATS_STREAM": f"AFSTAND_TEST_{tag}", "AFSTAND_NATS_SUBJECT_PREFIX": f"afstand-test-{tag}"}
