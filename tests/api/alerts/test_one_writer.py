"""``alerts`` and ``alert_changes`` have one writer, api/alerts/repository.py: every other module goes through its
functions, so the alert-log lock order and the outbox enqueue cannot be bypassed."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
WRITE = re.compile(r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(alerts|alert_changes)\b", re.IGNORECASE)
OWNER = ROOT / "api" / "alerts" / "repository.py"


def test_only_the_alerts_repository_writes_alerts_and_alert_changes() -> None:
    product = [p for top in ("api", "notifications", "geofence", "bench") for p in (ROOT / top).rglob("*.py")]
    writers = sorted(str(p.relative_to(ROOT)) for p in product if WRITE.search(p.read_text()))
    assert writers == [str(OWNER.relative_to(ROOT))]
