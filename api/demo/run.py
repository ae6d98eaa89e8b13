"""``afstand demo``: the whole system on a scripted incident near Utrecht.

An embedded database, the real server on localhost, a simulated ankle-monitor supplier and a simulated
victim app talk to it over HTTP exactly as the real ones would, and the monitoring room's view (the alert
WebSocket) is printed as it arrives. The offender cycles in from the east, breaches the contact ban, enters
the exclusion zone around the victim's street, and leaves again. Then the Bluetooth moment: he drives into the
car park under her flat, his tag loses GPS, and her phone hears the tag: the alert rises all the same.
"""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
import socket
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import uvicorn
import websockets
from pyproj import Geod

from api.app import create_app
from api.auth.principals import mint_staff_token, sign
from api.cli import create_supplier
from api.demo.phone import SimulatedPhone
from api.intake import beacons
from api.platform.logs import configure_logging
from api.platform.secrets import server_key
from api.platform.settings import Settings

HOME = (5.1214, 52.0907)  # lon, lat: a street in Utrecht
STREET = [[5.1199, 52.0901], [5.1229, 52.0901], [5.1229, 52.0913], [5.1199, 52.0913], [5.1199, 52.0901]]
_GEOD = Geod(ellps="WGS84")


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


def offender_track(start: datetime) -> list[tuple[datetime, float, float]]:
    """East of the victim at 3 km, in to the street at ~5 m/s, a minute inside, and out again."""
    track = []
    t = start
    for dist in [3000 - 75 * i for i in range(40)] + [0] * 5 + [75 * i for i in range(1, 45)]:
        lon, lat, _ = _GEOD.fwd(HOME[0], HOME[1], 90, max(dist, 0.0))
        track.append((t, lat, lon))
        t += timedelta(seconds=15)
    return track


def _describe(item: dict[str, Any]) -> str:
    a, ch = item["alert"], item["change"]
    at = (ch["fix_at"] or ch["at"])[11:19]
    detail = ch.get("detail") or {}
    dist = f" min distance {detail['min_distance_m']:.0f} m" if detail.get("min_distance_m") is not None else ""
    reason = f" ({detail['reason']})" if detail.get("reason") else ""
    why = {"ble": f" BLUETOOTH CONTACT (rssi {detail.get('rssi')} dBm)", "fast_approach": " FAST APPROACH"}.get(
        detail.get("trigger"), "")
    eta = (f" closing at {detail['closing_speed_mps']:.0f} m/s, about {round(detail['eta_contact_s'] / 60)} min"
           if detail.get("eta_contact_s") is not None and ch["change"] in ("opened", "escalated") else "")
    return (f"[{at}] {ch['change'].upper():<11} {a['kind']:<15} {ch['level']:<9} {ch['confidence']:<9}"
            f" case {a['case_reference']}{dist}{reason}{why}{eta}")


async def _watch(ws_url: str, seen: list[dict[str, Any]]) -> None:
    async with websockets.connect(ws_url) as ws:
        async for message in ws:
            item = json.loads(message)
            seen.append(item)
            print(_describe(item), flush=True)


async def _phone(phone: SimulatedPhone, http: httpx.AsyncClient, victim: dict[str, str]) -> None:
    """The victim's app: show each push, then confirm it, as the real app does for safety alerts."""
    while True:
        try:
            message = await asyncio.to_thread(phone.received.get, True, 0.2)
        except queue.Empty:
            continue
        note = message.get("notification", {})
        data = message.get("data", {})
        print(f"           VICTIM'S PHONE  {note.get('title', '')}: {note.get('body', '')}", flush=True)
        if data.get("alert_id"):
            await http.post(f"/v1/me/alerts/{data['alert_id']}/ack", headers=victim)


async def _script(base: str, settings: Settings, phone: SimulatedPhone) -> list[dict[str, Any]]:
    key = server_key(settings)
    staff = {"Authorization": "Bearer " + mint_staff_token(key, "case_director", "demo-director")}
    supplier = await create_supplier(settings, "Demo Tag Supplier")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - timedelta(minutes=30)
    seen: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        case = (await http.post("/v1/cases", headers=staff, json={
            "reference": f"DEMO-UTR-{secrets.token_hex(3).upper()}",
            "proximity": {"warn_m": 1000, "alert_m": 500},
            "victim": {"display_name": "Victim (demo)", "language": "nl"},
            "offender": {"display_name": "Offender (demo)"},
        })).raise_for_status().json()
        cid = case["id"]
        order = (await http.post(f"/v1/cases/{cid}/orders", headers=staff, json={
            "kind": "contact_ban", "reference": "OM-DEMO-1",
            "valid_from": (start - timedelta(days=1)).isoformat(), "valid_until": (now + timedelta(days=89)).isoformat(),
        })).raise_for_status().json()
        (await http.post(f"/v1/cases/{cid}/zones", headers=staff, json={
            "order_id": order["id"], "name": "Victim's street", "kind": "exclusion",
            "geometry": {"type": "Polygon", "coordinates": [STREET]}, "buffer_m": 200, "schedule": None,
        })).raise_for_status()
        serial = "TAG-" + secrets.token_hex(3).upper()
        ble_key = secrets.token_bytes(16)  # what the tag's supplier hands over with it
        (await http.post(f"/v1/cases/{cid}/devices", headers=staff, json={
            "role": "offender_tag", "supplier_key_id": supplier["key_id"], "serial": serial, "ble_key": ble_key.hex(),
        })).raise_for_status()
        code = (await http.post(f"/v1/cases/{cid}/enrollments", headers=staff)).raise_for_status().json()["code"]
        app = (await http.post("/v1/me/enroll", json={
            "code": code, "installation_id": "demo-phone", "platform": "android", "push_token": "demo-token",
        })).raise_for_status().json()
        victim = {"Authorization": "Bearer " + app["access_token"]}
        print(f"case {case['reference']}: contact ban 1000/500 m, exclusion zone around the victim's street,"
              f" tag {serial}, victim app enrolled\n", flush=True)

        ws_base = base.replace("http://", "ws://")
        operator = mint_staff_token(key, "operator", "demo-operator")
        watcher = asyncio.create_task(_watch(f"{ws_base}/v1/alerts/stream?after=0&token={operator}", seen))
        app_task = asyncio.create_task(_phone(phone, http, victim))

        track = offender_track(start)
        for i in range(0, len(track), 4):
            chunk = track[i:i + 4]
            body = json.dumps({"positions": [
                {"serial": serial, "recorded_at": t.isoformat(), "lat": lat, "lon": lon, "accuracy_m": 8}
                for t, lat, lon in chunk
            ]}).encode()
            ts = str(int(datetime.now(timezone.utc).timestamp()))
            (await http.post("/v1/ingest/positions", content=body, headers={
                "X-Afstand-Key": supplier["key_id"], "X-Afstand-Timestamp": ts,
                "X-Afstand-Signature": sign(supplier["secret"], ts, body), "Content-Type": "application/json",
            })).raise_for_status()
            (await http.post("/v1/me/positions", headers=victim, json={"positions": [
                {"recorded_at": (t + timedelta(seconds=5)).isoformat(), "lat": HOME[1], "lon": HOME[0], "accuracy_m": 12}
                for t, _, _ in chunk[::2]
            ]})).raise_for_status()
            await asyncio.sleep(0.25)
        await asyncio.sleep(2.0)
        await _car_park(http, supplier, serial, ble_key, victim)
        await asyncio.sleep(2.0)
        watcher.cancel()
        app_task.cancel()
    return seen


