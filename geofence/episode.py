"""Alert episodes: one live episode per (case, rule or zone), opened, escalated, deescalated and cleared with
hysteresis, on two axes of certainty. The rules and their reasons are in geofence/RULES.md.

Every rule turns a fix into a metric x with a threshold per level; x <= threshold means a breach. For the
contact ban x is the distance to the victim, for a gebiedsverbod the signed distance to the zone, for a
gebiedsgebod minus the signed distance. The uncertainty u is the sum of the accuracy radii involved, and w the
distance the stale party of a pairing may have moved since its fix (R-PAIR-2; 0 for zones).
"""

from __future__ import annotations

import math
import uuid
from bisect import bisect_right, insort
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from geofence.model import AlertChange, AlertKind, Approach, ChangeKind, Confidence, Level

EPISODE_NAMESPACE = uuid.UUID("5d0c6a3e-2f4e-4d8b-9a59-7a3f0c1e4b21")
_NONE = Level.NONE
_POSSIBLE = Confidence.POSSIBLE
_PROBABLE = Confidence.PROBABLE
_CONFIRMED = Confidence.CONFIRMED


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def episode_id(case_id: str, kind: AlertKind, subject_id: str, opened_at: datetime, late: bool) -> str:
    key = f"{case_id}|{kind.value}|{subject_id}|{opened_at.isoformat()}|{late}"
    return str(uuid.uuid5(EPISODE_NAMESPACE, key))


@dataclass(frozen=True, slots=True)
class Ladder:
    """The thresholds of one rule, most serious level first: ((level, threshold, margin), ...).

    ``calm_counts_uncertainty`` False (inclusion zones) judges calm on the centre of the fix alone: with u
    subtracted a home zone smaller than the GPS error would never clear (R-ZONE-2).
    """

    steps: tuple[tuple[Level, float, float], ...]
    calm_counts_uncertainty: bool = True

    def assess(self, x: float, u: float, w: float, coarse: bool) -> tuple[Level, Level, Confidence]:
        """(possible level, confident level, its confidence) of one reading (R-CONF-1).

        The possible level is the highest that x - u - w reaches: nothing is missed for lack of accuracy. The
        confident level is the highest whose threshold the centre reaches even after the stale party's
        possible movement (x + w): confirmed when the whole interval is inside (x + u + w), else probable. A
        coarse fix reaches no confident level at all.
        """
        low = x - u - w
        possible = _NONE
        for level, threshold, _ in self.steps:
            if low <= threshold:
                if possible is _NONE:
                    possible = level
                if not coarse and x + w <= threshold:
                    return possible, level, (_CONFIRMED if x + u + w <= threshold else _PROBABLE)
        return possible, _NONE, _POSSIBLE

    def calm(self, step: int, x: float, u: float, w: float) -> bool:
        """Provably beyond this step's threshold plus its margin."""
        _, threshold, margin = self.steps[step]
        return (x - u - w if self.calm_counts_uncertainty else x) > threshold + margin

    def restless(self, step: int, x: float, w: float) -> bool:
        """The centre, even moved by the stale party's possible movement, is within this step's threshold plus
        margin: a reading that restarts the hold (R-HOLD-2)."""
        _, threshold, margin = self.steps[step]
        return x + w <= threshold + margin


@dataclass(slots=True)
class Reading:
    """One evaluation of one rule at one fix time."""

    ts: float
    x: float
    u: float
    w: float
    level: Level  # possible axis
    level_c: Level  # confident axis (NONE: no confident level)
    confidence: Confidence  # of level_c; POSSIBLE when level_c is NONE
    distance_m: float | None  # reported as min_distance_m; None when only a lower bound is known
    evidence: tuple[str, ...]
    trigger: str = "distance"  # what the reading stands for (AlertChange.trigger)
    rssi: int | None = None  # an encounter's signal strength
    approach: Approach | None = None  # closing speed and time to contact, when known (R-ETA-1)
    # The breach the reading proves lasts until this fix time: no hold completes before it (R-BLE-2).
    hold_until: float = -math.inf


