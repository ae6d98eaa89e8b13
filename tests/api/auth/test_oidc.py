"""Staff identity through OIDC (issue 6): tokens of a local issuer on 127.0.0.1, checked by the real app."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from typing import Iterator

import jwt
import pytest

from api.auth.oidc import OIDCVerifier, TokenRejected, claim_at, roles_from
from tests.helpers import staff_headers
from tests.api.auth.oidc_issuer import LocalIssuer, _b64

AUD = "afstand-api"


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    iss = LocalIssuer()
    yield iss
    iss.close()


@pytest.fixture
def app(make_client, issuer: LocalIssuer):  # type: ignore[no-untyped-def]
    return make_client(run_engine=False, oidc_issuer=issuer.url, oidc_audience=AUD, oidc_jwks_min_refresh_s=0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(r, status: int = 401) -> str:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()["detail"]


def test_a_good_token_of_the_issuer_is_accepted_with_its_role(app, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(issuer.token(sub="root-1", roles=["admin", "offline_access"]))
    r = app.post("/v1/cases", headers=admin, json={"reference": "OIDC-1", "victim": {"display_name": "V"},
                                                   "offender": {"display_name": "O"}})
    assert r.status_code == 201, r.text
    assert r.json()["id"]
    # The audit log names the subject and role from the token.
    actor = app.portal.call(app.app.state.ctx.pool.fetchval,
                            "SELECT actor FROM audit_log WHERE action = 'case.create'")
    assert actor == "admin:root-1"
    # A role that may not create cases gets 403, not 401: the token itself is fine.
    refused(app.post("/v1/cases", headers=bearer(issuer.token(roles=["operator"])), json={
        "reference": "OIDC-2", "victim": {"display_name": "V"}, "offender": {"display_name": "O"}}), 403)


@pytest.mark.parametrize("case, expect", [
    ("wrong audience", "audience"),
    ("wrong issuer", "issuer"),
    ("expired", "expired"),
    ("not yet valid", "not yet valid"),
    ("no exp", "exp"),
])
def test_claims_are_checked(app, issuer: LocalIssuer, case: str, expect: str) -> None:  # type: ignore[no-untyped-def]
    now = int(time.time())
    claims = issuer.claims(roles=["admin"])
    if case == "wrong audience":
        claims["aud"] = "some-other-api"
    elif case == "wrong issuer":
        claims["iss"] = issuer.url + "-evil"
    elif case == "expired":
        claims.update(iat=now - 3600, exp=now - 600)  # beyond the 30 s leeway
    elif case == "not yet valid":
        claims["nbf"] = now + 600
    elif case == "no exp":
        del claims["exp"]
    detail = refused(app.get("/v1/cases", headers=bearer(issuer.token(claims))))
    assert expect in detail.lower()


def test_audience_may_be_a_list_containing_ours(app, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    token = issuer.token(issuer.claims(roles=["admin"], aud=["account", AUD]))
    assert app.get("/v1/cases", headers=bearer(token)).status_code == 200


def test_unknown_kid_refetches_the_jwks_after_key_rotation(app, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    assert app.get("/v1/cases", headers=bearer(issuer.token(roles=["admin"]))).status_code == 200
    assert issuer.jwks_hits == 1
    # Cached: a second request fetches nothing.
    assert app.get("/v1/cases", headers=bearer(issuer.token(roles=["admin"]))).status_code == 200
    assert issuer.jwks_hits == 1
    old_kid = issuer.kid
    old_token = issuer.token(roles=["admin"])
    issuer.rotate()
    # A token signed with the new key names a kid we do not know yet: we fetch the JWKS again and accept it.
    assert app.get("/v1/cases", headers=bearer(issuer.token(roles=["admin"]))).status_code == 200
    assert issuer.jwks_hits == 2
    # The retired key is gone from the JWKS: its tokens now fail, whatever they claim.
    assert old_kid not in issuer.keys
    refused(app.get("/v1/cases", headers=bearer(old_token)))


def test_unknown_kid_refetch_is_rate_limited(issuer: LocalIssuer) -> None:
    verifier = OIDCVerifier(issuer.url, AUD, "roles", ("admin", "operator"), min_refresh_s=60)
    assert verifier.verify(issuer.token(roles=["operator"])).role == "operator"
    assert issuer.jwks_hits == 1
    key = issuer.keys[issuer.kid][1]
    for n in range(20):
        made_up = jwt.encode(issuer.claims(roles=["admin"]), key, algorithm="RS256", headers={"kid": f"made-up-{n}"})
        with pytest.raises(TokenRejected, match="kid"):
            verifier.verify(made_up)
    # Twenty made-up kids within the minimum refresh interval cost no extra fetch of the issuer's keys.
    assert issuer.jwks_hits == 1


def test_alg_none_and_hs256_are_refused(app, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    claims = issuer.claims(roles=["admin"])
    assert "'none' is not accepted" in refused(app.get("/v1/cases", headers=bearer(issuer.unsigned(claims))))
    # The classic confusion: HS256 with the issuer's public key as the HMAC secret.
    header = {"alg": "HS256", "typ": "JWT", "kid": issuer.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    sig = hmac.new(issuer.public_pem(issuer.kid), signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{_b64(sig)}"
    assert "'HS256' is not accepted" in refused(app.get("/v1/cases", headers=bearer(confused)))
    # A signature that does not verify.
    good = issuer.token(claims)
    tampered = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
    refused(app.get("/v1/cases", headers=bearer(tampered)))


def test_es256_keys_work_too(app, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    kid = issuer.add_key("ES256")
    token = issuer.token(issuer.claims(roles=["admin"]), kid=kid)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert app.get("/v1/cases", headers=bearer(token)).status_code == 200


def test_dev_tokens_are_refused_once_an_issuer_is_configured(app) -> None:  # type: ignore[no-untyped-def]
    assert "'HS256' is not accepted" in refused(app.get("/v1/cases", headers=staff_headers(app, "admin")))


def test_dev_tokens_work_without_an_issuer(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False)
    assert client.get("/v1/cases", headers=staff_headers(client, "admin")).status_code == 200


def test_dev_token_command_refuses_with_an_issuer(tmp_path, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    env = {"AFSTAND_OIDC_ISSUER": issuer.url, "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "api.cli", "dev-token", "--role", "admin", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "refused" in r.stderr and r.stdout == ""


def test_roles_claim_may_be_a_dotted_path(make_client, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    app = make_client(run_engine=False, oidc_issuer=issuer.url, oidc_audience=AUD, oidc_roles_claim="realm_access.roles")
    token = issuer.token(issuer.claims(roles=None, realm_access={"roles": ["uma_authorization", "admin"]}))
    assert app.get("/v1/cases", headers=bearer(token)).status_code == 200
    # The top-level roles claim is not read when another claim is configured.
    refused(app.get("/v1/cases", headers=bearer(issuer.token(roles=["admin"]))), 403)


def test_no_role_or_two_roles_is_403(app, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    assert "names 0" in refused(app.get("/v1/cases", headers=bearer(issuer.token(roles=["offline_access"]))), 403)
    assert "names 2" in refused(app.get("/v1/cases", headers=bearer(issuer.token(roles=["admin", "operator"]))), 403)
    refused(app.get("/v1/cases", headers=bearer(issuer.token(roles=None))), 403)


def test_the_alert_stream_checks_oidc_tokens_too(app, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as closed:
        with app.websocket_connect("/v1/alerts/stream", headers=staff_headers(app, "operator")) as ws:
            ws.receive_json()
    assert closed.value.code == 4401


def test_claim_helpers() -> None:
    assert claim_at({"a": {"b": ["x"]}}, "a.b") == ["x"]
    assert claim_at({"a.b": 1, "a": {"b": 2}}, "a.b") == 1
    assert claim_at({"a": 1}, "a.b") is None
    assert roles_from("admin operator", ("admin", "operator")) == ["admin", "operator"]
    assert roles_from(["x", "auditor", 3], ("auditor",)) == ["auditor"]
    assert roles_from({"admin": True}, ("admin",)) == []
