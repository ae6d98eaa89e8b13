"""Feasibility (handhaafbaarheid): can a ban be enforced as written? Checks drafts, a case's stored rule, zones and
orders with proposed ones, and a zone about to be stored, against the parties' known addresses. Writes
``case_addresses``; the findings come from the pure ``geofence.feasibility``."""
