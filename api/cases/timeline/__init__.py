"""The case timeline (tijdlijn): what happened in a case, for staff in full and for the victim only the events
marked victim-visible. Writes ``timeline_events``; other domains record their events through
:func:`api.cases.timeline.service.add_event`."""
