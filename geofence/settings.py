"""Tunable thresholds of the proximity engine; every time in seconds of fix time, every distance in metres.

Each value's reason is in geofence/RULES.md, under the rule that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineSettings:
    victim_max_age_s: float = 120  # max age of the counterpart fix for proximity pairing (R-PAIR-1)
    walking_speed_mps: float = 1.5  # plausible speed of a party whose speed is unknown or lower (R-PAIR-2)
    coarse_accuracy_m: float = 200  # fixes worse than this (cell towers) can only reach confidence POSSIBLE
    clear_hold_s: float = 60  # stay beyond threshold + margin this long (fix time) ... (R-HOLD-1)
    clear_min_fixes: int = 2  # ... and for at least this many readings before stepping down
    delivery_window_s: float = 0  # step down only once readings this much newer came in (R-HOLD-3)
    margin_ratio: float = 0.10
    margin_min_m: float = 50
    future_tolerance_s: float = 300  # recorded_at > received_at + this: rejected
    max_speed_mps: float = 70  # implied speed above this: outlier
    outlier_confirmations: int = 2  # consistent fixes after an outlier that confirm its new place
    evidence_limit: int = 16  # fix ids kept per episode
    history_s: float = 6 * 3600  # per-device history kept for late data and pairing
    offender_silent_s: float = 300
    victim_silent_s: float = 900
    clock_fix_max_age_s: float = 180  # oldest position a clock-driven (tick) judgment may rest on (R-TICK-2)
    near_silent_s: float = 90  # silence of a device near the victim (R-TICK-6)
    near_counterpart_max_age_s: float = 900  # oldest fix of the other party a silence's nearness is judged on
    ble_lapse_s: float = 60  # an encounter holds the Bluetooth trigger this long (R-BLE-2)
    approach_window_s: float = 300  # fixes this far back estimate the closing speed (R-ETA-1)
    approach_min_fixes: int = 3  # a fast approach needs a closing run of this many fixes ...
    approach_min_span_s: float = 60  # ... spanning this long (R-ETA-2)
    fast_approach_s: float = 300  # ... and less than this to reach the violation distance
    fast_approach_reach: float = 3.0  # ... within this many times the warning distance

    def margin(self, threshold_m: float) -> float:
        """Hysteresis margin for stepping down from a level with this threshold."""
        return max(self.margin_ratio * threshold_m, self.margin_min_m)
