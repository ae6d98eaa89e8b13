"""The victim (slachtoffer) and her app: every ``/v1/me`` route, from enrollment to what she is shown of her case.

Writes her app's ``devices`` rows (role ``victim_app``) and ``spent_refresh_tokens``, the redemption of
``enrollments`` (used, failed tries), ``victim_preferences`` and her language on ``parties``. Her positions go
through api/intake, her panic alerts through api/alerts, her messages through api/contacts/thread.
"""
