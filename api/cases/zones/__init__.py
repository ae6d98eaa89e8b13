"""Zones (gebiedsverbod, gebiedsgebod) of a case: where the offender may not go (exclusion) or must stay
(inclusion), and when. Each zone hangs on an order. Writes ``zones``; :mod:`api.cases.zones.geometry` is also how
the engine loader (api/monitoring/config.py) reads them."""
