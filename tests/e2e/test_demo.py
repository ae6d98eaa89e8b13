"""The README's main-job command works: ``afstand demo`` runs the whole system on its scripted incident."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_embedded_server import postmasters


def test_demo_shows_the_incident_from_approach_to_departure(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the demo brings its own database
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "demo", "--data-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2], env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for line in ("OPENED      proximity", "ESCALATED   proximity       violation", "OPENED      zone_exclusion",
                 "CLEARED     zone_exclusion", "CLEARED     proximity"):
        assert line in out, out
    assert "VICTIM'S PHONE  Veiligheidsmelding" in out
    assert "VICTIM_ACKNOWLEDGED" in out
    assert out.index("OPENED      proximity") < out.index("CLEARED     proximity")
    # The Bluetooth moment: GPS lost 2 km out in the car park, her phone hears the tag, the violation rises.
    ble = [line for line in out.splitlines() if "BLUETOOTH CONTACT" in line]
    assert ble and "OPENED      proximity       violation confirmed" in ble[0], out
    assert out.index("CLEARED     proximity") < out.index("BLUETOOTH CONTACT")
    assert postmasters(tmp_path / "demo") == []  # the embedded PostgreSQL the demo started ended with it
