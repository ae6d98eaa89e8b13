"""Alerts (meldingen): what the monitoring room sees and acts on, from whichever source raised it.

Writes ``alerts`` and ``alert_changes`` (only through ``repository``), and ``notification_policies`` and the staff
messages in ``case_messages`` on the operator's behalf. The operator lifecycle is the table in ``lifecycle``; every
alert kind and its source are listed in ``sources``.
"""