class CalmRun:
    """The calm readings of one step since the last restless one, by fix time (R-HOLD-1). Readings may arrive
    out of fix-time order (a phone uploading behind the tag, two parties' fixes crossing on the network), so
    the run is kept in fix-time order and a restless reading only undoes the calm ones before it."""

    __slots__ = ("calm", "restless_ts")

    def __init__(self) -> None:
        self.calm: list[tuple[float, Level, Confidence]] = []  # (fix time, confident level, confidence), sorted
        self.restless_ts = -math.inf

    def add(self, reading: Reading) -> None:
        if reading.ts > self.restless_ts:
            insort(self.calm, (reading.ts, reading.level_c, reading.confidence))

    def restless(self, ts: float) -> None:
        if ts > self.restless_ts:
            self.restless_ts = ts
            self.calm = [entry for entry in self.calm if entry[0] > ts]

    def restart(self, ts: float) -> None:
        """Start afresh after stepping down at ts: the readings up to ts have been used."""
        self.restless_ts = max(self.restless_ts, ts)
        self.calm = [entry for entry in self.calm if entry[0] > ts]

    def completed_at(self, hold_s: float, min_fixes: int, settled_until: float,
                     not_before: float = -math.inf) -> float | None:
        """The earliest fix time, not before ``not_before`` (R-BLE-2), at which the run spans the hold with
        enough readings, among the times no reading can still arrive for (R-HOLD-3); None if there is none yet."""
        calm = self.calm
        if len(calm) < min_fixes:
            return None
        first = calm[0][0]
        for k in range(min_fixes - 1, len(calm)):
            ts = calm[k][0]
            if ts > settled_until:
                return None
            if ts - first >= hold_s and ts >= not_before:
                return ts
        return None

    def best_until(self, ts: float) -> tuple[Level, Confidence]:
        """The most serious confident assessment among the run's readings up to ts."""
        return max(((level, confidence) for at, level, confidence in self.calm if at <= ts),
                   default=(_NONE, _POSSIBLE))


