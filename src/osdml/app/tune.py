"""The app's two model settings, tuned on validation events instead of assumed.

The app decides with two user settings seeded from the model's index entry: the probability
threshold (``MlSeizureProbabilityThresholdPct``) and the movement gate
(``MlAccelStdThresholdPct``). ``sweep`` runs the app's engine (``osdml.app.engine``; the model
alone, every other setting as given) over a grid of both on a set of events and returns
event sensitivity against false alarms per 24 h for each pair; ``choose`` picks one pair by a
rule, on validation events only.

Rules: ``sensitivity_at_far`` takes the highest event sensitivity among pairs whose false
alarms per 24 h stay within a limit (ties: fewer false alarms, then the pair nearest the app's
defaults 50 % and 5 %, so the settings only move when the data says so); when no pair stays
within the limit, the fewest false alarms (then the highest sensitivity) with a warning.
``none`` keeps the given settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from osdml.app.engine import STEP_S, AppSettings, alarm_onsets, counter_states

DAY_S = 86_400.0
RULES = ("sensitivity_at_far", "none")
DEFAULT_THRESHOLDS_PCT = tuple(float(t) for t in range(5, 100, 5))
DEFAULT_GATES_PCT = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def sweep(traces: Sequence[Any], settings: AppSettings, thresholds_pct: Sequence[float],
          gates_pct: Sequence[float], model: int = 0) -> list[dict[str, Any]]:
    """The model alone by the app's engine for every (threshold, gate) pair.

    Parameters
    ----------
    traces : sequence of osdml.evaluate.events.EventTrace
        Events with ``p`` (n_models, n) float32 (NaN before the buffer is full),
        ``movement_pct`` (n,), ``label`` and ``recording_s``.
    settings : AppSettings
        WarnTime and AlarmTime (threshold and gate come from the grid).
    thresholds_pct, gates_pct : sequence of float in [0, 100]
    model : int
        Which model of the traces.

    Returns
    -------
    list of dict
        One row per pair, gate-major: ``threshold_pct``, ``gate_pct``, ``sensitivity`` (share
        of seizure events reaching ALARM; None without seizure events), ``detected``,
        ``seizure_events``, ``false_alarms`` (alarm episodes in non-seizure events),
        ``far_24h`` (per 24 h of non-seizure recording; None without it),
        ``decision_sensitivity`` and ``decision_fpr`` (share of the datapoints with a full
        buffer voting ALARM in seizure and in non-seizure events).
    """
    traces = list(traces)
    if not traces:
        return []
    labels = np.array([t.label for t in traces])
    recording = float(sum(t.recording_s for t in traces if t.label == 0))
    lengths = np.array([len(t.movement_pct) for t in traces])
    # all events back to back, each followed by one separator (never a vote): one pass each
    bounds = np.r_[0, np.cumsum(lengths + 1)]
    p = np.full(bounds[-1], np.nan, np.float32)
    mov = np.full(bounds[-1], np.inf)
    for i, t in enumerate(traces):
        p[bounds[i]:bounds[i] + lengths[i]] = t.p[model]
        mov[bounds[i]:bounds[i] + lengths[i]] = t.movement_pct
    owner = np.repeat(np.arange(len(traces)), lengths + 1)
    positive = labels[owner] == 1
    full = ~np.isnan(p)
    need = int(np.floor(settings.alarm_s / STEP_S)) + 1  # votes in a row to pass AlarmTime
    n_seiz = int((labels == 1).sum())
    rows = []
    for gate in gates_pct:
        p_app = np.where(full & ~(mov < gate), p, np.float32(0)).astype(np.float32)
        for th in thresholds_pct:
            votes = p_app > np.float32(th / 100.0)
            alarmed, alarms = _alarms(votes, owner, bounds, lengths, need, settings)
            detected = int(alarmed[labels == 1].sum())
            false_alarms = int(alarms[labels == 0].sum())
            rows.append({
                "threshold_pct": float(th), "gate_pct": float(gate),
                "sensitivity": detected / n_seiz if n_seiz else None, "detected": detected,
                "seizure_events": n_seiz, "false_alarms": false_alarms,
                "far_24h": false_alarms * DAY_S / recording if recording > 0 else None,
                "decision_sensitivity": _share(votes[full & positive]),
                "decision_fpr": _share(votes[full & ~positive]),
            })
    return rows


def _share(v: np.ndarray) -> float | None:
    return float(v.mean()) if len(v) else None


def _alarms(votes, owner, bounds, lengths, need, settings) -> tuple[np.ndarray, np.ndarray]:
    """Per event: whether the counter reached ALARM and how many alarm episodes. Only events
    with a run of `need` ALARM votes in a row can alarm; only those run the counter."""
    n = len(lengths)
    alarmed, alarms = np.zeros(n, bool), np.zeros(n, np.int64)
    edges = np.flatnonzero(np.diff(np.r_[0, votes.astype(np.int8), 0]))
    starts, stops = edges[0::2], edges[1::2]
    long_runs = starts[(stops - starts) >= need]
    for i in np.unique(owner[long_runs]):
        states = counter_states(votes[bounds[i]:bounds[i] + lengths[i]], settings.warn_s,
                                settings.alarm_s)
        k = len(alarm_onsets(states))
        alarmed[i], alarms[i] = k > 0, k
    return alarmed, alarms


@dataclass
class Tuned:
    """The outcome of ``choose``: the settings, the rule and the row that decided, and a
    warning when the rule could not be met."""

    settings: AppSettings
    rule: str
    reason: str
    row: dict[str, Any] | None
    warning: str | None = None

    def record(self) -> dict[str, Any]:
        """What the model spec, the run folder and ``publish`` keep (``app_settings``)."""
        s = self.settings
        out = {"threshold_pct": s.threshold_pct, "gate_pct": s.gate_pct, "warn_s": s.warn_s,
               "alarm_s": s.alarm_s, "voting": s.voting, "osd": s.osd, "rule": self.rule,
               "reason": self.reason, "warning": self.warning}
        if self.row is not None:
            out["validation"] = {k: self.row[k] for k in ("sensitivity", "detected",
                                                           "seizure_events", "false_alarms",
                                                           "far_24h")}
        return out


def choose(rows: Sequence[dict[str, Any]], base: AppSettings, rule: str = "sensitivity_at_far",
           max_far_24h: float = 1.0) -> Tuned:
    """Pick the threshold and gate from `rows` (``sweep`` on validation events).

    Parameters
    ----------
    rows : sequence of dict
    base : AppSettings
        The other settings; also the result for rule ``none`` or when nothing can be tuned.
    rule : {"sensitivity_at_far", "none"}
    max_far_24h : float
        ``sensitivity_at_far``: the most false alarms per 24 h allowed.

    Raises
    ------
    ValueError
        If `rule` is unknown.
    """
    if rule not in RULES:
        raise ValueError(f"tuning rule {rule!r}: choose one of {', '.join(RULES)}")
    if rule == "none":
        return Tuned(base, rule, f"given: {base.threshold_pct:g} %, gate {base.gate_pct:g} %",
                     None)
    usable = [r for r in rows if r["sensitivity"] is not None]
    if not usable:
        return Tuned(base, rule, "kept the given settings", None,
                     "no seizure events to tune the threshold and movement gate on; kept "
                     f"{base.threshold_pct:g} % and {base.gate_pct:g} %")

    def far(r):
        return 0.0 if r["far_24h"] is None else r["far_24h"]

    def nearness(r):
        return abs(r["threshold_pct"] - 50.0) + abs(r["gate_pct"] - 5.0)

    within = [r for r in usable if far(r) <= max_far_24h]
    warning = None
    if within:
        best = min(within, key=lambda r: (-r["sensitivity"], far(r), nearness(r)))
    else:
        best = min(usable, key=lambda r: (far(r), -r["sensitivity"], nearness(r)))
        warning = (f"no threshold and gate kept validation false alarms within "
                   f"{max_far_24h:g} per 24 h (fewest: {far(best):.3g}); chose the fewest")
    settings = base.with_(threshold_pct=best["threshold_pct"], gate_pct=best["gate_pct"])
    no_far = " (no non-seizure recording)" if best["far_24h"] is None else ""
    reason = (f"threshold {best['threshold_pct']:g} %, gate {best['gate_pct']:g} %: validation "
              f"event sensitivity {best['sensitivity']:.3g} ({best['detected']} of "
              f"{best['seizure_events']}), {far(best):.3g} false alarms per 24 h{no_far} "
              f"(rule {rule}, limit {max_far_24h:g})")
    if best["sensitivity"] == 0:
        warning = ((warning + "; ") if warning else "") + (
            "no setting alarms on any validation seizure: the tuned settings are the app's "
            "nearest to its defaults and the model misses every validation seizure")
    return Tuned(settings, rule, reason, best, warning)
