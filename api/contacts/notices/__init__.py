"""Notices: what the victim and staff are told outside an alert, stored where they read it, their delivery
enqueued in the notifications outbox in the same transaction.

Writes ``victim_notices`` and ``staff_notices`` (the only writer of both).
"""
