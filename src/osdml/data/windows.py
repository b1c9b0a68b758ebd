"""Model input windows over event sample streams.

A window is ``(event, start)``: 750 consecutive samples (30 s at 25 Hz) of one segment, read as
a view of ``EventStreams.samples`` and shaped channel-first ``(1, 750)``, the layout the app
feeds the model (docs/data.md); with ``input="xyz"`` (research runs, ``[data.windows] input``)
it is the same samples' x, y, z, shaped ``(3, 750)`` (``EventStreams.xyz_at``). Windows start
every hop (125 samples, 5 s) and never span a gap, so an event of n contiguous datapoints gives
``n - 5`` windows. Each window carries its event's label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from osdml.data.streams import EventStreams


def window_count(n_samples: int, window_samples: int, hop_samples: int) -> int:
    """Number of windows in a segment of `n_samples`: ``1 + (n - window) // hop``, or 0."""
    if n_samples < window_samples:
        return 0
    return 1 + (n_samples - window_samples) // hop_samples


@dataclass
class Windows:
    """Labelled windows as offsets into one ``EventStreams``; no sample is copied.

    Attributes
    ----------
    streams : EventStreams
    starts : np.ndarray of shape (n_windows,), int64
        First sample of each window in ``streams.samples``.
    event : np.ndarray of shape (n_windows,), int32
        Index into ``streams.events``.
    labels : np.ndarray of shape (n_windows,), int64
        Class of each window (its event's label).
    window_samples : int
        750 by default.
    input : {"magnitude", "xyz"}
        What a window holds: 1 channel of magnitude, or 3 channels x, y, z (g).
    """

    streams: EventStreams
    starts: np.ndarray
    event: np.ndarray
    labels: np.ndarray
    window_samples: int
    input: str = "magnitude"

    @property
    def channels(self) -> int:
        """1 for magnitude windows, 3 for x, y, z."""
        return 3 if self.input == "xyz" else 1

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> np.ndarray:
        """Window `i`, float32, in g: a read-only view of shape (1, window_samples), or a
        copy of shape (3, window_samples) for xyz windows."""
        s = int(self.starts[i])
        if self.input == "xyz":
            return self.streams.xyz_at(np.array([s]), self.window_samples)[0]
        return self.streams.samples[s:s + self.window_samples].reshape(1, -1)

    def batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Copy the windows at `indices` into one array of shape (n, channels, window_samples),
        float32, in g (channels 1, or 3 = x, y, z)."""
        idx = np.asarray(indices, dtype=np.int64)
        if self.input == "xyz":
            return self.streams.xyz_at(self.starts[idx], self.window_samples)
        gather = self.starts[idx, None] + np.arange(self.window_samples)
        out = np.empty((len(idx), 1, self.window_samples), dtype=np.float32)  # plain strides
        out[:, 0, :] = self.streams.samples[gather]
        return out

    def count_by_label(self) -> dict[int, int]:
        """Map label -> number of windows."""
        return count_labels(self.labels)


def count_labels(labels: np.ndarray) -> dict[int, int]:
    """Map label -> how many times it occurs in `labels`."""
    values, counts = np.unique(labels, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def make_windows(
    streams: EventStreams,
    event_indices: Sequence[int] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    window_samples: int = 750,
    hop_samples: int = 125,
    input: str = "magnitude",
) -> Windows:
    """Index every window of the given events.

    Parameters
    ----------
    streams : EventStreams
    event_indices : sequence of int
        Events to window (indices into ``streams.events``), in the order wanted.
    labels : sequence of int, same length as `event_indices`
        The class of each event; all its windows get it.
    window_samples, hop_samples : int
        Window length and hop in samples (750 and 125 = 30 s and 5 s at 25 Hz).
    input : {"magnitude", "xyz"}, default="magnitude"
        Windows of magnitude (1, window_samples) or of x, y, z (3, window_samples).

    Returns
    -------
    Windows
        Windows in event order, then time order within each segment.

    Raises
    ------
    ValueError
        If `labels` and `event_indices` differ in length, or sizes are not positive; with
        ``input="xyz"``, if a segment with windows has no 3-D data (select events with
        ``select_events(..., need_3d=True)``).
    """
    if input not in ("magnitude", "xyz"):
        raise ValueError(f"input={input!r}: expected 'magnitude' or 'xyz'")
    if window_samples <= 0 or hop_samples <= 0:
        raise ValueError(f"window_samples={window_samples} and hop_samples={hop_samples} "
                         "must be positive")
    event_indices = np.asarray(event_indices, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(event_indices) != len(labels):
        raise ValueError(f"{len(event_indices)} events but {len(labels)} labels")
    starts, events, window_labels = [], [], []
    for ei, label in zip(event_indices, labels, strict=True):
        for s, n, x in streams.segment_rows(int(ei)):
            k = window_count(int(n), window_samples, hop_samples)
            if k and input == "xyz" and x < 0:
                raise ValueError(f"event {streams.events[int(ei)].id} has no 3-D data "
                                 "(rawData3D) for three-axis windows")
            if k:
                starts.append(s + hop_samples * np.arange(k, dtype=np.int64))
                events.append(np.full(k, ei, dtype=np.int32))
                window_labels.append(np.full(k, label, dtype=np.int64))
    if not starts:
        empty = np.empty(0, dtype=np.int64)
        return Windows(streams, empty, empty.astype(np.int32), empty, window_samples, input)
    return Windows(streams, np.concatenate(starts), np.concatenate(events),
                   np.concatenate(window_labels), window_samples, input)


def event_window_counts(
    streams: EventStreams, window_samples: int = 750, hop_samples: int = 125
) -> np.ndarray:
    """Windows per event, shape (n_events,), int64, without building the index."""
    out = np.zeros(streams.n_events, dtype=np.int64)
    for i in range(streams.n_events):
        out[i] = sum(window_count(int(n), window_samples, hop_samples)
                     for _, n, _ in streams.segment_rows(i))
    return out


class WindowSet:
    """Several ``Windows`` (for example original and augmented events) indexed as one.

    Parameters
    ----------
    parts : sequence of Windows
        Each keeps its own streams; nothing is copied.
    """

    def __init__(self, parts: Sequence[Windows]):
        self.parts = [p for p in parts if len(p)]
        self._ends = np.cumsum([len(p) for p in self.parts], dtype=np.int64)
        self.labels = (np.concatenate([p.labels for p in self.parts]) if self.parts
                       else np.empty(0, dtype=np.int64))
        self.window_samples = self.parts[0].window_samples if self.parts else 750
        self.channels = self.parts[0].channels if self.parts else 1
        if any(p.channels != self.channels for p in self.parts):
            raise ValueError("WindowSet parts mix magnitude and xyz windows")

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def batch(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Windows at `indices` as one array (n, channels, window_samples), float32, in g."""
        idx = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(idx), self.channels, self.window_samples), dtype=np.float32)
        part = np.searchsorted(self._ends, idx, side="right")
        starts = np.concatenate([[0], self._ends[:-1]])
        for k in np.unique(part):
            sel = part == k
            out[sel] = self.parts[k].batch(idx[sel] - starts[k])
        return out

    def count_by_label(self) -> dict[int, int]:
        """Map label -> number of windows."""
        return count_labels(self.labels)
