"""The proximity engine: fixes and case configuration in, fix verdicts and alert changes out.

Pure and deterministic: no clock, no I/O. Time comes only from the fixes (``recorded_at``, ``received_at``)
and from ``tick(now)``; fixes are handled one by one in the given (log) order, so the same log split into
different batches, or resumed from a snapshot, yields the same alert changes.

The rules this module applies, each with its reason, are written down in geofence/RULES.md; comments name
them (R-...). ``tick`` works from a timer queue keyed by due time (R-TICK-1), so its cost follows what is due,
not how many cases there are.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Sequence
from datetime import datetime

from shapely.errors import ShapelyError

from geofence.episode import Reading, SubjectEpisodes
from geofence.geometry import GEOD, lonlat_gap_lower_m
from geofence.model import (
    AlertChange, AlertKind, Approach, CaseConfig, Confidence, Encounter, Fix, FixStatus, FixVerdict, Level, Party,
)
from geofence.quality import DeviceTrack, invalid_reason
from geofence.rules import CompiledCase, CompiledZone, SubjectKey
from geofence import state as plain
from geofence.settings import EngineSettings

_geod_inv = GEOD.inv
_SILENCE_KIND = {Party.OFFENDER: AlertKind.OFFENDER_SILENT, Party.VICTIM: AlertKind.VICTIM_SILENT}
_SILENCE_LEVEL = {Party.OFFENDER: Level.VIOLATION, Party.VICTIM: Level.WARNING}
# Timer queue entries: (due, case id, what, subject). ``what`` orders entries due at the same moment.
_EXPIRY, _WINDOW, _SILENCE = 0, 1, 2


class CaseState:
    """Everything the engine remembers of one case. ``compiled`` is derived and rebuilt, never stored."""

    def __init__(self, config: CaseConfig, settings: EngineSettings) -> None:
        self.config = config
        self.compiled = CompiledCase(config, settings)
        self.subjects: dict[SubjectKey, SubjectEpisodes] = {}
        self.open: dict[SubjectKey, SubjectEpisodes] = {}  # subjects with a live or late episode
        self.tracks: dict[Party, list[DeviceTrack]] = {Party.OFFENDER: [], Party.VICTIM: []}
        self.window_checked: dict[str, float] = {}  # zone id -> start of the last window checked by tick
        self.window_due: dict[str, float] = {}  # zone id -> the next schedule boundary in the timer queue
        self.next_expiry = self.compiled.first_expiry()  # first valid_until not yet acted upon

    def subject(self, key: SubjectKey) -> SubjectEpisodes:
        subject = self.subjects.get(key)
        if subject is None:
            subject = self.subjects[key] = SubjectEpisodes(self.config.case_id, key[0], key[1])
        return subject

    def settle(self, key: SubjectKey, subject: SubjectEpisodes) -> None:
        """Keep ``open`` in step after a subject's episodes may have changed."""
        if subject.is_open:
            self.open[key] = subject
        else:
            self.open.pop(key, None)

    def close(self, key: SubjectKey, ts: float, reason: str, out: list[AlertChange]) -> None:
        subject = self.open.get(key)
        if subject is not None:
            subject.close_all(ts, reason, out)
            self.settle(key, subject)


