"""Events as the app sees them: datapoint by datapoint, scored by the app's own engine.

An ``EventTrace`` holds one event's datapoints in time order with everything the app's engine
(``osdml.app.engine``) needs: each model's output after each datapoint (the app's buffer of the
model's input length, NaN until it is full), the movement measure of each datapoint, and the
built-in OSD algorithm re-run from the raw samples. ``score_trace`` runs the engine three ways
(the model alone, the OSD algorithm alone, and models + OSD as the app combines them) and also
reports what the phone recorded (``alarmState``).

Like the app, the buffer appends whatever datapoints arrive: a gap in the recording does not
reset it (the windows used for training never span a gap; the app's inputs may). Logging copies
and unreadable datapoints were dropped by the reader and are not fed.

Times are seconds relative to the event's ``dataTime`` (the reference of ``seizureTimes``), or
to its first datapoint when the event has no usable ``dataTime``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osdml.app.engine import (
    ALARM,
    STEP_S,
    WARNING,
    AppSettings,
    EngineResult,
    alarm_onsets,
    run_engine,
)
from osdml.app.osd import osd_votes
from osdml.fileio import atomic_write

RECORDED_ALARM = 2  # datapoint alarmState ALARM; 5 (manual alarm) is not the detector's
TONIC_CLONIC = "tonic-clonic"


@dataclass
class EventTrace:
    """One event's datapoints in time order, as the app processed them.

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
    seizure_end_s : float or None
        End of the seizure from ``seizureTimes`` (s, same reference as ``t_s``); used by the
        paper's scoring (``osdml.evaluate.paper``). Default None (not recorded).
    t_s : np.ndarray of shape (n,), float64
        Time of each datapoint (its last sample), s.
    p : np.ndarray of shape (n_models, n), float32
        Each model's p(seizure) after each datapoint (the app's softmax of the logits, or a
        TFLite model's output[0][1]); NaN while the model's buffer is not full.
    models : list of str
        Names of the models in ``p``.
    movement_pct : np.ndarray of shape (n,), float64
        100 x std / mean of each datapoint's raw samples (the movement gate's measure).
    osd : np.ndarray of shape (n, 6), int64
        The OSD algorithm per datapoint: specPower, roiPower (re-run), alarmThresh,
        alarmRatioThresh, recorded specPower, recorded roiPower (``osdml.data.streams``).
    recorded_state : np.ndarray of shape (n,), int8
        The app's recorded ``alarmState`` (0 OK, 1 WARNING, 2 ALARM, 5 manual, -1 missing).
    datapoint : np.ndarray of shape (n,), int64
        Index of each datapoint in the streams' per-datapoint arrays.
    data_time_s : np.ndarray of shape (n,), float64
        POSIX time of each datapoint (for ``decisions.csv``); NaN when unknown.
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
    models: list[str]
    movement_pct: np.ndarray
    osd: np.ndarray
    recorded_state: np.ndarray
    datapoint: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    data_time_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    seizure_end_s: float | None = None

    @property
    def n(self) -> int:
        return len(self.t_s)

    @property
    def tonic_clonic(self) -> bool:
        return (self.subtype or "").strip().lower().replace(" ", "-") == TONIC_CLONIC

    @property
    def osd_votes(self) -> np.ndarray:
        """The OSD algorithm's ALARM vote per datapoint, (n,) bool."""
        o = self.osd
        return osd_votes(o[:, 0], o[:, 1], o[:, 2], o[:, 3]) if len(o) else np.zeros(0, bool)

    def engine(self, settings: AppSettings, models: Sequence[int] | None = None,
               osd: bool | None = None) -> EngineResult:
        """Run the app over this event with `models` (indices into ``p``; default all) and the
        OSD algorithm when `osd` (default ``settings.osd``).

        Raises
        ------
        ValueError
            If no algorithm would be active.
        """
        idx = list(range(len(self.p))) if models is None else list(models)
        s = settings if osd is None else settings.with_(osd=osd)
        return run_engine(self.p[idx], self.movement_pct, self.osd_votes, s,
                          [self.models[i] for i in idx])


def _first_alarm(states: np.ndarray, t_s: np.ndarray) -> tuple[int, float | None]:
    onsets = alarm_onsets(states)
    return len(onsets), (float(t_s[onsets[0]]) if len(onsets) else None)


