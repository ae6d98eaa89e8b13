"""What every supplier protocol decoder gives the intake service, whatever the wire format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Decoded:
    """One item of a body: what was sent (kept if rejected) and either the candidate or why there is none."""

    raw: Any
    candidate: Any = None  # a SupplierPosition, SupplierEvent or AppPosition
    error: str | None = None  # ``field: why``


# A decoder takes the raw (signature-checked) body and the item limit. A fault of the whole body raises the
# shared Problem (422 unreadable, 413 too many items); a fault of one item is that item's ``error``.
Decoder = Callable[[bytes, int], list[Decoded]]


@dataclass(frozen=True)
class SupplierProtocol:
    """One supplier wire format: its name, the media types that select it, and its two decoders, which turn
    items into :class:`api.intake.schemas.SupplierPosition` and :class:`~api.intake.schemas.SupplierEvent`
    candidates."""

    name: str
    media_types: tuple[str, ...]
    decode_positions: Decoder
    decode_events: Decoder

