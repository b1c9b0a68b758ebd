"""Seizure-time labels: the windows of a seizure event labelled by the event's ``seizureTimes``.

OSDB seizure events may record when the seizure happened: ``seizureTimes`` = [start, end],
seconds relative to the event's ``dataTime``. By default every window of a seizure event is a
seizure window (the whole-event label). With ``[data.labels] use_seizure_times`` a window of a
seizure event that has ``seizureTimes`` is a seizure window only when it overlaps the seizure
widened by ``margin_s`` on both sides, [start - margin_s, end + margin_s]; a window wholly
outside is left out (``outside = "exclude"``) or labelled non-seizure (``"negative"``). Seizure
events without ``seizureTimes`` keep the whole-event label; windows of other events are never
touched. Only window labels change: the app's engine still scores whole events.

Times are those of ``osdml.evaluate.events`` (``event_trace``, ``event_acceleration``):
seconds relative to the event's ``dataTime``, or to its first datapoint when the event has no
usable ``dataTime``. A datapoint's ``dataTime`` is the time of its last sample and sample k of
a datapoint of ``spd`` samples lies ``(spd - 1 - k) / rate`` s before it. A sample stands for
the ``1 / rate`` s that end at its time, so a window of 750 samples covers exactly 30 s, from
``t_first - 1 / rate`` to ``t_last``. A window overlaps [lo, hi] when the two share more than an
instant, ``t_last > lo`` and ``t_first - 1 / rate < hi`` (within ``EDGE_TOL_S`` for rounding):
a window that ends exactly at ``lo`` is outside, one whose last sample lies ``1 / rate`` after
``lo`` overlaps by one sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np

from osdml.config import LabelConfig
from osdml.data.streams import DATAPOINT_S, EventStreams
from osdml.data.windows import Windows

SEIZURE = 1
EDGE_TOL_S = 1e-3  # s: sample times are exact to well below this; a sample lasts 40 ms


@dataclass
class LabelCounts:
    """What seizure-time labelling did to one set of windows.

    Attributes
    ----------
    events_by_seizure_times : int
        Seizure events (with windows) labelled by their ``seizureTimes``.
    events_whole_event : int
        Seizure events that kept the whole-event label: no ``seizureTimes``, or no time for
        their samples (an augmented copy whose time axis was changed).
    events_no_window_in_seizure : int
        Of ``events_by_seizure_times``, those none of whose windows overlaps the widened
        seizure (``seizureTimes`` outside the recording?): they add no seizure window.
    windows_in_seizure : int
        Windows of those events that overlap the widened seizure (kept as seizure windows).
    windows_excluded, windows_negative : int
        Windows of those events wholly outside it: left out (``outside = "exclude"``) or
        labelled 0 (``"negative"``).
    """

    events_by_seizure_times: int = 0
    events_whole_event: int = 0
    events_no_window_in_seizure: int = 0
    windows_in_seizure: int = 0
    windows_excluded: int = 0
    windows_negative: int = 0

    def __add__(self, other: LabelCounts) -> LabelCounts:
        return LabelCounts(*(getattr(self, f.name) + getattr(other, f.name)
                             for f in fields(self)))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class LabelledWindows(NamedTuple):
    """``seizure_time_labels``'s result: the relabelled windows and what was done."""

    windows: Windows
    counts: LabelCounts


