"""Alert episodes: one open episode per (case, rule or zone), opened, escalated and cleared with hysteresis.

Every rule turns a fix into a metric x with a threshold per level; x <= threshold means a breach. For the
contact ban x is the distance to the victim, for a gebiedsverbod the signed distance to the zone, for a
gebiedsgebod minus the signed distance. The uncertainty u is the sum of the accuracy radii involved.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from geofence.model import AlertChange, AlertKind, ChangeKind, Confidence, Level

EPISODE_NAMESPACE = uuid.UUID("5d0c6a3e-2f4e-4d8b-9a59-7a3f0c1e4b21")


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def episode_id(case_id: str, kind: AlertKind, subject_id: str, opened_at: datetime, late: bool) -> str:
    key = f"{case_id}|{kind.value}|{subject_id}|{opened_at.isoformat()}|{late}"
    return str(uuid.uuid5(EPISODE_NAMESPACE, key))


@dataclass(frozen=True, slots=True)
class Ladder:
    """The thresholds of one rule, most serious level first: ((level, threshold, margin), ...).

    ``calm_counts_uncertainty`` False (inclusion zones) judges calm on the centre of the fix alone: with u
    subtracted a home zone smaller than the GPS error would never clear.
    """

    steps: tuple[tuple[Level, float, float], ...]
    calm_counts_uncertainty: bool = True

    def assess(self, x: float, u: float, coarse: bool) -> tuple[Level, Confidence]:
        """The highest level that x - u reaches (nothing is missed for lack of accuracy), and how sure it is."""
        for level, threshold, _ in self.steps:
            if x - u <= threshold:
                if coarse or x > threshold:
                    return level, Confidence.POSSIBLE
                return level, (Confidence.CONFIRMED if x + u <= threshold else Confidence.PROBABLE)
        return Level.NONE, Confidence.POSSIBLE

    def calm(self, level: Level, x: float, u: float) -> bool:
        """Provably beyond this level's threshold plus its margin."""
        for step_level, threshold, margin in self.steps:
            if step_level == level:
                return (x - u if self.calm_counts_uncertainty else x) > threshold + margin
        return True


@dataclass(slots=True)
class Reading:
    """One evaluation of one rule at one fix time."""

    ts: float
    x: float
    u: float
    level: Level
    confidence: Confidence
    distance_m: float | None  # reported as min_distance_m; None when only a lower bound is known
    evidence: tuple[str, ...]


class AlertEpisode:
    __slots__ = (
        "episode_id", "case_id", "kind", "subject_id", "late", "opened_ts", "level", "max_level", "confidence",
        "min_distance_m", "evidence", "n", "calm_from", "calm_to", "calm_count", "source_device",
        "window_end_ts", "last_ts", "last_change",
    )

    def __init__(self, case_id: str, kind: AlertKind, subject_id: str, late: bool, reading: Reading,
                 source_device: str | None, window_end_ts: float | None) -> None:
        opened_at = utc(reading.ts)
        self.episode_id = episode_id(case_id, kind, subject_id, opened_at, late)
        self.case_id = case_id
        self.kind = kind
        self.subject_id = subject_id
        self.late = late
        self.opened_ts = reading.ts
        self.level = reading.level
        self.max_level = reading.level
        self.confidence = reading.confidence
        self.min_distance_m = reading.distance_m
        self.evidence: list[str] = []
        self.n = 0
        self.calm_from = math.inf
        self.calm_to = -math.inf
        self.calm_count = 0
        self.source_device = source_device
        self.window_end_ts = window_end_ts
        self.last_ts = reading.ts  # newest reading applied: where a late episode's evidence ends
        self.last_change: AlertChange | None = None

    def change(self, kind: ChangeKind, ts: float, reason: str | None = None) -> AlertChange:
        self.n += 1
        self.last_change = AlertChange(
            episode_id=self.episode_id, n=self.n, case_id=self.case_id, kind=self.kind,
            subject_id=self.subject_id, change=kind, level=self.level, max_level=self.max_level,
            confidence=self.confidence, opened_at=utc(self.opened_ts), fix_at=utc(ts), late=self.late,
            min_distance_m=self.min_distance_m, reason=reason, evidence=tuple(self.evidence),
        )
        return self.last_change

    def add_evidence(self, fix_ids: tuple[str, ...], limit: int) -> None:
        for fix_id in fix_ids:
            if len(self.evidence) < limit and fix_id not in self.evidence:
                self.evidence.append(fix_id)

    def note_distance(self, distance_m: float | None) -> None:
        if distance_m is not None and (self.min_distance_m is None or distance_m < self.min_distance_m):
            self.min_distance_m = distance_m

    def current(self) -> AlertChange | None:
        """The latest change, refreshed with the distance and evidence gathered since."""
        if self.last_change is None:
            return None
        return replace(self.last_change, min_distance_m=self.min_distance_m, evidence=tuple(self.evidence))


