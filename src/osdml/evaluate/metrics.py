"""Window and event metrics.

Window level: every 30 s window is a sample (sensitivity = true-positive rate of the seizure
class, false-positive rate of the non-seizure class, precision, F1, F-beta, Youden index, ROC
AUC). Event level: every alarm figure comes from the app's engine (``osdml.app.engine``, run by
``osdml.evaluate.events.score_trace``): an event is detected when the app's state reached
ALARM; sensitivity is the share of seizure events detected, false alarms per 24 h the alarm
episodes in non-seizure events over their recording time. Undefined ratios (no positives, no
negatives) are ``None``, never a division by zero, so results serialise as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _ratio(a: float, b: float) -> float | None:
    return float(a) / float(b) if b else None


def window_metrics(labels: np.ndarray, p_seizure: np.ndarray, threshold: float = 0.5,
                   beta: float = 2.0) -> dict[str, Any]:
    """Metrics of window decisions ``p_seizure >= threshold`` against `labels`.

    Parameters
    ----------
    labels : np.ndarray of shape (n,), int
        1 for seizure windows, 0 otherwise.
    p_seizure : np.ndarray of shape (n,), float
        p(seizure) of each window (softmax of the logits).
    threshold : float, default=0.5
    beta : float, default=2.0
        Beta of the F-beta score (beta > 1 weighs sensitivity more).

    Returns
    -------
    dict
        ``n``, ``positives``, ``tp``, ``fp``, ``tn``, ``fn``, ``sensitivity``, ``fpr``,
        ``specificity``, ``precision``, ``f1``, ``f_beta``, ``youden``, ``roc_auc`` and
        ``predicted_classes`` (how many distinct decisions occur: 1 means a constant model).
    """
    from sklearn.metrics import confusion_matrix, roc_auc_score

    labels = np.asarray(labels).astype(int)
    p = np.asarray(p_seizure, dtype=float)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, pred, labels=[0, 1]).ravel())
    sens, fpr = _ratio(tp, tp + fn), _ratio(fp, fp + tn)
    prec = _ratio(tp, tp + fp)
    out = {"n": int(len(labels)), "positives": tp + fn, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
           "sensitivity": sens, "fpr": fpr,
           "specificity": None if fpr is None else 1 - fpr,
           "precision": prec,
           "f1": _f_beta(prec, sens, 1.0), "f_beta": _f_beta(prec, sens, beta),
           "youden": None if sens is None or fpr is None else sens - fpr,
           "roc_auc": float(roc_auc_score(labels, p)) if len(set(labels.tolist())) == 2
           else None,
           "predicted_classes": int(len(set(pred.tolist())))}
    return out


def _f_beta(precision: float | None, recall: float | None, beta: float) -> float | None:
    if precision is None or recall is None:
        return None
    b2 = beta * beta
    denom = b2 * precision + recall
    return (1 + b2) * precision * recall / denom if denom else 0.0


# --------------------------------------------------------------------------- app-level results

DAY_S = 86_400.0


def far_per_24h(false_alarms: int, recording_s: float) -> float | None:
    """False alarms per 24 hours of recording: ``false_alarms / (recording_s / 86400)``.

    `recording_s` is the non-seizure recording time (datapoints x 5 s). ``None`` when there is
    no recording, never a division by zero; 0.0 when there were no false alarms.

    Examples
    --------
    >>> far_per_24h(3, 12 * 3600)
    6.0
    """
    return None if recording_s <= 0 else false_alarms * DAY_S / recording_s


def _detection(rows: list[dict], prefix: str = "") -> dict[str, Any]:
    """Event detection of one algorithm from ``score_trace`` rows: ``prefix`` "" for the model
    alone, "osd_", "combined_" or "recorded_"."""
    alarm_key, alarms_key = f"{prefix}alarm", f"{prefix}alarms"
    latency_key = f"{prefix}latency_s"
    seizures = [r for r in rows if r["label"] == 1]
    others = [r for r in rows if r["label"] == 0]
    known_s = [r for r in seizures if r.get(alarm_key) is not None]
    known_o = [r for r in others if r.get(alarm_key) is not None]
    detected = sum(1 for r in known_s if r[alarm_key])
    false_events = sum(1 for r in known_o if r[alarm_key])
    false_alarms = sum(r[alarms_key] or 0 for r in known_o)
    recording = sum(r["recording_s"] for r in known_o)
    lat = [r[latency_key] for r in known_s if r[alarm_key] and r[latency_key] is not None]
    return {"seizure_events": len(known_s), "detected": detected,
            "missed": len(known_s) - detected, "sensitivity": _ratio(detected, len(known_s)),
            "non_seizure_events": len(known_o), "false_alarm_events": false_events,
            "fpr_events": _ratio(false_events, len(known_o)), "false_alarms": false_alarms,
            "non_seizure_hours": recording / 3600, "far_24h": far_per_24h(false_alarms, recording),
            "latency_n": len(lat),
            "latency_mean_s": float(np.mean(lat)) if lat else None,
            "latency_median_s": float(np.median(lat)) if lat else None}


ALGORITHMS = {"model": "", "osd": "osd_", "combined": "combined_", "recorded": "recorded_"}


def event_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Event results by the app's engine: the model alone, the OSD algorithm alone, models and
    OSD combined as the app combines them, and what the phone recorded.

    Parameters
    ----------
    rows : list of dict
        ``osdml.evaluate.events.score_trace`` rows, one per event.

    Returns
    -------
    dict
        ``events``; for each of ``model``, ``osd`` (the built-in algorithm re-run from the
        samples), ``combined`` and ``recorded`` (the app's recorded ``alarmState`` 2; events
        without recorded states are left out): ``seizure_events``, ``detected``, ``missed``,
        ``sensitivity`` (share of seizure events reaching ALARM), ``non_seizure_events``,
        ``false_alarm_events``, ``fpr_events``, ``false_alarms`` (alarm episodes in non-seizure
        events), ``non_seizure_hours``, ``far_24h`` (false alarms per 24 h of non-seizure
        recording), ``latency_mean_s`` / ``latency_median_s`` (first alarm minus
        ``seizureTimes`` start, over detected seizures with a start); ``model`` also
        ``sensitivity_any_window`` (some datapoint voted ALARM) and ``warned``;
        ``tonic_clonic``: the same on tonic-clonic seizures against all non-seizure events;
        ``per_user`` and ``per_subtype``: the numbers per user and per seizure subtype.
        Undefined ratios are ``None``.
    """
    out: dict[str, Any] = {"events": len(rows)}
    out.update({name: _detection(rows, prefix) for name, prefix in ALGORITHMS.items()})
    seizures = [r for r in rows if r["label"] == 1]
    out["model"]["sensitivity_any_window"] = _ratio(sum(r["any_window"] for r in seizures),
                                                    len(seizures))
    out["model"]["warned"] = sum(1 for r in seizures if r["warning"])

    def brief(sub: list[dict]) -> dict[str, Any]:
        m, o, c = (_detection(sub, ALGORITHMS[k]) for k in ("model", "osd", "combined"))
        return {"seizure_events": m["seizure_events"], "detected": m["detected"],
                "sensitivity": m["sensitivity"], "non_seizure_hours": m["non_seizure_hours"],
                "false_alarms": m["false_alarms"], "far_24h": m["far_24h"],
                "osd_sensitivity": o["sensitivity"], "osd_far_24h": o["far_24h"],
                "combined_sensitivity": c["sensitivity"], "combined_far_24h": c["far_24h"]}

    users = sorted({r["user"] for r in rows})
    subtypes = sorted({r["subtype"] or "(none)" for r in seizures})
    out["tonic_clonic"] = brief([r for r in rows if r["label"] == 0 or r["tonic_clonic"]])
    out["per_user"] = {u: brief([r for r in rows if r["user"] == u]) for u in users}
    out["per_subtype"] = {s: brief([r for r in seizures if (r["subtype"] or "(none)") == s])
                          for s in subtypes}
    return out