class AlertEpisode:
    __slots__ = (
        "episode_id", "case_id", "kind", "subject_id", "late", "opened_ts", "cleared_ts", "level", "level_c",
        "confidence", "max_level", "max_level_c", "min_distance_m", "evidence", "n", "runs", "source_device",
        "window_end_ts", "last_ts", "last_change", "states", "late_seen", "hold_until",
    )

    def __init__(self, case_id: str, kind: AlertKind, subject_id: str, late: bool, reading: Reading,
                 source_device: str | None, window_end_ts: float | None, steps: int) -> None:
        opened_at = utc(reading.ts)
        self.episode_id = episode_id(case_id, kind, subject_id, opened_at, late)
        self.case_id = case_id
        self.kind = kind
        self.subject_id = subject_id
        self.late = late
        self.opened_ts = reading.ts
        self.cleared_ts = math.inf
        self.level = reading.level  # possible axis
        self.level_c = reading.level_c  # confident axis
        self.confidence = reading.confidence
        self.max_level = reading.level
        self.max_level_c = reading.level_c
        self.min_distance_m = reading.distance_m
        self.evidence: list[str] = []
        self.n = 0
        self.runs = [CalmRun() for _ in range(steps)]
        self.source_device = source_device
        self.window_end_ts = window_end_ts
        self.last_ts = reading.ts  # newest reading applied: where a late episode's evidence ends
        self.last_change: AlertChange | None = None
        # (fix time, possible level, confident level, confidence) from each live change on: what the episode
        # said at any moment of its span, for judging late readings (R-LATE-2).
        self.states: list[tuple[float, Level, Level, Confidence]] = []
        self.late_seen = (_NONE, _NONE, _POSSIBLE)  # most serious late reading reported so far
        self.hold_until = reading.hold_until  # no stepping down before this fix time (R-BLE-2)

    def shown(self) -> tuple[Level, Level, Confidence]:
        """(level, max_level, confidence) as the alert shows them: the confident axis, or the possible axis while
        there is no confident level (R-CONF-2)."""
        max_level = self.max_level_c if self.max_level_c is not _NONE else self.max_level
        if self.level_c is not _NONE:
            return self.level_c, max_level, self.confidence
        return self.level, max_level, _POSSIBLE

    def change(self, kind: ChangeKind, ts: float, reason: str | None = None,
               finding: Reading | None = None, cause: Reading | None = None) -> AlertChange:
        """The next change. ``finding`` is a late reading: the change then says what was found at its fix time,
        while the episode's own level stays with the live readings (R-LATE-2). ``cause`` is the live reading
        that made the change; its trigger, signal strength and approach travel with it."""
        self.n += 1
        source = finding if finding is not None else cause
        if source is not None:
            trigger, rssi, approach = source.trigger, source.rssi, source.approach
        else:
            trigger = "silence" if self.kind in (AlertKind.OFFENDER_SILENT, AlertKind.VICTIM_SILENT) else "distance"
            rssi = approach = None
        level, max_level, confidence = self.shown()
        if finding is not None:
            level, confidence = ((finding.level_c, finding.confidence) if finding.level_c is not _NONE
                                 else (finding.level, _POSSIBLE))
        self.last_change = AlertChange(
            episode_id=self.episode_id, n=self.n, case_id=self.case_id, kind=self.kind,
            subject_id=self.subject_id, change=kind, level=level, max_level=max_level, confidence=confidence,
            opened_at=utc(self.opened_ts), fix_at=utc(ts), late=self.late or finding is not None,
            min_distance_m=self.min_distance_m, reason=reason, evidence=tuple(self.evidence),
            level_possible=finding.level if finding is not None else self.level, max_level_possible=self.max_level,
            trigger=trigger, rssi=rssi, approach=approach,
        )
        if kind is not ChangeKind.CLEARED and finding is None:
            insort(self.states, (ts, self.level, self.level_c, self.confidence))
        return self.last_change

    def add_evidence(self, fix_ids: tuple[str, ...], limit: int) -> None:
        for fix_id in fix_ids:
            if len(self.evidence) < limit and fix_id not in self.evidence:
                self.evidence.append(fix_id)

    def note_distance(self, distance_m: float | None) -> None:
        if distance_m is not None and (self.min_distance_m is None or distance_m < self.min_distance_m):
            self.min_distance_m = distance_m

    def raise_to(self, reading: Reading) -> bool:
        """Take the reading's level on each axis where it is more serious; True if either axis rose."""
        risen = False
        if reading.level_c is not _NONE and (reading.level_c, reading.confidence) > (self.level_c, self.confidence):
            self.level_c, self.confidence = reading.level_c, reading.confidence
            self.max_level_c = max(self.max_level_c, reading.level_c)
            risen = True
        if reading.level > self.level:
            self.level = reading.level
            self.max_level = max(self.max_level, reading.level)
            risen = True
        return risen

    def state_at(self, ts: float) -> tuple[Level, Level, Confidence]:
        if ts < self.opened_ts:
            return _NONE, _NONE, _POSSIBLE  # before the episode: nothing was said
        states = self.states
        i = max(bisect_right(states, (ts, math.inf)) - 1, 0)
        _, level, level_c, confidence = states[i]
        return level, level_c, confidence

    def late_reading(self, reading: Reading, evidence_limit: int, out: list[AlertChange]) -> None:
        """A reading that arrived after the fact, for a moment this episode covers (R-LATE-2)."""
        closer = reading.distance_m is not None and (self.min_distance_m is None
                                                     or reading.distance_m < self.min_distance_m)
        self.note_distance(reading.distance_m)
        level, level_c, confidence = self.state_at(reading.ts)
        seen_level, seen_c, seen_confidence = self.late_seen
        above_c = reading.level_c is not _NONE and (reading.level_c, reading.confidence) > max(
            (level_c, confidence), (seen_c, seen_confidence))
        above = reading.level > max(level, seen_level)
        if above_c or above:
            if above_c:
                seen_c, seen_confidence = reading.level_c, reading.confidence
                self.max_level_c = max(self.max_level_c, reading.level_c)
            if above:
                seen_level = reading.level
                self.max_level = max(self.max_level, reading.level)
            self.late_seen = (seen_level, seen_c, seen_confidence)
            self.add_evidence(reading.evidence, evidence_limit)
            out.append(self.change(ChangeKind.ESCALATED, reading.ts, finding=reading))
        elif closer:  # folded in: the closest approach is evidence, the rest of a buffer would crowd it out
            self.add_evidence(reading.evidence, evidence_limit)

    def current(self) -> AlertChange | None:
        """The latest change, refreshed with the alert's state, distance and evidence as they are now."""
        if self.last_change is None:
            return None
        level, max_level, confidence = self.shown()
        return replace(self.last_change, level=level, max_level=max_level, confidence=confidence, late=self.late,
                       level_possible=self.level, max_level_possible=self.max_level,
                       min_distance_m=self.min_distance_m, evidence=tuple(self.evidence))