class SubjectEpisodes:
    """The live and the late episode of one (case, kind, subject), and the spans of closed ones.

    A late episode comes from fixes older than the newest evaluated for their device (a tag uploading its
    buffer after a tunnel). It never reopens or clears the live one; it only reports breaches that no episode
    covered.
    """

    __slots__ = ("case_id", "kind", "subject_id", "live", "late", "spans")

    def __init__(self, case_id: str, kind: AlertKind, subject_id: str) -> None:
        self.case_id = case_id
        self.kind = kind
        self.subject_id = subject_id
        self.live: AlertEpisode | None = None
        self.late: AlertEpisode | None = None
        self.spans: list[tuple[float, float]] = []  # [opened, cleared] of closed episodes, within history

    @property
    def is_open(self) -> bool:
        return self.live is not None or self.late is not None

    def covered(self, ts: float, include_live: bool) -> bool:
        if include_live and self.live is not None and ts >= self.live.opened_ts:
            return True
        return any(start <= ts <= end for start, end in self.spans)

    def feed(self, ladder: Ladder, reading: Reading, late: bool, device_id: str | None, hold_s: float, min_fixes: int,
             evidence_limit: int, window_end_ts: float | None, out: list[AlertChange]) -> None:
        """Apply one reading to the live or the late episode."""
        episode = self.late if late else self.live
        breach = reading.level != Level.NONE and not ladder.calm(reading.level, reading.x, reading.u)
        if episode is None:
            if breach and not self.covered(reading.ts, include_live=late):
                episode = AlertEpisode(self.case_id, self.kind, self.subject_id, late, reading,
                                       device_id if late else None, window_end_ts)
                episode.add_evidence(reading.evidence, evidence_limit)
                if late:
                    self.late = episode
                else:
                    self.live = episode
                out.append(episode.change(ChangeKind.OPENED, reading.ts))
            return
        if late and breach and self.covered(reading.ts, include_live=True):
            return  # the live episode already covers this moment
        self._step(ladder, episode, reading, hold_s, min_fixes, evidence_limit, out)

    def _step(self, ladder: Ladder, episode: AlertEpisode, reading: Reading, hold_s: float, min_fixes: int,
              evidence_limit: int, out: list[AlertChange]) -> None:
        episode.note_distance(reading.distance_m)
        episode.last_ts = max(episode.last_ts, reading.ts)
        if reading.level != Level.NONE and (reading.level, reading.confidence) > (episode.level, episode.confidence):
            episode.level = reading.level
            episode.max_level = max(episode.max_level, reading.level)
            episode.confidence = reading.confidence
            episode.calm_count = 0
            episode.add_evidence(reading.evidence, evidence_limit)
            out.append(episode.change(ChangeKind.ESCALATED, reading.ts))
            return
        if not ladder.calm(episode.level, reading.x, reading.u):
            episode.calm_count = 0
            return
        # Readings may arrive slightly out of fix-time order (a phone uploading behind the tag), so the calm
        # run is the span of its readings rather than "since the first one".
        if episode.calm_count == 0:
            episode.calm_from = episode.calm_to = reading.ts
        else:
            episode.calm_from = min(episode.calm_from, reading.ts)
            episode.calm_to = max(episode.calm_to, reading.ts)
        episode.calm_count += 1
        if episode.calm_count < min_fixes or episode.calm_to - episode.calm_from < hold_s:
            return
        if reading.level == Level.NONE:
            self.close(episode, episode.calm_to, "departed", out)
        else:
            episode.level = reading.level
            episode.confidence = reading.confidence
            episode.calm_count = 0
            out.append(episode.change(ChangeKind.DEESCALATED, reading.ts))

    def open_direct(self, reading: Reading, window_end_ts: float | None, out: list[AlertChange]) -> AlertEpisode:
        """Open a live episode that no fix-by-fix ladder decides (silence)."""
        episode = AlertEpisode(self.case_id, self.kind, self.subject_id, False, reading, None, window_end_ts)
        episode.add_evidence(reading.evidence, len(reading.evidence))
        self.live = episode
        out.append(episode.change(ChangeKind.OPENED, reading.ts))
        return episode

    def close(self, episode: AlertEpisode, ts: float, reason: str, out: list[AlertChange]) -> None:
        out.append(episode.change(ChangeKind.CLEARED, ts, reason))
        self.spans.append((episode.opened_ts, ts))
        if episode is self.live:
            self.live = None
        else:
            self.late = None

    def close_all(self, ts: float, reason: str, out: list[AlertChange]) -> None:
        for episode in (self.live, self.late):
            if episode is not None:
                self.close(episode, max(ts, episode.opened_ts), reason, out)

    def forget_before(self, cutoff: float) -> None:
        if self.spans and self.spans[0][1] < cutoff:
            self.spans = [span for span in self.spans if span[1] >= cutoff]
