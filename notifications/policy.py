"""Who hears about an alert change, over which channel, and when. Pure: plain data in, decisions out.

No I/O, no clock reads: the caller passes ``now``. The rules (the defaults, each overridable per case):

* **Operators hear everything**, through the existing WebSocket stream (``Intent(recipient="operators",
  channel="stream")``). No outbox row is written for it: the committed change *is* the delivery.
* **The victim** is told, as a *safety* message, when an alert of a victim-facing kind (proximity, exclusion
  zone) reaches level ``violation`` with confidence ``probable`` or ``confirmed``; once per alert, whichever
  change gets it there (``opened`` or ``escalated``). Warning-level approaches never reach her: operators handle
  those with the offender first. She is also told when the monitoring room acknowledges her panic alert
  (safety) and when an operator messages her.
* **Notices and thread messages to the victim** (an order ends or is about to, a decision about an extension,
  a contact person writes) are not alert changes: :func:`plan_notice` decides them by what they are, their
  urgency, and her own preferences (channel, quiet hours, update frequency), never by an alert level.
* **Each safety message to the victim** starts an acknowledgement timer (default 30 s): if the app has not
  confirmed it by then, the operator sees ``victim_not_confirmed`` and the SMS fallback fires.
* **An unacknowledged violation** of an escalating kind, at confidence ``probable`` or ``confirmed``, starts an
  escalation timer (default 60 s): if no operator has acknowledged it by then it is escalated to the police
  control room on its own.
* **Decided on the confident axis** (geofence/RULES.md, R-CONF-3): an alert's ``level`` and ``confidence`` are
  its confident axis, so a possible-only violation never pushes the victim as a violation and never
  auto-escalates. A change made from late data (``detail.late``: a breach in the past, found in a buffered
  upload) notifies nothing automatically: the operator sees it in the queue as a late violation.
* **Going dark near the victim** (geofence/RULES.md, R-TICK-6): a silence opened with ``near_victim`` true (a
  tag, or her phone, silent while he was near) is treated as a violation: she is pushed (her phone may be the
  silent one: the SMS fallback follows when the app does not confirm) and the escalation timer starts. A far
  silence stays with the operators.
* **Warnings never reach her**, whatever moved them: a fast approach (``trigger`` ``fast_approach``) is for the
  operators, like any warning; a Bluetooth contact (``ble``) is a confirmed violation and pushed as one.
* **Pursuit mode**: a violation of a zone/proximity kind asks the tag's supplier to raise the reporting rate;
  the alert clearing (or being resolved) lowers it again.
* **Quiet hours and frequency limits** delay non-safety messages only; nothing is dropped.
* **Silences of a supplier outage** never reach this policy one by one: they are held until the outage grouping
  decided and, once folded into a ``supplier_outage`` alert, written without notifications; the victims of the
  cases hear of an outage by a notice once it lasts (ARCHITECTURE.md, "Floods of silence").
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from types import MappingProxyType
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CONFIDENCE_RANK = {"possible": 0, "probable": 1, "confirmed": 2}
SILENCE_KINDS = frozenset({"offender_silent", "victim_silent"})
LEVEL_RANK = {"none": 0, "warning": 1, "violation": 2}

# A message to the victim that a channel cannot deliver (no address, a dead address, dead-lettered, or not
# confirmed in time) goes again by the next channel: push falls back to SMS.
FALLBACK: Mapping[str, str] = MappingProxyType({"push": "sms"})

# Changes that can never notify anyone beyond the operators' stream: the fast path skips all lookups for them.
_OPERATOR_ONLY = frozenset({
    "note", "notified", "delivery_failed", "victim_acknowledged", "victim_not_confirmed", "deescalated",
    "pursuit_requested",
})


@dataclass(frozen=True)
class QuietHours:
    """A daily window (local time) in which non-safety messages wait; ``start > end`` spans midnight."""

    start: time
    end: time
    timezone: str = "Europe/Amsterdam"

    @classmethod
    def parse(cls, value: Mapping[str, Any]) -> "QuietHours":
        unknown = set(value) - {"start", "end", "timezone"}
        if unknown:
            raise ValueError(f"quiet_hours: unknown fields {sorted(unknown)}")
        tz = str(value.get("timezone", "Europe/Amsterdam"))
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"quiet_hours.timezone: unknown time zone {tz!r}") from None
        return cls(start=_hhmm(value.get("start"), "quiet_hours.start"), end=_hhmm(value.get("end"), "quiet_hours.end"),
                   timezone=tz)

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M"), "timezone": self.timezone}

    def _inside(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def release(self, now: datetime) -> datetime:
        """``now`` if outside the window, else the moment the window ends (in UTC-aware form)."""
        tz = ZoneInfo(self.timezone)
        local = now.astimezone(tz)
        if not self._inside(local.time().replace(tzinfo=None)):
            return now
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end = end + timedelta(days=1)
        # Re-resolve the wall-clock time in the zone (DST): build it fresh from the date and the end time.
        end = datetime.combine(end.date(), self.end, tzinfo=tz)
        return end.astimezone(now.tzinfo)


def _hhmm(value: Any, name: str) -> time:
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError(f"{name}: expected HH:MM")
    h, m = value.split(":")
    return time(int(h), int(m))


@dataclass(frozen=True)
class CasePolicy:
    notify_victim: bool = True
    victim_kinds: frozenset[str] = frozenset({"proximity", "zone_exclusion"})
    victim_min_confidence: str = "probable"
    victim_ack_deadline_s: float = 30.0
    auto_escalate: bool = True
    auto_escalate_kinds: frozenset[str] = frozenset({"proximity", "zone_exclusion", "panic"})
    auto_escalate_after_s: float = 60.0
    pursuit: bool = True
    pursuit_kinds: frozenset[str] = frozenset({"proximity", "zone_exclusion", "zone_inclusion"})
    pursuit_interval_s: int = 15
    quiet_hours: QuietHours | None = None
    max_non_safety_per_hour: int | None = None

    _FIELDS = (
        "notify_victim", "victim_kinds", "victim_min_confidence", "victim_ack_deadline_s", "auto_escalate",
        "auto_escalate_kinds", "auto_escalate_after_s", "pursuit", "pursuit_kinds", "pursuit_interval_s",
        "quiet_hours", "max_non_safety_per_hour",
    )

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> "CasePolicy":
        """This policy with a case's overrides applied; raises ValueError naming the bad field."""
        if not overrides:
            return self
        if not isinstance(overrides, Mapping):
            raise ValueError("policy: expected an object")
        unknown = set(overrides) - set(self._FIELDS)
        if unknown:
            raise ValueError(f"policy: unknown fields {sorted(unknown)}")
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if key in ("notify_victim", "auto_escalate", "pursuit"):
                if not isinstance(value, bool):
                    raise ValueError(f"{key}: expected true or false")
                changes[key] = value
            elif key in ("victim_kinds", "auto_escalate_kinds", "pursuit_kinds"):
                if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{key}: expected a list of alert kinds")
                changes[key] = frozenset(value)
            elif key == "victim_min_confidence":
                if value not in ("probable", "confirmed"):
                    raise ValueError(f"{key}: one of probable, confirmed (possible never reaches the victim)")
                changes[key] = value
            elif key in ("victim_ack_deadline_s", "auto_escalate_after_s"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 5 <= value <= 3600:
                    raise ValueError(f"{key}: a number of seconds between 5 and 3600")
                changes[key] = float(value)
            elif key == "pursuit_interval_s":
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 300:
                    raise ValueError(f"{key}: whole seconds between 1 and 300")
                changes[key] = value
            elif key == "quiet_hours":
                if value is not None and not isinstance(value, Mapping):
                    raise ValueError("quiet_hours: expected {start, end, timezone} or null")
                changes[key] = None if value is None else QuietHours.parse(value)
            elif key == "max_non_safety_per_hour":
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                    raise ValueError(f"{key}: a whole number ≥ 1, or null")
                changes[key] = value
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self._FIELDS:
            value = getattr(self, key)
            if isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, QuietHours):
                value = value.as_dict()
            out[key] = value
        return out


