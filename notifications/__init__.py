"""Alerts that reach people: the transactional outbox, the notification policy, channels and the dispatcher.

``policy`` decides (pure); ``outbox`` is the only writer of the ``outbox`` table: it enqueues in the alert
change's transaction (``api.alerts.repository.append_change`` passes it the change) and records for the dispatcher; ``dispatcher``
claims, has each channel of ``channels`` (one module per channel, registered in ``service.CHANNELS``) address
and send, records every attempt, retries, falls back and dead-letters, and runs the acknowledgement and
escalation timers. ``config`` holds this package's settings as plain data. This package never imports ``api``:
the app passes in what it needs.
"""
