"""Devices of a case: offender tags (enkelband) registered by staff, victim apps enrolled by code; both revocable.
This is the staff side of ``devices`` (register a tag, revoke a device); enrolling, token refresh, push tokens
and last contact are written by api/victim, notifications and api/intake."""
