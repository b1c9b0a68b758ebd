"""Window and event metrics.

Window level: every 30 s window is a sample (sensitivity = true-positive rate of the seizure
class, false-positive rate of the non-seizure class, precision, F1, F-beta, Youden index, ROC
AUC). Event level: an event is flagged by the any-window rule (some window reached the
threshold) or by the app's alarm rule (the WARNING / ALARM state machine of ``osdml.alarm``
reached ALARM); sensitivity is the share of seizure events flagged, the false-positive rate the
share of non-seizure events flagged. Undefined ratios (no positives, no negatives) are ``None``,
never a division by zero, so results serialise as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from osdml.alarm import ALARM, alarm_states


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


def event_metrics(labels: Sequence[int], p_per_event: Sequence[Sequence[np.ndarray]],
                  threshold: float = 0.5) -> dict[str, Any]:
    """Event-level sensitivity and false-positive rate by the any-window and the alarm rule.

    Parameters
    ----------
    labels : sequence of int, one per event
    p_per_event : sequence, one per event, of sequences of 1-D arrays
        p(seizure) of each window in time order, one array per contiguous segment (one window
        per datapoint, as the app infers once its 30 s buffer is full). The alarm state machine
        restarts at each segment.
    threshold : float, default=0.5

    Returns
    -------
    dict
        ``events``, ``seizure_events``, then for each rule ``any_window`` and ``alarm``:
        ``sensitivity``, ``fpr``, ``detected`` (seizure events flagged) and ``false_alarms``
        (non-seizure events flagged).
    """
    labels = [int(v) for v in labels]
    flags = {"any_window": [], "alarm": []}
    for segments in p_per_event:
        any_pos = alarm = False
        for p in segments:
            positive = np.asarray(p) >= threshold
            any_pos |= bool(positive.any())
            alarm |= ALARM in alarm_states(positive.tolist())
        flags["any_window"].append(any_pos)
        flags["alarm"].append(alarm)
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    out: dict[str, Any] = {"events": len(labels), "seizure_events": n_pos}
    for rule, f in flags.items():
        detected = sum(1 for y, v in zip(labels, f, strict=True) if y == 1 and v)
        false_alarms = sum(1 for y, v in zip(labels, f, strict=True) if y == 0 and v)
        out[rule] = {"sensitivity": _ratio(detected, n_pos), "fpr": _ratio(false_alarms, n_neg),
                     "detected": detected, "false_alarms": false_alarms}
    return out


def windows_by_event(event: np.ndarray, starts: np.ndarray, labels: np.ndarray,
                     p_seizure: np.ndarray, hop_samples: int = 125):
    """Group window probabilities into events and contiguous segments, in time order.

    Parameters
    ----------
    event, starts, labels : np.ndarray of shape (n,)
        ``Windows.event``, ``Windows.starts`` and ``Windows.labels`` (windows of one event are
        consecutive, segment after segment).
    p_seizure : np.ndarray of shape (n,)
    hop_samples : int
        A window not starting one hop after the previous one begins a new segment.

    Returns
    -------
    (event_ids, event_labels, segments)
        Event indices, their labels, and per event a list of p arrays, one per segment (the
        input of ``event_metrics``).
    """
    if len(event) == 0:
        return [], [], []
    new_event = np.r_[True, event[1:] != event[:-1]]
    new_segment = new_event | np.r_[True, starts[1:] != starts[:-1] + hop_samples]
    ids, ev_labels, segments = [], [], []
    seg_starts = np.flatnonzero(new_segment).tolist() + [len(event)]
    for a, b in zip(seg_starts[:-1], seg_starts[1:], strict=True):
        if new_event[a]:
            ids.append(int(event[a]))
            ev_labels.append(int(labels[a]))
            segments.append([])
        segments[-1].append(np.asarray(p_seizure[a:b]))
    return ids, ev_labels, segments


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


def _detection(rows: list[dict], alarm_key: str, alarms_key: str, latency_key: str
               ) -> dict[str, Any]:
    seizures = [r for r in rows if r["label"] == 1]
    others = [r for r in rows if r["label"] == 0]
    known_s = [r for r in seizures if r[alarm_key] is not None]
    known_o = [r for r in others if r[alarm_key] is not None]
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


def event_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Event results of the model (app alarm rule) and of the built-in algorithm.

    Parameters
    ----------
    rows : list of dict
        ``osdml.evaluate.events.score_trace`` rows, one per event.

    Returns
    -------
    dict
        ``events``; ``model``: ``seizure_events``, ``detected``, ``missed``, ``sensitivity``
        (share of seizure events reaching ALARM), ``sensitivity_any_window``, ``warned``,
        ``non_seizure_events``, ``false_alarm_events``, ``fpr_events``, ``false_alarms``
        (alarm episodes in non-seizure events), ``non_seizure_hours``, ``far_24h`` (false
        alarms per 24 h of non-seizure recording), ``latency_mean_s`` / ``latency_median_s``
        (first alarm minus ``seizureTimes`` start, over detected seizures with a start);
        ``osd``: the same for the OpenSeizureDetector algorithm (recorded ``alarmState`` 2;
        events without recorded states are left out); ``tonic_clonic``: model and OSD
        sensitivity on tonic-clonic seizures; ``per_user`` and ``per_subtype``: the same
        numbers per user and per seizure subtype. Undefined ratios are ``None``.
    """
    model = _detection(rows, "alarm", "alarms", "latency_s")
    seizures = [r for r in rows if r["label"] == 1]
    model["sensitivity_any_window"] = _ratio(sum(r["any_window"] for r in seizures),
                                             len(seizures))
    model["warned"] = sum(1 for r in seizures if r["warning"])
    osd = _detection(rows, "osd_alarm", "osd_alarms", "osd_latency_s")

    def brief(sub: list[dict]) -> dict[str, Any]:
        m, o = _detection(sub, "alarm", "alarms", "latency_s"), \
            _detection(sub, "osd_alarm", "osd_alarms", "osd_latency_s")
        return {"seizure_events": m["seizure_events"], "detected": m["detected"],
                "sensitivity": m["sensitivity"], "non_seizure_hours": m["non_seizure_hours"],
                "false_alarms": m["false_alarms"], "far_24h": m["far_24h"],
                "osd_sensitivity": o["sensitivity"], "osd_far_24h": o["far_24h"]}

    users = sorted({r["user"] for r in rows})
    subtypes = sorted({r["subtype"] or "(none)" for r in seizures})
    return {"events": len(rows), "model": model, "osd": osd,
            "tonic_clonic": brief([r for r in rows if r["label"] == 0 or r["tonic_clonic"]]),
            "per_user": {u: brief([r for r in rows if r["user"] == u]) for u in users},
            "per_subtype": {s: brief([r for r in seizures if (r["subtype"] or "(none)") == s])
                            for s in subtypes}}


