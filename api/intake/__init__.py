"""Intake: positions and device events as they arrive from ankle-monitor suppliers and the victim app.

protocols/ decodes each supplier wire format; service checks, stores and wakes the engine; device_events is the
alert policy for tag events (raised through api/alerts/store.py). Writes ``positions`` (the only writer, the
retention purge included), ``device_events``, ``ingest_rejections``, and the ``last_seen_at`` and
``last_battery_pct`` of ``devices``.
"""
