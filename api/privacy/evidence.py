"""Evidence that survives us: open-format packages that a court can check without Afstand.

A package is a zip of plain files:

* ``fixes.geojson``: the fixes (GeoJSON FeatureCollection, [lon, lat], both parties) behind the alert(s);
* ``encounters.geojson``: the times the victim's phone heard the offender's tag over Bluetooth (RSSI, and the
  phone's position when it gave one), of the same period;
* ``alert.json`` / ``alerts.json`` and, for a case export, ``case.json`` and ``device_events.json``;
* ``decisions.json``: the engine's (and the system's) alert changes, oldest first;
* ``operator_actions.json``: what staff did (acknowledge, notes, escalation, resolution), with the actor;
* ``notifications.json``: every message to victim, police or supplier and each delivery attempt;
* ``public_key.pem`` and ``README.txt``;
* ``manifest.json``: the SHA-256 digest and size of every file above, what the package is about, who issued it
  and when, and the signing key's fingerprint;
* ``manifest.sig``: an Ed25519 signature (base64) of the exact bytes of ``manifest.json``.

The signing key is derived from the server secret (``derive(key, "evidence-signing")`` as the Ed25519 seed), so
every process that shares ``AFSTAND_SECRET_KEY`` signs with the same key and nothing extra needs storing; its
public half is published at ``GET /v1/evidence/public-key``. Anyone can verify with ``afstand evidence verify``
or with any Ed25519 and SHA-256 tool (README.txt in the package says how).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from api.auth.principals import STAFF_ROLES
from api.privacy import repository
from api.platform.times import iso
from api.privacy.schemas import encounter_feature, feature
from api.platform.secrets import derive

FORMAT = "afstand-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"

README = """Afstand evidence package ({format})

Every file in this zip except manifest.json and manifest.sig is listed in manifest.json with its SHA-256
digest and size. manifest.sig is the Ed25519 signature (base64) of the exact bytes of manifest.json, made with
the key in public_key.pem, whose fingerprint (SHA-256 of the raw 32-byte public key) is in manifest.json.
Compare that fingerprint with the one the operator of the service publishes (GET /v1/evidence/public-key):
a key found only inside the package proves nothing by itself.

Check with `afstand evidence verify FILE [--public-key KEY.pem]`, or by hand:
  sha256sum <file>                       compare with manifest.json "files"
  base64 -d manifest.sig > manifest.sig.bin
  openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in manifest.json -sigfile manifest.sig.bin

