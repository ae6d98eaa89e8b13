"""History is compact and bounded (geofence/RULES.md, R-HIST-1)."""

from geofence import Engine, EngineSettings, Party
from geofence.quality import DeviceTrack

from tests.geofence.builders import T0, UTRECHT, fix, offset, proximity_case


def test_a_fix_costs_33_bytes_and_keeps_its_position_to_a_centimetre():
    """R-HIST-1: 33 bytes a fix, positions to about 1 cm."""
    track = DeviceTrack("tag-1", "case-1", Party.OFFENDER)
    columns = (track.ts, track.lat, track.lon, track.acc, track.speed, track.good, track.ids)
    assert sum(column.itemsize for column in columns) == 33
    lon, lat = offset(UTRECHT, 1234.567, -765.432)
    track.insert(0.0, lat, lon, 5.0, 1.5, 987_654_321_012, good=True)
    got_lon, got_lat = track.position(0)
    assert abs(got_lon - lon) * 68_000 < 0.01 and abs(got_lat - lat) * 111_000 < 0.01  # metres per degree here
    assert track.fix_id(0) == "987654321012"


def test_history_is_bounded_by_history_s():
    """R-HIST-1: no more than history_s of fixes is kept."""
    engine = Engine(EngineSettings(history_s=3600))
    engine.configure(proximity_case(), T0)
    engine.process([fix("tag-1", 30 * k, offset(UTRECHT, 5000)) for k in range(480)])  # 4 h every 30 s
    track = engine._tracks["tag-1"]
    assert 3600 / 30 <= len(track.ts) <= 3600 / 30 + 64  # pruned in chunks of 64
    assert track.ts[-1] - track.ts[0] <= 3600 + 64 * 30