DEFAULT_POLICY = CasePolicy()


@dataclass(frozen=True)
class ChangeFacts:
    """One committed alert change and the alert it belongs to (as stored after the change)."""

    alert_id: str
    case_id: str
    kind: str
    change: str
    level: str
    confidence: str
    max_level: str
    status: str
    seq: int
    actor: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    has_victim: bool = True


@dataclass(frozen=True)
class Intent:
    """A decision: tell ``recipient`` over ``channel``. ``key`` names the message within its alert, so the
    same decision taken twice (a replay, a second qualifying change) is one message."""

    recipient: str  # victim | police | supplier | operators | system
    channel: str  # push | police_webhook | supplier_webhook | stream | timer
    purpose: str
    key: str
    safety: bool
    delay_s: float = 0.0
    template: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


def may_notify(change: str, level: str) -> bool:
    """Cheap pre-filter: False when no recipient but the operators can care (no lookups needed)."""
    if change in _OPERATOR_ONLY:
        return False
    if change in ("opened", "escalated") and level != "violation":
        return False
    return True


def _became_violation(f: ChangeFacts) -> bool:
    """A live alert reached violation with this change (late data reports a breach in the past)."""
    return f.change in ("opened", "escalated") and f.level == "violation" and not f.detail.get("late")


def _near_silence(f: ChangeFacts) -> bool:
    """A silence that opened near the victim: a violation in all but name (R-TICK-6)."""
    return f.kind in SILENCE_KINDS and f.detail.get("near_victim") is True and _became_violation(f)