def seizure_time_labels(
    windows: Windows,
    config: LabelConfig,
    *,
    source: EventStreams | None = None,
    source_starts: np.ndarray | None = None,
    source_scales: np.ndarray | None = None,
) -> LabelledWindows:
    """Label the windows of seizure events by the events' ``seizureTimes`` (module docstring).

    Parameters
    ----------
    windows : Windows
        Windows with their events' labels (``make_windows``); label 1 marks a seizure event.
    config : LabelConfig
        ``[data.labels]``: ``use_seizure_times`` (off: `windows` come back unchanged),
        ``margin_s`` (s, >= 0) and ``outside`` (``"exclude"`` or ``"negative"``).
    source : EventStreams, optional
        For windows of augmented copies (``osdml.data.augment``), whose streams carry no
        datapoint times: the streams the copies were made from. Each copy's samples take the
        times of the source samples they were copied from, and its ``seizureTimes`` are its
        source event's, so a copy is labelled as its source. A copy whose segments have no
        source sample (``source_starts`` -1: an augmentation changed the time axis) keeps the
        whole-event label.
    source_starts : np.ndarray of shape (len(windows.streams.segments),), int64, optional
        With `source`: the sample of `source` each segment's first sample was copied from
        (``Augmented.source_starts``).
    source_scales : np.ndarray of shape (len(windows.streams.segments),), float, optional
        With `source`: per segment 1, or the factor by which resampling stretched its source's
        time axis (``Augmented.source_scales``; default all 1). A stretched segment's first
        sample lies at its source sample's time x factor (relative to the reference), then
        1 / rate per sample, and its copy's ``seizureTimes`` were scaled alike.

    Returns
    -------
    LabelledWindows
        ``windows``: the same streams and order, with windows wholly outside the seizure
        removed (``exclude``) or labelled 0 (``negative``); ``counts``: a ``LabelCounts``.

    Raises
    ------
    ValueError
        If `source` is given without `source_starts`, or `source_starts` does not have one
        entry per segment.
    """
    if not config.use_seizure_times:
        return LabelledWindows(windows, LabelCounts())
    seizure = np.flatnonzero(np.asarray(windows.labels) == SEIZURE)
    if not len(seizure):
        return LabelledWindows(windows, LabelCounts())
    first, last = window_times(windows, seizure, source=source, source_starts=source_starts,
                               source_scales=source_scales)
    infos = windows.streams.events
    events = np.asarray(windows.event, dtype=np.int64)[seizure]
    unique, which = np.unique(events, return_inverse=True)
    st = [infos[int(e)].seizure_times for e in unique]
    has = np.array([s is not None for s in st], dtype=bool)
    lo = np.array([s[0] - config.margin_s if s is not None else np.nan for s in st])
    hi = np.array([s[1] + config.margin_s if s is not None else np.nan for s in st])
    timed = has[which] & np.isfinite(first) & np.isfinite(last)
    with np.errstate(invalid="ignore"):
        inside = (last - lo[which] > EDGE_TOL_S) & (hi[which] - first > EDGE_TOL_S)
    out = seizure[timed & ~inside]
    timed_events = np.zeros(len(unique), dtype=bool)
    timed_events[which[timed]] = True
    with_inside = np.zeros(len(unique), dtype=bool)
    with_inside[which[timed & inside]] = True
    counts = LabelCounts(
        events_by_seizure_times=int(timed_events.sum()),
        events_whole_event=int((~timed_events).sum()),
        events_no_window_in_seizure=int((timed_events & ~with_inside).sum()),
        windows_in_seizure=int((timed & inside).sum()),
        windows_excluded=len(out) if config.outside == "exclude" else 0,
        windows_negative=len(out) if config.outside == "negative" else 0,
    )
    if not len(out):
        return LabelledWindows(windows, counts)
    if config.outside == "negative":
        labels = np.array(windows.labels, dtype=np.int64, copy=True)
        labels[out] = 0
        return LabelledWindows(Windows(windows.streams, windows.starts, windows.event, labels,
                                       windows.window_samples, windows.input), counts)
    keep = np.ones(len(windows), dtype=bool)
    keep[out] = False
    return LabelledWindows(Windows(windows.streams, windows.starts[keep], windows.event[keep],
                                   windows.labels[keep], windows.window_samples,
                                   windows.input), counts)