SWEEP_THRESHOLDS_PCT = tuple(range(5, 100, 5))


def threshold_sweep(traces, settings, thresholds_pct: Sequence[float] = SWEEP_THRESHOLDS_PCT,
                    model: int = 0) -> list[dict[str, Any]]:
    """Event sensitivity against false alarms per 24 h of the model alone, per threshold, by
    the app's engine with the other settings (gate, WarnTime, AlarmTime) of `settings`.

    Parameters
    ----------
    traces : list of osdml.evaluate.events.EventTrace
    settings : osdml.app.engine.AppSettings
    thresholds_pct : sequence of float in [0, 100]

    Returns
    -------
    list of dict
        Per threshold: ``threshold_pct``, ``threshold`` (fraction), ``sensitivity``,
        ``detected``, ``false_alarms``, ``far_24h``, ``decision_sensitivity`` and
        ``decision_fpr`` (share of the datapoints with a full buffer that voted ALARM, seizure
        and non-seizure events).
    """
    from osdml.app.tune import sweep

    rows = sweep(traces, settings, thresholds_pct, [settings.gate_pct], model=model)
    for r in rows:
        r["threshold"] = r["threshold_pct"] / 100.0
    return rows


def fold_statistics(values: dict[str, Sequence[float | None]]) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation over folds of each metric, ignoring undefined values.

    Parameters
    ----------
    values : dict
        Metric name -> one value per fold (``None`` where undefined in that fold).

    Returns
    -------
    dict
        Metric name -> ``mean``, ``std`` (sample standard deviation, ddof=1; 0.0 for one
        value), ``n`` (folds with a value), ``values``. ``mean`` and ``std`` are ``None``
        when no fold has a value.
    """
    out = {}
    for key, vals in values.items():
        ok = [float(v) for v in vals if v is not None and not np.isnan(v)]
        out[key] = {"mean": float(np.mean(ok)) if ok else None,
                    "std": (float(np.std(ok, ddof=1)) if len(ok) > 1 else 0.0) if ok else None,
                    "n": len(ok), "values": list(vals)}
    return out
