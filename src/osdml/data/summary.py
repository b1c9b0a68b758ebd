"""Data summary: what a set of OSDB files holds, what a run would select, and what was skipped.

The numbers behind ``osdml data summary``: events, datapoints, hours and windows by type,
subType, user and data source; events and windows per label after selection; the reader's
skip and repair counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from osdml.config import LabelConfig
from osdml.data.filters import Selection
from osdml.data.streams import EventStreams
from osdml.data.windows import event_window_counts


@dataclass
class GroupCounts:
    """Counts of one group of events (one type, user, ...)."""

    events: int = 0
    seizure_events: int = 0
    datapoints: int = 0
    windows: int = 0
    hours: float = 0.0


@dataclass
class DataSummary:
    """The content of ``osdml data summary`` (``to_dict`` is its ``--json`` form).

    ``by_type``, ``by_subtype``, ``by_user`` and ``by_source`` count every event read (before
    selection); ``by_label`` counts the selected events and their windows; ``excluded``
    counts events left out by selection, by reason; ``report`` is the reader's ``DataReport``;
    ``seizure_time_labels`` is what ``[data.labels]`` does to the selected events' windows
    (``osdml.data.labels.LabelCounts.to_dict()``), None when ``use_seizure_times`` is off.
    """

    files: list[str]
    from_cache: bool
    window_samples: int
    hop_samples: int
    totals: GroupCounts
    by_type: dict[str, GroupCounts]
    by_subtype: dict[str, GroupCounts]
    by_user: dict[str, GroupCounts]
    by_source: dict[str, GroupCounts]
    by_label: dict[int, GroupCounts]
    excluded: dict[str, int]
    events_without_windows: int
    report: dict[str, Any]
    seizure_time_labels: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["by_label"] = {str(k): v for k, v in d["by_label"].items()}
        return d


def summarize(streams: EventStreams, selection: Selection, window_samples: int = 750,
              hop_samples: int = 125, datapoint_s: float = 5.0,
              labels: LabelConfig | None = None) -> DataSummary:
    """Count events, datapoints, hours and windows by group, and windows per label.

    Parameters
    ----------
    streams : EventStreams
    selection : Selection
        Selected events and their labels (``select_events``).
    window_samples, hop_samples : int
        Window geometry for the window counts (750 and 125 by default).
    datapoint_s : float
        Seconds per datapoint, for the hours of recording.
    labels : LabelConfig, optional
        ``[data.labels]``: when ``use_seizure_times`` is on, the selected events' windows are
        labelled by it and ``seizure_time_labels`` counts what it did (``by_label`` still
        counts every window of each event).
    """
    windows = event_window_counts(streams, window_samples, hop_samples)
    groups: dict[str, dict[str, GroupCounts]] = {
        k: defaultdict(GroupCounts) for k in ("type", "subtype", "user", "source")}
    totals = GroupCounts()
    for e, w in zip(streams.events, windows, strict=True):
        subtype = "(none)" if e.subtype is None else e.subtype or '""'
        keys = {"type": e.type or "(none)", "subtype": subtype,
                "user": e.user_id or "(none)", "source": e.source or "(none)"}
        seizure = e.type.strip().lower() == "seizure"
        for g in (*(groups[k][v] for k, v in keys.items()), totals):
            g.events += 1
            g.seizure_events += seizure
            g.datapoints += e.n_datapoints
            g.windows += int(w)
            g.hours += e.n_datapoints * datapoint_s / 3600
    by_label: dict[int, GroupCounts] = defaultdict(GroupCounts)
    for i, label in zip(selection.indices, selection.labels, strict=True):
        g = by_label[int(label)]
        e = streams.events[int(i)]
        g.events += 1
        g.seizure_events += e.type.strip().lower() == "seizure"
        g.datapoints += e.n_datapoints
        g.windows += int(windows[i])
        g.hours += e.n_datapoints * datapoint_s / 3600

    def ordered(d):
        return {k: d[k] for k in sorted(d, key=_natural)}

    return DataSummary(
        files=list(streams.report.files),
        from_cache=streams.from_cache,
        window_samples=window_samples,
        hop_samples=hop_samples,
        totals=totals,
        by_type=ordered(groups["type"]),
        by_subtype=ordered(groups["subtype"]),
        by_user=ordered(groups["user"]),
        by_source=ordered(groups["source"]),
        by_label=dict(sorted(by_label.items())),
        excluded=dict(selection.excluded.most_common()),
        events_without_windows=int(np.sum(windows == 0)),
        report=streams.report.to_dict(),
        seizure_time_labels=_label_counts(streams, selection, window_samples, hop_samples,
                                          labels),
    )


def _label_counts(streams, selection, window_samples, hop_samples, labels) -> dict | None:
    if labels is None or not labels.use_seizure_times:
        return None
    from osdml.data.labels import seizure_time_labels
    from osdml.data.windows import make_windows

    w = make_windows(streams, selection.indices, selection.labels, window_samples, hop_samples)
    return seizure_time_labels(w, labels).counts.to_dict()


def _natural(key: str):
    """Sort user ids numerically when they are numbers."""
    return (0, int(key), "") if key.isdigit() else (1, 0, key)