def _victim_violation(f: ChangeFacts, p: CasePolicy) -> bool:
    return (
        p.notify_victim
        and f.has_victim
        and (f.kind in p.victim_kinds or _near_silence(f))
        and _became_violation(f)
        and CONFIDENCE_RANK.get(f.confidence, -1) >= CONFIDENCE_RANK[p.victim_min_confidence]
    )


def decide(f: ChangeFacts, p: CasePolicy = DEFAULT_POLICY) -> list[Intent]:
    """Every notification ``f`` causes under policy ``p``. Operators first, always."""
    out = [Intent("operators", "stream", "alert_change", f"change:{f.seq}", safety=True)]
    victim_ok = p.notify_victim and f.has_victim
    became_violation = _became_violation(f)
    confident = CONFIDENCE_RANK.get(f.confidence, -1) >= CONFIDENCE_RANK["probable"]

    if _victim_violation(f, p):
        out.append(Intent("victim", "push", "violation", "violation", safety=True,
                          template=f"violation.{f.kind}", params={"kind": f.kind}))
        out.append(Intent("system", "timer", "ack_check", "ack_check", safety=True,
                          delay_s=p.victim_ack_deadline_s, params={"of": "violation"}))

    if became_violation and confident and p.auto_escalate and (f.kind in p.auto_escalate_kinds or _near_silence(f)):
        out.append(Intent("system", "timer", "escalation_check", "escalation_check", safety=True,
                          delay_s=p.auto_escalate_after_s))

    if became_violation and p.pursuit and f.kind in p.pursuit_kinds:
        out.append(Intent("supplier", "supplier_webhook", "pursuit_on", "pursuit_on", safety=True,
                          params={"interval_s": p.pursuit_interval_s}))

    if f.change in ("cleared", "resolved") and f.max_level == "violation" and p.pursuit and f.kind in p.pursuit_kinds:
        out.append(Intent("supplier", "supplier_webhook", "pursuit_off", "pursuit_off", safety=False))

    if f.change == "acknowledged" and f.kind == "panic" and victim_ok:
        out.append(Intent("victim", "push", "panic_ack", "panic_ack", safety=True, template="panic_ack"))

    if f.change == "escalated_to_police":
        out.append(Intent("police", "police_webhook", "escalation", "police", safety=True,
                          params={"actor": f.actor or "system", "reason": str(f.detail.get("reason", ""))}))

    if f.change == "victim_messaged" and victim_ok:
        urgent = bool(f.detail.get("urgent"))
        template = f.detail.get("template")
        out.append(Intent(
            "victim", "push", "operator_message", f"message:{f.seq}", safety=urgent,
            template=f"operator.{template}" if template else "operator.text",
            params={"text": str(f.detail.get("text") or "")},
        ))
        if urgent:
            out.append(Intent("system", "timer", "ack_check", f"ack_check:{f.seq}", safety=True,
                              delay_s=p.victim_ack_deadline_s, params={"of": f"message:{f.seq}"}))
    return out


