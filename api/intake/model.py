"""The plain data of one intake batch: who sent it, the devices it names, the fixes it carries and the result
of each item. No database and no HTTP here, so the decoders, the service and the repository can all use it."""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

_NOT_IN_UTF8 = re.compile("[\x00\ud800-\udfff]")
MAX_STORED_ITEM_CHARS = 8_000  # a rejected item is kept whole up to this size, truncated beyond it

Status = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True)
class Sender:
    """Who sent a batch: a supplier (items name the serial) or one victim app (the device is the token's)."""

    channel: Literal["supplier", "app"]
    sender: str  # supplier key id, or ``victim_app:<device id>``; recorded with every rejection
    supplier_id: uuid.UUID | None = None
    device_id: uuid.UUID | None = None
    case_id: uuid.UUID | None = None
    # The app's token was issued at: its device must not have had its token family revoked since. None when the
    # caller checked the token against the device already (api/auth/principals.py victim_device).
    issued_at: datetime | None = None

    @classmethod
    def supplier(cls, supplier_id: uuid.UUID, key_id: str) -> "Sender":
        return cls("supplier", key_id, supplier_id=supplier_id)

    @classmethod
    def app(cls, device_id: uuid.UUID, case_id: uuid.UUID, issued_at: datetime | None = None) -> "Sender":
        return cls("app", f"victim_app:{device_id}", device_id=device_id, case_id=case_id, issued_at=issued_at)

    @property
    def party(self) -> str:
        return "offender" if self.channel == "supplier" else "victim"


@dataclass(frozen=True)
class Device:
    id: uuid.UUID
    case_id: uuid.UUID
    serial: str | None


@dataclass
class IncomingFix:
    """An accepted, not yet stored position (once in the log, the engine reads it as a ``geofence.model.Fix``)."""

    index: int
    device: Device
    party: str
    recorded_at: datetime
    lat: float
    lon: float
    accuracy_m: float
    source: str
    speed_mps: float | None = None
    heading_deg: float | None = None
    battery_pct: float | None = None

    @property
    def key(self) -> tuple[uuid.UUID, datetime]:
        return (self.device.id, self.recorded_at)


@dataclass
class BatchOutcome:
    """The per-item results of one batch, and what to keep of the rejected items."""

    size: int
    results: list[dict[str, Any] | None] = field(default_factory=list)
    rejected: list[tuple[int, Any, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.results = [None] * self.size

    def reject(self, index: int, item: Any, reason: str) -> None:
        self.results[index] = {"index": index, "status": "rejected", "error": reason}
        self.rejected.append((index, item, reason))

    def mark(self, index: int, status: Status) -> None:
        self.results[index] = {"index": index, "status": status}

    def final(self) -> list[dict[str, Any]]:
        assert all(r is not None for r in self.results), "every item gets a result"
        return self.results  # type: ignore[return-value]

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r and r["status"] == status)


def storable(value: Any, depth: int = 0) -> Any:
    """A JSON value PostgreSQL's jsonb accepts: no NaN/Infinity (Python's json parses them), no NUL characters and
    no unpaired UTF-16 surrogates (Python's json lets ``"\\ud800"`` and CESU-8 bytes through; UTF-8 has no
    such characters)."""
    if depth > 32:
        return "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return _NOT_IN_UTF8.sub("\ufffd", value)
    if isinstance(value, dict):
        return {storable(str(k)): storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v, depth + 1) for v in value]
    return value


def kept_item(item: Any) -> Any:
    """What ``ingest_rejections`` keeps of a rejected item: the item made storable, truncated when very large."""
    clean = storable(item)
    text = json.dumps(clean)
    if len(text) > MAX_STORED_ITEM_CHARS:
        return {"truncated": text[:MAX_STORED_ITEM_CHARS]}
    return clean
