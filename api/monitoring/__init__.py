"""Monitoring (elektronisch toezicht): the runner that feeds the pure engine (geofence/) from the fix log, the
engine configuration built from each case, and the engine's snapshot.

Writes ``engine_progress``, ``engine_snapshots`` and prunes ``config_changes``; the alerts the engine decides are
stored through api/alerts/repository.py.
"""