def _signed(supplier: dict[str, Any], body: bytes) -> dict[str, str]:
    ts = str(int(datetime.now(timezone.utc).timestamp()))
    return {"X-Afstand-Key": supplier["key_id"], "X-Afstand-Timestamp": ts,
            "X-Afstand-Signature": sign(supplier["secret"], ts, body), "Content-Type": "application/json"}


async def _car_park(http: httpx.AsyncClient, supplier: dict[str, Any], serial: str, ble_key: bytes,
                    victim: dict[str, str]) -> None:
    """He drives into the car park under her flat: the tag's last fix is 2 km out, then it loses GPS. Her phone
    listens for the identifiers the server gave it, hears the tag (which advertises them as CONTRACT.md says,
    api/intake/beacons.py) and reports the matches."""
    print("\n-- the offender drives into the car park under the victim's flat; his tag loses GPS --\n", flush=True)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    lon, lat, _ = _GEOD.fwd(HOME[0], HOME[1], 90, 2000)
    body = json.dumps({"positions": [{"serial": serial, "recorded_at": (now - timedelta(seconds=90)).isoformat(),
                                      "lat": lat, "lon": lon, "accuracy_m": 8}]}).encode()
    (await http.post("/v1/ingest/positions", content=body, headers=_signed(supplier, body))).raise_for_status()
    body = json.dumps({"events": [{"serial": serial, "recorded_at": (now - timedelta(seconds=60)).isoformat(),
                                   "type": "gps_lost"}]}).encode()
    (await http.post("/v1/ingest/events", content=body, headers=_signed(supplier, body))).raise_for_status()
    listening = {b["beacon_id"] for b in (await http.get("/v1/me/beacons", headers=victim)).raise_for_status()
                 .json()["beacons"]}
    heard = []
    for back in (40, 30, 20, 10, 0):
        at = now - timedelta(seconds=back)
        advertised = beacons.beacon_id(ble_key, beacons.counter_at(at))  # the tag, in the car park
        if advertised in listening:
            heard.append({"recorded_at": at.isoformat(), "beacon_id": advertised, "rssi": -58 - back // 10})
    (await http.post("/v1/me/encounters", headers=victim, json={"encounters": heard})).raise_for_status()


async def run_demo(settings: Settings, port: int = 8765, keep_serving: bool = False) -> int:
    configure_logging("WARNING")
    # The script replays half an hour of fixes in a few seconds, so the tag would look silent between its
    # recorded times and the wall clock; silence detection is shown by the test suite instead.
    # The victim's phone is simulated too: firebase-admin delivers to it through AFSTAND_FCM_URL.
    phone = SimulatedPhone()
    settings = settings.model_copy(update={
        "offender_silent_s": 3600.0, "victim_silent_s": 3600.0, "near_silent_s": 3600.0,
        "fcm_project_id": "afstand-demo", "fcm_url": phone.fcm_url,
    })
    port = _free_port(port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None,
                                            proxy_headers=False,
                                            timeout_graceful_shutdown=settings.shutdown_grace_s))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            return 1
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    print(f"Afstand demo: server on {base}, data in {settings.data_dir}\n", flush=True)
    try:
        seen = await _script(base, settings, phone)
    except httpx.HTTPStatusError as e:
        print(f"demo failed: {e.request.method} {e.request.url.path} -> {e.response.status_code} {e.response.text}",
              file=sys.stderr)
        server.should_exit = True
        await serving
        return 1
    kinds = sorted({(i["alert"]["kind"], i["change"]["change"]) for i in seen})
    print(f"\n{len(seen)} alert changes reached the monitoring room: {', '.join(f'{k} {c}' for k, c in kinds)}")
    if keep_serving:
        token = mint_staff_token(server_key(settings), "operator", "demo-operator")
        print(f"\nServing on {base} (Ctrl-C to stop). Operator token:\n{token}")
        await serving
    else:
        server.should_exit = True
        await serving
    return 0 if seen else 1
