"""Orders (maatregelen) of a case: the legal basis of a ban (contactverbod, gebiedsverbod, gedragsaanwijzing, …)
and its term: extensions and the decision to let an order lapse. Writes ``orders`` and ``order_extensions``;
today the expiry scheduler (api/contacts/reminders.py) also marks an order's expiry as handled."""
