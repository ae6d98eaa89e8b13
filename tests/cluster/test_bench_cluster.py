"""The cluster benchmark runs end to end at a tiny size and reports every figure (its numbers are in
bench/README.md, measured on a quiet machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

KEYS = {"fixes_per_s_1_api", "fixes_per_s_2_api", "cpu_ms_per_fix", "p99_fix_to_alert_ms", "failover_p50_s",
        "failover_max_s", "lost_fixes", "duplicate_changes"}


def test_bench_cluster_runs_tiny_and_loses_nothing(nats_url: str, cluster_database_url: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.cluster", "--cases", "24", "--seconds", "2", "--clients", "2", "--kills", "1",
         "--nats-url", nats_url, "--database-url", cluster_database_url],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result) == KEYS
    assert result["fixes_per_s_1_api"] > 0 and result["fixes_per_s_2_api"] > 0
    assert result["lost_fixes"] == 0 and result["duplicate_changes"] == 0
    assert 0 < result["failover_max_s"] <= 10
