"""Contacts: the fixed contact persons (vaste contactpersoon) and case directors (regievoerder) per case and
agency, contact agreements with the victim and the overdue list, the message thread (thread/), notices to the
victim and staff (notices/), and the order reminder scheduler (reminders.py).

Writes ``staff_members``, ``case_assignments``, ``contact_agreements`` and ``contact_log``; marks the end date it
has handled on ``orders`` (``expiry_handled_until``) for the scheduler.
"""
