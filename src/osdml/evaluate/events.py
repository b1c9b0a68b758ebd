"""Events as the app sees them: one p(seizure) per datapoint, the alarm states, the baseline.

An ``EventTrace`` holds, for one event, the model's p(seizure) after each datapoint once the
30 s buffer is full (one inference per 5 s datapoint, as the OpenSeizureDetector app runs it),
the time of each decision, and the OpenSeizureDetector built-in algorithm's recorded
``alarmState`` per datapoint (the baseline). ``score_trace`` turns a trace into one row of
event results at a threshold: alarm and warning reached, alarm episodes, detection latency.

Times are seconds relative to the event's ``dataTime`` (the reference of ``seizureTimes``), or
to its first datapoint when the event has no usable ``dataTime``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osdml.alarm import ALARM, STEP_S, WARNING, alarm_states
from osdml.fileio import atomic_write

OSD_ALARM = 2  # datapoint alarmState of the built-in algorithm; 5 (manual alarm) is ignored
TONIC_CLONIC = "tonic-clonic"


@dataclass
class EventTrace:
    """One event's decisions in time order.

    Attributes
    ----------
    id, user, type : str
        Event id, user id and event type as written in the file.
    subtype : str or None
    label : int
        1 seizure, 0 non-seizure (from the selection's label map).
    recording_s : float
        Recording time of the event: datapoints kept x 5 s.
    seizure_start_s : float or None
        Start of the seizure from ``seizureTimes`` (s, same reference as ``t_s``).
    t_s : np.ndarray of shape (n,), float64
        Time of each decision: the time of the last datapoint in the window, in s.
    p : np.ndarray of shape (n,), float64
        p(seizure) of each decision (softmax of the logits).
    segment : np.ndarray of shape (n,), int64
        Contiguous-recording segment of each decision; the alarm counters restart when it
        changes (a gap in the recording). Replay keeps one segment per event, like the app.
    osd_t_s, osd_state : np.ndarray of shape (m,)
        Per datapoint: time (s) and the recorded ``alarmState`` of the built-in algorithm
        (0 OK, 1 WARNING, 2 ALARM, 5 manual, -1 missing).
    """

    id: str
    user: str
    type: str
    subtype: str | None
    label: int
    recording_s: float
    seizure_start_s: float | None
    t_s: np.ndarray
    p: np.ndarray
    segment: np.ndarray
    osd_t_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    osd_state: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int8))

    @property
    def tonic_clonic(self) -> bool:
        return (self.subtype or "").strip().lower().replace(" ", "-") == TONIC_CLONIC

    def states(self, threshold: float) -> np.ndarray:
        """App alarm state after each decision (0 OK, 1 WARNING, 2 ALARM), int8 of shape (n,);
        the counters restart at each new segment."""
        out = np.zeros(len(self.p), dtype=np.int8)
        if not len(self.p):
            return out
        cuts = np.flatnonzero(np.r_[True, self.segment[1:] != self.segment[:-1]]).tolist()
        for a, b in zip(cuts, cuts[1:] + [len(self.p)], strict=True):
            out[a:b] = alarm_states((self.p[a:b] >= threshold).tolist())
        return out


def alarm_onsets(states: np.ndarray, segment: np.ndarray | None = None,
                 alarm: int = ALARM) -> np.ndarray:
    """Indices where the state enters `alarm` (from another state, or at a new segment)."""
    states = np.asarray(states)
    if not len(states):
        return np.empty(0, dtype=np.int64)
    new = np.r_[True, states[1:] != states[:-1]]
    if segment is not None and len(segment):
        new |= np.r_[True, segment[1:] != segment[:-1]]
    return np.flatnonzero((states == alarm) & new)


def score_trace(trace: EventTrace, threshold: float) -> dict[str, Any]:
    """The event's results at `threshold`, for the model and the built-in algorithm.

    Returns
    -------
    dict
        ``id``, ``user``, ``type``, ``subtype``, ``label``, ``tonic_clonic``, ``recording_s``,
        ``decisions``, ``max_p``, ``any_window`` (some p >= threshold), ``warning`` and
        ``alarm`` (state reached), ``alarms`` (alarm episodes: entries into ALARM),
        ``first_alarm_s``, ``latency_s`` (first alarm minus seizure start; negative when the
        alarm came before the recorded start; None when unknown or no alarm), ``states``
        (the state history as digits), and the baseline's ``osd_alarm``, ``osd_alarms``,
        ``osd_latency_s`` (None when the event has no recorded alarm states).
    """
    states = trace.states(threshold)
    onsets = alarm_onsets(states, trace.segment)
    first = float(trace.t_s[onsets[0]]) if len(onsets) else None
    osd = np.asarray(trace.osd_state)
    known = osd >= 0
    osd_on = alarm_onsets(np.where(osd == OSD_ALARM, OSD_ALARM, 0), alarm=OSD_ALARM)
    osd_first = float(trace.osd_t_s[osd_on[0]]) if len(osd_on) else None
    start = trace.seizure_start_s
    return {
        "id": trace.id, "user": trace.user, "type": trace.type, "subtype": trace.subtype,
        "label": int(trace.label), "tonic_clonic": trace.tonic_clonic,
        "recording_s": float(trace.recording_s), "decisions": int(len(trace.p)),
        "max_p": float(trace.p.max()) if len(trace.p) else None,
        "any_window": bool((trace.p >= threshold).any()),
        "warning": bool((states >= WARNING).any()), "alarm": bool(len(onsets)),
        "alarms": int(len(onsets)), "first_alarm_s": first,
        "latency_s": None if first is None or start is None else first - start,
        "states": "".join(str(int(s)) for s in states),
        "osd_alarm": bool(len(osd_on)) if known.any() else None,
        "osd_alarms": int(len(osd_on)) if known.any() else None,
        "osd_latency_s": None if osd_first is None or start is None else osd_first - start,
    }


def traces_from_windows(windows, p_seizure: np.ndarray, labels_by_event: dict[int, int],
                        samples_per_datapoint: int = 125, hop_samples: int = 125
                        ) -> list[EventTrace]:
    """Group window probabilities into one ``EventTrace`` per event.

    Parameters
    ----------
    windows : osdml.data.windows.Windows
        Windows in event order, then time order (as ``make_windows`` builds them); their
        streams must carry per-datapoint times (not augmented copies).
    p_seizure : np.ndarray of shape (len(windows),)
    labels_by_event : dict
        Event index -> label, for every event to report (events without a window get an
        empty trace: they were too short to decide on).
    samples_per_datapoint, hop_samples : int

    Returns
    -------
    list of EventTrace
        In the order of `labels_by_event`.
    """
    streams = windows.streams
    spd = samples_per_datapoint
    end_dp = (np.asarray(windows.starts) + windows.window_samples) // spd - 1
    by_event: dict[int, list[int]] = {}
    for i, e in enumerate(np.asarray(windows.event).tolist()):
        by_event.setdefault(e, []).append(i)
    out = []
    for ei, label in labels_by_event.items():
        idx = np.asarray(by_event.get(ei, []), dtype=np.int64)
        starts = np.asarray(windows.starts)[idx]
        segment = np.cumsum(np.r_[0, starts[1:] != starts[:-1] + hop_samples]) if len(idx) \
            else np.empty(0, dtype=np.int64)
        out.append(trace_of(streams, ei, label, end_dp[idx], np.asarray(p_seizure)[idx],
                          segment, spd))
    return out


def trace_of(streams, ei: int, label: int, dp_index: np.ndarray, p: np.ndarray,
             segment: np.ndarray, spd: int) -> EventTrace:
    """The ``EventTrace`` of event `ei` of `streams`: decisions `p` (n,) taken after the
    datapoints `dp_index` (n,) (indices into the streams' per-datapoint arrays), in
    `segment` (n,); `spd` samples per datapoint."""
    info = streams.events[ei]
    rows = streams.segment_rows(ei)
    dps = np.concatenate([np.arange(s // spd, (s + n) // spd) for s, n, _ in rows]) \
        if len(rows) else np.empty(0, dtype=np.int64)
    times = streams.dp_time_s
    t0 = info.time_s
    if t0 is None:
        t0 = float(times[dps[0]]) if times is not None and len(dps) else 0.0
    t_dp = (np.asarray(times[dps], dtype=np.float64) - t0) if times is not None \
        else dps.astype(np.float64) * STEP_S
    t_of = dict(zip(dps.tolist(), t_dp.tolist(), strict=True))
    state = (np.asarray(streams.dp_alarm_state[dps], dtype=np.int8)
             if streams.dp_alarm_state is not None else np.full(len(dps), -1, np.int8))
    return EventTrace(
        id=info.id, user=info.user_id, type=info.type, subtype=info.subtype, label=int(label),
        recording_s=float(info.n_datapoints * STEP_S),
        seizure_start_s=None if info.seizure_times is None else float(info.seizure_times[0]),
        t_s=np.array([t_of[int(d)] for d in dp_index], dtype=np.float64),
        p=np.asarray(p, dtype=np.float64), segment=np.asarray(segment, dtype=np.int64),
        osd_t_s=t_dp, osd_state=state)


def event_acceleration(streams, ei: int, samples_per_datapoint: int = 125
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Acceleration of event `ei` for plotting: (t_s, g), float64 and float32, NaN between
    segments so a plot does not draw across a gap. Times as in ``EventTrace``."""
    info = streams.events[ei]
    spd = samples_per_datapoint
    rate = streams.sample_rate_hz
    t_parts, g_parts = [], []
    t0 = info.time_s
    for s, n, _ in streams.segment_rows(ei):
        if streams.dp_time_s is not None:
            if t0 is None:
                t0 = float(streams.dp_time_s[s // spd])
            last = np.asarray(streams.dp_time_s[s // spd:(s + n) // spd], dtype=np.float64) - t0
            # sample k of a datapoint lies (spd - 1 - k) / rate before the datapoint's time
            t = (last[:, None] - (spd - 1 - np.arange(spd)) / rate).ravel()
        else:
            t = (s + np.arange(n)) / rate
        t_parts += [t, np.array([np.nan])]
        g_parts += [np.asarray(streams.samples[s:s + n], dtype=np.float32),
                    np.array([np.nan], dtype=np.float32)]
    if not t_parts:
        return np.empty(0), np.empty(0, dtype=np.float32)
    return np.concatenate(t_parts[:-1]), np.concatenate(g_parts[:-1])


def labels_of(selection, indices: Sequence[int]) -> dict[int, int]:
    """Event index -> label for `indices` of a ``Selection``."""
    return dict(zip((int(i) for i in indices), selection.labels_for(indices).tolist(),
                    strict=True))


EVENT_COLUMNS = ("part", "id", "user", "type", "subtype", "label", "tonic_clonic",
                 "recording_s", "decisions", "max_p", "any_window", "warning", "alarm",
                 "alarms", "first_alarm_s", "latency_s", "osd_alarm", "osd_alarms",
                 "osd_latency_s", "states")


def write_events_csv(path: Path, rows: list[dict[str, Any]],
                     columns: Sequence[str] = EVENT_COLUMNS) -> Path:
    """One row per event (``score_trace`` rows), written atomically; None is left empty."""
    import csv

    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return Path(path)
