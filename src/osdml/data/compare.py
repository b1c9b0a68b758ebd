"""Compare two sets of OSDB files: where do their per-datapoint statistics differ?

``osdml data compare A... --against B...`` reads two sets of recordings (real wrist recordings
and the synthetic demo data, two releases, two watches, two users) and, per group of
datapoints, compares the distributions of a few features that decide what the app does:

- groups: the event ``type`` as written (Seizure, False Alarm, NDA, ...) x the phase: for
  ``Seizure`` events with ``seizureTimes`` [start, end] (seconds relative to the event's
  ``dataTime``, or to its first datapoint when that is unreadable), ``inside`` = the datapoints
  whose ``dataTime`` (time of their last sample) lies in [start, end] and ``outside`` = the
  others; ``all`` = every datapoint of the type (events without ``seizureTimes`` included);
- features of each datapoint's 125 ``rawData`` magnitude samples (milli-g):
  ``movement_pct`` (100 x population std / mean, the app's movement gate quantity,
  ``osdml.app.engine.movement_pct``, ``SdAlgMl.calcRawDataStd``), ``mag_p05_mg``,
  ``mag_p50_mg``, ``mag_p95_mg`` and ``mag_range_mg`` (p95 - p05), ``roi_power`` and
  ``roi_ratio`` (10 x roiPower / specPower, as a float) of the app's built-in OSD algorithm
  re-run with its default settings (``osdml.app.osd.osd_powers``, ``DEFAULT_SETTINGS``),
  ``dominant_hz`` (the largest non-DC bin of the rFFT of the mean-removed samples) and
  ``under_gate`` (1 when movement_pct < the gate, default 5 % = the app's
  ``MlAccelStdThresholdPct``: the model is not run on such a datapoint); per seizure event with
  ``seizureTimes``, ``seizure_duration_s`` = end - start (in the ``Seizure/all`` group);
- per feature and group present in both sets: n, median, 10th and 90th percentiles, mean, and
  the two-sample Kolmogorov-Smirnov statistic D with its p-value (``scipy.stats.ks_2samp``:
  D = the largest distance between the two empirical CDFs, 0 for identical samples, 1 for
  disjoint ones). The verdict reads D as an effect size, whatever n: "close" (D < 0.1),
  "differs" (0.1 <= D < 0.3), "far" (D >= 0.3), "too few" when either set has fewer than 5
  values. D is invariant under monotone transforms, so it is computed on the raw values.

Files are streamed event by event with osdml's reader (``osdml.data.osdb.read_events``: the
same skips and the same one-line ``InputError`` for a file that is not OSDB); only the
per-datapoint features are kept (float32, 9 per datapoint), computed in batches of datapoints.
Events read twice (same id, from this or an earlier file of the set) are counted once.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osdml.config import ReaderConfig
from osdml.data.osdb import expand_inputs, read_events
from osdml.data.report import DataReport
from osdml.errors import InputError

SEIZURE = "Seizure"
PHASES = ("all", "inside", "outside")
DATAPOINT_FEATURES = ("movement_pct", "under_gate", "mag_p05_mg", "mag_p50_mg", "mag_p95_mg",
                      "mag_range_mg", "roi_power", "roi_ratio", "dominant_hz")
EVENT_FEATURES = ("seizure_duration_s",)
FEATURES = DATAPOINT_FEATURES + EVENT_FEATURES
UNITS = {"movement_pct": "%", "under_gate": "share", "mag_p05_mg": "mg", "mag_p50_mg": "mg",
         "mag_p95_mg": "mg", "mag_range_mg": "mg", "roi_power": "app units", "roi_ratio": "",
         "dominant_hz": "Hz", "seizure_duration_s": "s"}
CLOSE_D, FAR_D, MIN_N = 0.1, 0.3, 5
EDGE_TOL_S = 1e-3  # s: a datapoint exactly at a seizureTimes bound is inside
_BATCH = 8192  # datapoints per feature computation


def verdict(d: float | None, n_a: int, n_b: int) -> str:
    """"too few" when n_a or n_b < 5, else "close" (D < 0.1), "differs" (D < 0.3) or "far"."""
    if n_a < MIN_N or n_b < MIN_N or d is None:
        return "too few"
    return "close" if d < CLOSE_D else "differs" if d < FAR_D else "far"


def group_name(etype: str, phase: str) -> str:
    """``"Seizure/inside"``: the event type as written (``(no type)`` when empty), a slash,
    the phase."""
    return f"{etype or '(no type)'}/{phase}"


# --------------------------------------------------------------------------- features

def datapoint_features(raw_mg: np.ndarray, gate_pct: float = 5.0,
                       sample_rate_hz: float = 25.0) -> dict[str, np.ndarray]:
    """The compared features of each datapoint.

    Parameters
    ----------
    raw_mg : np.ndarray of shape (n_datapoints, n_samples), float
        ``rawData`` magnitude in milli-g (n_samples = 125 at 25 Hz).
    gate_pct : float
        The movement gate (%): ``under_gate`` is 1 where ``movement_pct`` < it.
    sample_rate_hz : float
        For ``dominant_hz`` (the OSD powers use the app's fixed 25 Hz).

    Returns
    -------
    dict of str to np.ndarray of shape (n_datapoints,), float32
        The keys of ``DATAPOINT_FEATURES``: ``movement_pct`` (%, ``engine.movement_pct``),
        ``under_gate`` (0 or 1), ``mag_p05_mg``, ``mag_p50_mg``, ``mag_p95_mg`` (numpy's
        linear percentiles, mg), ``mag_range_mg`` (p95 - p05), ``roi_power`` (the app's
        recorded-style roiPower, ``osd.osd_powers`` with ``osd.DEFAULT_SETTINGS``),
        ``roi_ratio`` (10 x roiPower / specPower, float), ``dominant_hz`` (NaN for a constant
        datapoint).
    """
    from osdml.app.engine import movement_pct
    from osdml.app.osd import DEFAULT_SETTINGS, osd_powers

    x = np.asarray(raw_mg, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"raw_mg must be 2-D (datapoints, samples), got shape {x.shape}")
    m, n = x.shape
    movement = movement_pct(x)
    p05, p50, p95 = np.percentile(x, [5.0, 50.0, 95.0], axis=1)
    spec, roi = osd_powers(x, DEFAULT_SETTINGS.freq_min, DEFAULT_SETTINGS.freq_max)
    power = np.abs(np.fft.rfft(x - x.mean(axis=1, keepdims=True), axis=1)[:, 1:]) ** 2
    if power.shape[1]:
        k = 1 + np.argmax(power, axis=1)
        dominant = np.where(power.max(axis=1) > 0, k * sample_rate_hz / n, np.nan)
    else:
        dominant = np.full(m, np.nan)
    with np.errstate(invalid="ignore"):
        under = (movement < gate_pct).astype(np.float64)
    f32 = np.float32
    return {"movement_pct": movement.astype(f32), "under_gate": under.astype(f32),
            "mag_p05_mg": p05.astype(f32), "mag_p50_mg": p50.astype(f32),
            "mag_p95_mg": p95.astype(f32), "mag_range_mg": (p95 - p05).astype(f32),
            "roi_power": roi.astype(f32), "roi_ratio": (10.0 * roi / spec).astype(f32),
            "dominant_hz": dominant.astype(f32)}


@dataclass
class SetFeatures:
    """The features of every datapoint of one set of files.

    Attributes
    ----------
    label : str
        What the set is (shown in the report), e.g. the paths given.
    files : list of str
        The files read, in order.
    types : list of str
        Event types in the order first seen; ``type_id`` indexes it.
    type_id : np.ndarray of shape (n_datapoints,), int16
    phase : np.ndarray of shape (n_datapoints,), int8
        0 = the event has no seizureTimes (or is not a Seizure), 1 = inside, 2 = outside.
    values : dict of str to np.ndarray of shape (n_datapoints,), float32
        ``DATAPOINT_FEATURES``.
    durations : dict of str to np.ndarray of shape (n_events,), float32
        ``seizure_duration_s`` (s) by event type, for seizure events with seizureTimes.
    events : Counter
        Events per group name (an event counts in a phase when it has a datapoint there).
    report : DataReport
        What the reader read and skipped.
    """

    label: str
    files: list[str]
    types: list[str]
    type_id: np.ndarray
    phase: np.ndarray
    values: dict[str, np.ndarray]
    durations: dict[str, np.ndarray]
    events: Counter
    report: DataReport

    def mask(self, group: str) -> np.ndarray:
        """Boolean mask of the datapoints of `group` (``"TYPE/PHASE"``)."""
        etype, _, phase = group.rpartition("/")
        etype = "" if etype == "(no type)" else etype
        if etype not in self.types:
            return np.zeros(len(self.type_id), dtype=bool)
        m = self.type_id == self.types.index(etype)
        return m if phase == "all" else m & (self.phase == PHASES.index(phase))

    def group_values(self, group: str, feature: str) -> np.ndarray:
        """The finite values of `feature` in `group`, float32 (empty when there are none)."""
        if feature in EVENT_FEATURES:
            etype, _, phase = group.rpartition("/")
            v = self.durations.get("" if etype == "(no type)" else etype) if phase == "all" \
                else None
            return np.zeros(0, np.float32) if v is None else v
        v = self.values[feature][self.mask(group)]
        return v[np.isfinite(v)]

    def datapoints(self) -> Counter:
        """Datapoints per group name."""
        out: Counter = Counter()
        for t, etype in enumerate(self.types):
            m = self.type_id == t
            out[group_name(etype, "all")] = int(m.sum())
            for p in (1, 2):
                k = int((m & (self.phase == p)).sum())
                if k:
                    out[group_name(etype, PHASES[p])] = k
        return out

    def groups(self) -> list[str]:
        """The group names holding datapoints: types Seizure, False Alarm, NDA first, then the
        others sorted; phases all, inside, outside."""
        order = {SEIZURE: 0, "False Alarm": 1, "NDA": 2}
        present = self.datapoints()
        names = []
        for etype in sorted(self.types, key=lambda t: (order.get(t, 3), t)):
            names += [g for p in PHASES if present.get(g := group_name(etype, p))]
        return names

    def to_dict(self) -> dict[str, Any]:
        dps = self.datapoints()
        return {"label": self.label, "files": list(self.files),
                "events": int(sum(self.events[group_name(t, "all")] for t in self.types)),
                "datapoints": len(self.type_id),
                "groups": {g: {"events": int(self.events[g]), "datapoints": int(dps[g])}
                           for g in self.groups()},
                "skipped_events": dict(sorted(self.report.skipped_events.items())),
                "skipped_datapoints": dict(sorted(self.report.skipped_datapoints.items())),
                "notes": dict(sorted(self.report.notes.items()))}


class _Accumulator:
    """Collects datapoints in batches and keeps only their features."""

    def __init__(self, gate_pct: float, rate_hz: float):
        self.gate_pct, self.rate_hz = gate_pct, rate_hz
        self.types: list[str] = []
        self.raw: list[np.ndarray] = []
        self.pending = 0
        self.chunks: dict[str, list[np.ndarray]] = {f: [] for f in DATAPOINT_FEATURES}
        self.type_ids: list[np.ndarray] = []
        self.phases: list[np.ndarray] = []
        self.durations: dict[str, list[float]] = {}
        self.events: Counter = Counter()

    def add(self, etype: str, raw: np.ndarray, phase: np.ndarray | int,
            duration_s: float | None) -> None:
        if etype not in self.types:
            self.types.append(etype)
        n = len(raw)
        phase = np.broadcast_to(np.asarray(phase, dtype=np.int8), (n,))
        self.raw.append(raw)
        self.type_ids.append(np.full(n, self.types.index(etype), dtype=np.int16))
        self.phases.append(np.array(phase, dtype=np.int8))
        self.events[group_name(etype, "all")] += 1
        for p in (1, 2):
            if (phase == p).any():
                self.events[group_name(etype, PHASES[p])] += 1
        if duration_s is not None:
            self.durations.setdefault(etype, []).append(duration_s)
        self.pending += n
        if self.pending >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.raw:
            return
        feats = datapoint_features(np.concatenate(self.raw), self.gate_pct, self.rate_hz)
        for f in DATAPOINT_FEATURES:
            self.chunks[f].append(feats[f])
        self.raw, self.pending = [], 0

    def finish(self, label: str, report: DataReport) -> SetFeatures:
        self.flush()
        return SetFeatures(
            label=label, files=list(report.files), types=list(self.types),
            type_id=np.concatenate(self.type_ids) if self.type_ids else np.zeros(0, np.int16),
            phase=np.concatenate(self.phases) if self.phases else np.zeros(0, np.int8),
            values={f: np.concatenate(c) if c else np.zeros(0, np.float32)
                    for f, c in self.chunks.items()},
            durations={t: np.asarray(v, dtype=np.float32) for t, v in self.durations.items()},
            events=self.events, report=report)


def read_set(paths: Sequence[str | Path], label: str | None = None, gate_pct: float = 5.0,
             config: ReaderConfig | None = None,
             progress: Callable[[int], None] | None = None) -> SetFeatures:
    """Stream OSDB files (or folders of them) and keep the features of every datapoint.

    Parameters
    ----------
    paths : sequence of path-like
        Files (JSON array, NDJSON, optionally .gz) and folders, as ``expand_inputs`` takes them.
    label : str, optional
        What the set is; default: the paths, comma-separated.
    gate_pct : float
        Movement gate for ``under_gate`` (%).
    config : ReaderConfig, optional
        The reader's options (samples per datapoint, plausibility limits).
    progress : callable, optional
        Called with the number of bytes read, as they are read.

    Returns
    -------
    SetFeatures

    Raises
    ------
    InputError
        A path is missing, a folder holds no OSDB files, a file is not OSDB (one line naming
        the file and the problem, from ``read_events``), or no event could be read at all.
    """
    cfg = config or ReaderConfig()
    files = expand_inputs(list(paths))
    label = label or ", ".join(str(p) for p in paths)
    report = DataReport()
    acc = _Accumulator(gate_pct, cfg.sample_rate_hz)
    seen: set[str] = set()
    for path in files:
        for ev in read_events(path, report, cfg, progress):
            if ev.id in seen:
                report.skip_event("duplicate_event_id", f"{path.name}: event {ev.id}")
                continue
            seen.add(ev.id)
            raw = np.stack([dp.accel_mg for dp in ev.datapoints])
            phase: np.ndarray | int = 0
            duration = None
            if ev.type == SEIZURE and ev.seizure_times is not None:
                start, end = ev.seizure_times
                times = np.array([dp.time_s for dp in ev.datapoints])
                ref = ev.time_s if ev.time_s is not None else float(times.min())
                rel = times - ref
                phase = np.where((rel >= start - EDGE_TOL_S) & (rel <= end + EDGE_TOL_S), 1, 2)
                duration = end - start
            acc.add(ev.type, raw, phase, duration)
    if not seen:
        skipped = ", ".join(f"{k}: {v}" for k, v in report.skipped_events.items())
        raise InputError(f"cannot compare: no readable event in {label}"
                         + (f" (skipped {skipped})" if skipped else ""))
    return acc.finish(label, report)


# --------------------------------------------------------------------------- comparison

def _num(v: Any) -> float | None:
    """A JSON-ready float: None for NaN or infinity."""
    v = float(v)
    return v if math.isfinite(v) else None


@dataclass
class Comparison:
    """Set A compared with set B.

    Attributes
    ----------
    a, b : SetFeatures
    gate_pct : float
    rows : list of dict
        One per (group, feature) with values in at least one set of a group present in both:
        ``group``, ``type``, ``phase``, ``feature``, ``unit``, ``n_a``, ``n_b``, ``median_a``,
        ``median_b``, ``p10_a``, ``p90_a``, ``p10_b``, ``p90_b``, ``mean_a``, ``mean_b``
        (None without values), ``ks_d``, ``ks_p`` (None unless both have values),
        ``verdict``.
    only_a, only_b : list of str
        Groups with datapoints in one set only.
    """

    a: SetFeatures
    b: SetFeatures
    gate_pct: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no NaN): what ``compare.json`` holds."""
        return {"gate_pct": self.gate_pct,
                "thresholds": {"close_below_d": CLOSE_D, "far_from_d": FAR_D, "min_n": MIN_N},
                "a": self.a.to_dict(), "b": self.b.to_dict(),
                "only_in_a": list(self.only_a), "only_in_b": list(self.only_b),
                "rows": [dict(r) for r in self.rows]}

    def groups(self) -> list[str]:
        """The groups present in both sets, in A's order."""
        b = set(self.b.groups())
        return [g for g in self.a.groups() if g in b]


def _stats(v: np.ndarray, suffix: str) -> dict[str, float | None]:
    if not len(v):
        return {f"{k}_{suffix}": None for k in ("median", "p10", "p90", "mean")}
    p10, p50, p90 = np.percentile(v.astype(np.float64), [10.0, 50.0, 90.0])
    return {f"median_{suffix}": _num(p50), f"p10_{suffix}": _num(p10),
            f"p90_{suffix}": _num(p90), f"mean_{suffix}": _num(v.mean(dtype=np.float64))}


def compare_features(a: SetFeatures, b: SetFeatures, gate_pct: float = 5.0) -> Comparison:
    """Compare two sets read by ``read_set``: one row per group present in both and feature.

    D and p are ``scipy.stats.ks_2samp(a, b)`` (two-sided; exact for small samples,
    asymptotic for large) on the finite values, float64.
    """
    from scipy.stats import ks_2samp

    ga, gb = a.groups(), b.groups()
    cmp = Comparison(a, b, gate_pct, only_a=[g for g in ga if g not in gb],
                     only_b=[g for g in gb if g not in ga])
    for group in cmp.groups():
        etype, _, phase = group.rpartition("/")
        for feature in FEATURES:
            va, vb = a.group_values(group, feature), b.group_values(group, feature)
            if not len(va) and not len(vb):
                continue
            d = p = None
            if len(va) and len(vb):
                res = ks_2samp(va.astype(np.float64), vb.astype(np.float64))
                d, p = _num(res.statistic), _num(res.pvalue)
            cmp.rows.append({"group": group, "type": etype, "phase": phase, "feature": feature,
                             "unit": UNITS[feature], "n_a": int(len(va)), "n_b": int(len(vb)),
                             **_stats(va, "a"), **_stats(vb, "b"), "ks_d": d, "ks_p": p,
                             "verdict": verdict(d, len(va), len(vb))})
    return cmp


def compare_sets(real: Sequence[str | Path], against: Sequence[str | Path],
                 gate_pct: float = 5.0, progress: Callable[[int], None] | None = None,
                 config: ReaderConfig | None = None,
                 labels: tuple[str, str] | None = None) -> Comparison:
    """Read two sets of OSDB files and compare their per-datapoint statistics.

    Parameters
    ----------
    real, against : sequence of path-like
        Set A and set B: OSDB files or folders of them.
    gate_pct : float, default=5
        The app's movement gate (``MlAccelStdThresholdPct``, %; see ``osdml.app.engine``):
        ``under_gate`` is the share of datapoints whose ``movement_pct`` is below it.
    progress : callable, optional
        Called with the number of bytes read (both sets, A first).
    config : ReaderConfig, optional
    labels : (str, str), optional
        What A and B are; default: their paths.

    Returns
    -------
    Comparison

    Raises
    ------
    InputError
        `gate_pct` outside [0, 100]; a path missing or not OSDB (one line naming the file);
        a set with no readable event.
    """
    if not 0 <= gate_pct <= 100:
        raise InputError(f"gate_pct={gate_pct:g} is not a percentage in [0, 100]")
    la, lb = labels or (None, None)
    expand_inputs(list(real)), expand_inputs(list(against))  # fail on a missing path first
    a = read_set(real, la, gate_pct, config, progress)
    b = read_set(against, lb, gate_pct, config, progress)
    return compare_features(a, b, gate_pct)


def distances(comparison: Comparison | dict) -> dict[tuple[str, str], float]:
    """D per (group, feature) where both sets have values, from a ``Comparison`` or its
    ``to_dict()`` (``compare.json``); "too few" rows included."""
    rows = comparison["rows"] if isinstance(comparison, dict) else comparison.rows
    return {(r["group"], r["feature"]): r["ks_d"] for r in rows if r["ks_d"] is not None}


def summary_distance(comparison: Comparison | dict, groups: Iterable[str] | None = None,
                     features: Iterable[str] | None = None) -> float:
    """Mean D over the rows with a verdict other than "too few" (optionally only `groups` and
    `features`): one number, 0 for identical sets, to track how close a generator gets.
    NaN when no row qualifies."""
    rows = comparison["rows"] if isinstance(comparison, dict) else comparison.rows
    g = None if groups is None else set(groups)
    f = None if features is None else set(features)
    ds = [r["ks_d"] for r in rows if r["verdict"] != "too few"
          and (g is None or r["group"] in g) and (f is None or r["feature"] in f)]
    return float(np.mean(ds)) if ds else math.nan


# --------------------------------------------------------------------------- report

_SYMLOG = {"movement_pct": 1.0, "roi_power": 1.0, "mag_range_mg": 10.0}  # linthresh


def _ecdf(ax, v: np.ndarray, label: str, color: str) -> None:
    q = np.linspace(0.0, 1.0, 401)
    x = np.quantile(v.astype(np.float64), q)
    ax.step(x, q, where="post", label=f"{label} (n={len(v):,})", color=color, lw=1.2)


def plot_group(cmp: Comparison, group: str) -> bytes:
    """PNG of one group: per feature the empirical CDFs of A and B (symlog x for
    movement_pct, roi_power and mag_range_mg; bars for the share under the gate), D in the
    title, red when far."""
    from matplotlib.figure import Figure

    rows = {r["feature"]: r for r in cmp.rows if r["group"] == group}
    feats = [f for f in FEATURES if f in rows]
    ncol = 5
    nrow = max(1, -(-len(feats) // ncol))
    fig = Figure(figsize=(3.1 * ncol, 2.6 * nrow))
    axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
    for ax, f in zip(axes, feats, strict=False):
        r = rows[f]
        va, vb = cmp.a.group_values(group, f), cmp.b.group_values(group, f)
        if f == "under_gate":
            shares = [float(v.mean()) if len(v) else 0.0 for v in (va, vb)]
            ax.bar(["A", "B"], shares, color=["tab:blue", "tab:orange"])
            ax.set_ylim(0, 1)
            ax.set_ylabel(f"share under {cmp.gate_pct:g} %")
        else:
            for v, lab, col in ((va, "A", "tab:blue"), (vb, "B", "tab:orange")):
                if len(v):
                    _ecdf(ax, v, lab, col)
            if f in _SYMLOG:
                ax.set_xscale("symlog", linthresh=_SYMLOG[f])
            ax.set_ylim(0, 1)
            ax.legend(fontsize=6, loc="lower right")
            ax.set_xlabel(f + (f" ({UNITS[f]})" if UNITS[f] else ""), fontsize=8)
        d = "-" if r["ks_d"] is None else f"{r['ks_d']:.2f}"
        ax.set_title(f"{f}: D={d} {r['verdict']}", fontsize=8,
                     color="#b00" if r["verdict"] == "far" else "black")
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(feats):]:
        ax.set_visible(False)
    fig.suptitle(f"{group}: empirical CDFs, A blue, B orange", fontsize=10)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.5 / (2.6 * nrow) + 0.04,
                        top=1 - 0.45 / (2.6 * nrow), wspace=0.3, hspace=0.55)  # tight_layout: 1 s
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def fmt_value(v: float | None, feature: str) -> str:
    """A table cell: the share as a percentage for under_gate, else 3 significant digits."""
    if v is None:
        return "-"
    if feature == "under_gate":
        return f"{100 * v:.1f} %"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def write_html(cmp: Comparison, path: str | Path) -> Path:
    """Write the comparison as one self-contained HTML file (PNGs embedded as base64),
    atomically: what A and B are, the groups in one set only, the table with verdicts, and per
    group a grid of plots."""
    from osdml.evaluate.report import _CSS
    from osdml.fileio import atomic_write

    esc = html.escape
    css = _CSS + (".far{background:#fdd;font-weight:bold}.differs{background:#ffe}"
                  "td:first-child,td:nth-child(2){text-align:left}")
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           f"<title>osdml data compare</title><style>{css}</style></head><body>",
           "<h1>osdml data compare</h1>"]
    for name, s in (("A", cmp.a), ("B", cmp.b)):
        d = s.to_dict()
        files = ", ".join(Path(f).name for f in s.files[:8]) + (" ..." if len(s.files) > 8
                                                                  else "")
        out.append(f"<p><b>{name}</b>: {esc(s.label)} ({len(s.files)} file(s): {esc(files)}): "
                   f"{d['events']:,} events, {d['datapoints']:,} datapoints</p>")
    out.append(f"<p>Movement gate {cmp.gate_pct:g} %. D = two-sample Kolmogorov-Smirnov "
               f"statistic (scipy.stats.ks_2samp); close D &lt; {CLOSE_D}, differs D &lt; "
               f"{FAR_D}, far D &ge; {FAR_D}; too few when either n &lt; {MIN_N}. Medians "
               "(under_gate: share of datapoints under the gate).</p>")
    for name, only in (("A", cmp.only_a), ("B", cmp.only_b)):
        if only:
            out.append(f"<p>Groups only in {name}: {esc(', '.join(only))}</p>")
    cols = ["group", "feature", "n A", "n B", "median A", "median B", "p10-p90 A", "p10-p90 B",
            "D", "p", "verdict"]
    out += ["<h2>Table</h2><table><thead><tr>", *(f"<th>{esc(c)}</th>" for c in cols),
            "</tr></thead><tbody>"]
    for r in cmp.rows:
        f = r["feature"]
        cells = [r["group"], f, f"{r['n_a']:,}", f"{r['n_b']:,}",
                 fmt_value(r["median_a"] if f != "under_gate" else r["mean_a"], f),
                 fmt_value(r["median_b"] if f != "under_gate" else r["mean_b"], f),
                 f"{fmt_value(r['p10_a'], '')} - {fmt_value(r['p90_a'], '')}",
                 f"{fmt_value(r['p10_b'], '')} - {fmt_value(r['p90_b'], '')}",
                 "-" if r["ks_d"] is None else f"{r['ks_d']:.3f}",
                 "-" if r["ks_p"] is None else f"{r['ks_p']:.2g}", r["verdict"]]
        cls = r["verdict"].replace(" ", "-")
        out.append(f'<tr class="{cls}">' + "".join(f"<td>{esc(c)}</td>" for c in cells)
                   + "</tr>")
    out.append("</tbody></table>")
    for group in cmp.groups():
        data = base64.b64encode(plot_group(cmp, group)).decode("ascii")
        out.append(f"<h2>{esc(group)}</h2><figure><img src=\"data:image/png;base64,{data}\" "
                   f'alt="{esc(group)}"><figcaption>{esc(group)}: A = {esc(cmp.a.label)}, '
                   f"B = {esc(cmp.b.label)}</figcaption></figure>")
    out.append("</body></html>")
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")
    return Path(path)
