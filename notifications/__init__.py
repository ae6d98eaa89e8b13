"""Alerts that reach people: the transactional outbox, the notification policy, channels and the dispatcher.

``policy`` decides (pure); ``outbox`` enqueues in the alert change's transaction (called by
``api.alerts.repository.append_change``); ``dispatcher`` claims, sends through ``channels`` (FCM push, SMS gateway,
signed webhooks), records every attempt, retries, falls back and dead-letters, and runs the acknowledgement and
escalation timers. This package never imports ``api``: the app passes in what it needs.
"""
