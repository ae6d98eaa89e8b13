"""Abuse resistance (issue 6): rate limits on login-like routes, HMAC replay protection, supplier key rotation
with two active secrets, device revocation that kills tokens at once, enrollment codes of at least 40 bits."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

from api.auth.rate_limits import LIMITED, TokenBuckets
from api.auth.principals import sign
from api.cases.enrollments.service import ALPHABET, LOOKUP_LEN, SECRET_LEN, new_code
from tests.api.factories import Supplier, bearer, db, db_val, enroll, fix, new_case, new_supplier, world
from tests.helpers import staff_headers
from tests.api.auth.route_policy import POLICY


def assert_problem(r, status: int) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


# ---------------------------------------------------------------- rate limits


def test_enrollment_is_rate_limited_per_client_with_retry_after(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, rate_limit_burst=3, rate_limit_per_min=6)
    bad = {"code": "ABCDEFGH" + "2" * 16, "installation_id": "x", "platform": "android"}
    assert [client.post("/v1/me/enroll", json=bad).status_code for _ in range(3)] == [400, 400, 400]
    limited = assert_problem(client.post("/v1/me/enroll", json=bad), 429)
    assert limited["title"] == "Too many requests"
    r = client.post("/v1/me/enroll", json=bad)
    assert 1 <= int(r.headers["retry-after"]) <= 10  # one token per 10 s
    # Even the right code waits: the limit is decided before the code is looked at, so it cannot be probed.
    case_id = new_case(client)
    code = client.post(f"/v1/cases/{case_id}/enrollments", headers=staff_headers(client, "case_director")).json()["code"]
    assert_problem(client.post("/v1/me/enroll", json={**bad, "code": code}), 429)
    # Each route has its own bucket: token refresh is still open.
    assert client.post("/v1/me/token", json={"refresh_token": "nope"}).status_code == 401
    # Routes that are not login-like are never limited.
    assert all(client.get("/healthz").status_code == 200 for _ in range(10))


def test_token_refresh_is_rate_limited(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, rate_limit_burst=2)
    statuses = [client.post("/v1/me/token", json={"refresh_token": "guess"}).status_code for _ in range(4)]
    assert statuses == [401, 401, 429, 429]


def test_rate_limits_can_be_turned_off(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, rate_limit_burst=1, rate_limit_enabled=False)
    assert {client.post("/v1/me/token", json={"refresh_token": "guess"}).status_code for _ in range(5)} == {401}


def test_token_buckets_refill_and_keep_clients_apart() -> None:
    buckets = TokenBuckets(per_min=60, burst=2, max_keys=100)
    a, b = ("10.0.0.1", "POST", "/v1/me/enroll"), ("10.0.0.2", "POST", "/v1/me/enroll")
    assert [buckets.take(a, now=0.0), buckets.take(a, now=0.0)] == [0.0, 0.0]
    assert buckets.take(a, now=0.0) == 1.0  # one per second: wait a second
    assert buckets.take(b, now=0.0) == 0.0  # another client is not affected
    assert buckets.take(a, now=1.0) == 0.0  # refilled
    # Memory stays bounded: the least recently seen clients are forgotten.
    for i in range(500):
        buckets.take((f"10.1.{i // 256}.{i % 256}", "POST", "/v1/me/enroll"), now=2.0)
    assert len(buckets._buckets) <= 100


def test_login_like_routes_are_the_limited_ones() -> None:
    assert LIMITED == {key for key, rule in POLICY.items() if rule.kind == "login"}


# ---------------------------------------------------------------- HMAC replay protection


def test_a_replayed_signature_is_refused_and_stores_nothing(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    body = json.dumps({"positions": [fix(w.serial, 20)]}).encode()
    ts = str(int(time.time()))
    headers = {"X-Afstand-Key": w.supplier.key_id, "X-Afstand-Timestamp": ts,
               "X-Afstand-Signature": sign(w.supplier.secret, ts, body), "Content-Type": "application/json"}
    assert client.post("/v1/ingest/positions", content=body, headers=headers).status_code == 200
    before = (db_val(client, "SELECT count(*) FROM positions"), db_val(client, "SELECT count(*) FROM ingest_rejections"))
    # The same request again, and the same signature with an upper-case hex spelling.
    replay = assert_problem(client.post("/v1/ingest/positions", content=body, headers=headers), 401)
    assert "used already" in replay["detail"]
    upper = {**headers, "X-Afstand-Signature": headers["X-Afstand-Signature"].upper()}
    assert_problem(client.post("/v1/ingest/positions", content=body, headers=upper), 401)
    # Replayed against the other supplier route, the signature is spent there too.
    assert_problem(client.post("/v1/ingest/events", content=body, headers=headers), 401)
    after = (db_val(client, "SELECT count(*) FROM positions"), db_val(client, "SELECT count(*) FROM ingest_rejections"))
    assert after == before
    assert db_val(client, "SELECT count(*) FROM hmac_seen WHERE key_id = $1", w.supplier.key_id) == 1


def test_a_rejected_signature_is_not_remembered(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    w.supplier.positions(client, [fix(w.serial, 10)], secret="wrong")
    assert db_val(client, "SELECT count(*) FROM hmac_seen") == 0  # an attacker cannot fill the table


def test_old_signatures_are_pruned(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, hmac_seen_prune_s=0)
    w = world(client)
    db(client, "INSERT INTO hmac_seen (signature, key_id, seen_at) VALUES ('old', 'k', now() - interval '11 minutes'),"
               " ('recent', 'k', now() - interval '2 minutes')")
    assert w.supplier.positions(client, [fix(w.serial, 10)]).status_code == 200
    assert sorted(r["signature"] for r in db(client, "SELECT signature FROM hmac_seen WHERE key_id = 'k'")) == ["recent"]


# ---------------------------------------------------------------- supplier key rotation


def test_supplier_key_rotation_with_two_active_secrets(client) -> None:  # type: ignore[no-untyped-def]
    w = world(client)
    admin = staff_headers(client, "admin")
    r = client.post(f"/v1/supplier-keys/{w.supplier.key_id}/rotate", headers=admin)
    assert r.status_code == 201, r.text
    new = Supplier(r.json()["key_id"], r.json()["secret"])
    assert r.json()["replaces"] == w.supplier.key_id and new.key_id != w.supplier.key_id
    assert new.secret not in json.dumps([dict(x) for x in db(client, "SELECT * FROM audit_log")], default=str)
    # Both keys work meanwhile, for the same supplier's tags.
    assert w.supplier.positions(client, [fix(w.serial, 30)]).json()["results"][0]["status"] == "accepted"
    assert new.positions(client, [fix(w.serial, 20)]).json()["results"][0]["status"] == "accepted"
    # Two active keys at most.
    assert_problem(client.post(f"/v1/supplier-keys/{new.key_id}/rotate", headers=admin), 409)
    # The old key is revoked: it stops at once, the new one carries on.
    assert client.post(f"/v1/supplier-keys/{w.supplier.key_id}/revoke", headers=admin).json()["revoked_at"]
    assert_problem(w.supplier.positions(client, [fix(w.serial, 15)]), 401)
    assert new.positions(client, [fix(w.serial, 10)]).json()["results"][0]["status"] == "accepted"
    # Only admins manage keys.
    assert_problem(client.post(f"/v1/supplier-keys/{new.key_id}/rotate", headers=staff_headers(client, "case_director")), 403)
    actions = [r["action"] for r in db(client, "SELECT action FROM audit_log WHERE action LIKE 'supplier_key.%' ORDER BY chain_seq")]
    assert actions == ["supplier_key.rotate", "supplier_key.revoke"]


def test_supplier_rotate_command(client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    supplier = new_supplier(client)
    settings = client.app.state.ctx.settings
    env = {**os.environ, "DATABASE_URL": settings.database_url}
    run = lambda *args: subprocess.run([sys.executable, "-m", "api.cli", "supplier", *args, "--data-dir",  # noqa: E731
                                        str(settings.data_dir)], capture_output=True, text=True, env=env)
    out = run("rotate", supplier.key_id)
    assert out.returncode == 0, out.stderr
    rotated = json.loads(out.stdout)
    assert rotated["replaces"] == supplier.key_id and rotated["secret"]
    new = Supplier(rotated["key_id"], rotated["secret"])
    # The server (same data dir, same key) accepts the new secret at once.
    assert new.post(client, "/v1/ingest/positions", {"positions": []}).status_code == 200
    assert run("rotate", supplier.key_id).returncode == 2  # a third active key is refused
    assert run("revoke", supplier.key_id).returncode == 0
    assert_problem(supplier.post(client, "/v1/ingest/positions", {"positions": []}), 401)


# ---------------------------------------------------------------- victim devices and enrollment codes


def test_revoking_a_victim_device_kills_its_access_token_at_once(client) -> None:  # type: ignore[no-untyped-def]
    case_id = new_case(client)
    app = enroll(client, case_id)
    me = bearer(app)
    reads = sorted(path for (method, path), rule in POLICY.items()
                   if rule.kind == "victim" and method == "GET" and "{" not in path)
    assert len(reads) >= 7 and all(client.get(p, headers=me).status_code == 200 for p in reads)
    director = staff_headers(client, "case_director")
    assert client.post(f"/v1/cases/{case_id}/devices/{app['device_id']}/revoke", headers=director).status_code == 200
    # The access token has not expired, yet nothing answers it any more, nor its refresh token.
    for path in reads:
        assert_problem(client.get(path, headers=me), 401)
    assert_problem(client.post("/v1/me/positions", headers=me, json={"positions": [fix(None, 5)]}), 401)
    assert_problem(client.post("/v1/me/token", json={"refresh_token": app["refresh_token"]}), 401)
    assert db_val(client, "SELECT count(*) FROM positions") == 0


def test_enrollment_codes_carry_at_least_40_bits(client) -> None:  # type: ignore[no-untyped-def]
    bits_per_symbol = math.log2(len(set(ALPHABET)))
    assert len(set(ALPHABET)) == len(ALPHABET) == 32
    assert SECRET_LEN * bits_per_symbol >= 40 and SECRET_LEN * bits_per_symbol == 80
    codes = {"".join(new_code()) for _ in range(2000)}
    assert len(codes) == 2000 and all(len(c) == LOOKUP_LEN + SECRET_LEN and set(c) <= set(ALPHABET) for c in codes)
    # Issued through the API: the secret part is only stored as a hash, and each code is distinct.
    case_id = new_case(client)
    director = staff_headers(client, "case_director")
    issued = [client.post(f"/v1/cases/{case_id}/enrollments", headers=director).json()["code"] for _ in range(5)]
    assert len(set(issued)) == 5
    stored = db(client, "SELECT lookup, secret_hash FROM enrollments")
    assert {r["lookup"] for r in stored} == {c[:LOOKUP_LEN] for c in issued}
    assert not any(c[LOOKUP_LEN:] in r["secret_hash"] for c in issued for r in stored)
