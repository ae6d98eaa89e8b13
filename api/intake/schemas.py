"""Bodies of the position and device-event intake, shared by suppliers (HMAC) and the victim app.

A batch is validated in two steps. The envelope (``{positions: [...]}``) is strict: an unknown top-level field
is a 422 for the whole request, and a list over the limit is a 413. Each item is then validated on its own, so
one bad item is reported (``rejected`` with the field and the reason) while the good ones are stored.

Numbers are strict (``true`` or ``"52.1"`` is not a latitude) and finite; times are RFC 3339 strings with an
offset (a naive time is ambiguous by an hour or two: enough to turn a violation into none).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from api.platform.times import DeviceTime

EVENT_TYPES = (
    "strap_tamper", "case_tamper", "strap_restored", "case_restored",
    "battery_low", "battery_critical", "charging",
    "gps_lost", "gps_restored", "device_offline", "device_online",
)


Num = dict(strict=True, allow_inf_nan=False)
Lat = Annotated[float, Field(ge=-90, le=90, **Num, description="WGS84 latitude, decimal degrees")]
Lon = Annotated[float, Field(ge=-180, le=180, **Num, description="WGS84 longitude, decimal degrees")]
Accuracy = Annotated[float, Field(gt=0, le=100_000, **Num, description="horizontal accuracy, metres (radius)")]
Source = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$",
                              description="how the fix was made, e.g. gps, wifi, cell, fused; default gps")]
Serial = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$",
                              description="the tag's serial as registered for this supplier")]


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SupplierPosition(_Item):
    serial: Serial
    recorded_at: DeviceTime
    lat: Lat
    lon: Lon
    accuracy_m: Accuracy
    source: Source = "gps"
    speed_mps: Annotated[float, Field(ge=0, le=1000, **Num)] | None = None
    heading_deg: Annotated[float, Field(ge=0, le=360, **Num)] | None = None
    battery_pct: Annotated[float, Field(ge=0, le=100, **Num)] | None = None


class AppPosition(_Item):
    recorded_at: DeviceTime
    lat: Lat
    lon: Lon
    accuracy_m: Accuracy
    source: Source = "gps"


class AppEncounter(_Item):
    """The victim's phone heard the case's tag: one of the identifiers ``GET /v1/me/beacons`` gave it matched."""

    recorded_at: DeviceTime
    beacon_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$", description="the identifier heard, 16 lowercase hex")]
    rssi: Annotated[int, Field(ge=-127, le=20, strict=True, description="received signal strength, dBm")]
    lat: Lat | None = None
    lon: Lon | None = None
    accuracy_m: Accuracy | None = None

    @model_validator(mode="after")
    def _position_whole(self) -> "AppEncounter":
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon: give both or neither")
        return self


class SupplierEvent(_Item):
    serial: Serial
    recorded_at: DeviceTime
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    detail: dict[str, Any] | None = Field(default=None, description="free-form, at most 4 KB as JSON")


SUPPLIER_POSITION = TypeAdapter(SupplierPosition)
APP_POSITION = TypeAdapter(AppPosition)
APP_ENCOUNTER = TypeAdapter(AppEncounter)
SUPPLIER_EVENT = TypeAdapter(SupplierEvent)


# ---------------------------------------------------------------- envelopes and results

class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SupplierPositionBatch(_Envelope):
    """At most ``AFSTAND_INGEST_MAX_ITEMS`` (1,000) items; more is a 413."""

    positions: list[SupplierPosition]


class AppPositionBatch(_Envelope):
    positions: list[AppPosition]


class AppEncounterBatch(_Envelope):
    """At most ``AFSTAND_INGEST_MAX_ITEMS`` (1,000) items; more is a 413."""

    encounters: list[AppEncounter]


class RawEncounterBatch(_Envelope):
    encounters: list[Any]


class SupplierEventBatch(_Envelope):
    events: list[SupplierEvent]


class RawPositionBatch(_Envelope):
    positions: list[Any]


class RawEventBatch(_Envelope):
    events: list[Any]


class ItemResult(BaseModel):
    index: int = Field(description="position of the item in the request's list, from 0")
    status: Literal["accepted", "duplicate", "rejected"]
    error: str | None = Field(default=None, description="for a rejected item: the field and why")


class BatchResult(BaseModel):
    results: list[ItemResult]



# ---------------------------------------------------------------- OpenAPI

def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` inlined, for ``openapi_extra``."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.split("/")[-1]])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The request body a route documents when it reads the body itself (after checking its signature)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": _inline(model.model_json_schema())}}}}
