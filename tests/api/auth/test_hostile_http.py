"""Property-based HTTP fuzzing of the supplier, victim-app and list routes with what schemathesis does not send
(tests/api/privacy/test_fuzz.py covers the OpenAPI document): JSON nested thousands deep, numbers of hundreds of
digits, NaN and Infinity, megabyte strings, invalid UTF-8, dates at the ends of the calendar with extreme
offsets, cursors of any shape, and garbage in every header the routes read. The supplier's bodies are signed
with a real key, so they reach parsing and ingestion rather than stopping at the signature.

The property: no answer is a 5xx, and every 4xx is an RFC 9457 problem document (``type``, ``title``,
``status``, ``detail``; a 422 names each field in ``errors``). Derandomized in CI; ``AFSTAND_FUZZ_SEED=random``
and ``AFSTAND_FUZZ_EXAMPLES`` for a longer hunt.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, given, settings, strategies as st

from api.auth.principals import sign
from tests.helpers import staff_headers
from tests.api.privacy.support import case_with_panic

EXAMPLES = int(os.environ.get("AFSTAND_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("AFSTAND_FUZZ_SEED") != "random",
                suppress_health_check=list(HealthCheck))

# ---------------------------------------------------------------- hostile pieces of JSON text

CALENDAR_ENDS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z",
                 "9999-12-31T23:59:59.999999Z", "2026-02-30T25:61:61Z", "1969-12-31T23:59:59-23:59",
                 "+275760-09-13T00:00:00Z", "2026-01-01T00:00:00+99:99", "2026-01-01"]
deep = st.one_of(st.sampled_from([500, 990, 2_000, 20_000, 100_000]), st.integers(1, 5_000)).flatmap(lambda d: st.sampled_from(
    ["[" * d + "]" * d, '{"a":' * d + "0" + "}" * d, "[" * d + "{}" + "]" * d]))
huge_number = st.one_of(
    st.integers(1, 5000).map(lambda n: "9" * n), st.integers(1, 400).map(lambda n: "-1" + "0" * n + ".5e" + "9" * n),
    st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1e-999", "-0", "true", "false", "null"]))
huge_string = st.one_of(st.integers(0, 300_000).map(lambda n: json.dumps("x" * n)),
                        st.text(max_size=50).map(json.dumps))
a_date = st.one_of(st.sampled_from(CALENDAR_ENDS), st.datetimes().map(lambda d: d.isoformat())).map(json.dumps)
plain = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                     max_leaves=20).map(json.dumps)
fragment = st.one_of(deep, huge_number, huge_string, a_date, plain)


def _invalid_utf8(text: str, junk: bytes, where: int) -> bytes:
    raw = text.encode()
    at = where % (len(raw) + 1)
    return raw[:at] + junk + raw[at:]


def bodies(shaped: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """A route's own shape filled with hostile values, a hostile value alone, or either with invalid UTF-8."""
    text = st.one_of(shaped, fragment)
    broken = st.builds(_invalid_utf8, text, st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                                                             b"\x00", b"\\ud800"]), st.integers(0, 10_000))
    return st.one_of(text.map(str.encode), broken)


# As bytes: on the wire a header is bytes, so non-ASCII and invalid UTF-8 reach the app (no CR, LF or NUL,
# which no HTTP server passes on).
header_value = st.one_of(
    st.integers(1, 400).map(lambda n: "9" * n), st.sampled_from(["-1", "1e10", "0x10", "١٢٣", "NaN", "", " "]),
    st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300).map(lambda t: t.encode("latin-1")),
).map(lambda v: v if isinstance(v, bytes) else v.encode())


def check_answer(r, seen: set[int] | None = None) -> None:  # type: ignore[no-untyped-def]
    if seen is not None:
        seen.add(r.status_code)
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if 400 <= r.status_code < 500:
        assert r.headers["content-type"].startswith("application/problem+json"), (r.status_code, r.text[:300])
        body = r.json()
        assert isinstance(body["type"], str) and isinstance(body["title"], str) and isinstance(body["detail"], str)
        assert body["status"] == r.status_code, body
        if r.status_code == 422:
            assert body["errors"] and all(isinstance(e["loc"], list) and isinstance(e["msg"], str)
                                          for e in body["errors"]), body


# ---------------------------------------------------------------- the world the requests land in

