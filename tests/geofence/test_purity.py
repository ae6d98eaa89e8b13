"""The engine core stays pure: no I/O layers (the import-linter contracts of pyproject.toml) and no clock reads."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "pyproject.toml"  # the one import-linter configuration


def test_import_contract_holds():
    """The pure core imports no I/O layer (RULES.md, introduction); the other contracts of the one configuration
    (notification policy pure, notifications apart from the api, endpoints imported by the app only) hold too."""
    command = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    result = subprocess.run([sys.executable, "-c", command, "--config", str(CONFIG), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout and "BROKEN" not in result.stdout
    assert "The engine core is pure" in result.stdout


def test_no_clock_reads_in_the_engine():
    """Time comes only from the fixes and tick(now) (RULES.md, introduction)."""
    clock = re.compile(r"datetime\.now|datetime\.utcnow|date\.today|time\.time\(|time\.monotonic|perf_counter")
    offenders = [str(path) for path in (ROOT / "geofence").rglob("*.py") if clock.search(path.read_text())]
    assert offenders == []
