"""Evidence that survives us: signed, open-format packages that `afstand evidence verify` checks, and that
fail the check after any change to a file, the manifest, or the key."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.cli import main
from api.privacy.evidence import MANIFEST, PUBLIC_KEY, SIGNATURE, fingerprint, public_pem, verify
from tests.api.factories import db_val
from tests.helpers import staff_headers
from tests.api.privacy.support import VICTIM, audit_page, case_with_panic


@pytest.fixture
def client(make_client):  # type: ignore[no-untyped-def]
    return make_client(run_engine=False)


def _incident(client):  # type: ignore[no-untyped-def]
    """A case with fixes, a panic with the victim's position, worked by an operator."""
    w, _, alert_id = case_with_panic(client, n=3, after_s=150)
    operator = staff_headers(client, "operator")
    assert client.post(f"/v1/alerts/{alert_id}/acknowledge", headers=operator).status_code == 200
    assert client.post(f"/v1/alerts/{alert_id}/notes", headers=operator, json={"note": "called victim"}).status_code == 200
    return w, alert_id


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _rezip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def _public_key(client, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    r = client.get("/v1/evidence/public-key")  # public on purpose: no token
    assert r.status_code == 200 and r.json()["algorithm"] == "Ed25519"
    path = tmp_path / "afstand.pem"
    path.write_text(r.json()["public_key_pem"])
    return path


def test_alert_evidence_holds_fixes_decisions_actions_and_notifications(client) -> None:  # type: ignore[no-untyped-def]
    w, alert_id = _incident(client)
    r = client.get(f"/v1/alerts/{alert_id}/evidence", params={"reason": "prosecutor OM-77 asked"},
                   headers=staff_headers(client, "operator"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip" and "attachment" in r.headers["content-disposition"]
    files = _files(r.content)
    assert set(files) == {"alert.json", "fixes.geojson", "encounters.geojson", "decisions.json",
                          "operator_actions.json", "notifications.json", PUBLIC_KEY, "README.txt", MANIFEST, SIGNATURE}
    manifest = json.loads(files[MANIFEST])
    assert set(manifest["files"]) == set(files) - {MANIFEST, SIGNATURE}
    assert manifest["subject"]["alert_id"] == alert_id and manifest["issued_by"]["reason"] == "prosecutor OM-77 asked"

    fixes = json.loads(files["fixes.geojson"])
    assert fixes["type"] == "FeatureCollection"
    panic_fix = [f for f in fixes["features"] if f["properties"]["evidence"]]
    assert [f["geometry"]["coordinates"] for f in panic_fix] == [[VICTIM[1], VICTIM[0]]]
    assert {f["properties"]["party"] for f in fixes["features"]} == {"offender", "victim"}  # the window's fixes

    decisions = json.loads(files["decisions.json"])
    assert decisions[0]["change"] == "opened" and decisions[0]["actor"].startswith("victim_app:")
    actions = json.loads(files["operator_actions.json"])
    assert [a["change"] for a in actions] == ["acknowledged", "note"]
    assert all(a["actor"] == "operator:test-operator" for a in actions)
    notes = json.loads(files["notifications.json"])
    assert isinstance(notes, list) and all("delivery_attempts" in n and "payload" not in n for n in notes)

    # The export is on the audit record, with the digest of the very manifest that was issued.
    rec = audit_page(client, action="alert.evidence")["items"][0]
    assert rec["case_id"] == w.case_id and rec["reason"] == "prosecutor OM-77 asked"
    assert rec["detail"]["manifest_sha256"] == r.headers["x-afstand-manifest-sha256"]


def test_verify_passes_intact_and_fails_any_tampering(client, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, alert_id = _incident(client)
    data = client.get(f"/v1/alerts/{alert_id}/evidence", params={"reason": "court"},
                      headers=staff_headers(client, "admin")).content
    key = _public_key(client, tmp_path)
    intact = tmp_path / "intact.zip"
    intact.write_bytes(data)
    assert main(["evidence", "verify", str(intact), "--public-key", str(key)]) == 0
    assert "intact" in capsys.readouterr().out
    assert main(["evidence", "verify", str(intact)]) == 0  # against the key it carries, with a note

    files = _files(data)
    fixes = json.loads(files["fixes.geojson"])
    fixes["features"][0]["geometry"]["coordinates"][0] += 0.001  # move one fix about 70 m
    cases = {
        "file": {**files, "fixes.geojson": json.dumps(fixes).encode()},
        "manifest": {**files, MANIFEST: files[MANIFEST].replace(b'"court"', b'"courts"')},
        "removed file": {k: v for k, v in files.items() if k != "operator_actions.json"},
        "added file": {**files, "extra.json": b"{}"},
        "signature": {**files, SIGNATURE: base64.b64encode(b"\0" * 64)},
    }
    # Someone who re-hashes the changed file and re-signs with a key of his own is caught by the pinned key.
    forger = Ed25519PrivateKey.generate()
    manifest = json.loads(files[MANIFEST])
    manifest["files"]["fixes.geojson"]["sha256"] = hashlib.sha256(cases["file"]["fixes.geojson"]).hexdigest()
    manifest["files"]["fixes.geojson"]["bytes"] = len(cases["file"]["fixes.geojson"])
    forged_key = public_pem(forger.public_key()).encode()
    manifest["files"][PUBLIC_KEY]["sha256"] = hashlib.sha256(forged_key).hexdigest()
    manifest["files"][PUBLIC_KEY]["bytes"] = len(forged_key)
    manifest["signature"]["key_fingerprint"] = fingerprint(forger.public_key())
    forged_manifest = (json.dumps(manifest, indent=2) + "\n").encode()
    forged = {**cases["file"], PUBLIC_KEY: forged_key, MANIFEST: forged_manifest,
              SIGNATURE: base64.b64encode(forger.sign(forged_manifest))}
    assert verify(_rezip(forged)).intact  # self-consistent: only a trusted key exposes it
    cases["re-signed by another key"] = forged

    for what, tampered in cases.items():
        assert tampered != files, what
        path = tmp_path / f"{what.replace(' ', '-')}.zip"
        path.write_bytes(_rezip(tampered))
        assert main(["evidence", "verify", str(path), "--public-key", str(key)]) == 1, what
        out = capsys.readouterr().out
        assert "TAMPERED" in out, what
    assert "fixes.geojson: content does not match its digest" in \
        "\n".join(verify(_rezip(cases["file"])).faults)
    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"garbage")
    assert main(["evidence", "verify", str(not_zip)]) == 1


def test_case_export_holds_the_whole_case_and_is_audited(client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w, alert_id = _incident(client)
    r = client.get(f"/v1/cases/{w.case_id}/export", params={"reason": "court order 2025/123"},
                   headers=staff_headers(client, "case_director"))
    assert r.status_code == 200, r.text
    files = _files(r.content)
    assert {"case.json", "alerts.json", "fixes.geojson", "device_events.json", "decisions.json",
            "operator_actions.json", "notifications.json"} <= set(files)
    case = json.loads(files["case.json"])
    assert case["id"] == w.case_id and {p["role"] for p in case["parties"]} == {"victim", "offender"}
    assert [a["id"] for a in json.loads(files["alerts.json"])] == [alert_id]
    stored = db_val(client, "SELECT count(*) FROM positions WHERE case_id = $1::uuid", w.case_id)
    assert len(json.loads(files["fixes.geojson"])["features"]) == stored == 7
    path = tmp_path / "case.zip"
    path.write_bytes(r.content)
    assert verify(path).intact
    rec = audit_page(client, action="case.export")["items"][0]
    assert rec["case_id"] == w.case_id and rec["detail"]["fixes"] == 7
    assert rec["detail"]["manifest_sha256"] == r.headers["x-afstand-manifest-sha256"]


def test_evidence_needs_a_reason_and_an_entitled_role(client) -> None:  # type: ignore[no-untyped-def]
    w, alert_id = _incident(client)
    admin = staff_headers(client, "admin")
    r = client.get(f"/v1/alerts/{alert_id}/evidence", headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "reason"]
    r = client.get(f"/v1/cases/{w.case_id}/export", headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "reason"]
    for role in ("contact_person", "auditor"):  # 403 by role, or 404 when need-to-know hides the case first
        h = staff_headers(client, role)
        assert client.get(f"/v1/alerts/{alert_id}/evidence", params={"reason": "x" * 5}, headers=h).status_code in (403, 404)
        assert client.get(f"/v1/cases/{w.case_id}/export", params={"reason": "x" * 5}, headers=h).status_code in (403, 404)
    assert client.get(f"/v1/alerts/{alert_id}/evidence", params={"reason": "court"}, headers=w.victim).status_code == 401
    missing = client.get("/v1/alerts/00000000-0000-0000-0000-000000000000/evidence", params={"reason": "court"},
                         headers=admin)
    assert missing.status_code == 404
    assert db_val(client, "SELECT count(*) FROM audit_log WHERE action IN ('alert.evidence', 'case.export')") == 0


def test_public_key_is_stable_and_signs_the_packages(client) -> None:  # type: ignore[no-untyped-def]
    _, alert_id = _incident(client)
    first = client.get("/v1/evidence/public-key").json()
    assert client.get("/v1/evidence/public-key").json() == first
    data = client.get(f"/v1/alerts/{alert_id}/evidence", params={"reason": "court"},
                      headers=staff_headers(client, "admin")).content
    assert _files(data)[PUBLIC_KEY].decode() == first["public_key_pem"]
    assert json.loads(_files(data)[MANIFEST])["signature"]["key_fingerprint"] == first["fingerprint"]
