"""Fuzzing with schemathesis against the served ``/openapi.json``, with every kind of caller: anonymous, staff
(admin and auditor tokens), the victim's device token, and a supplier whose HMAC signs each generated body.

For every operation, ``MAX_EXAMPLES`` valid and ``MAX_EXAMPLES`` invalid requests (per auth kind) go to the real
app on a real PostgreSQL; half of the generated ids are swapped for ids that exist, so requests reach the
handlers rather than stopping at 404. Each response must not be a 5xx and must match the schema: documented
status code, content type, body schema and headers. Failures are collected and reported together. The number
of requests sent is printed (``-s``) and recorded in SECURITY.md."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_headers_conformance, response_schema_conformance,
    status_code_conformance,
)

from api.auth.principals import sign
from tests.helpers import staff_headers
from tests.api.privacy.support import case_with_panic

MAX_EXAMPLES = int(os.environ.get("AFSTAND_FUZZ_EXAMPLES", "4"))  # raise it for a longer hunt
DERANDOMIZE = os.environ.get("AFSTAND_FUZZ_SEED") != "random"  # CI: the same cases every run
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
SKIP = {("GET", "/v1/alerts/stream")}  # the WebSocket is not an HTTP operation


@pytest.fixture
def world(make_client):  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, notify_enabled=False)
    client._transport.raise_server_exceptions = False  # a 5xx is a finding to collect, not a crash of the test
    w, _, alert_id = case_with_panic(client, n=2, after_s=30)
    order = client.post(f"/v1/cases/{w.case_id}/orders", headers=staff_headers(client, "case_director"), json={
        "kind": "contact_ban", "reference": "OM-F", "valid_from": "2024-01-01T00:00:00Z", "valid_until": None})
    assert order.status_code == 201, order.text
    ids = {"case_id": w.case_id, "alert_id": alert_id, "device_id": w.tag_id,
           "order_id": order.json()["id"]}
    return client, w, ids


def _fuzz(client, ids: dict[str, str], authenticate: Callable[[Any, dict[str, Any]], dict[str, Any]],
          label: str) -> dict[str, set[int]]:  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    sent = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        strategies = [operation.as_strategy(generation_mode=mode)
                      for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]

        @settings(max_examples=MAX_EXAMPLES * 2, deadline=None, database=None, derandomize=DERANDOMIZE,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(*strategies), real=st.booleans())
        def run(case, real: bool) -> None:  # type: ignore[no-untyped-def]
            nonlocal sent
            if real and case.path_parameters:
                for name in case.path_parameters:
                    if name in ids:
                        case.path_parameters[name] = ids[name]
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            kwargs = authenticate(case, kwargs)
            if not kwargs.get("cookies"):
                kwargs.pop("cookies", None)
            if isinstance(kwargs.get("data"), (bytes, str)):
                kwargs["content"] = kwargs.pop("data")
            response = client.request(**kwargs)
            sent += 1
            statuses.setdefault(f"{operation.method.upper()} {operation.path}", set()).add(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS)
            except BaseException as e:  # collect every failing operation (schemathesis raises a group)
                if isinstance(e, (KeyboardInterrupt, SystemExit)):
                    raise
                key = f"{operation.method.upper()} {operation.path} -> {response.status_code}"
                failures.setdefault(key, f"{type(e).__name__}: {str(e)[:600]}\n  request: {kwargs.get('url')}"
                                         f" params={kwargs.get('params')} body={str(kwargs.get('json', kwargs.get('content')))[:200]}")

        run()
    print(f"\nfuzz[{label}]: {sent} requests over {len(list(schema.get_all_operations()))} operations in"
          f" {time.monotonic() - started:.0f} s")
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    return statuses


def _ok(statuses: dict[str, set[int]]) -> set[str]:
    """The operations that answered at least one request with a success."""
    return {op for op, codes in statuses.items() if any(200 <= c < 300 for c in codes)}


def _headers(kwargs: dict[str, Any], extra: dict[str, str]) -> dict[str, Any]:
    kwargs["headers"] = {**(kwargs.get("headers") or {}), **extra}
    return kwargs


def test_fuzz_anonymous(world) -> None:  # type: ignore[no-untyped-def]
    client, _, ids = world
    ok = _ok(_fuzz(client, ids, lambda case, kw: kw, "anonymous"))
    # Without credentials only the public routes answer with a success.
    assert ok <= {"GET /healthz", "GET /readyz", "GET /v1/evidence/public-key", "POST /v1/me/enroll",
                  "POST /v1/me/token"} | {op for op in ok if op.startswith("GET /console")}, ok


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_fuzz_staff(world, role: str) -> None:  # type: ignore[no-untyped-def]
    client, _, ids = world
    token = staff_headers(client, role)
    ok = _ok(_fuzz(client, ids, lambda case, kw: _headers(kw, token), f"staff:{role}"))
    if role == "admin":  # the token worked: reads of the real case and alert succeeded
        assert {"GET /v1/cases/{case_id}", "GET /v1/alerts/{alert_id}", "GET /v1/cases"} <= ok, ok
    else:
        assert "GET /v1/audit" in ok and "GET /v1/cases/{case_id}/track" not in ok, ok


def test_fuzz_victim_device(world) -> None:  # type: ignore[no-untyped-def]
    client, w, ids = world
    ok = _ok(_fuzz(client, ids, lambda case, kw: _headers(kw, w.victim), "victim"))
    assert "GET /v1/me/alerts" in ok and not any(op.startswith(("GET /v1/cases", "GET /v1/audit")) for op in ok), ok


def test_fuzz_supplier_hmac(world) -> None:  # type: ignore[no-untyped-def]
    client, w, ids = world

    def signed(case, kw: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        if "json" in kw:
            raw = json.dumps(kw.pop("json")).encode()
            kw["headers"] = {**(kw.get("headers") or {}), "Content-Type": "application/json"}
        else:
            raw = kw.pop("content", None) or kw.pop("data", None) or b""
            raw = raw.encode() if isinstance(raw, str) else raw
        kw["content"] = raw
        ts = str(int(time.time()))
        return _headers(kw, {"X-Afstand-Key": w.supplier.key_id, "X-Afstand-Timestamp": ts,
                             "X-Afstand-Signature": sign(w.supplier.secret, ts, raw)})

    ok = _ok(_fuzz(client, ids, signed, "supplier"))
    # The signatures were right: generated batches reached ingestion, and nothing else opened to a supplier.
    assert "POST /v1/ingest/positions" in ok and not any("/v1/cases" in op or "/v1/alerts" in op for op in ok), ok


def test_the_checks_catch_a_server_error_and_a_body_off_schema(world) -> None:  # type: ignore[no-untyped-def]
    """The harness is not blind: the same checks reject a 5xx and a body that breaks the schema."""
    import httpx

    client, _, _ = world
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    case = schema["/v1/evidence/public-key"]["GET"].Case()
    request = httpx.Request("GET", "http://testserver/v1/evidence/public-key")
    case.validate_response(client.get("/v1/evidence/public-key"), checks=CHECKS)  # the real answer passes
    for bad in (httpx.Response(500, json={"detail": "boom"}, request=request),
                httpx.Response(200, json={"algorithm": 25519}, request=request)):
        with pytest.raises(BaseException) as failure:
            case.validate_response(bad, checks=CHECKS)
        assert not isinstance(failure.value, (KeyboardInterrupt, SystemExit))


@pytest.mark.parametrize("path, body", [
    ("/v1/me/enroll", {"code": "ABC\u0000DEF", "installation_id": "x", "platform": "ios"}),
    ("/v1/cases", {"reference": "R\u0000", "proximity": None, "victim": {"display_name": "A", "language": "nl"},
                   "offender": {"display_name": "B"}}),
])
def test_a_nul_character_is_a_client_mistake_not_a_server_error(world, path: str, body: dict) -> None:  # type: ignore[no-untyped-def]
    """Found by the fuzzer: PostgreSQL stores no NUL in text, and a string with one used to answer 500."""
    client, _, _ = world
    r = client.post(path, json=body, headers=staff_headers(client, "case_director"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
