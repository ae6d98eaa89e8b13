"""Risk screening (SASH, Stalking Assessment Screening Horizontaal): level, date, assessor. Each screening proposes
default contact-ban distances for its level; staff set the case's distances themselves. Writes
``risk_screenings``."""
