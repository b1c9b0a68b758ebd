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