@pytest.fixture
def world(make_client):  # type: ignore[no-untyped-def]
    client = make_client(run_engine=False, notify_enabled=False)
    client._transport.raise_server_exceptions = False  # a 5xx is an answer to check, not a crash of the test
    w, _, alert_id = case_with_panic(client, n=2, after_s=30)
    return client, w, alert_id


def _fix_item(serial: str | None) -> st.SearchStrategy[str]:
    def value(good: str, hostile: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(st.just(good), hostile, fragment)

    head = f'"serial": {json.dumps(serial)}, ' if serial else ""
    return st.builds(lambda t, la, lo, acc: "{" + head + f'"recorded_at": {t}, "lat": {la}, "lon": {lo}, "accuracy_m": {acc}' + "}",
                     value('"2026-01-01T00:00:00Z"', a_date), value("52.1", huge_number), value("5.1", huge_number),
                     value("8", huge_number))


def _batch(field: str, item: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(item, fragment), min_size=1, max_size=5).map(lambda xs: '{"%s": [%s]}' % (field, ", ".join(xs)))


# ---------------------------------------------------------------- supplier routes

def test_supplier_routes_survive_hostile_bodies_signed_with_a_real_key(world) -> None:  # type: ignore[no-untyped-def]
    client, w, _ = world
    event = st.builds(lambda t, typ, d: '{"serial": %s, "recorded_at": %s, "type": %s, "detail": %s}'
                      % (json.dumps(w.serial), t, typ, d), st.one_of(a_date, fragment),
                      st.one_of(fragment, st.just('"strap_tamper"')), st.one_of(deep.map(lambda x: '{"x": %s}' % x), fragment))
    shaped = {"/v1/ingest/positions": _batch("positions", _fix_item(w.serial)), "/v1/ingest/events": _batch("events", event)}

    @FUZZ
    @given(path=st.sampled_from(sorted(shaped)), data=st.data())
    def run(path: str, data: st.DataObject) -> None:
        raw = data.draw(bodies(shaped[path]))
        ts = str(int(time.time()))
        r = client.post(path, content=raw, headers={"Content-Type": "application/json", "X-Afstand-Key": w.supplier.key_id,
                                                    "X-Afstand-Timestamp": ts, "X-Afstand-Signature": sign(w.supplier.secret, ts, raw)})
        check_answer(r, seen)

    seen: set[int] = set()
    run()
    assert {200, 422} <= seen, seen  # signed right: batches reached ingestion, and bad envelopes were refused


def test_supplier_routes_survive_garbage_headers(world) -> None:  # type: ignore[no-untyped-def]
    client, w, _ = world

    @FUZZ
    @given(path=st.sampled_from(["/v1/ingest/positions", "/v1/ingest/events"]),
           key=st.one_of(st.just(w.supplier.key_id.encode()), header_value), ts=st.one_of(st.just(b"now"), header_value),
           signature=header_value, content_type=st.one_of(st.just(b"application/json"), header_value))
    def run(path: str, key: Any, ts: Any, signature: Any, content_type: Any) -> None:
        if ts == b"now":
            ts = str(int(time.time())).encode()
        r = client.post(path, content=b'{"positions": []}', headers={
            "X-Afstand-Key": key, "X-Afstand-Timestamp": ts, "X-Afstand-Signature": signature, "Content-Type": content_type})
        check_answer(r)
        assert r.status_code == 401  # none of these is a valid signature

    run()


# ---------------------------------------------------------------- victim-app routes

def _victim_body_routes(client) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    out = []
    for ctx in iter_route_contexts(client.app.routes):
        for method in ctx.methods or ():
            if method in ("POST", "PUT", "PATCH") and ctx.path.startswith("/v1/me/"):
                out.append((method, ctx.path))
    return sorted(out)


def test_victim_app_routes_survive_hostile_bodies(world) -> None:  # type: ignore[no-untyped-def]
    client, w, alert_id = world
    routes = _victim_body_routes(client)
    assert ("POST", "/v1/me/positions") in routes and ("POST", "/v1/me/panic") in routes
    panic = st.builds(lambda t, la: '{"recorded_at": %s, "lat": %s, "lon": 5.1, "accuracy_m": 9}' % (t, la),
                      st.one_of(a_date, fragment), st.one_of(huge_number, fragment))
    shaped = {"/v1/me/positions": _batch("positions", _fix_item(None)), "/v1/me/panic": panic}

    @FUZZ
    @given(route=st.sampled_from(routes), data=st.data())
    def run(route: tuple[str, str], data: st.DataObject) -> None:
        method, path = route
        raw = data.draw(bodies(shaped.get(path, plain)))
        r = client.request(method, path.replace("{alert_id}", alert_id), content=raw,
                           headers={**w.victim, "Content-Type": "application/json"})
        check_answer(r, seen)

    seen: set[int] = set()
    run()
    assert 422 in seen and any(200 <= c < 300 for c in seen), seen  # some bodies served, bad ones refused


def test_victim_app_routes_survive_garbage_tokens(world) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = world

    @FUZZ
    @given(path=st.sampled_from(["/v1/me/alerts", "/v1/me/beacons", "/v1/me/case", "/v1/me/messages"]),
           authorization=st.one_of(header_value, header_value.map(lambda v: b"Bearer " + v)))
    def run(path: str, authorization: Any) -> None:
        check_answer(client.get(path, headers={"Authorization": authorization}))

    run()


# ---------------------------------------------------------------- list routes (every route with a cursor)

def _list_routes(client) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for ctx in iter_route_contexts(client.app.routes):
        dependant = getattr(ctx.original_route, "dependant", None)
        if dependant is not None and "GET" in (ctx.methods or ()) and any(p.alias == "cursor" for p in dependant.query_params):
            out.append(ctx.path)
    return sorted(out)


def _cursor_of(at: str, rid: str) -> str:
    return base64.urlsafe_b64encode(f"{at}|{rid}".encode()).decode().rstrip("=")


cursors = st.one_of(
    st.integers(1, 60).map(lambda n: "9" * n), st.text(max_size=200), st.sampled_from(["²", "-1", "0", "1e3", " 1"]),
    st.builds(_cursor_of, st.sampled_from(CALENDAR_ENDS), st.sampled_from(["00000000-0000-0000-0000-000000000000", "x"])),
    st.binary(max_size=100).map(lambda b: base64.urlsafe_b64encode(b).decode()))
query_value = st.one_of(cursors, st.sampled_from(CALENDAR_ENDS), st.integers().map(str), st.text(max_size=50))


LIST_ROUTES = ["/v1/alerts", "/v1/audit", "/v1/cases", "/v1/cases/{case_id}/devices", "/v1/cases/{case_id}/messages",
               "/v1/cases/{case_id}/orders", "/v1/cases/{case_id}/timeline", "/v1/cases/{case_id}/victim-notices",
               "/v1/cases/{case_id}/zones", "/v1/contact/notices", "/v1/contact/orphaned", "/v1/contact/overdue",
               "/v1/devices/attention", "/v1/me/alerts", "/v1/me/messages", "/v1/me/notices", "/v1/me/timeline",
               "/v1/orders/ending", "/v1/staff"]


def test_the_list_routes_are_every_route_with_a_cursor(world) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = world
    assert _list_routes(client) == LIST_ROUTES  # a new list route joins the fuzzing below by name


@pytest.mark.parametrize("path", LIST_ROUTES)
def test_list_routes_survive_any_cursor_and_query(world, path: str) -> None:  # type: ignore[no-untyped-def]
    client, w, _ = world
    headers = (w.victim if path.startswith("/v1/me/") else
               staff_headers(client, "auditor" if path == "/v1/audit" else "admin"))
    url = path.replace("{case_id}", w.case_id)

    @FUZZ
    @given(cursor=cursors,
           extra=st.dictionaries(st.sampled_from(["limit", "status", "case_id", "since", "until", "active", "actor",
                                                  "within_days", "battery_below_pct"]),
                                 query_value, max_size=3),
           raw_query=st.sampled_from(["", "", "", "cursor=%FF%FE", "limit=%C3%28", "since=%00", "cursor=9%00"]))
    def run(cursor: str, extra: dict[str, str], raw_query: str) -> None:
        r = client.get(url + "?" + raw_query, headers=headers) if raw_query else \
            client.get(url, params={"cursor": cursor, **extra}, headers=headers)
        check_answer(r, seen)

    seen: set[int] = set()
    run()
    assert 422 in seen, seen  # hostile cursors reached the route's own parsing
