"""Event selection and labels.

Labels come from the event type, case-insensitively: "seizure" = 1, "false alarm" and "nda" = 0
by default (``SelectionConfig.labels``). Events of any other type ("Fall", "Unknown", ...) are
excluded and counted by type, never made a silent third class.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from osdml.config import SelectionConfig
from osdml.data.streams import EventInfo, EventStreams


@dataclass
class Selection:
    """The events chosen for a run.

    Attributes
    ----------
    indices : np.ndarray of shape (n_selected,), int64
        Indices into ``streams.events``, in stream order.
    labels : np.ndarray of shape (n_selected,), int64
        The class of each selected event.
    excluded : Counter
        Reason -> number of events left out (the first rule an event failed).
    """

    indices: np.ndarray
    labels: np.ndarray
    excluded: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.indices)

    def labels_for(self, event_indices: np.ndarray) -> np.ndarray:
        """Labels of the given selected events (indices into ``streams.events``).

        Raises
        ------
        KeyError
            If an index is not in the selection.
        """
        lookup = dict(zip(self.indices.tolist(), self.labels.tolist(), strict=True))
        return np.array([lookup[int(i)] for i in event_indices], dtype=np.int64)


def _norm(s: str | None) -> str:
    return "null" if s is None else s.strip().lower()


def _exclusion(e: EventInfo, cfg: SelectionConfig, sets: dict[str, set[str]],
               labels: dict[str, int], need_3d: bool = False) -> str | None:
    """The first rule `e` fails, or None when it is selected."""
    if e.root_id in sets["invalid"] or e.id in sets["invalid"]:
        return "listed as invalid"
    if cfg.include_users and e.user_id not in cfg.include_users:
        return "user not included"
    if e.user_id in cfg.exclude_users:
        return "user excluded"
    t = _norm(e.type)
    if cfg.include_types and t not in sets["include_types"]:
        return "type not included"
    if t in sets["exclude_types"]:
        return "type excluded"
    st = _norm(e.subtype)
    if cfg.include_subtypes and st not in sets["include_subtypes"]:
        return "subType not included"
    if st in sets["exclude_subtypes"]:
        return "subType excluded"
    if cfg.include_sources and (e.source or "") not in cfg.include_sources:
        return "data source not included"
    if (e.source or "") in cfg.exclude_sources:
        return "data source excluded"
    desc = e.desc.lower()
    if cfg.include_desc and not any(s.lower() in desc for s in cfg.include_desc):
        return "description not included"
    if any(s.lower() in desc for s in cfg.exclude_desc):
        return "description excluded"
    if (cfg.require_3d or need_3d) and e.n_datapoints_3d < e.n_datapoints:
        return "no 3-D data"
    if cfg.require_hr and e.n_datapoints_hr < e.n_datapoints:
        return "no heart rate"
    if t not in labels:
        return f"unlabelled type {e.type or '(none)'!r}"
    return None


def select_events(streams: EventStreams, config: SelectionConfig | None = None, *,
                  need_3d: bool = False) -> Selection:
    """Choose and label events by `config`.

    Parameters
    ----------
    streams : EventStreams
    config : SelectionConfig, optional
        Include/exclude filters and the type -> label map (defaults: seizure 1, false alarm
        and nda 0).
    need_3d : bool, default=False
        Leave out events without valid rawData3D in every datapoint (as ``require_3d``,
        counted as "no 3-D data"): three-axis input (``[data.windows] input = "xyz"``).

    Returns
    -------
    Selection
        Selected event indices with labels, and counts of excluded events by reason.
    """
    cfg = config or SelectionConfig()
    labels = {_norm(k): int(v) for k, v in cfg.labels.items()}
    sets = {name: {_norm(x) for x in getattr(cfg, name)} for name in
            ("include_types", "exclude_types", "include_subtypes", "exclude_subtypes")}
    sets["invalid"] = set(cfg.invalid_event_ids)
    keep, keep_labels, excluded = [], [], Counter()
    for i, e in enumerate(streams.events):
        reason = _exclusion(e, cfg, sets, labels, need_3d)
        if reason is None:
            keep.append(i)
            keep_labels.append(labels[_norm(e.type)])
        else:
            excluded[reason] += 1
    return Selection(np.array(keep, dtype=np.int64), np.array(keep_labels, dtype=np.int64),
                     excluded)