def window_times(
    windows: Windows,
    indices: np.ndarray | None = None,
    *,
    source: EventStreams | None = None,
    source_starts: np.ndarray | None = None,
    source_scales: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of the time each window covers, relative to its event's ``dataTime``.

    Parameters
    ----------
    windows : Windows
    indices : np.ndarray of int, optional
        The windows wanted (default all).
    source, source_starts, source_scales : optional
        For windows of augmented copies: as in ``seizure_time_labels``.

    Returns
    -------
    (start_s, end_s) : np.ndarray of shape (n,), float64
        s relative to the event's ``dataTime`` (or its first datapoint when it has none):
        ``end_s`` is the time of the window's last sample, ``start_s`` that of its first sample
        minus one sample period (so ``end_s - start_s`` is 30 s for 750 samples at 25 Hz, give
        or take the datapoints' jitter). NaN where the samples have no times (streams without
        datapoint times, copies whose time axis was changed).

    Raises
    ------
    ValueError
        As ``seizure_time_labels``.
    """
    idx = (np.arange(len(windows), dtype=np.int64) if indices is None
           else np.asarray(indices, dtype=np.int64))
    starts = np.asarray(windows.starts, dtype=np.int64)[idx]
    events = np.asarray(windows.event, dtype=np.int64)[idx]
    start_s = np.full(len(idx), np.nan)
    end_s = np.full(len(idx), np.nan)
    own = windows.streams
    scale, offset = np.ones(len(idx)), np.zeros(len(idx), dtype=np.int64)
    if source is None:
        timed, g, ev = own, starts, events
    else:
        if source_starts is None:
            raise ValueError("windows of augmented copies need source_starts with their source")
        source_starts = np.asarray(source_starts, dtype=np.int64)
        if len(source_starts) != len(own.segments):
            raise ValueError(f"source_starts has {len(source_starts)} entries for "
                             f"{len(own.segments)} segments")
        seg_first = own.segments[:, 0]
        seg = np.searchsorted(seg_first, starts, side="right") - 1
        g = source_starts[seg] + (starts - seg_first[seg])
        if source_scales is not None:  # resampled segments: timed from their first sample
            source_scales = np.asarray(source_scales, dtype=np.float64)
            if len(source_scales) != len(own.segments):
                raise ValueError(f"source_scales has {len(source_scales)} entries for "
                                 f"{len(own.segments)} segments")
            scale = source_scales[seg]
            offset = np.where(scale != 1.0, starts - seg_first[seg], 0)
            g = np.where(scale != 1.0, source_starts[seg], g)
        index = source.index_of()
        root = np.array([index.get(e.root_id, -1) for e in own.events], dtype=np.int64)
        ev = root[events] if len(root) else events
        known = (source_starts[seg] >= 0) & (ev >= 0)
        timed, g, ev, idx_known = source, g[known], ev[known], np.flatnonzero(known)
        scale, offset = scale[known], offset[known]
    if timed.dp_time_s is None or not len(g):
        return start_s, end_s
    rate = float(timed.sample_rate_hz)
    spd = int(round(rate * DATAPOINT_S))
    dp_time = timed.dp_time_s
    stop = np.where(scale != 1.0, g, g + windows.window_samples - 1)
    ok = (g >= 0) & (stop < len(dp_time) * spd)
    uniq, inverse = np.unique(ev[ok], return_inverse=True)
    t0 = np.array([_reference_s(timed, int(e), spd) for e in uniq], dtype=np.float64)[inverse]
    g_ok, stop_ok = g[ok], stop[ok]
    t_first = np.asarray(dp_time[g_ok // spd], dtype=np.float64) - (spd - 1 - g_ok % spd) / rate
    t_last = (np.asarray(dp_time[stop_ok // spd], dtype=np.float64)
              - (spd - 1 - stop_ok % spd) / rate)
    where = np.flatnonzero(ok) if source is None else idx_known[ok]
    sc, off = scale[ok], offset[ok]
    stretched = sc != 1.0  # its own axis: source time x scale about t0, then 1 / rate a sample
    first_rel = sc * (t_first - t0) + off / rate
    start_s[where] = np.where(stretched, first_rel - 1.0 / rate, t_first - 1.0 / rate - t0)
    end_s[where] = np.where(stretched, first_rel + (windows.window_samples - 1) / rate,
                            t_last - t0)
    return start_s, end_s


def _reference_s(streams: EventStreams, event_index: int, spd: int) -> float:
    """The event's time reference (POSIX s): its ``dataTime``, else its first datapoint's time
    (as ``osdml.evaluate.events.event_trace``), NaN when neither is known."""
    t0 = streams.events[event_index].time_s
    if t0 is not None:
        return float(t0)
    rows = streams.segment_rows(event_index)
    if not len(rows) or streams.dp_time_s is None:
        return float("nan")
    t = float(streams.dp_time_s[int(rows[0, 0]) // spd])
    return t if np.isfinite(t) else float("nan")
