"""The message thread between the victim and her contact persons, with read receipts both ways.

Writes ``case_messages`` (the only writer). The victim's side is served under ``/v1/me/messages`` by api/victim,
the staff side here under ``/v1/cases/{case_id}/messages``; an operator's message from an alert lands here too.
"""