class SubjectEpisodes:
    """The live and the late episode of one (case, kind, subject), and the closed ones still within history.

    A late episode comes from fixes older than the newest evaluated for their device (a tag uploading its
    buffer after a tunnel) at moments no episode covered. A late reading at a moment an episode covers goes to
    that episode instead, open or cleared (R-LATE-1, R-LATE-2).
    """

    __slots__ = ("case_id", "kind", "subject_id", "live", "late", "closed")

    def __init__(self, case_id: str, kind: AlertKind, subject_id: str) -> None:
        self.case_id = case_id
        self.kind = kind
        self.subject_id = subject_id
        self.live: AlertEpisode | None = None
        self.late: AlertEpisode | None = None
        self.closed: list[AlertEpisode] = []  # oldest first

    @property
    def is_open(self) -> bool:
        return self.live is not None or self.late is not None

    def covering(self, ts: float, include_live: bool) -> AlertEpisode | None:
        live = self.live
        if include_live and live is not None and ts >= live.opened_ts:
            return live
        for episode in reversed(self.closed):
            if episode.opened_ts <= ts <= episode.cleared_ts:
                return episode
        return None

    def feed(self, ladder: Ladder, reading: Reading, late: bool, device_id: str | None, hold_s: float,
             min_fixes: int, delivery_window_s: float, evidence_limit: int, window_end_ts: float | None,
             out: list[AlertChange]) -> None:
        """Apply one reading to the episode that covers its moment, the live one, or the late one."""
        episode = self.late if late else self.live
        breach = reading.level is not _NONE and not ladder.calm(len(ladder.steps) - 1, reading.x, reading.u,
                                                                 reading.w)
        if not late and episode is not None and reading.ts < episode.opened_ts:
            # Older than the live episode (the other party's fix arrived after the one that opened it): it says
            # something about the past, never about now (R-LATE-3).
            if breach:
                episode.late_reading(reading, evidence_limit, out)
            return
        if late or episode is None:
            covering = self.covering(reading.ts, include_live=late)
            if covering is not None:
                if breach:
                    covering.late_reading(reading, evidence_limit, out)
                return
        if episode is None:
            if breach:
                episode = AlertEpisode(self.case_id, self.kind, self.subject_id, late, reading,
                                       device_id if late else None, window_end_ts, len(ladder.steps))
                episode.add_evidence(reading.evidence, evidence_limit)
                if late:
                    self.late = episode
                else:
                    self.live = episode
                out.append(episode.change(ChangeKind.OPENED, reading.ts, cause=reading))
            return
        episode.hold_until = max(episode.hold_until, reading.hold_until)
        self._step(ladder, episode, reading, hold_s, min_fixes, delivery_window_s, evidence_limit, out)

    def _step(self, ladder: Ladder, episode: AlertEpisode, reading: Reading, hold_s: float, min_fixes: int,
              delivery_window_s: float, evidence_limit: int, out: list[AlertChange]) -> None:
        older = reading.ts < episode.last_ts
        episode.note_distance(reading.distance_m)
        episode.last_ts = max(episode.last_ts, reading.ts)
        # Every reading counts towards every hold it concerns (R-HOLD-2): a reading inside the warning band
        # restarts the hold towards clearing even while the hold towards deescalation goes on.
        runs = episode.runs
        steps = ladder.steps
        for i, run in enumerate(runs):
            if steps[i][0] <= episode.level:
                if ladder.calm(i, reading.x, reading.u, reading.w):
                    run.add(reading)
                elif ladder.restless(i, reading.x, reading.w):
                    run.restless(reading.ts)
        if episode.raise_to(reading):
            episode.add_evidence(reading.evidence, evidence_limit)
            out.append(episode.change(ChangeKind.ESCALATED, reading.ts, cause=reading))
            return
        if older:
            # Older than a reading that already moved the episode (the other party's fix arrived first): if it
            # is more serious than what the episode said at its moment, that moment is recorded (R-LATE-3).
            episode.late_reading(reading, evidence_limit, out)
        settled_until = episode.last_ts - delivery_window_s
        cleared_at = runs[-1].completed_at(hold_s, min_fixes, settled_until, episode.hold_until)
        if cleared_at is not None:
            self.close(episode, cleared_at, "departed", out)
            return
        if len(runs) > 1 and episode.level is Level.VIOLATION:
            first = runs[0]
            at = first.completed_at(hold_s, min_fixes, settled_until, episode.hold_until)
            if at is not None:
                episode.level = steps[1][0]
                if episode.level_c is Level.VIOLATION:
                    episode.level_c, episode.confidence = first.best_until(at)
                out.append(episode.change(ChangeKind.DEESCALATED, at))
                first.restart(at)

    def open_direct(self, reading: Reading, window_end_ts: float | None, out: list[AlertChange]) -> AlertEpisode:
        """Open a live episode that no fix-by-fix ladder decides (silence)."""
        episode = AlertEpisode(self.case_id, self.kind, self.subject_id, False, reading, None, window_end_ts, 0)
        episode.add_evidence(reading.evidence, len(reading.evidence))
        self.live = episode
        out.append(episode.change(ChangeKind.OPENED, reading.ts, cause=reading))
        return episode

    def close(self, episode: AlertEpisode, ts: float, reason: str, out: list[AlertChange]) -> None:
        out.append(episode.change(ChangeKind.CLEARED, ts, reason))
        episode.cleared_ts = ts
        episode.runs = []
        self.closed.append(episode)
        if episode is self.live:
            self.live = None
        else:
            self.late = None

    def close_all(self, ts: float, reason: str, out: list[AlertChange]) -> None:
        for episode in (self.live, self.late):
            if episode is not None:
                self.close(episode, max(ts, episode.opened_ts), reason, out)

    def forget_before(self, cutoff: float) -> None:
        closed = self.closed
        if closed and closed[0].cleared_ts < cutoff:
            self.closed = [episode for episode in closed if episode.cleared_ts >= cutoff]
