"""``python -m bench.notify`` at a tiny size: it runs, delivers, prints its figures and stops what it started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def _processes_using(path: str) -> list[str]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if path in cmd:
            found.append(cmd)
    return found


def test_bench_notify_delivers_reports_and_stops_its_database() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "bench.notify", "--changes", "60", "--cases", "12", "--rate", "0"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) == {"deliveries_per_s", "p99_enqueue_to_fcm_ms"}
    assert figures["deliveries_per_s"] > 0 and figures["p99_enqueue_to_fcm_ms"] > 0
    stats = dict(line.split(": ", 1) for line in lines[:-1] if ": " in line)
    assert stats["delivered"] == "60" and stats["recorded_sent"] == "60" and stats["left_in_outbox"] == "0"
    assert not Path(stats["data_dir"]).exists()
    assert _processes_using(stats["data_dir"]) == []