fixes.geojson: GeoJSON (RFC 7946), coordinates [lon, lat] in WGS84; properties: seq (the server's position
log number, which alert evidence refers to), party, device_id, recorded_at (device time), received_at (server
time), accuracy_m. encounters.geojson: GeoJSON as above, one Feature per time the victim's phone heard the offender's
tag over Bluetooth, at the phone's position (no geometry when it gave none); properties: seq (in the same log as
the fixes), device_id (the phone), tag_id, recorded_at, received_at, beacon_id (the tag's rotating identifier),
rssi (signal strength, dBm), accuracy_m. decisions.json: the engine's alert changes (fix_at = recorded_at of the deciding fix).
operator_actions.json: staff actions with their actor. notifications.json: messages and delivery attempts.
All times are UTC, RFC 3339.
"""


# ------------------------------------------------------------------ keys

def signing_key(server_key: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(derive(server_key, "evidence-signing"))


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public: Ed25519PublicKey) -> str:
    return "SHA256:" + hashlib.sha256(_raw(public)).hexdigest()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_info(server_key: bytes) -> dict[str, str]:
    public = signing_key(server_key).public_key()
    return {"algorithm": "Ed25519", "format": FORMAT, "public_key_pem": public_pem(public),
            "public_key": base64.b64encode(_raw(public)).decode(), "fingerprint": fingerprint(public)}


# ------------------------------------------------------------------ writing

def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n").encode()


class PackageWriter:
    """Writes files into an in-memory zip, hashing each as it goes."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._zip = zipfile.ZipFile(self._buffer, "w", compression=zipfile.ZIP_DEFLATED)
        self.files: dict[str, dict[str, Any]] = {}

    def add(self, name: str, data: bytes) -> None:
        self._zip.writestr(name, data)
        self.files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

    def add_json(self, name: str, obj: Any) -> None:
        self.add(name, _json_bytes(obj))

    async def add_features(self, name: str, rows: AsyncIterator[asyncpg.Record], evidence: set[int] | None = None,
                           to_feature: Callable[..., dict[str, Any]] = feature) -> int:
        """Stream rows (fixes; encounters with ``to_feature=encounter_feature``) from the database into a GeoJSON
        file without holding them all as objects."""
        digest, size, count = hashlib.sha256(), 0, 0
        with self._zip.open(name, "w") as out:
            def write(chunk: bytes) -> None:
                nonlocal size
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)

            write(b'{"type": "FeatureCollection", "features": [')
            async for row in rows:
                extra = {"evidence": row["seq"] in evidence} if evidence is not None else {}
                write((b",\n" if count else b"\n") + json.dumps(to_feature(row, **extra)).encode())
                count += 1
            write(b"\n]}\n")
        self.files[name] = {"sha256": digest.hexdigest(), "bytes": size}
        return count

    def finish(self, key: Ed25519PrivateKey, subject: dict[str, Any], issued_by: dict[str, Any]) -> tuple[bytes, str]:
        public = key.public_key()
        self.add(PUBLIC_KEY, public_pem(public).encode())
        self.add("README.txt", README.format(format=FORMAT).encode())
        manifest = {
            "format": FORMAT,
            "subject": subject,
            "issued_at": iso(datetime.now(timezone.utc)),
            "issued_by": issued_by,
            "signature": {"algorithm": "Ed25519", "file": SIGNATURE, "key_fingerprint": fingerprint(public)},
            "files": dict(sorted(self.files.items())),
        }
        manifest_bytes = _json_bytes(manifest)
        self._zip.writestr(MANIFEST, manifest_bytes)
        self._zip.writestr(SIGNATURE, base64.b64encode(key.sign(manifest_bytes)).decode() + "\n")
        self._zip.close()
        return self._buffer.getvalue(), hashlib.sha256(manifest_bytes).hexdigest()


# ------------------------------------------------------------------ what goes in

def _change(ch: asyncpg.Record) -> dict[str, Any]:
    return {"seq": ch["seq"], "alert_id": str(ch["alert_id"]), "n": ch["n"], "change": ch["change"],
            "level": ch["level"], "confidence": ch["confidence"], "at": iso(ch["at"]), "fix_at": iso(ch["fix_at"]),
            "actor": ch["actor"], "detail": ch["detail"]}


def _is_staff(actor: str | None) -> bool:
    return actor is not None and actor.split(":", 1)[0] in STAFF_ROLES


def _alert(row: asyncpg.Record) -> dict[str, Any]:
    out = {k: row[k] for k in row.keys()}
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = iso(v)
        elif isinstance(v, uuid.UUID):
            out[k] = str(v)
    return out


async def _history(conn: asyncpg.Connection, alert_ids: list[uuid.UUID]) -> tuple[list[dict], list[dict]]:
    rows = await repository.alert_changes(conn, alert_ids)
    decisions = [_change(r) for r in rows if not _is_staff(r["actor"])]
    actions = [_change(r) for r in rows if _is_staff(r["actor"])]
    return decisions, actions


