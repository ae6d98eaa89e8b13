"""Enrollment (koppeling): one-time codes that bind the victim's app to her case. Writes ``enrollments`` when a
code is issued; redeeming a code is the victim domain's (api/victim)."""
