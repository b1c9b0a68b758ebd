"""Event sample streams: each event stored once as contiguous float32 samples (a ragged array).

Datapoints of an event are sorted by time and duplicates dropped; a gap (more than
``max_gap_s`` of missing time between consecutive datapoints) splits the event into segments,
so that no window ever spans a gap and no sample is invented. All segments of all events live in
one flat buffer with a table of offsets; a window is a view into that buffer (see
``osdml.data.windows``). 30 s windows at a 5 s hop overlap 25/30, so materialising them would
cost 6x the memory for nothing.

Built streams can be written straight to a folder (the parse cache) while events are read, so
memory stays flat however large the release is; loading them back memory-maps the arrays.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osdml.config import ReaderConfig
from osdml.data.osdb import Event
from osdml.data.report import DataReport

DATAPOINT_S = 5.0  # OSDB datapoints: 5 s of samples each
STREAMS_FORMAT = 3  # bump when the on-disk layout or the parsing rules change


@dataclass
class EventInfo:
    """Metadata of one event in an ``EventStreams``.

    ``seg_start:seg_stop`` are its rows in ``EventStreams.segments``. ``n_datapoints`` counts
    the datapoints kept (after skips and duplicates); ``n_datapoints_3d`` and
    ``n_datapoints_hr`` those with 3-D data and a heart rate. ``source_event`` and
    ``augmentation`` are set on augmented copies (the original's id and what was done).
    """

    id: str
    user_id: str
    type: str
    subtype: str | None
    source: str | None
    desc: str
    time_s: float | None
    seizure_times: tuple[float, float] | None
    file: str
    n_datapoints: int
    n_datapoints_3d: int
    n_datapoints_hr: int
    seg_start: int
    seg_stop: int
    source_event: str | None = None
    augmentation: str | None = None

    @property
    def root_id(self) -> str:
        """The id of the original event this one is, or was copied from."""
        return self.source_event or self.id


@dataclass
class EventStreams:
    """All events' samples as one flat float32 buffer plus offsets.

    Attributes
    ----------
    events : list of EventInfo
    samples : np.ndarray of shape (n_samples,), float32
        Acceleration magnitude in g (mg / 1000, gravity kept), segments back to back.
    segments : np.ndarray of shape (n_segments, 3), int64
        Per segment: first sample in ``samples``, number of samples, and first row in ``xyz``
        (-1 when the segment has no complete 3-D data).
    xyz : np.ndarray of shape (n_xyz, 3), int16
        x, y, z in whole milli-g for segments that have them.
    dp_time_s, dp_hr_bpm, dp_alarm_state : np.ndarray of shape (n_samples // spd,) or None
        Per datapoint (every ``spd`` samples of ``samples``): time (POSIX s), heart rate (NaN
        when missing), the app's recorded alarm state (-1 when missing). ``None`` for streams
        of augmented copies (as are the arrays below).
    dp_movement_pct : np.ndarray of shape (n_datapoints,), float64, or None
        The app's movement measure (``osdml.app.engine.movement_pct``) of each datapoint's raw
        milli-g, for the movement gate.
    dp_osd : np.ndarray of shape (n_datapoints, 6), int64, or None
        The built-in OSD algorithm per datapoint (``osdml.app.osd``): specPower and roiPower
        re-run from the raw samples, alarmThresh and alarmRatioThresh in force (recorded on the
        datapoint or event, else the app's defaults), and the recorded specPower and roiPower
        (-1 when missing). Columns are named by ``OSD_COLUMNS``.
    sample_rate_hz : float
    report : DataReport
        What was read and skipped to build these streams.
    from_cache : bool
        True when loaded from the parse cache instead of parsed.
    """

    events: list[EventInfo]
    samples: np.ndarray
    segments: np.ndarray
    xyz: np.ndarray
    dp_time_s: np.ndarray | None
    dp_hr_bpm: np.ndarray | None
    dp_alarm_state: np.ndarray | None
    dp_movement_pct: np.ndarray | None = None
    dp_osd: np.ndarray | None = None
    sample_rate_hz: float = 25.0
    report: DataReport = field(default_factory=DataReport)
    from_cache: bool = False
    checksums: dict[str, str] = field(default_factory=dict)

    @property
    def n_events(self) -> int:
        return len(self.events)

    def segment_rows(self, event_index: int) -> np.ndarray:
        """Rows of ``segments`` (start, n_samples, xyz_start) of one event."""
        e = self.events[event_index]
        return self.segments[e.seg_start:e.seg_stop]

    def event_samples(self, event_index: int) -> list[np.ndarray]:
        """The event's segments as views into ``samples`` (g, float32)."""
        return [self.samples[s:s + n] for s, n, _ in self.segment_rows(event_index)]

    def event_datapoints(self, event_index: int) -> np.ndarray:
        """Indices into the per-datapoint arrays of the event's datapoints, in time order."""
        spd = int(round(self.sample_rate_hz * DATAPOINT_S))
        rows = self.segment_rows(event_index)
        if not len(rows):
            return np.empty(0, dtype=np.int64)
        return np.concatenate([np.arange(s // spd, (s + n) // spd) for s, n, _ in rows])

    def event_sample_range(self, event_index: int) -> tuple[int, int]:
        """(first, stop) of the event's samples in ``samples``: its segments lie back to back,
        gaps included (the app's buffer appends whatever arrives).

        Raises
        ------
        ValueError
            If the event's segments are not contiguous in ``samples`` (streams built by hand).
        """
        rows = self.segment_rows(event_index)
        if not len(rows):
            return 0, 0
        ends = rows[:, 0] + rows[:, 1]
        if np.any(rows[1:, 0] != ends[:-1]):
            raise ValueError(f"event {self.events[event_index].id}: segments not contiguous")
        return int(rows[0, 0]), int(ends[-1])

    def xyz_at(self, starts: np.ndarray, length: int) -> np.ndarray:
        """Three-axis inputs: x, y, z of ``samples[start:start + length]`` for each start.

        Each input's samples must lie in segments with 3-D data and whose ``xyz`` rows run
        on with its ``samples`` (the segments of one event that has 3-D data in every
        datapoint do, gaps included).

        Parameters
        ----------
        starts : np.ndarray of shape (k,), int
            First samples, indices into ``samples``.
        length : int
            Samples per input.

        Returns
        -------
        np.ndarray of shape (k, 3, length), float32
            Channels x, y, z in g: the recorded whole milli-g divided by 1000 in double, then
            cast to float32 (as the app turns rawData into g).

        Raises
        ------
        ValueError
            If an input reaches samples without 3-D data.
        """
        starts = np.asarray(starts, dtype=np.int64)
        if not len(starts):
            return np.empty((0, 3, length), np.float32)
        seg = self.segments
        first = np.searchsorted(seg[:, 0], starts, side="right") - 1
        last = np.searchsorted(seg[:, 0], starts + length - 1, side="right") - 1
        offset = seg[first, 2] - seg[first, 0]
        bad = (first < 0) | (seg[first, 2] < 0) | (seg[last, 2] < 0) | (
            seg[last, 2] - seg[last, 0] != offset)
        if np.any(bad):
            s = int(starts[np.argmax(bad)])
            raise ValueError(f"samples {s}..{s + length - 1} have no 3-D (rawData3D) data; "
                             "three-axis input needs it in every datapoint")
        rows = (starts + offset)[:, None] + np.arange(length)
        xyz = np.asarray(self.xyz[rows], dtype=np.float64) / 1000.0  # (k, length, 3)
        return np.ascontiguousarray(xyz.transpose(0, 2, 1), dtype=np.float32)

    def index_of(self) -> dict[str, int]:
        """Map event id -> index in ``events``."""
        return {e.id: i for i, e in enumerate(self.events)}


# --------------------------------------------------------------------------- building

class _Sink:
    """Collects segment arrays in memory, or appends them to files in `folder`."""

    _FILES = {"samples": np.float32, "xyz": np.int16, "dp_time_s": np.float64,
              "dp_hr_bpm": np.float32, "dp_alarm_state": np.int8,
              "dp_movement_pct": np.float64, "dp_osd": np.int64}
    _WIDTH = {"xyz": 3, "dp_osd": 6}

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.counts = dict.fromkeys(self._FILES, 0)
        if folder is None:
            self.parts: dict[str, list[np.ndarray]] = {k: [] for k in self._FILES}
        else:
            import xxhash

            self.files = {k: open(folder / f"{k}.bin", "wb") for k in self._FILES}  # noqa: SIM115
            self.hashes = {k: xxhash.xxh3_128() for k in self._FILES}

    def add(self, name: str, array: np.ndarray) -> int:
        """Append `array` to stream `name`; return the row it starts at."""
        array = np.ascontiguousarray(array, dtype=self._FILES[name])
        start = self.counts[name]
        self.counts[name] += len(array)
        if self.folder is None:
            self.parts[name].append(array)
        else:
            data = array.tobytes()
            self.files[name].write(data)
            self.hashes[name].update(data)
        return start

    def checksums(self) -> dict[str, str]:
        """xxh3-128 of each file written (empty for in-memory sinks)."""
        return {k: h.hexdigest() for k, h in getattr(self, "hashes", {}).items()}

    def finish(self) -> dict[str, np.ndarray]:
        out = {}
        for name, dtype in self._FILES.items():
            width = self._WIDTH.get(name, 1)
            if self.folder is None:
                parts = self.parts[name]
                out[name] = (np.concatenate(parts) if parts
                             else np.empty((0, width) if width > 1 else 0, dtype))
            else:
                self.files[name].close()
                out[name] = _memmap(self.folder / f"{name}.bin", dtype, self.counts[name], width)
        return out

    def close(self) -> None:
        if self.folder is not None:
            for f in self.files.values():
                f.close()


def _memmap(path: Path, dtype, rows: int, width: int) -> np.ndarray:
    shape = (rows, width) if width > 1 else (rows,)
    if rows == 0:
        return np.empty(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


def build_streams(
    events: Iterable[Event],
    report: DataReport,
    config: ReaderConfig | None = None,
    folder: Path | None = None,
) -> EventStreams:
    """Sort, de-duplicate and segment each event's datapoints into one flat sample buffer.

    Parameters
    ----------
    events : iterable of Event
        Typically ``read_events`` over one or more files; consumed once.
    report : DataReport
        Duplicate datapoints and event ids, reordering and gap splits are counted into it.
    config : ReaderConfig, optional
        ``max_gap_s``, ``duplicate_tol_s``, ``datapoint_s``, sample rate.
    folder : Path, optional
        Write the arrays to ``folder/*.bin`` as events arrive (memory stays flat) and
        memory-map them; otherwise build them in memory.

    Returns
    -------
    EventStreams
        Events in input order; a repeated event id keeps the first occurrence.
    """
    cfg = config or ReaderConfig()
    spd = cfg.samples_per_datapoint
    split_after_s = cfg.datapoint_s + cfg.max_gap_s
    sink = _Sink(folder)
    infos: list[EventInfo] = []
    segments: list[tuple[int, int, int]] = []
    seen: set[str] = set()
    try:
        for ev in events:
            if ev.id in seen:
                report.skip_event("duplicate_event_id", f"{Path(ev.file).name}: event {ev.id}")
                continue
            seen.add(ev.id)
            dps = _ordered_datapoints(ev, cfg.duplicate_tol_s, report, cfg.datapoint_s / 2)
            seg_start = len(segments)
            for part in _split_at_gaps(dps, split_after_s, ev, report):
                segments.append(_write_segment(sink, part, spd, ev.osd_settings))
            infos.append(EventInfo(
                id=ev.id, user_id=ev.user_id, type=ev.type, subtype=ev.subtype,
                source=ev.source, desc=ev.desc, time_s=ev.time_s,
                seizure_times=ev.seizure_times, file=ev.file, n_datapoints=len(dps),
                n_datapoints_3d=sum(d.accel3d_mg is not None for d in dps),
                n_datapoints_hr=sum(d.hr_bpm == d.hr_bpm for d in dps),  # not NaN
                seg_start=seg_start, seg_stop=len(segments),
            ))
        arrays = sink.finish()
    finally:
        sink.close()
    streams = EventStreams(
        events=infos,
        samples=arrays["samples"],
        segments=np.array(segments, dtype=np.int64).reshape(-1, 3),
        xyz=arrays["xyz"],
        dp_time_s=arrays["dp_time_s"],
        dp_hr_bpm=arrays["dp_hr_bpm"],
        dp_alarm_state=arrays["dp_alarm_state"],
        dp_movement_pct=arrays["dp_movement_pct"],
        dp_osd=arrays["dp_osd"],
        sample_rate_hz=cfg.sample_rate_hz,
        report=report,
    )
    streams.checksums = sink.checksums()
    return streams


def _ordered_datapoints(ev: Event, tol_s: float, report: DataReport,
                        copy_within_s: float = 2.5) -> list:
    dps = ev.datapoints
    times = [d.time_s for d in dps]
    where = f"{Path(ev.file).name}: event {ev.id}"
    running_max, late = -np.inf, 0
    for t in times:
        if t < running_max:
            late += 1
        running_max = max(running_max, t)
    if late:
        report.note("out_of_order", where, late)
        dps = [dps[i] for i in np.argsort(np.asarray(times), kind="stable")]
    kept = [dps[0]]
    for d in dps[1:]:
        if (d.time_s - kept[-1].time_s < copy_within_s
                and np.array_equal(d.accel_mg, kept[-1].accel_mg)):
            # the app logged the datapoint it had just processed again (APP_CONTRACT.md); the
            # same samples a whole period later are a datapoint (a frozen sensor): the app
            # processes those
            report.skip_datapoint("logging_copy", where)
        elif d.time_s - kept[-1].time_s < tol_s:
            report.skip_datapoint("duplicate_time", where)
        else:
            kept.append(d)
    return kept


def _split_at_gaps(dps: list, split_after_s: float, ev: Event, report: DataReport):
    start = 0
    for i in range(1, len(dps)):
        if dps[i].time_s - dps[i - 1].time_s > split_after_s:
            report.note("gap_split", f"{Path(ev.file).name}: event {ev.id}")
            yield dps[start:i]
            start = i
    yield dps[start:]


OSD_COLUMNS = ("spec_power", "roi_power", "thresh", "ratio_thresh", "recorded_spec_power",
               "recorded_roi_power")


def _write_segment(sink: _Sink, dps: list, spd: int,
                   event_osd: tuple[int, int, int, int] | None = None) -> tuple[int, int, int]:
    from osdml.app.engine import movement_pct
    from osdml.app.osd import DEFAULT_SETTINGS, osd_powers

    raw_mg = np.stack([d.accel_mg for d in dps])  # (n_dp, spd) float64, as recorded
    # the app's model input: rawData[i] / 1000.0 in double, then cast to float32
    accel_g = (raw_mg.ravel() / 1000.0).astype(np.float32)
    start = sink.add("samples", accel_g)
    xyz_start = -1
    if all(d.accel3d_mg is not None for d in dps):
        xyz = np.concatenate([d.accel3d_mg for d in dps])
        xyz_start = sink.add("xyz", np.clip(np.rint(xyz), -32768, 32767))
    sink.add("dp_time_s", np.array([d.time_s for d in dps]))
    sink.add("dp_hr_bpm", np.array([d.hr_bpm for d in dps]))
    sink.add("dp_alarm_state", np.array([d.alarm_state for d in dps]))
    sink.add("dp_movement_pct", movement_pct(raw_mg))
    default = (DEFAULT_SETTINGS.freq_min, DEFAULT_SETTINGS.freq_max, DEFAULT_SETTINGS.thresh,
               DEFAULT_SETTINGS.ratio_thresh)
    settings = np.array([d.osd_settings or event_osd or default for d in dps], dtype=np.int64)
    spec, roi = osd_powers(raw_mg, settings[:, 0], settings[:, 1])
    sink.add("dp_osd", np.column_stack([spec, roi, settings[:, 2], settings[:, 3],
                                        [d.spec_power for d in dps],
                                        [d.roi_power for d in dps]]))
    return start, len(dps) * spd, xyz_start


# --------------------------------------------------------------------------- storage

class StaleCacheEntry(ValueError):
    """Saved streams of an older layout: not damaged, just to be rebuilt."""


def save_metadata(streams: EventStreams, folder: Path, extra: dict[str, Any]) -> None:
    """Write the non-array parts of `streams` beside the ``*.bin`` arrays in `folder`."""
    meta = {
        "format": STREAMS_FORMAT,
        "checksums": streams.checksums,
        "sample_rate_hz": streams.sample_rate_hz,
        "counts": {"samples": len(streams.samples), "xyz": len(streams.xyz),
                   "datapoints": 0 if streams.dp_time_s is None else len(streams.dp_time_s)},
        **extra,
    }
    (folder / "events.json").write_text(json.dumps([asdict(e) for e in streams.events]))
    np.save(folder / "segments.npy", streams.segments)
    (folder / "report.json").write_text(json.dumps(streams.report.to_dict()))
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))


def load_saved(folder: Path) -> EventStreams:
    """Memory-map streams saved by ``build_streams(folder=...)`` + ``save_metadata``.

    Raises
    ------
    ValueError
        If the folder is incomplete, of another format version, or a ``.bin`` file's size or
        checksum differs from what was written.
    """
    import xxhash

    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("format") != STREAMS_FORMAT:
        raise StaleCacheEntry(f"written in format {meta.get('format')}, this osdml reads "
                              f"{STREAMS_FORMAT}")
    for name, expected in meta["checksums"].items():
        h = xxhash.xxh3_128()
        with open(folder / f"{name}.bin", "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        if h.hexdigest() != expected:
            raise ValueError(f"{name}.bin does not match its checksum")
    counts = meta["counts"]
    events = []
    for e in json.loads((folder / "events.json").read_text()):
        if e["seizure_times"] is not None:
            e["seizure_times"] = tuple(e["seizure_times"])
        events.append(EventInfo(**e))
    n_dp = counts["datapoints"]
    return EventStreams(
        events=events,
        samples=_memmap(folder / "samples.bin", np.float32, counts["samples"], 1),
        segments=np.load(folder / "segments.npy"),
        xyz=_memmap(folder / "xyz.bin", np.int16, counts["xyz"], 3),
        dp_time_s=_memmap(folder / "dp_time_s.bin", np.float64, n_dp, 1),
        dp_hr_bpm=_memmap(folder / "dp_hr_bpm.bin", np.float32, n_dp, 1),
        dp_alarm_state=_memmap(folder / "dp_alarm_state.bin", np.int8, n_dp, 1),
        dp_movement_pct=_memmap(folder / "dp_movement_pct.bin", np.float64, n_dp, 1),
        dp_osd=_memmap(folder / "dp_osd.bin", np.int64, n_dp, len(OSD_COLUMNS)),
        sample_rate_hz=meta["sample_rate_hz"],
        report=DataReport.from_dict(json.loads((folder / "report.json").read_text())),
    )