def score_trace(trace: EventTrace, settings: AppSettings, model: int = 0,
                combined_settings: AppSettings | None = None) -> dict[str, Any]:
    """The event's results by the app's engine with `settings`.

    Parameters
    ----------
    trace : EventTrace
    settings : AppSettings
    model : int, default=0
        The model whose "alone" results are reported (the combined results use every model
        of the trace).
    combined_settings : AppSettings, optional
        Settings of the OSD-alone and combined results (default `settings`): the app has one
        threshold and gate for all its models, while each model alone may be replayed with
        its own tuned values.

    Returns
    -------
    dict
        ``id``, ``user``, ``type``, ``subtype``, ``label``, ``tonic_clonic``, ``recording_s``,
        ``datapoints``; the model alone: ``model``, ``decisions`` (datapoints with a full
        buffer), ``gated`` (of those, how many the movement gate set to p = 0), ``max_p``,
        ``any_window`` (some datapoint voted ALARM), ``warning``, ``alarm`` (state reached),
        ``alarms`` (alarm episodes: entries into ALARM), ``first_alarm_s``, ``latency_s`` (first
        alarm minus seizure start; negative when the alarm came before the recorded start;
        None when unknown or no alarm), ``states`` (state after every datapoint, as digits);
        the OSD algorithm alone: ``osd_alarm``, ``osd_alarms``, ``osd_latency_s``,
        ``osd_states``; models + OSD combined by ``settings.voting`` (the OSD algorithm only
        when ``settings.osd``): ``combined_alarm``, ``combined_alarms``,
        ``combined_latency_s``, ``combined_states``; what the phone recorded (``alarmState``
        2): ``recorded_alarm``, ``recorded_alarms``, ``recorded_latency_s`` (None when the
        event has no recorded states).
    """
    start = trace.seizure_start_s

    def lat(first):
        return None if first is None or start is None else first - start

    alone = trace.engine(settings, [model], osd=False)
    n_alarms, first = _first_alarm(alone.states, trace.t_s)
    p = trace.p[model] if len(trace.p) else np.empty(0, np.float32)
    full = ~np.isnan(p)
    gated = full & (trace.movement_pct < settings.gate_pct)
    common = combined_settings or settings
    osd = trace.engine(common, [], osd=True)
    o_alarms, o_first = _first_alarm(osd.states, trace.t_s)
    comb = trace.engine(common)
    c_alarms, c_first = _first_alarm(comb.states, trace.t_s)
    rec = np.asarray(trace.recorded_state)
    known = rec >= 0
    rec_states = np.where(rec == RECORDED_ALARM, ALARM, 0)
    r_alarms, r_first = _first_alarm(rec_states, trace.t_s)
    return {
        "id": trace.id, "user": trace.user, "type": trace.type, "subtype": trace.subtype,
        "label": int(trace.label), "tonic_clonic": trace.tonic_clonic,
        "recording_s": float(trace.recording_s), "datapoints": trace.n,
        "model": trace.models[model] if trace.models else None,
        "decisions": int(full.sum()), "gated": int(gated.sum()),
        "max_p": float(np.nanmax(p)) if full.any() else None,
        "any_window": bool(alone.votes[0].any()) if len(alone.votes) else False,
        "warning": bool((alone.states >= WARNING).any()), "alarm": bool(n_alarms),
        "alarms": n_alarms, "first_alarm_s": first, "latency_s": lat(first),
        "states": _digits(alone.states),
        "osd_alarm": bool(o_alarms), "osd_alarms": o_alarms, "osd_latency_s": lat(o_first),
        "osd_states": _digits(osd.states),
        "combined_alarm": bool(c_alarms), "combined_alarms": c_alarms,
        "combined_latency_s": lat(c_first), "combined_states": _digits(comb.states),
        "recorded_alarm": bool(r_alarms) if known.any() else None,
        "recorded_alarms": r_alarms if known.any() else None,
        "recorded_latency_s": lat(r_first) if known.any() else None,
    }


def _digits(states: np.ndarray) -> str:
    return "".join(str(int(s)) for s in states)


# --------------------------------------------------------------------------- building traces

