"""Privacy: every staff read of a position is audited (track reads, evidence packages for a court), the audit
log itself (audit.py, the only writer of ``audit_log``) and retention (the scheduled purge of old positions,
whose deletes go through api/intake/repository.py, the one writer of ``positions`` and ``ingest_rejections``).
"""
