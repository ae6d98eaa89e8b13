"""``python -m bench.flood`` at a tiny size: it runs to its JSON line and the flood is one operator alert."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_flood_benchmark_runs_at_a_tiny_size() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.flood", "--tags", "25", "--silent-s", "6"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == {"silent_devices", "operator_alerts", "violation_to_stream_ms"}
    assert (result["silent_devices"], result["operator_alerts"]) == (25, 1)
    assert result["violation_to_stream_ms"] > 0
