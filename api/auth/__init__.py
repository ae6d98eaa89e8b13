"""Auth: who is calling (staff tokens and OIDC, victim device tokens, supplier HMAC: principals.py), who may
reach which case (need-to-know: need_to_know.py), rate limits on login-like routes, and the admin of grants,
watch lists and suppliers' keys. Writes ``case_access``, ``operator_watch``, ``supplier_keys`` and ``hmac_seen``.
"""
