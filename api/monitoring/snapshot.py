"""How the engine's snapshot is stored in ``engine_snapshots.state``: zlib-compressed UTF-8 JSON.

The JSON is the engine's state as plain data, ``{"format_version": N, ...}``, laid out as geofence/state.py
documents (format 3 today). Numbers that JSON cannot spell are written as ``Infinity``, ``-Infinity`` and
``NaN``, as Python's json module reads them. Formats 1 and 2 were pickles: they, a newer or unknown version, and
anything malformed are refused with :class:`geofence.state.SnapshotRefused` (a ``ValueError``), never
unpickled; the runner then replays the whole log, which raises nothing twice because alert writes are keyed by
``(episode_id, n)``.
"""

from __future__ import annotations

import json
import zlib

from geofence import Engine, EngineSettings
from geofence.state import SnapshotRefused


def encode(engine: Engine) -> bytes:
    return encode_plain(engine.snapshot())


def encode_plain(state: dict) -> bytes:
    """The bytes of a state :meth:`Engine.snapshot` returned; plain data only, so it may run in another thread
    while the engine goes on."""
    return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 1)


def decode(data: bytes, settings: EngineSettings) -> Engine:
    """The engine the stored snapshot describes, or :class:`SnapshotRefused`."""
    try:
        state = json.loads(zlib.decompress(data))
    except (zlib.error, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise SnapshotRefused("the stored engine snapshot is not compressed JSON (an older, pickled format)") from None
    return Engine.restore(state, settings)
