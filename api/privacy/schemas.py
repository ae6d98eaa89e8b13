"""Bodies of the privacy routes: GeoJSON tracks and encounters, audit log pages, the evidence signing key."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Mapping

from pydantic import BaseModel

from api.platform.times import iso


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: list[float]  # [lon, lat]


class FixProperties(BaseModel):
    seq: int
    party: Literal["offender", "victim"]
    device_id: str
    recorded_at: datetime
    received_at: datetime
    accuracy_m: float
    source: str
    speed_mps: float | None = None
    heading_deg: float | None = None
    battery_pct: float | None = None


class FixFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: PointGeometry
    properties: FixProperties


class Track(BaseModel):
    """A GeoJSON FeatureCollection: one Point per fix, both parties, oldest first."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[FixFeature]
    properties: dict[str, Any]


class EncounterProperties(BaseModel):
    seq: int
    device_id: str  # the victim's phone that heard the tag
    tag_id: str
    recorded_at: datetime
    received_at: datetime
    beacon_id: str
    rssi: int
    accuracy_m: float | None = None


class EncounterFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: PointGeometry | None  # where the victim's phone was, when it said so
    properties: EncounterProperties


class Encounters(BaseModel):
    """A GeoJSON FeatureCollection: one Feature per Bluetooth encounter, oldest first."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[EncounterFeature]
    properties: dict[str, Any]


class AuditRecord(BaseModel):
    chain_seq: int
    at: datetime
    actor: str
    role: str
    action: str
    case_id: str | None
    reason: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_cursor: str | None


class PublicKey(BaseModel):
    algorithm: str
    format: str
    public_key_pem: str
    public_key: str
    fingerprint: str


def feature(row: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """One fix as a GeoJSON Feature ([lon, lat], as GeoJSON and CONTRACT.md require)."""
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        "properties": {
            "seq": row["seq"], "party": row["party"], "device_id": str(row["device_id"]),
            "recorded_at": iso(row["recorded_at"]), "received_at": iso(row["received_at"]),
            "accuracy_m": row["accuracy_m"], "source": row["source"], "speed_mps": row["speed_mps"],
            "heading_deg": row["heading_deg"], "battery_pct": row["battery_pct"], **extra,
        },
    }


def encounter_feature(row: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """One Bluetooth encounter as a GeoJSON Feature: the position of the victim's phone that heard the tag
    ([lon, lat]), or no geometry when the phone gave none."""
    point = None if row["lat"] is None or row["lon"] is None else \
        {"type": "Point", "coordinates": [row["lon"], row["lat"]]}
    return {
        "type": "Feature",
        "geometry": point,
        "properties": {
            "seq": row["seq"], "device_id": str(row["device_id"]), "tag_id": str(row["tag_id"]),
            "recorded_at": iso(row["recorded_at"]), "received_at": iso(row["received_at"]),
            "beacon_id": row["beacon_id"], "rssi": row["rssi"], "accuracy_m": row["accuracy_m"], **extra,
        },
    }
