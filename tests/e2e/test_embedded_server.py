"""Every command stops the embedded PostgreSQL it started, leaves running one it joined, and a later command on
the same data dir finds a clean state even after a command was killed (api/platform/embedded_pg.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pgserver
import psutil
import pytest

from api.platform.embedded_pg import EmbeddedServer
from tests.e2e.server import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def postmasters(data_dir: Path) -> list[psutil.Process]:
    """The PostgreSQL server processes serving ``data_dir/pg`` (the postmaster, not its workers)."""
    pgdata = str((data_dir / "pg").resolve())
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "ppid"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and pgdata in cmd and "-D" in cmd:
            found.append(proc)
    return found


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the command brings its own database
    return {**env, "AFSTAND_DATA_DIR": str(data_dir), "AFSTAND_LOG_LEVEL": "WARNING"}


def _cli(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], env=_env(data_dir), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port)], env=_env(data_dir),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "afstand serve exited while starting"
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise TimeoutError("afstand serve did not start")


def test_serve_stops_its_postgres_on_sigterm_and_a_killed_one_is_cleaned_up_by_the_next_command(tmp_path: Path) -> None:
    data = tmp_path / "d"
    proc, _ = _serve(data)
    assert len(postmasters(data)) == 1
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 128 + signal.SIGTERM
    assert time.monotonic() - started <= 10  # stopping its PostgreSQL included
    assert postmasters(data) == []

    # SIGKILL leaves the server behind (nothing can run at exit) ...
    proc, _ = _serve(data)
    orphan = postmasters(data)
    proc.kill()
    proc.wait(10)
    assert [p.pid for p in postmasters(data)] == [p.pid for p in orphan]
    # ... and the next command on the same data dir adopts it and stops it when it is done.
    result = _cli(data, "supplier", "create", "after-a-kill")
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"key_id"' in result.stdout
    assert postmasters(data) == []


def test_a_command_that_joined_a_running_server_leaves_it_running(tmp_path: Path) -> None:
    data = tmp_path / "d"
    ours = EmbeddedServer(data)  # this test process starts it, as `afstand serve` would
    ours.open()
    try:
        before = [p.pid for p in postmasters(data)]
        assert len(before) == 1
        result = _cli(data, "supplier", "create", "joiner")
        assert result.returncode == 0, result.stderr[-2000:]
        assert [p.pid for p in postmasters(data)] == before
    finally:
        ours.close()
    assert postmasters(data) == []


def test_a_server_another_program_holds_is_joined_and_left_running(tmp_path: Path) -> None:
    data = tmp_path / "d"
    (data / "pg").mkdir(parents=True)
    pgserver.get_server(data / "pg", cleanup_mode=None)  # this test process is "another program"
    try:
        before = [p.pid for p in postmasters(data)]
        result = _cli(data, "supplier", "create", "guest")
        assert result.returncode == 0, result.stderr[-2000:]
        assert [p.pid for p in postmasters(data)] == before
    finally:
        EmbeddedServer(data).stop()
    assert postmasters(data) == []


def test_a_process_that_started_the_server_stops_it_at_exit(tmp_path: Path) -> None:
    """What the test suite's own embedded server relies on (tests/conftest.py calls ``embedded_url``)."""
    data = tmp_path / "d"
    code = f"from pathlib import Path; from api.platform.database import embedded_url; print(embedded_url(Path({str(data)!r})))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(data), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("postgresql://")
    assert postmasters(data) == []
