"""Devices of a case: offender tags (enkelband) registered by staff, victim apps enrolled by code; both revocable.
Staff side of ``devices``: registering a tag and revoking a device."""