async def _notifications(conn: asyncpg.Connection, alert_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """Messages and their delivery attempts. The payload (message text, tokens) stays out: what matters to a
    court is who was told what kind of thing, through which channel, when, and whether it arrived."""
    messages = await repository.messages(conn, alert_ids)
    attempts = await repository.delivery_attempts(conn, [m["id"] for m in messages])
    by_message: dict[int, list[dict[str, Any]]] = {}
    for a in attempts:
        by_message.setdefault(a["outbox_id"], []).append({
            "attempt": a["attempt"], "started_at": iso(a["started_at"]), "finished_at": iso(a["finished_at"]),
            "outcome": a["outcome"], "reason": a["reason"], "provider_id": a["provider_id"],
            "retry_after_s": a["retry_after_s"]})
    return [{
        "id": m["id"], "alert_id": str(m["alert_id"]), "change_seq": m["change_seq"], "recipient": m["recipient"],
        "channel": m["channel"], "purpose": m["purpose"], "safety": m["safety"], "status": m["status"],
        "attempts": m["attempts"], "enqueued_at": iso(m["enqueued_at"]), "deadline": iso(m["deadline"]),
        "last_error": m["last_error"], "provider_id": m["provider_id"], "sent_at": iso(m["sent_at"]),
        "message_key": str(m["message_key"]), "delivery_attempts": by_message.get(m["id"], []),
    } for m in messages]


def evidence_seqs(alert: asyncpg.Record) -> set[int]:
    seqs = {int(s) for s in alert["evidence"] if str(s).isdigit()}
    fix_seq = (alert["detail"] or {}).get("fix_seq")
    if isinstance(fix_seq, int):
        seqs.add(fix_seq)
    return seqs


def alert_window(alert: asyncpg.Record, margin: timedelta, now: datetime) -> tuple[datetime, datetime]:
    """The period whose fixes and encounters are evidence for an alert (the same rule retention keeps; see api/privacy/retention.py)."""
    end = alert["cleared_at"] or alert["resolved_at"] or now
    return alert["opened_at"] - margin, end + margin


@dataclass
class Package:
    data: bytes
    manifest_sha256: str
    files: list[str]
    fixes: int
    encounters: int
    case_id: uuid.UUID


async def alert_package(conn: asyncpg.Connection, server_key: bytes, alert_id: uuid.UUID, *,
                        margin: timedelta, issued_by: dict[str, Any]) -> Package | None:
    alert = await repository.alert(conn, alert_id)
    if alert is None:
        return None
    now = datetime.now(timezone.utc)
    start, end = alert_window(alert, margin, now)
    seqs = evidence_seqs(alert)
    w = PackageWriter()
    alert_doc = _alert(alert)
    alert_doc["evidence_window"] = {"from": iso(start), "to": iso(end)}
    w.add_json("alert.json", alert_doc)
    fixes = await w.add_features(
        "fixes.geojson", repository.alert_fixes(conn, alert["case_id"], list(seqs), start, end), evidence=seqs)
    encounters = await w.add_features(
        "encounters.geojson", repository.alert_encounters(conn, alert["case_id"], list(seqs), start, end),
        evidence=seqs, to_feature=encounter_feature)
    decisions, actions = await _history(conn, [alert_id])
    w.add_json("decisions.json", decisions)
    w.add_json("operator_actions.json", actions)
    w.add_json("notifications.json", await _notifications(conn, [alert_id]))
    subject = {"kind": "alert", "alert_id": str(alert_id), "case_id": str(alert["case_id"]),
               "case_reference": alert["case_reference"], "fixes": fixes, "encounters": encounters,
               "period": {"from": iso(start), "to": iso(end)}}
    data, digest = w.finish(signing_key(server_key), subject, issued_by)
    return Package(data, digest, sorted(w.files), fixes, encounters, alert["case_id"])


async def case_package(conn: asyncpg.Connection, server_key: bytes, case_id: uuid.UUID, *,
                       start: datetime | None, end: datetime | None, issued_by: dict[str, Any]) -> Package:
    held = await repository.case_file(conn, case_id)
    assert held is not None
    case = held["case"]
    w = PackageWriter()
    w.add_json("case.json", {
        **_alert(case),
        "parties": [dict(p) for p in held["parties"]],
        "orders": [_alert(o) for o in held["orders"]],
        "zones": [_alert(z) for z in held["zones"]],
        "devices": [_alert(d) for d in held["devices"]],
    })
    alerts = await repository.case_alerts(conn, case_id)
    alert_ids = [a["id"] for a in alerts]
    w.add_json("alerts.json", [_alert(a) for a in alerts])
    seqs: set[int] = set().union(*(evidence_seqs(a) for a in alerts)) if alerts else set()
    fixes = await w.add_features("fixes.geojson", repository.case_fixes(conn, case_id, start, end), evidence=seqs)
    encounters = await w.add_features("encounters.geojson", repository.case_encounters(conn, case_id, start, end),
                                      evidence=seqs, to_feature=encounter_feature)
    events = await repository.device_events(conn, case_id)
    w.add_json("device_events.json", [_alert(e) for e in events])
    decisions, actions = await _history(conn, alert_ids)
    w.add_json("decisions.json", decisions)
    w.add_json("operator_actions.json", actions)
    w.add_json("notifications.json", await _notifications(conn, alert_ids))
    subject = {"kind": "case", "case_id": str(case_id), "case_reference": case["reference"], "fixes": fixes,
               "encounters": encounters, "alerts": len(alerts), "period": {"from": iso(start), "to": iso(end)}}
    data, digest = w.finish(signing_key(server_key), subject, issued_by)
    return Package(data, digest, sorted(w.files), fixes, encounters, case_id)


# ------------------------------------------------------------------ checking

@dataclass
class Verification:
    faults: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    files: int = 0
    key_pinned: bool = False

    @property
    def intact(self) -> bool:
        return not self.faults


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verify(source: bytes | str | Path, trusted: Ed25519PublicKey | None = None) -> Verification:
    """Check every digest, that nothing was added or removed, and the manifest's signature. With ``trusted``,
    the package must also be signed by that key (without it, only by the key the package carries)."""
    report = Verification(key_pinned=trusted is not None)
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else Path(source))
    except (zipfile.BadZipFile, OSError) as e:
        report.faults.append(f"not a readable zip: {e}")
        return report
    with zf:
        names = zf.namelist()
        if len(names) != len(set(names)):
            report.faults.append("the zip holds two entries with the same name")
        if MANIFEST not in names or SIGNATURE not in names or PUBLIC_KEY not in names:
            report.faults.append(f"{MANIFEST}, {SIGNATURE} and {PUBLIC_KEY} are all required")
            return report
        manifest_bytes = zf.read(MANIFEST)
        try:
            manifest = json.loads(manifest_bytes)
            listed: dict[str, Any] = manifest["files"]
            claimed_fp = manifest["signature"]["key_fingerprint"]
            if not isinstance(listed, dict) or not all(isinstance(v, dict) for v in listed.values()):
                raise TypeError("files must map names to {sha256, bytes}")
        except (ValueError, KeyError, TypeError) as e:
            report.faults.append(f"{MANIFEST} is not a valid manifest: {e}")
            return report
        try:
            carried = load_public_key(zf.read(PUBLIC_KEY))
        except ValueError as e:
            report.faults.append(f"{PUBLIC_KEY}: {e}")
            return report
        key = trusted or carried
        report.fingerprint = fingerprint(key)
        if fingerprint(carried) != claimed_fp:
            report.faults.append(f"{PUBLIC_KEY} does not match the fingerprint in {MANIFEST}")
        if trusted is not None and fingerprint(trusted) != fingerprint(carried):
            report.faults.append("the package was not signed with the trusted key")
        try:
            key.verify(base64.b64decode(zf.read(SIGNATURE), validate=False), manifest_bytes)
        except (InvalidSignature, ValueError):
            report.faults.append(f"{SIGNATURE}: the signature of {MANIFEST} does not verify")
        for name in sorted(set(names) - {MANIFEST, SIGNATURE}):
            if name not in listed:
                report.faults.append(f"{name}: not listed in the manifest")
                continue
            data = zf.read(name)
            entry = listed[name]
            if hashlib.sha256(data).hexdigest() != entry.get("sha256") or len(data) != entry.get("bytes"):
                report.faults.append(f"{name}: content does not match its digest")
            report.files += 1
        for name in sorted(set(listed) - set(names)):
            report.faults.append(f"{name}: listed in the manifest but missing")
    return report
