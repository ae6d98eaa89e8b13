"""The benchmarks still run: each at a tiny size, as a child process, checked for its last line of JSON. The
figures at this size mean nothing; a benchmark that breaks (a renamed function, a refused request, no alert
raised) fails here instead of the next time someone measures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _last_json(*args: str, timeout: float) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout


def test_bench_engine_runs_tiny() -> None:
    result, _ = _last_json("bench.engine", "--cases", "50", "--fixes", "5000", timeout=120)
    assert {"positions_per_s", "p99_batch_ms", "cpu_positions_per_s", "rss_mb"} <= result.keys()
    assert result["positions_per_s"] > 0


@pytest.mark.slow  # ~30 s: an embedded PostgreSQL, a server process and four short load steps
def test_bench_ingest_runs_tiny_and_times_real_alerts() -> None:
    result, out = _last_json("bench.ingest", "--cases", "10", "--step-s", "3", "--start-rate", "60",
                             "--max-steps", "1", "--approach-every", "2", "--walk-from-m", "1200", timeout=300)
    assert set(result) == {"mixed_fixes_per_s", "supplier_fixes_per_s", "p99_fix_to_alert_ms", "p99_request_ms",
                           "rss_mb"}
    # Alerts were raised by the staged approaches and timed from the operators' stream.
    timed = int(out.split("alert changes timed: ")[1].split()[0])
    assert timed > 0 and result["p99_fix_to_alert_ms"] is not None and result["p99_fix_to_alert_ms"] > 0
    assert result["p99_request_ms"] > 0 and result["rss_mb"] > 0
    assert "failed 0 dropped 0" in out


@pytest.mark.slow  # ~40 s: setup, a short steady run at the national periods (scaled), and a timed restart
def test_bench_national_runs_tiny_and_times_a_restart() -> None:
    result, out = _last_json("bench.national", "--cases", "20", "--phones", "10", "--seconds", "12",
                             "--tag-period-s", "1", "--phone-period-s", "2", "--approach-every", "2", timeout=300)
    assert set(result) == {"cases", "p50_fix_to_alert_ms", "p99_fix_to_alert_ms", "max_fix_to_alert_ms", "cpu_pct",
                           "ready_s"}
    assert result["cases"] == 20
    assert result["p99_fix_to_alert_ms"] is not None and result["p99_fix_to_alert_ms"] > 0  # alerts were timed
    assert 0 < result["cpu_pct"] and 0 < result["ready_s"] < 60
    assert "failed 0, dropped 0" in out
