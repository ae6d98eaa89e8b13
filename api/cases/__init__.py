"""Cases (zaken): one stalking case with its victim and offender (parties), the contact ban's distances
(contactverbod), and per case its orders, zones, devices, enrollment codes, feasibility checks, risk screenings
and timeline, each in its own sub-folder. The case itself writes ``cases`` and ``parties`` (the victim's app
changes her language, api/victim)."""