def release_time(now: datetime, p: CasePolicy, recent_non_safety: Sequence[datetime]) -> datetime:
    """When a non-safety message enqueued at ``now`` may go: after quiet hours and within the hourly limit.

    ``recent_non_safety`` are the scheduled times of this victim's other non-safety messages in the last hour
    and later (already queued ones included), oldest first.
    """
    at = now
    if p.max_non_safety_per_hour is not None:
        window = sorted(t for t in recent_non_safety if t > now - timedelta(hours=1))
        n = p.max_non_safety_per_hour
        if len(window) >= n:
            at = max(at, window[len(window) - n] + timedelta(hours=1))
    if p.quiet_hours is not None:
        at = p.quiet_hours.release(at)
    return at


# ---------------------------------------------------------------- notices and messages to the victim

URGENCIES = ("safety", "important", "update")
# How often she wants to hear about her case: "update" notices are pushed at most once per period.
FREQUENCY_PERIOD = {"on_change": None, "weekly": timedelta(days=7), "every_two_weeks": timedelta(days=14),
                    "monthly": timedelta(days=30)}


@dataclass(frozen=True)
class VictimPreferences:
    """What the victim chose in her app (``PUT /v1/me/preferences``)."""

    channel: str = "app"
    quiet_hours: QuietHours | None = None
    update_frequency: str = "on_change"


def effective_quiet_hours(p: CasePolicy, prefs: VictimPreferences) -> QuietHours | None:
    """The case's own quiet hours when staff set them, else the victim's."""
    return p.quiet_hours if p.quiet_hours is not None else prefs.quiet_hours


def with_preferences(p: CasePolicy, prefs: VictimPreferences) -> CasePolicy:
    return dataclasses.replace(p, quiet_hours=effective_quiet_hours(p, prefs))


@dataclass(frozen=True)
class NoticePlan:
    """Whether a stored notice or message is also pushed, and when. ``why`` names the reason it is not (yet)."""

    push: bool
    at: datetime
    safety: bool
    why: str | None = None


def plan_notice(urgency: str, now: datetime, p: CasePolicy, prefs: VictimPreferences,
                recent_non_safety: Sequence[datetime] = (), last_update: datetime | None = None) -> NoticePlan:
    """Rules, in order:

    * ``safety``: pushed at once, whatever the channel, quiet hours or frequency (SMS is its fallback);
    * the case policy says the victim is not notified (``notify_victim: false``), or she chose a channel other
      than the app: not pushed — she reads it in the app, and staff see ``why`` beside it;
    * otherwise it waits for the end of the quiet hours and the hourly limit (:func:`release_time`); an
      ``update`` also waits until one ``update_frequency`` period has passed since the last update pushed.
    """
    if urgency not in URGENCIES:
        raise ValueError(f"urgency: one of {', '.join(URGENCIES)}")
    if urgency == "safety":
        return NoticePlan(True, now, True)
    if not p.notify_victim:
        return NoticePlan(False, now, False, "case_policy_no_victim_notifications")
    if prefs.channel != "app":
        return NoticePlan(False, now, False, f"victim_prefers_{prefs.channel}")
    at = now
    period = FREQUENCY_PERIOD.get(prefs.update_frequency)
    if urgency == "update" and period is not None and last_update is not None:
        at = max(at, last_update + period)
    at = release_time(at, with_preferences(p, prefs), recent_non_safety)
    return NoticePlan(True, at, False, None if at == now else "waiting_for_quiet_hours_or_frequency")
