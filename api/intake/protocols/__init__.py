"""Supplier protocols: one decoder module per wire format, registered in :data:`PROTOCOLS`.

A decoder turns a signature-checked body into candidate fixes or events with per-item errors; the intake
service does the rest (plausible times, the supplier's devices, storing, waking the engine). A second format
is one new module here that builds a :class:`SupplierProtocol`, plus its entry in :data:`PROTOCOLS`.
"""

from __future__ import annotations

from api.intake.protocols import json_contract
from api.intake.protocols.base import Decoded, SupplierProtocol

# The first is the default: today's suppliers send the JSON contract with whatever Content-Type they send.
PROTOCOLS: tuple[SupplierProtocol, ...] = (json_contract.PROTOCOL,)


def for_content_type(content_type: str | None) -> SupplierProtocol:
    """The protocol whose media type the request names, else the default (the JSON contract)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    for protocol in PROTOCOLS:
        if media_type in protocol.media_types:
            return protocol
    return PROTOCOLS[0]


__all__ = ["Decoded", "PROTOCOLS", "SupplierProtocol", "for_content_type"]
