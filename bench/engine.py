"""Engine benchmark: 10,000 Dutch cases with 5 zones and a contact ban each, 1,000,000 fixes in batches of 1,000.

Run from the repository root: ``python -m bench.engine [--cases N] [--fixes N]``. Prints progress lines and,
last, one line of JSON with positions_per_s, p99_batch_ms, rss_mb and the tick times. Only ``Engine.process`` is
timed for the throughput (wall clock, and the thread's CPU time as ``cpu_positions_per_s``, which other load on
the machine does not distort); building the fixes is not, and ``tick`` is timed on its own.

``python -m bench.engine --history [--devices N]`` instead measures what 6 h of history (one fix per 30 s) costs
for N devices (default 20,000), in a fresh process so that it does not add to the main run's peak.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import resource
import time as clock
from datetime import datetime, time, timedelta, timezone

from shapely.geometry import box

from geofence import (
    CaseConfig, Circle, Engine, EngineSettings, ExclusionZone, Fix, InclusionZone, Party, ProximityRule, Schedule,
    Validity, Window,
)
from geofence.quality import DeviceTrack

START = datetime(2024, 6, 4, 10, 0, tzinfo=timezone.utc)  # noon in Amsterdam on a Tuesday
NL = (4.0, 51.5, 6.8, 53.2)  # lon/lat box of the Netherlands' mainland, roughly
DEG_LAT_M = 111_000.0
BATCH = 1_000
STEP_S = 30


class Person:
    __slots__ = ("device", "lon", "lat", "target")

    def __init__(self, device: str, lon: float, lat: float, target: tuple[float, float] | None) -> None:
        self.device, self.lon, self.lat, self.target = device, lon, lat, target

    def move(self, rng: random.Random, metres: float) -> None:
        """A random walk, or straight towards a target (an offender approaching his victim)."""
        if self.target is not None:
            dx, dy = self.target[0] - self.lon, self.target[1] - self.lat
            norm = math.hypot(dx, dy) or 1.0
            step = min(metres / DEG_LAT_M, norm)
            self.lon += dx / norm * step * 1.6
            self.lat += dy / norm * step
        else:
            self.lon += rng.uniform(-1, 1) * metres / DEG_LAT_M * 1.6
            self.lat += rng.uniform(-1, 1) * metres / DEG_LAT_M


def build_cases(n: int, rng: random.Random) -> tuple[list[CaseConfig], list[tuple[str, Person, Person]]]:
    validity = Validity("order", START - timedelta(days=10), START + timedelta(days=80))
    night = Schedule("Europe/Amsterdam", (Window(frozenset(range(1, 8)), time(22, 0), time(6, 0)),))
    day = Schedule("Europe/Amsterdam", (Window(frozenset(range(1, 8)), time(9, 0), time(18, 0)),))
    configs, people = [], []
    for i in range(n):
        case_id = f"case-{i}"
        home_lon, home_lat = rng.uniform(NL[0], NL[2]), rng.uniform(NL[1], NL[3])
        approaching = i % 20 == 0  # 5 % of offenders head for the victim's home
        day_curfew = i % 50 == 1  # 2 % must stay inside a large area during the day
        bearing = rng.uniform(0, 2 * math.pi)
        distance = rng.uniform(3_000, 8_000) if approaching else rng.uniform(15_000, 40_000)
        off_lon = home_lon + math.cos(bearing) * distance / DEG_LAT_M * 1.6
        off_lat = home_lat + math.sin(bearing) * distance / DEG_LAT_M
        zones = (
            ExclusionZone(f"{case_id}-home", Circle(home_lon, home_lat, 300), 200, validity),
            ExclusionZone(f"{case_id}-work", box(home_lon + 0.03, home_lat + 0.01, home_lon + 0.036,
                                                  home_lat + 0.014), 250, validity),
            ExclusionZone(f"{case_id}-school", box(home_lon - 0.02, home_lat - 0.02, home_lon - 0.014,
                                                    home_lat - 0.016), 250, validity),
            ExclusionZone(f"{case_id}-parents", Circle(home_lon + 0.05, home_lat - 0.03, 200), 300, validity),
            InclusionZone(f"{case_id}-curfew", Circle(off_lon, off_lat, 15_000 if day_curfew else 500),
                          day if day_curfew else night, validity),
        )
        configs.append(CaseConfig(case_id, frozenset({f"tag-{i}"}), frozenset({f"phone-{i}"}),
                                  ProximityRule(f"{case_id}-ban", 1_000, 500, validity), zones))
        offender = Person(f"tag-{i}", off_lon, off_lat, (home_lon, home_lat) if approaching else None)
        victim = Person(f"phone-{i}", home_lon, home_lat, None)
        people.append((case_id, offender, victim))
    return configs, people


def fix_stream(people, rng: random.Random, total: int):
    """Offender fixes every 30 s, victim fixes every 60 s, in rounds, as a supplier and the app would send."""
    produced = 0
    round_no = 0
    while produced < total:
        at = START + timedelta(seconds=STEP_S * round_no)
        received = at + timedelta(seconds=5)
        for case_id, offender, victim in people:
            offender.move(rng, rng.uniform(0, 12) * STEP_S)
            yield Fix(str(produced), offender.device, case_id, Party.OFFENDER, at, received, offender.lat,
                      offender.lon, rng.choice((5.0, 8.0, 15.0, 30.0)))
            produced += 1
            if round_no % 2 == 0:
                victim.move(rng, rng.uniform(0, 1.5) * STEP_S * 2)
                yield Fix(str(produced), victim.device, case_id, Party.VICTIM, at, received, victim.lat,
                          victim.lon, rng.choice((5.0, 10.0, 20.0)))
                produced += 1
            if produced >= total:
                return
        round_no += 1
        yield None  # end of round: time for a tick


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def history(devices: int) -> None:
    """Fill the history of ``devices`` tracks as the engine keeps it: ``history_s`` of fixes, one per 30 s."""
    rng = random.Random(7)
    per_device = int(EngineSettings().history_s // STEP_S)
    gc.collect()
    before = _rss_mb()
    started = clock.perf_counter()
    tracks = []
    fix_no = 0
    for d in range(devices):
        track = DeviceTrack(f"device-{d}", f"case-{d // 2}", Party.OFFENDER if d % 2 else Party.VICTIM)
        lon, lat = rng.uniform(NL[0], NL[2]), rng.uniform(NL[1], NL[3])
        for k in range(per_device):
            lon += rng.uniform(-1, 1) * 1e-4
            lat += rng.uniform(-1, 1) * 1e-4
            track.insert(START.timestamp() + STEP_S * k, lat, lon, 10.0, 1.0, fix_no, good=True)
            fix_no += 1
        tracks.append(track)
    after = _rss_mb()
    arrays = sum(column.buffer_info()[1] * column.itemsize for t in tracks
                 for column in (t.ts, t.lat, t.lon, t.acc, t.speed, t.good, t.ids))
    print(json.dumps({
        "devices": devices, "fixes": fix_no, "history_h": per_device * STEP_S / 3600,
        "history_array_mb": round(arrays / 2**20, 1), "history_rss_mb": round(after - before, 1),
        "bytes_per_fix": round((after - before) * 2**20 / fix_no, 1),
        "build_s": round(clock.perf_counter() - started, 1),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--fixes", type=int, default=1_000_000)
    parser.add_argument("--history", action="store_true", help="measure the history's memory instead")
    parser.add_argument("--devices", type=int, default=20_000, help="devices for --history")
    args = parser.parse_args()
    if args.history:
        history(args.devices)
        return
    rng = random.Random(20240604)
    configs, people = build_cases(args.cases, rng)
    engine = Engine()
    started = clock.perf_counter()
    for config in configs:
        engine.configure(config, START)
    print(f"configured {args.cases} cases x 5 zones in {clock.perf_counter() - started:.1f} s", flush=True)
    gc.freeze()  # the configuration lives for the whole run: keep it out of every garbage collection

    batch_ms: list[float] = []
    tick_ms: list[float] = []
    processed = changes = 0
    busy = 0.0
    cpu = 0.0
    batch: list[Fix] = []
    last_at = START

    def flush() -> None:
        nonlocal processed, changes, busy, cpu
        t0, c0 = clock.perf_counter(), clock.thread_time()
        _, out = engine.process(batch)
        elapsed = clock.perf_counter() - t0
        cpu += clock.thread_time() - c0
        busy += elapsed
        batch_ms.append(elapsed * 1000)
        processed += len(batch)
        changes += len(out)
        batch.clear()
        if len(batch_ms) % 100 == 0:
            print(f"{processed:>9,} fixes  {processed / busy:>8,.0f} fixes/s  {changes:,} alert changes",
                  flush=True)

    for item in fix_stream(people, rng, args.fixes):
        if item is None:
            t0 = clock.perf_counter()
            changes += len(engine.tick(last_at + timedelta(seconds=STEP_S)))
            tick_ms.append((clock.perf_counter() - t0) * 1000)
            continue
        last_at = item.recorded_at
        batch.append(item)
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    batch_ms.sort()
    tick_ms.sort()
    p99 = batch_ms[min(len(batch_ms) - 1, math.ceil(0.99 * len(batch_ms)) - 1)]
    open_now = len(engine.open_episodes())
    print(f"done: {processed:,} fixes, {changes:,} alert changes, {open_now:,} open episodes, "
          f"{len(tick_ms)} ticks", flush=True)
    print(json.dumps({
        "positions_per_s": round(processed / busy),
        "p99_batch_ms": round(p99, 2),
        "cpu_positions_per_s": round(processed / cpu),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cases": args.cases,
        "tick_p50_ms": round(tick_ms[len(tick_ms) // 2], 3) if tick_ms else None,
        "tick_p99_ms": round(tick_ms[min(len(tick_ms) - 1, math.ceil(0.99 * len(tick_ms)) - 1)], 3) if tick_ms else None,
        "tick_max_ms": round(tick_ms[-1], 1) if tick_ms else None,
    }))


if __name__ == "__main__":
    main()