SWEEP_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 1.0, 0.05))


def threshold_sweep(traces, thresholds: Sequence[float] = SWEEP_THRESHOLDS
                    ) -> list[dict[str, Any]]:
    """Event sensitivity (alarm rule) against false alarms per 24 h, per threshold.

    Parameters
    ----------
    traces : list of osdml.evaluate.events.EventTrace
    thresholds : sequence of float in [0, 1]

    Returns
    -------
    list of dict
        Per threshold: ``threshold``, ``sensitivity``, ``detected``, ``false_alarms``,
        ``far_24h``, ``window_sensitivity`` and ``window_fpr`` (over every decision).
    """
    from osdml.evaluate.events import alarm_onsets

    seizures = [t for t in traces if t.label == 1]
    others = [t for t in traces if t.label == 0]
    recording = sum(t.recording_s for t in others)
    p_pos = np.concatenate([t.p for t in seizures]) if seizures else np.empty(0)
    p_neg = np.concatenate([t.p for t in others]) if others else np.empty(0)
    out = []
    for th in thresholds:
        detected = sum(1 for t in seizures if (t.states(th) == ALARM).any())
        false_alarms = sum(len(alarm_onsets(t.states(th), t.segment)) for t in others)
        out.append({"threshold": float(th), "sensitivity": _ratio(detected, len(seizures)),
                    "detected": detected, "false_alarms": false_alarms,
                    "far_24h": far_per_24h(false_alarms, recording),
                    "window_sensitivity": _ratio(int((p_pos >= th).sum()), len(p_pos)),
                    "window_fpr": _ratio(int((p_neg >= th).sum()), len(p_neg))})
    return out


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