class Engine:
    def __init__(self, settings: EngineSettings = EngineSettings()) -> None:
        self.settings = settings
        self._cases: dict[str, CaseState] = {}
        self._tracks: dict[str, DeviceTrack] = {}
        self._timers: list[tuple[float, str, int, str]] = []  # heap; rebuilt on restore, never stored

    # ---------------------------------------------------------------- configuration

    def configure(self, case: CaseConfig, at: datetime) -> list[AlertChange]:
        """Add or replace a case. Episodes of rules and zones that disappeared close (``rule_removed``)."""
        out: list[AlertChange] = []
        at_ts = at.timestamp()
        state = self._cases.get(case.case_id)
        if state is None:
            state = self._cases[case.case_id] = CaseState(case, self.settings)
        else:
            state.config = case
            state.compiled = CompiledCase(case, self.settings)
            state.next_expiry = state.compiled.first_expiry()
            wanted = state.compiled.keys()
            for key in list(state.subjects):
                if key[0] in (AlertKind.OFFENDER_SILENT, AlertKind.VICTIM_SILENT) or key in wanted:
                    continue
                state.close(key, at_ts, "rule_removed", out)
                del state.subjects[key]
        self._arm_case(state)
        parties = {device: Party.OFFENDER for device in case.offender_devices}
        parties.update({device: Party.VICTIM for device in case.victim_devices})
        for party, tracks in state.tracks.items():
            for track in tracks:
                if parties.get(track.device_id) != party:
                    self._drop_track(state, track, at_ts, out)
        for device_id, party in sorted(parties.items()):
            track = self._tracks.get(device_id)
            if track is not None and (track.case_id != case.case_id or track.party != party):
                self._drop_track(self._cases[track.case_id], track, at_ts, out)
                track = None
            if track is None:
                track = self._tracks[device_id] = DeviceTrack(device_id, case.case_id, party)
            if track not in state.tracks[party]:
                state.tracks[party].append(track)
        return out

    def remove_case(self, case_id: str, at: datetime) -> list[AlertChange]:
        out: list[AlertChange] = []
        state = self._cases.pop(case_id, None)
        if state is None:
            return out
        for key in list(state.open):
            state.close(key, at.timestamp(), "case_removed", out)
        for tracks in state.tracks.values():
            for track in tracks:
                self._tracks.pop(track.device_id, None)
        return out

    def _drop_track(self, state: CaseState, track: DeviceTrack, ts: float, out: list[AlertChange]) -> None:
        state.close((_SILENCE_KIND[track.party], track.device_id), ts, "device_removed", out)
        state.tracks[track.party] = [t for t in state.tracks[track.party] if t is not track]
        if self._tracks.get(track.device_id) is track:
            del self._tracks[track.device_id]

    # ---------------------------------------------------------------- timer queue (R-TICK-1)

    def _arm_case(self, state: CaseState) -> None:
        """Queue the case's order expiry and a first check of every scheduled zone (due at once: the first
        tick judges each window as of its own ``now``)."""
        case_id = state.config.case_id
        if state.next_expiry < math.inf:
            heapq.heappush(self._timers, (state.next_expiry, case_id, _EXPIRY, ""))
        state.window_due = {}
        for zone in state.compiled.zones:
            if zone.schedule is not None:
                state.window_due[zone.zone_id] = -math.inf
                heapq.heappush(self._timers, (-math.inf, case_id, _WINDOW, zone.zone_id))

    def _silent_after(self, party: Party) -> tuple[float, float]:
        """(short, normal) silence thresholds of a party: near the victim, and otherwise (R-TICK-4, R-TICK-6)."""
        normal = self.settings.offender_silent_s if party is Party.OFFENDER else self.settings.victim_silent_s
        return min(self.settings.near_silent_s, normal), normal

    def _arm_silence(self, track: DeviceTrack, due: float | None = None) -> None:
        """Queue the device's silence check, at the short threshold unless ``due`` says otherwise: whether the
        device was near is only judged when that comes (R-TICK-6)."""
        track.timer = True
        if due is None:
            due = track.newest_ts + self._silent_after(track.party)[0]
        heapq.heappush(self._timers, (due, track.case_id, _SILENCE, track.device_id))

    # ---------------------------------------------------------------- fixes

    def process(self, fixes: Sequence[Fix | Encounter]) -> tuple[list[FixVerdict], list[AlertChange]]:
        """One verdict per fix or encounter, in input order, and the alert changes they caused, in causal order."""
        out: list[AlertChange] = []
        verdicts = [self._process_one(fix, out) for fix in fixes]
        return verdicts, out

    def _process_one(self, fix: Fix | Encounter, out: list[AlertChange]) -> FixVerdict:
        if type(fix) is Encounter:
            return self._encounter(fix, out)
        settings = self.settings
        track = self._tracks.get(fix.device_id)
        if track is None or track.case_id != fix.case_id:
            return FixVerdict(fix.fix_id, FixStatus.REJECTED, "unknown_device")
        if fix.recorded_at.tzinfo is None or fix.received_at.tzinfo is None:
            return FixVerdict(fix.fix_id, FixStatus.REJECTED, "naive_time")
        try:
            fix_no = int(fix.fix_id)
        except ValueError:
            return FixVerdict(fix.fix_id, FixStatus.REJECTED, "fix_id_not_a_log_position")
        ts = fix.recorded_at.timestamp()
        reason = invalid_reason(fix, ts, settings)
        if reason is not None:
            return FixVerdict(fix.fix_id, FixStatus.REJECTED, reason)
        if track.is_duplicate(ts):
            return FixVerdict(fix.fix_id, FixStatus.DUPLICATE)
        case = self._cases[track.case_id]
        if track.silent and ts > track.newest_ts:
            track.silent = False
            case.close((_SILENCE_KIND[track.party], track.device_id), ts, "fixes_resumed", out)
        lat, lon, acc = float(fix.lat), float(fix.lon), float(fix.accuracy_m)
        in_order = not track.ts or ts > track.ts[-1]
        previous = track.previous_good(ts)
        speed = track.implied_speed(previous, ts, lat, lon, acc) if previous >= 0 else 0.0
        plausible = speed <= settings.max_speed_mps
        verdict = FixVerdict(fix.fix_id, FixStatus.ACCEPTED)
        if not plausible:
            i = track.insert(ts, lat, lon, acc, 0.0, fix_no, good=False)
            self._keep_timer(track)
            if not in_order:
                return self._judge_late_outlier(case, track, i, verdict, out)
            if track.pending:
                last = track.index_of(track.pending[-1])
                if track.implied_speed(last, ts, lat, lon, acc) <= settings.max_speed_mps:
                    track.pending.append(ts)
                    if len(track.pending) <= settings.outlier_confirmations:
                        return FixVerdict(fix.fix_id, FixStatus.OUTLIER, "unconfirmed_jump")
                    self._confirm(case, track, [track.index_of(t) for t in track.pending], out)
                    track.pending = []
                    return verdict
            track.pending = [ts]
            return FixVerdict(fix.fix_id, FixStatus.OUTLIER, "implied_speed")
        if in_order:
            track.pending = []  # back where it was: the jump was a spike, it stays an outlier
        track.insert(ts, lat, lon, acc, _measured_speed(fix.speed_mps, speed, settings.max_speed_mps), fix_no,
                     good=True)
        self._keep_timer(track)
        self._evaluate(case, track, ts, lat, lon, acc, fix.fix_id, out)
        track.prune(settings.history_s)
        return verdict

    def _encounter(self, enc: Encounter, out: list[AlertChange]) -> FixVerdict:
        """The victim's phone heard the offender's tag: proof of proximity, a confirmed contact-ban violation
        whatever GPS says (R-BLE-1), holding the episode for ``ble_lapse_s`` (R-BLE-2)."""
        settings = self.settings
        phone = self._tracks.get(enc.device_id)
        if phone is None or phone.case_id != enc.case_id or phone.party is not Party.VICTIM:
            return FixVerdict(enc.fix_id, FixStatus.REJECTED, "unknown_device")
        tag = self._tracks.get(enc.tag_id)
        if tag is None or tag.case_id != enc.case_id or tag.party is not Party.OFFENDER:
            return FixVerdict(enc.fix_id, FixStatus.REJECTED, "unknown_tag")
        if enc.recorded_at.tzinfo is None or enc.received_at.tzinfo is None:
            return FixVerdict(enc.fix_id, FixStatus.REJECTED, "naive_time")
        if not enc.fix_id.isdigit():
            return FixVerdict(enc.fix_id, FixStatus.REJECTED, "fix_id_not_a_log_position")
        ts = enc.recorded_at.timestamp()
        if ts - enc.received_at.timestamp() > settings.future_tolerance_s:
            return FixVerdict(enc.fix_id, FixStatus.REJECTED, "future")
        case = self._cases[enc.case_id]
        if ts >= case.next_expiry:
            self._expire(case, ts, out)
        rule = case.compiled.proximity
        if rule is None or not (rule.valid_from <= ts < rule.valid_until):
            return FixVerdict(enc.fix_id, FixStatus.REJECTED, "no_contact_ban")
        # R-BLE-3: an encounter still proves proximity "now" while it would hold the trigger.
        late = ts < phone.newest_evaluated_ts - settings.ble_lapse_s
        violation_m = rule.ladder.steps[0][1]
        reading = Reading(ts, violation_m, 0.0, 0.0, Level.VIOLATION, Level.VIOLATION, Confidence.CONFIRMED, None,
                          (enc.fix_id,), trigger="ble", rssi=enc.rssi, hold_until=ts + settings.ble_lapse_s)
        self._feed(case, rule.key, rule.ladder, reading, late, enc.device_id, None, out)
        return FixVerdict(enc.fix_id, FixStatus.ACCEPTED)

    def _keep_timer(self, track: DeviceTrack) -> None:
        if not track.timer and not track.silent:
            self._arm_silence(track)

    def _judge_late_outlier(self, case: CaseState, track: DeviceTrack, i: int, verdict: FixVerdict,
                            out: list[AlertChange]) -> FixVerdict:
        """A late fix that failed the speed check is confirmed by the fixes that follow it in time (R-QUAL-3)."""
        run, followed = track.outlier_run(i, self.settings.max_speed_mps)
        if len(run) - 1 + followed < self.settings.outlier_confirmations:
            return FixVerdict(verdict.fix_id, FixStatus.OUTLIER, "implied_speed")
        self._confirm(case, track, run, out)
        return verdict

    def _confirm(self, case: CaseState, track: DeviceTrack, indices: list[int], out: list[AlertChange]) -> None:
        """The fixes after a jump agree with each other: it was a real trip. Evaluate them in time order."""
        for i in indices:
            track.good[i] = 1
        for i in indices:
            lon, lat = track.position(i)
            self._evaluate(case, track, track.ts[i], lat, lon, track.acc[i], track.fix_id(i), out)

    # ---------------------------------------------------------------- evaluation

    def _evaluate(self, case: CaseState, track: DeviceTrack, ts: float, lat: float, lon: float, acc: float,
                  fix_id: str, out: list[AlertChange]) -> None:
        late = ts < track.newest_evaluated_ts
        if not late:
            track.newest_evaluated_ts = ts
            if case.open:
                self._end_late_episodes(case, track.device_id, out)
        compiled = case.compiled
        if ts >= case.next_expiry:
            self._expire(case, ts, out)
        if compiled.proximity is not None:
            self._evaluate_proximity(case, track, ts, lat, lon, acc, fix_id, late, out)
        if track.party is Party.OFFENDER and compiled.zones:
            self._evaluate_zones(case, track, ts, lat, lon, acc, fix_id, late, out)

    def _end_late_episodes(self, case: CaseState, device_id: str, out: list[AlertChange]) -> None:
        """The device is back to live data: its late episode has told all it can."""
        for key, subject in list(case.open.items()):
            episode = subject.late
            if episode is not None and episode.source_device == device_id:
                subject.close(episode, episode.last_ts, "late_data_end", out)
                case.settle(key, subject)

    def _evaluate_proximity(self, case: CaseState, track: DeviceTrack, ts: float, lat: float, lon: float,
                            acc: float, fix_id: str, late: bool, out: list[AlertChange]) -> None:
        rule = case.compiled.proximity
        if not (rule.valid_from <= ts < rule.valid_until):
            return
        other = Party.VICTIM if track.party is Party.OFFENDER else Party.OFFENDER
        tracks = case.tracks[other]
        other_track, i = self._counterpart(tracks, ts)
        if other_track is not None:
            self._pair(case, track.party, ts, lat, lon, acc, fix_id, late, track.device_id, other_track, i, out)
        # else: position of the other party unknown: no decision, an open episode stays open
        if not late:
            for other_track in tracks:
                if other_track.ts and other_track.ts[-1] >= ts:
                    self._repair(case, track, ts, lat, lon, acc, fix_id, other_track, out)

    def _pair(self, case: CaseState, party: Party, ts: float, lat: float, lon: float, acc: float, fix_id: str,
              late: bool, device_id: str, other_track: DeviceTrack, i: int, out: list[AlertChange]) -> None:
        """One contact-ban reading: the fix judged at ts against the other party's fix i (R-PAIR-1)."""
        rule = case.compiled.proximity
        other_acc = other_track.acc[i]
        other_lon, other_lat = other_track.position(i)
        x = _geod_inv(lon, lat, other_lon, other_lat)[2]
        u = acc + other_acc
        # R-PAIR-2: the other party may have moved since its fix, at its plausible speed.
        w = (ts - other_track.ts[i]) * max(other_track.speed[i], self.settings.walking_speed_mps)
        warn_m = rule.ladder.steps[-1][1]
        # R-ETA-1: how fast he closes in is judged on live readings, out to the fast-approach reach.
        approaching = not late and x <= rule.approach_reach_m
        if x - u - w > warn_m and rule.key not in case.open and not approaching:
            return
        coarse = max(acc, other_acc) > self.settings.coarse_accuracy_m
        level, level_c, confidence = rule.ladder.assess(x, u, w, coarse)
        other_id = other_track.fix_id(i)
        evidence = (fix_id, other_id) if party is Party.OFFENDER else (other_id, fix_id)
        approach, run = None, False
        if approaching:
            tag, tag_ts = ((self._tracks[device_id], ts) if party is Party.OFFENDER
                           else (other_track, other_track.ts[i]))
            approach, run = self._approach(case, tag, tag_ts, ts, x, u + w)
        if level is Level.NONE and approach is not None and run and self._fast(rule, x, approach):
            # R-ETA-2: a fast approach is a warning before the band; its reading stands at the warning threshold.
            reading = Reading(ts, warn_m, u, w, Level.WARNING, Level.WARNING, Confidence.PROBABLE, x, evidence,
                              trigger="fast_approach", approach=approach)
        elif level is Level.NONE and rule.key not in case.open:
            return
        else:
            reading = Reading(ts, x, u, w, level, level_c, confidence, x, evidence, approach=approach)
        self._feed(case, rule.key, rule.ladder, reading, late, device_id, None, out)

    def _fast(self, rule, x: float, approach: Approach) -> bool:  # type: ignore[no-untyped-def]
        """R-ETA-2: beyond the warning band, within its reach, and at the violation distance soon."""
        violation_m = rule.ladder.steps[0][1]
        return (x - violation_m) / approach.closing_speed_mps < self.settings.fast_approach_s

    def _approach(self, case: CaseState, track: DeviceTrack, tag_ts: float, ts: float, x: float,
                  u: float) -> tuple[Approach | None, bool]:
        """R-ETA-1: the closing speed over the offender's closing run of fixes before his fix at tag_ts (each
        paired with the victim as any reading is) up to the reading at ts (distance x, uncertainty u), and
        whether that run is long enough for a fast approach (R-ETA-2).

        The run reaches back over the window until a step on which he provably moved away. The speed counts
        only when the run closed by more than the uncertainty at both ends (accuracy radii and the victim fix's
        age, R-PAIR-2): a jittering offender standing still never closes provably."""
        settings = self.settings
        victims = case.tracks[Party.VICTIM]
        times, good = track.ts, track.good
        oldest = ts - settings.approach_window_s
        later_d, later_u = x, u
        first: tuple[float, float, float] | None = None
        n = 1
        j = track.index_of(tag_ts) - 1
        while j >= 0 and times[j] >= oldest:
            if good[j]:
                tj = times[j]
                other, k = self._counterpart(victims, tj)
                if other is None:
                    break
                lon, lat = track.position(j)
                other_lon, other_lat = other.position(k)
                d = _geod_inv(lon, lat, other_lon, other_lat)[2]
                uj = track.acc[j] + other.acc[k] + (tj - other.ts[k]) * max(other.speed[k],
                                                                            settings.walking_speed_mps)
                if d + uj + later_u < later_d:
                    break  # provably further away after this fix: the run starts after it
                first = (d, uj, tj)
                n += 1
                later_d, later_u = d, uj
            j -= 1
        if first is None:
            return None, False
        d0, u0, t0 = first
        span = ts - t0
        closed = d0 - x
        if span <= 0.0 or closed <= u0 + u:
            return None, False
        speed = closed / span
        low, high = (closed - u0 - u) / span, (closed + u0 + u) / span
        eta = x / speed
        uncertainty = max(eta - max(x - u, 0.0) / high, (x + u) / low - eta)
        run = n >= settings.approach_min_fixes and span >= settings.approach_min_span_s
        return Approach(speed, eta, uncertainty), run

    def _repair(self, case: CaseState, track: DeviceTrack, ts: float, lat: float, lon: float, acc: float,
                fix_id: str, other_track: DeviceTrack, out: list[AlertChange]) -> None:
        """The other party's fixes recorded from ts on, judged before this live fix arrived (the two crossed on
        the network), were paired with an older one: judge them again against this fix, their rightful
        counterpart (R-PAIR-3)."""
        times = other_track.ts
        own_next = math.inf  # this party's next fix after ts: the counterpart of what follows it
        for own in case.tracks[track.party]:
            j = own.index_of(ts) + 1 if own is track else own.index_of(ts)
            while j < len(own.ts) and not own.good[j]:
                j += 1
            if j < len(own.ts):
                own_next = min(own_next, own.ts[j])
        horizon = min(own_next, ts + self.settings.victim_max_age_s + 1e-9)
        j = other_track.index_of(ts)
        while j < len(times) and times[j] < horizon:
            if other_track.good[j]:
                other_lon, other_lat = other_track.position(j)
                other_late = times[j] < other_track.newest_evaluated_ts
                self._pair(case, other_track.party, times[j], other_lat, other_lon, other_track.acc[j],
                           other_track.fix_id(j), other_late, other_track.device_id, track, track.index_of(ts), out)
            j += 1

    def _counterpart(self, tracks: list[DeviceTrack], ts: float,
                     max_age_s: float | None = None) -> tuple[DeviceTrack | None, int]:
        """The other party's newest good fix recorded at or before ts and at most ``max_age_s`` (default
        victim_max_age_s) older, as (track, index) (R-PAIR-1)."""
        oldest = ts - (self.settings.victim_max_age_s if max_age_s is None else max_age_s)
        best: DeviceTrack | None = None
        best_i = -1
        for track in tracks:
            i = track.good_at_or_before(ts, oldest)
            if i >= 0 and (best is None or track.ts[i] > best.ts[best_i]):
                best, best_i = track, i
        return best, best_i

    def _evaluate_zones(self, case: CaseState, track: DeviceTrack, ts: float, lat: float, lon: float,
                        acc: float, fix_id: str, late: bool, out: list[AlertChange]) -> None:
        compiled = case.compiled
        # Most fixes are far from every exclusion zone: one cheap lon/lat test settles them all.
        bounds = compiled.exclusion_bounds
        near = bounds is not None and lonlat_gap_lower_m(lon, lat, bounds) <= compiled.exclusion_reach_m + acc
        if not near and not case.open:
            zones = compiled.inclusion_zones  # nothing else can open, and nothing is open to clear
            if not zones:
                return
        else:
            zones = compiled.zones
        coarse = acc > self.settings.coarse_accuracy_m
        for zone in zones:
            if not (zone.valid_from <= ts < zone.valid_until):
                continue
            subject = case.open.get(zone.key)
            window_end = None
            if zone.schedule is not None:
                active, _, window_end = zone.schedule.state_at(ts)
                if subject is not None:
                    self._end_windows(case, zone, subject, ts, late, out)
                    subject = case.open.get(zone.key)
                if not active:
                    continue
            if zone.inclusion:
                x = -zone.shape.signed_distance(lon, lat, zone.reach_m)
            elif near and lonlat_gap_lower_m(lon, lat, zone.shape.lonlat_bounds) <= zone.reach_m + acc:
                x = zone.shape.signed_distance(lon, lat, zone.reach_m + acc)
            elif subject is None:
                continue
            else:
                x = math.inf  # beyond every threshold; counts towards clearing
            level, level_c, confidence = zone.ladder.assess(x, acc, 0.0, coarse)
            if subject is None and level is Level.NONE:
                continue
            # R-ZONE-1: x itself is the distance to report; negative is the depth of a breach, for both kinds.
            reading = Reading(ts, x, acc, 0.0, level, level_c, confidence, x if x < math.inf else None, (fix_id,))
            self._feed(case, zone.key, zone.ladder, reading, late, track.device_id, window_end, out)
            if late and window_end is not None:
                # A late episode of a past window must end with it at the next tick.
                heapq.heappush(self._timers, (window_end, case.config.case_id, _WINDOW, zone.zone_id))

    def _end_windows(self, case: CaseState, zone: CompiledZone, subject: SubjectEpisodes, ts: float, late: bool,
                     out: list[AlertChange]) -> None:
        """Close the zone's episode (live for live data, late for late data) whose schedule window has ended."""
        episode = subject.late if late else subject.live
        if episode is not None and episode.window_end_ts is not None and ts >= episode.window_end_ts:
            subject.close(episode, episode.window_end_ts, "window_ended", out)
            case.settle(zone.key, subject)

    def _feed(self, case: CaseState, key: SubjectKey, ladder, reading: Reading, late: bool, device_id: str,
              window_end: float | None, out: list[AlertChange]) -> None:
        settings = self.settings
        subject = case.subject(key)
        subject.feed(ladder, reading, late, device_id, settings.clear_hold_s, settings.clear_min_fixes,
                     settings.delivery_window_s, settings.evidence_limit, window_end, out)
        subject.forget_before(reading.ts - settings.history_s)
        case.settle(key, subject)

    def _expire(self, case: CaseState, ts: float, out: list[AlertChange]) -> None:
        """Orders whose validity has ended close their open episodes at the moment they ended."""
        upcoming = math.inf
        for rule in case.compiled.rules():
            if rule.valid_until <= ts:
                case.close(rule.key, rule.valid_until, "order_expired", out)
            else:
                upcoming = min(upcoming, rule.valid_until)
        case.next_expiry = upcoming
        if upcoming < math.inf:
            heapq.heappush(self._timers, (upcoming, case.config.case_id, _EXPIRY, ""))

    # ---------------------------------------------------------------- time passing

    def tick(self, now: datetime) -> list[AlertChange]:
        """Order expiry, schedule windows opening and closing, and silent devices, as of ``now``.

        Only what is due is looked at (R-TICK-1). The caller runs it only once the engine has caught up with
        the log (R-TICK-3)."""
        out: list[AlertChange] = []
        now_ts = now.timestamp()
        timers = self._timers
        while timers and timers[0][0] <= now_ts:
            due, case_id, what, subject = heapq.heappop(timers)
            case = self._cases.get(case_id)
            if case is None:
                continue  # the case was removed
            if what == _SILENCE:
                self._tick_silence(case, subject, now_ts, out)
            elif what == _WINDOW:
                zone = case.compiled.zone(subject)
                if zone is None:
                    continue
                self._tick_window(case, zone, now_ts, out)
                if case.window_due.get(subject) == due:  # the zone's own boundary timer, not a one-off
                    active, start, end = zone.schedule.state_at(now_ts)
                    case.window_due[subject] = end
                    heapq.heappush(timers, (end, case_id, _WINDOW, subject))
            elif now_ts >= case.next_expiry:
                self._expire(case, now_ts, out)
        return out

    def _tick_window(self, case: CaseState, zone: CompiledZone, now_ts: float, out: list[AlertChange]) -> None:
        subject = case.open.get(zone.key)
        if subject is not None:
            for late in (False, True):
                self._end_windows(case, zone, subject, now_ts, late, out)
        active, start, end = zone.schedule.state_at(now_ts)
        if not zone.inclusion or not active or case.window_checked.get(zone.zone_id, -math.inf) >= start:
            return
        case.window_checked[zone.zone_id] = start
        if not (zone.valid_from <= start < zone.valid_until):
            return
        subject = case.open.get(zone.key)
        if subject is not None and subject.live is not None:
            return
        # A window that opens while the offender is outside (curfew, not home) is a breach from its start.
        newest: DeviceTrack | None = None
        newest_i = -1
        for track in case.tracks[Party.OFFENDER]:
            i = track.newest_good()
            if i >= 0 and (newest is None or track.ts[i] > newest.ts[newest_i]):
                newest, newest_i = track, i
        if newest is None or newest.ts[newest_i] > start:
            return  # fixes inside the window were evaluated as they came
        if start - newest.ts[newest_i] > self.settings.clock_fix_max_age_s:
            return  # R-TICK-2: too old to judge a breach on; silence is what it tells
        acc = newest.acc[newest_i]
        lon, lat = newest.position(newest_i)
        x = -zone.shape.signed_distance(lon, lat, zone.reach_m)
        level, level_c, confidence = zone.ladder.assess(x, acc, 0.0, acc > self.settings.coarse_accuracy_m)
        if level is Level.NONE:
            return
        reading = Reading(start, x, acc, 0.0, level, level_c, confidence, x, (newest.fix_id(newest_i),))
        self._feed(case, zone.key, zone.ladder, reading, False, newest.device_id, end, out)

    def _tick_silence(self, case: CaseState, device_id: str, now_ts: float, out: list[AlertChange]) -> None:
        track = self._tracks.get(device_id)
        if track is None or track.case_id != case.config.case_id:
            return  # the device left the case
        track.timer = False
        if track.silent:
            return
        party = track.party
        short, normal = self._silent_after(party)
        if now_ts < track.newest_ts + short:
            self._arm_silence(track)  # fixes came in since this timer was set
            return
        near = self._near_victim(case, track)
        if not near and now_ts < track.newest_ts + normal:
            self._arm_silence(track, track.newest_ts + normal)  # R-TICK-6: far from her, the usual wait
            return
        key = (_SILENCE_KIND[party], track.device_id)
        level = Level.VIOLATION if near else _SILENCE_LEVEL[party]
        reading = Reading(track.newest_ts + (short if near else normal), math.inf, 0.0, 0.0, level, level,
                          Confidence.CONFIRMED, None, (), trigger="silence")
        subject = case.subject(key)
        subject.open_direct(reading, None, out)
        out[-1] = dataclasses.replace(out[-1], near_victim=near)
        case.settle(key, subject)
        track.silent = True

    def _near_victim(self, case: CaseState, track: DeviceTrack) -> bool:
        """R-TICK-5: the silent device's newest good fix lay inside the contact ban's warning band (paired with
        the other party as any reading is, R-PAIR-1/2) or, for the offender, inside an exclusion zone's buffer;
        or the case has a live proximity or exclusion episode open (the engine judged him near)."""
        for (kind, _), subject in case.open.items():
            if kind in (AlertKind.PROXIMITY, AlertKind.ZONE_EXCLUSION) and subject.live is not None:
                return True
        i = track.newest_good()
        if i < 0:
            return False
        ts, acc = track.ts[i], track.acc[i]
        lon, lat = track.position(i)
        rule = case.compiled.proximity
        if rule is not None and rule.valid_from <= ts < rule.valid_until:
            other = Party.VICTIM if track.party is Party.OFFENDER else Party.OFFENDER
            other_track, j = self._counterpart(case.tracks[other], ts, self.settings.near_counterpart_max_age_s)
            if other_track is not None:
                other_lon, other_lat = other_track.position(j)
                x = _geod_inv(lon, lat, other_lon, other_lat)[2]
                w = (ts - other_track.ts[j]) * max(other_track.speed[j], self.settings.walking_speed_mps)
                if x - acc - other_track.acc[j] - w <= rule.ladder.steps[-1][1]:
                    return True
        if track.party is Party.OFFENDER:
            for zone in case.compiled.zones:
                if zone.inclusion or not (zone.valid_from <= ts < zone.valid_until):
                    continue
                if zone.shape.signed_distance(lon, lat, zone.reach_m + acc) - acc <= zone.ladder.steps[-1][1]:
                    return True
        return False

    # ---------------------------------------------------------------- state

    def open_episodes(self, case_id: str | None = None) -> list[AlertChange]:
        """The latest state of each open episode (n is that of its latest change)."""
        cases = self._cases.values() if case_id is None else [self._cases[case_id]] if case_id in self._cases else []
        found = []
        for case in cases:
            for subject in case.open.values():
                for episode in (subject.live, subject.late):
                    if episode is not None:
                        found.append(episode.current())
        return found

    def snapshot(self) -> dict:
        """All state as plain data (layout in geofence/state.py), for restart without raising any episode twice."""
        tracks: list[dict] = []
        index: dict[int, int] = {}  # a track is shared by its case and the engine's device map: stored once

        def ref(track: DeviceTrack) -> int:
            if id(track) not in index:
                index[id(track)] = len(tracks)
                tracks.append(plain.track_to_plain(track))
            return index[id(track)]

        engine_tracks = {device_id: ref(track) for device_id, track in self._tracks.items()}
        cases = [{
            "config": plain.config_to_plain(case.config),
            "subjects": [[[kind.value, sid], plain.subject_to_plain(s)] for (kind, sid), s in case.subjects.items()],
            "open": [[kind.value, sid] for kind, sid in case.open],
            "tracks": {party.value: [ref(t) for t in party_tracks] for party, party_tracks in case.tracks.items()},
            "window_checked": dict(case.window_checked),
            "next_expiry": case.next_expiry,
        } for case in self._cases.values()]
        return {"format_version": plain.FORMAT_VERSION, "tracks": tracks, "engine_tracks": engine_tracks,
                "cases": cases}

    @classmethod
    def restore(cls, data: dict, settings: EngineSettings = EngineSettings()) -> Engine:
        """The engine as :meth:`snapshot` saw it; :class:`geofence.state.SnapshotRefused` for another format
        version or malformed data (the caller then rebuilds from the log)."""
        version = data.get("format_version") if isinstance(data, dict) else None
        if version != plain.FORMAT_VERSION:
            raise plain.SnapshotRefused(f"unsupported engine snapshot format {version!r}")
        engine = cls(settings)
        try:
            tracks = [plain.track_from_plain(t) for t in data["tracks"]]
            engine._tracks = {device_id: tracks[i] for device_id, i in data["engine_tracks"].items()}
            for c in data["cases"]:
                case = CaseState(plain.config_from_plain(c["config"]), settings)
                case.subjects = {(AlertKind(kind), sid): plain.subject_from_plain(s) for (kind, sid), s in c["subjects"]}
                case.open = {key: case.subjects[key] for key in ((AlertKind(kind), sid) for kind, sid in c["open"])}
                case.tracks = {Party(party): [tracks[i] for i in ids] for party, ids in c["tracks"].items()}
                case.window_checked = dict(c["window_checked"])
                case.next_expiry = c["next_expiry"]
                engine._cases[case.config.case_id] = case
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ShapelyError) as e:
            raise plain.SnapshotRefused(f"malformed engine snapshot: {e!r}") from None
        for case in engine._cases.values():
            engine._arm_case(case)
        for track in engine._tracks.values():
            track.timer = False
            if not track.silent and track.newest_ts > -math.inf:
                engine._arm_silence(track)
        return engine


def _measured_speed(reported: float | None, implied: float, max_speed_mps: float) -> float:
    """The device's own speed when it reports one, else the speed implied by its last two fixes."""
    if reported is not None and 0.0 <= reported <= max_speed_mps:
        return reported
    return implied