def buffer_windows(streams, event_index: int, input_size: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The inputs the app feeds a model of `input_size` samples over one event.

    Every datapoint appends its samples to the model's buffer; once the buffer holds
    `input_size` samples, the model runs on the last `input_size` after every datapoint.

    Parameters
    ----------
    streams : EventStreams
    event_index : int
    input_size : int
        The model's input length in samples (750 for DeepEpiCnn; 125 for cnn_v0.24).

    Returns
    -------
    (datapoint, starts)
        ``datapoint`` (k,) int64: position (0-based, within the event) of each datapoint after
        which the model runs; ``starts`` (k,) int64: the first sample of its input in
        ``streams.samples`` (the input is ``samples[start:start + input_size]``).
    """
    first, stop = streams.event_sample_range(event_index)
    spd = samples_per_datapoint(streams)
    n_dp = (stop - first) // spd
    dps = np.arange(n_dp, dtype=np.int64)
    ends = (dps + 1) * spd
    full = ends >= input_size
    return dps[full], first + ends[full] - input_size


def samples_per_datapoint(streams) -> int:
    return int(round(streams.sample_rate_hz * STEP_S))


def event_trace(streams, event_index: int, label: int, p: np.ndarray,
                models: Sequence[str]) -> EventTrace:
    """The ``EventTrace`` of one event of `streams` with model outputs `p`.

    Parameters
    ----------
    streams : EventStreams
        With per-datapoint arrays (not augmented copies).
    event_index, label : int
    p : np.ndarray of shape (n_models, n_datapoints), float32
        Each model's p after each of the event's datapoints, NaN where it did not run.
    models : sequence of str
    """
    info = streams.events[event_index]
    dps = streams.event_datapoints(event_index)
    times = streams.dp_time_s
    data_time = (np.asarray(times[dps], dtype=np.float64) if times is not None
                 else np.full(len(dps), np.nan))
    t0 = info.time_s
    if t0 is None:
        t0 = float(data_time[0]) if len(dps) and np.isfinite(data_time[0]) else 0.0
    t_s = data_time - t0 if times is not None else np.arange(len(dps), dtype=np.float64) * STEP_S
    n = len(dps)

    def per_dp(arr, fill, dtype, width=None):
        if arr is None:
            return np.full((n, width) if width else n, fill, dtype=dtype)
        return np.asarray(arr[dps], dtype=dtype)

    return EventTrace(
        id=info.id, user=info.user_id, type=info.type, subtype=info.subtype, label=int(label),
        recording_s=float(info.n_datapoints * STEP_S),
        seizure_start_s=None if info.seizure_times is None else float(info.seizure_times[0]),
        t_s=t_s, p=np.asarray(p, dtype=np.float32).reshape(len(models), n),
        models=list(models),
        movement_pct=per_dp(streams.dp_movement_pct, np.inf, np.float64),
        osd=per_dp(streams.dp_osd, -1, np.int64, 6),
        recorded_state=per_dp(streams.dp_alarm_state, -1, np.int8),
        datapoint=dps.astype(np.int64), data_time_s=data_time,
        seizure_end_s=None if info.seizure_times is None else float(info.seizure_times[1]))


def traces_for(streams, events: Sequence[int], labels: Sequence[int], input_size: int,
               p_at: Callable[[np.ndarray], np.ndarray], name: str = "model",
               progress: Callable[[int], None] | None = None) -> list[EventTrace]:
    """One ``EventTrace`` per event for a model of `input_size` samples.

    Parameters
    ----------
    streams : EventStreams
    events, labels : sequence of int
        Event indices and their labels, in the order to report.
    input_size : int
    p_at : callable
        ``p_at(starts)`` -> p (k,) for the inputs ``samples[start:start + input_size]``.
    name : str
        The model's name in the traces.
    progress : callable, optional
        Called with the number of events done.
    """
    out = []
    for k, (ei, label) in enumerate(zip(events, labels, strict=True)):
        dp, starts = buffer_windows(streams, int(ei), input_size)
        n = len(streams.event_datapoints(int(ei)))
        p = np.full(n, np.nan, dtype=np.float32)
        if len(starts):
            p[dp] = p_at(starts)
        out.append(event_trace(streams, int(ei), int(label), p[None, :], [name]))
        if progress:
            progress(k + 1)
    return out


def p_lookup(known_starts: np.ndarray, known_p: np.ndarray,
             compute: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``p_at`` for ``traces_for`` that reuses p already computed for windows at
    `known_starts` (the evaluation windows) and calls ``compute(starts)`` for the others (the
    app's inputs that span a gap)."""
    order = np.argsort(known_starts, kind="stable")
    ks, kp = np.asarray(known_starts)[order], np.asarray(known_p, dtype=np.float32)[order]

    def p_at(starts: np.ndarray) -> np.ndarray:
        starts = np.asarray(starts, dtype=np.int64)
        pos = np.clip(np.searchsorted(ks, starts), 0, max(len(ks) - 1, 0))
        hit = (ks[pos] == starts) if len(ks) else np.zeros(len(starts), bool)
        out = np.where(hit, kp[pos] if len(ks) else 0, np.nan).astype(np.float32)
        if (~hit).any():
            out[~hit] = compute(starts[~hit])
        return out
    return p_at


def event_acceleration(streams, ei: int) -> tuple[np.ndarray, np.ndarray]:
    """Acceleration of event `ei` for plotting: (t_s, g), float64 and float32, NaN between
    segments so a plot does not draw across a gap. Times as in ``EventTrace``."""
    info = streams.events[ei]
    spd = samples_per_datapoint(streams)
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


EVENT_COLUMNS = ("part", "id", "user", "type", "subtype", "label", "tonic_clonic",
                 "recording_s", "datapoints", "decisions", "gated", "max_p", "any_window",
                 "warning", "alarm", "alarms", "first_alarm_s", "latency_s", "osd_alarm",
                 "osd_alarms", "osd_latency_s", "combined_alarm", "combined_alarms",
                 "combined_latency_s", "recorded_alarm", "recorded_alarms",
                 "recorded_latency_s", "states", "osd_states", "combined_states",
                 "paper_detected", "paper_false_alarms", "paper_latency_s")


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
