"""Event scoring of Spahr et al. (2025), beside the app engine's.

Source: Spahr et al., Epilepsia 2025, doi 10.1111/epi.18406, section 2.7 (event scoring).

The rule, for one model:

- **Windows.** Each datapoint after which the app ran the model is a window; its time is the
  window's end (the datapoint's time, ``EventTrace.t_s``). A window is positive when the
  model voted ALARM there as the app computes it (movement gate, then p > threshold:
  ``EventTrace.engine(settings, [model], osd=False).votes[0]``), so this scoring and the app
  engine's differ only in the event rule, never in the votes.
- **Detection.** The convulsive seizure interval (``seizureTimes`` [start, end], s relative to
  the event's ``dataTime``) is padded to [start - t_before, end + t_after] (120 s and 10 s).
  A seizure is detected (TP) when some positive window lies within its padded interval
  (bounds included), else missed (FN). A seizure event without ``seizureTimes`` has the whole
  event as its interval. Latency: the end of the first detecting window minus the seizure
  start (negative when the detection came before the marked onset).
- **False positives.** Positive windows outside every padded interval (in seizure and
  non-seizure events alike) are merged into false-alarm events, t_max = 150 s being both the
  shortest time between two of them and the longest one: a positive at t0 opens an FP event,
  positives before t0 + t_max belong to it, the next positive at or after t0 + t_max opens the
  next (ten minutes of positives count 4).
- **Rates.** Sensitivity TP / (TP + FN) with a 95 % Wald interval
  (p +- 1.96 sqrt(p (1 - p) / n), clipped to [0, 1]); FAR = FP per 24 h of all recording
  (seizure and non-seizure events) with a 95 % Wald interval of a Poisson rate
  (FP / T +- 1.96 sqrt(FP) / T, floored at 0).

The app engine instead counts an event as detected only when the alarm counter reached ALARM
(several positives in a row, ``osdml.app.engine``), anywhere in the event, and counts false
alarms as entries into ALARM in non-seizure events over non-seizure recording time.
Undefined ratios are ``None``, never a division by zero, so results serialise as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from osdml.evaluate.metrics import DAY_S

T_BEFORE_S = 120.0  # padding before the seizure start (Spahr et al. 2025, t_before)
T_AFTER_S = 10.0  # padding after the seizure end (t_after)
T_MAX_S = 150.0  # t_CS,max: minimum time between FP events and maximum length of one
Z95 = 1.96  # two-sided 95 % normal quantile of the Wald intervals
SOURCE = "Spahr et al., Epilepsia 2025, doi 10.1111/epi.18406, section 2.7"


def paper_event(trace, votes: np.ndarray, *, t_before_s: float = T_BEFORE_S,
                t_after_s: float = T_AFTER_S, t_max_s: float = T_MAX_S) -> dict[str, Any]:
    """Score one event by the rule of Spahr et al. (2025).

    Parameters
    ----------
    trace : osdml.evaluate.events.EventTrace
        The event: ``t_s`` (datapoint times, s relative to the event's ``dataTime``),
        ``label``, ``seizure_start_s`` / ``seizure_end_s`` (``seizureTimes``, s, or None),
        ``recording_s``.
    votes : np.ndarray of shape (n,), bool
        The model's ALARM vote after each datapoint of `trace` as the app computes it
        (movement gate, then p > threshold): ``trace.engine(settings, [model],
        osd=False).votes[0]``.
    t_before_s, t_after_s : float, default=120.0, 10.0
        Padding of the seizure interval before its start and after its end, s (>= 0).
    t_max_s : float, default=150.0
        Shortest time between two false-alarm events and longest length of one, s (> 0).

    Returns
    -------
    dict
        ``id``, ``user``, ``label``; ``detected`` (bool for a seizure event, None for a
        non-seizure event); ``latency_s`` (first detecting window's time minus the seizure
        start, s; None when not detected or the start is unknown); ``first_detection_s``;
        ``false_alarms`` (int: FP events outside the padded interval); ``positives`` (positive
        windows); ``recording_s``; ``interval`` ([lo, hi] padded, s, or None for a
        non-seizure event; the first and last datapoint times for a whole-event interval);
        ``interval_from`` ("seizureTimes", "seizure start" when only the start is known and
        the interval is padded around it, "whole event", or None); ``untimed`` (positive
        windows without a finite time, left out); ``t_before_s``, ``t_after_s``,
        ``t_max_s``.

    Raises
    ------
    ValueError
        If `votes` does not have one value per datapoint of `trace`, or a parameter is
        negative, non-finite or (`t_max_s`) zero.

    Notes
    -----
    Source: Spahr et al., Epilepsia 2025, doi 10.1111/epi.18406, section 2.7.
    """
    _check_params(t_before_s, t_after_s, t_max_s)
    votes = np.asarray(votes, dtype=bool)
    t = np.asarray(trace.t_s, dtype=np.float64)
    if votes.shape != t.shape:
        raise ValueError(f"event {trace.id}: votes of shape {votes.shape} for {t.shape[0]} "
                         "datapoints; give one vote per datapoint")
    timed = np.isfinite(t)
    positive = votes & timed
    start, end = trace.seizure_start_s, getattr(trace, "seizure_end_s", None)
    detected = latency = first = interval = interval_from = None
    inside = np.zeros(t.shape, dtype=bool)
    if int(trace.label) == 1:
        if start is not None:
            stop = end if end is not None else start
            lo, hi = float(start) - t_before_s, float(stop) + t_after_s
            interval_from = "seizureTimes" if end is not None else "seizure start"
            interval = [lo, hi]
            inside = positive & (t >= lo) & (t <= hi)
        else:
            interval_from = "whole event"
            interval = [float(t[timed].min()), float(t[timed].max())] if timed.any() else None
            inside = positive
        detected = bool(inside.any())
        if detected:
            first = float(t[inside].min())
            latency = None if start is None else first - float(start)
    outside = np.sort(t[positive & ~inside])
    return {"id": trace.id, "user": trace.user, "label": int(trace.label),
            "detected": detected, "latency_s": latency, "first_detection_s": first,
            "false_alarms": fp_events(outside, t_max_s), "positives": int(positive.sum()),
            "recording_s": float(trace.recording_s), "interval": interval,
            "interval_from": interval_from, "untimed": int((votes & ~timed).sum()),
            "t_before_s": float(t_before_s), "t_after_s": float(t_after_s),
            "t_max_s": float(t_max_s)}


def fp_events(times: np.ndarray, t_max_s: float = T_MAX_S) -> int:
    """Number of false-alarm events among positive windows at `times`, merged greedily.

    A positive at t0 opens an event; positives before t0 + `t_max_s` belong to it; the next
    positive at or after t0 + `t_max_s` opens the next one. `t_max_s` is thus both the
    shortest time between two events and the longest length of one.

    Parameters
    ----------
    times : np.ndarray of shape (k,), float
        Times of the positive windows outside every padded seizure interval, s (any order).
    t_max_s : float, default=150.0

    Returns
    -------
    int

    Examples
    --------
    >>> fp_events(np.arange(0.0, 600.0, 5.0))  # ten minutes of positives
    4
    >>> fp_events(np.array([0.0, 5.0, 100.0, 105.0]))  # two short runs 100 s apart
    1

    Notes
    -----
    Source: Spahr et al., Epilepsia 2025, doi 10.1111/epi.18406, section 2.7 (t_CS,max).
    """
    n, opened_until = 0, -math.inf
    for t in np.sort(np.asarray(times, dtype=np.float64)).tolist():
        if t >= opened_until:
            n += 1
            opened_until = t + t_max_s
    return n


def wald_proportion(k: int, n: int, z: float = Z95) -> list[float] | None:
    """Wald interval of a proportion k / n: p +- z sqrt(p (1 - p) / n), clipped to [0, 1].

    Returns
    -------
    [lo, hi] or None
        None when ``n == 0``.
    """
    if n <= 0:
        return None
    p = k / n
    half = z * math.sqrt(p * (1 - p) / n)
    return [max(0.0, p - half), min(1.0, p + half)]


def wald_rate_24h(count: int, recording_s: float, z: float = Z95) -> list[float] | None:
    """Wald interval of a Poisson rate per 24 h: (count +- z sqrt(count)) / T, T in days,
    the lower bound floored at 0.

    Returns
    -------
    [lo, hi] or None
        None when there is no recording (``recording_s <= 0``).
    """
    if recording_s <= 0:
        return None
    days = recording_s / DAY_S
    half = z * math.sqrt(count) / days
    rate = count / days
    return [max(0.0, rate - half), rate + half]


def paper_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sensitivity, false alarms per 24 h and latency over ``paper_event`` rows.

    Parameters
    ----------
    rows : sequence of dict
        ``paper_event`` rows, one per event, scored with the same parameters.

    Returns
    -------
    dict
        ``events``, ``seizures``, ``tp``, ``fn``, ``fp`` (false-alarm events, all events),
        ``sensitivity`` (TP / (TP + FN)), ``sensitivity_ci95`` ([lo, hi], Wald, clipped to
        [0, 1]), ``recording_h`` (all events), ``far_24h`` (FP per 24 h of all recording),
        ``far_24h_ci95`` ([lo, hi], Wald of a Poisson rate, floored at 0), ``latency_n``,
        ``latency_median_s``, ``latency_min_s``, ``latency_max_s`` (over detected seizures
        with a known start), ``whole_event_intervals`` (seizure events scored without
        ``seizureTimes``), ``t_before_s``, ``t_after_s``, ``t_max_s`` and ``source``.
        Undefined ratios and intervals are None.

    Raises
    ------
    ValueError
        If the rows were scored with different parameters.

    Notes
    -----
    Source: Spahr et al., Epilepsia 2025, doi 10.1111/epi.18406, section 2.7.
    """
    params = {(r.get("t_before_s", T_BEFORE_S), r.get("t_after_s", T_AFTER_S),
               r.get("t_max_s", T_MAX_S)) for r in rows}
    if len(params) > 1:
        raise ValueError(f"paper rows scored with different parameters {sorted(params)}; "
                         "summarise rows of one scoring")
    t_before, t_after, t_max = params.pop() if params else (T_BEFORE_S, T_AFTER_S, T_MAX_S)
    seizures = [r for r in rows if r["label"] == 1]
    tp = sum(1 for r in seizures if r["detected"])
    fn = len(seizures) - tp
    fp = int(sum(r["false_alarms"] for r in rows))
    recording = float(sum(r["recording_s"] for r in rows))
    lat = [r["latency_s"] for r in seizures if r["detected"] and r["latency_s"] is not None]
    return {"events": len(rows), "seizures": len(seizures), "tp": tp, "fn": fn, "fp": fp,
            "sensitivity": tp / len(seizures) if seizures else None,
            "sensitivity_ci95": wald_proportion(tp, len(seizures)),
            "recording_h": recording / 3600.0,
            "far_24h": fp * DAY_S / recording if recording > 0 else None,
            "far_24h_ci95": wald_rate_24h(fp, recording),
            "latency_n": len(lat),
            "latency_median_s": float(np.median(lat)) if lat else None,
            "latency_min_s": float(min(lat)) if lat else None,
            "latency_max_s": float(max(lat)) if lat else None,
            "whole_event_intervals": sum(1 for r in seizures
                                         if r.get("interval_from") == "whole event"),
            "t_before_s": float(t_before), "t_after_s": float(t_after),
            "t_max_s": float(t_max), "source": SOURCE}


def paper_scores(traces: Sequence, settings, model: int = 0, *,
                 t_before_s: float = T_BEFORE_S, t_after_s: float = T_AFTER_S,
                 t_max_s: float = T_MAX_S) -> dict[str, Any]:
    """Score `traces` by the rule of Spahr et al. (2025) with the app's votes.

    Parameters
    ----------
    traces : sequence of osdml.evaluate.events.EventTrace
    settings : osdml.app.engine.AppSettings
        The threshold and movement gate of the votes (the counter settings do not matter
        here).
    model : int, default=0
        Index of the model in the traces' ``p``.
    t_before_s, t_after_s, t_max_s : float
        As ``paper_event``.

    Returns
    -------
    dict
        ``summary`` (``paper_summary``) and ``events`` (``paper_event`` rows, in trace
        order).

    Raises
    ------
    ValueError
        As ``paper_event``.

    Notes
    -----
    Source: Spahr et al., Epilepsia 2025, doi 10.1111/epi.18406, section 2.7.
    """
    rows = [paper_event(t, t.engine(settings, [model], osd=False).votes[0],
                        t_before_s=t_before_s, t_after_s=t_after_s, t_max_s=t_max_s)
            for t in traces]
    return {"summary": paper_summary(rows), "events": rows}


def paper_columns(row: dict[str, Any]) -> dict[str, Any]:
    """The per-event columns of a ``paper_event`` row for ``events.csv`` / ``replay.csv``:
    ``paper_detected``, ``paper_false_alarms``, ``paper_latency_s``."""
    return {"paper_detected": row["detected"], "paper_false_alarms": row["false_alarms"],
            "paper_latency_s": row["latency_s"]}


PAPER_TABLE_COLUMNS = ["TP", "FN", "FP", "sensitivity", "sensitivity 95 % CI", "FAR/24h",
                       "FAR/24h 95 % CI", "recording h", "median latency s"]


def ci_text(ci: Sequence[float] | None) -> str | None:
    """A 95 % interval as text, ``"[0.512, 0.8]"`` (3 significant digits), None when
    undefined."""
    if ci is None:
        return None
    return f"[{ci[0]:.3g}, {ci[1]:.3g}]"


def paper_table(rows: Sequence[tuple[Any, dict[str, Any]]], label: str = "q"
                ) -> tuple[list[str], list[list[Any]]]:
    """A table of paper summaries, one row each (quantiles of an ensemble, folds, models).

    Parameters
    ----------
    rows : sequence of (key, summary)
        The row's first cell (a quantile q, a fold or model name) and its ``paper_summary``.
    label : str, default="q"
        Header of the first column.

    Returns
    -------
    (headers, rows)
        Headers: `label`, TP, FN, FP, sensitivity, its 95 % CI (text), FAR/24h, its 95 % CI
        (text), recording h, median latency s; cells None where undefined.
    """
    out = [[key, s["tp"], s["fn"], s["fp"], s["sensitivity"], ci_text(s["sensitivity_ci95"]),
            s["far_24h"], ci_text(s["far_24h_ci95"]), s["recording_h"],
            s["latency_median_s"]] for key, s in rows]
    return [label, *PAPER_TABLE_COLUMNS], out


def _check_params(t_before_s: float, t_after_s: float, t_max_s: float) -> None:
    for name, v in (("t_before_s", t_before_s), ("t_after_s", t_after_s),
                    ("t_max_s", t_max_s)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} = {v!r}: give a finite number of seconds >= 0")
    if t_max_s <= 0:
        raise ValueError(f"t_max_s = {t_max_s!r}: give a number of seconds > 0")
