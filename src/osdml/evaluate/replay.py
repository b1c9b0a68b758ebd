"""Replay events through a model exactly as the OpenSeizureDetector app runs it.

For each event, its datapoints are fed in time order: each 5 s datapoint appends its 125
acceleration samples (g) to a buffer; once the buffer holds a full window (750 samples, 30 s),
the last 750 samples are run through the model after every datapoint, one (1, 1, 750) float32
inference at a time in the model's own runtime (eager torch for .pt, the lite interpreter for
.ptl, ExecuTorch for .pte). The app's alarm counters (``osdml.alarm``) start from OK for each
event. Like the app, the buffer simply appends whatever datapoints arrive: a gap in the
recording does not reset it.

The same events through the .pt, .ptl and .pte of one model should give identical alarm
histories; ``compare_histories`` says where they do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osdml.alarm import STEP_S
from osdml.evaluate.events import EventTrace, score_trace, trace_of, write_events_csv
from osdml.evaluate.metrics import event_summary

REPLAY_COLUMNS = ("id", "user", "type", "subtype", "label", "alarm", "warning", "alarms",
                  "latency_s", "first_alarm_s", "max_p", "decisions", "recording_s",
                  "osd_alarm", "osd_alarms", "osd_latency_s", "states")


@dataclass
class Replay:
    """One model replayed over events.

    ``traces`` and ``rows`` (``score_trace`` rows) are in event order; ``summary`` holds the
    model, format, runtime, threshold and ``events`` (``event_summary`` of the rows).
    """

    model: Path
    format: str
    runtime: str
    threshold: float
    traces: list[EventTrace]
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    skipped: dict[str, int] = field(default_factory=dict)


RUNTIMES = {"pt": "eager torch", "ptl": "lite interpreter", "pte": "ExecuTorch",
            "bpte": "ExecuTorch"}


def model_format(path: str | Path) -> str:
    """``pt``, ``ptl``, ``pte`` or ``bpte`` from the file's content (not its extension).

    Raises
    ------
    InputError
        If the file is not a model file osdml can run.
    """
    from osdml.errors import InputError
    from osdml.export import sniff as sn

    found = sn.sniff(path)
    fmt = {sn.PTE: "pte", sn.BPTE: "bpte", sn.PTL: "ptl"}.get(found.kind)
    if fmt:
        return fmt
    if found.kind in (sn.CHECKPOINT, sn.TORCHSCRIPT):
        return "pt"
    raise InputError(f"cannot replay {path}: {found.description}")


def model_spec(path: str | Path):
    """The ``ModelSpec`` stored in a model file of any format, or None for a file without."""
    from osdml.export.inspect import describe
    from osdml.spec import ModelSpec

    spec = describe(path).get("spec")
    return None if not spec else ModelSpec.model_validate(spec)


def app_windows(samples: np.ndarray, window_samples: int, samples_per_datapoint: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The app's buffer over one event's samples, in datapoint order.

    Parameters
    ----------
    samples : np.ndarray of shape (n_datapoints * samples_per_datapoint,), float32
        The event's acceleration magnitude in g, datapoints back to back in time order.
    window_samples, samples_per_datapoint : int

    Returns
    -------
    (windows, datapoint)
        ``windows`` (n, 1, window_samples) float32: the buffer after each datapoint once it is
        full; ``datapoint`` (n,) int: the datapoint (0-based) after which each inference runs.
    """
    spd = samples_per_datapoint
    n_dp = len(samples) // spd
    first = -(-window_samples // spd) - 1  # the datapoint that fills the buffer
    dps = np.arange(first, n_dp)
    if not len(dps):
        return np.empty((0, 1, window_samples), np.float32), dps
    ends = (dps + 1) * spd
    idx = ends[:, None] - window_samples + np.arange(window_samples)
    return np.asarray(samples, np.float32)[idx][:, None, :], dps


def replay(model: str | Path, streams, events: Sequence[int], labels: Sequence[int], *,
           threshold: float | None = None, progress: Callable[[int], None] | None = None
           ) -> Replay:
    """Replay `events` of `streams` through `model` as the app does.

    Parameters
    ----------
    model : path-like
        A .pt, .ptl, .pte or .bpte file (its spec gives window length and threshold).
    streams : EventStreams
    events : sequence of int
        Event indices, in the order to report.
    labels : sequence of int
        Label of each event (1 seizure, 0 not).
    threshold : float, optional
        Decision threshold on p(seizure); default the spec's (0.5 without a spec).
    progress : callable, optional
        Called with the number of events done.

    Raises
    ------
    InputError
        If the model cannot be loaded or does not take the windows.
    """
    from osdml.export.validate import artefact_runner, one_thread

    path = Path(model)
    fmt = model_format(path)
    spec = model_spec(path)
    window = spec.window_samples if spec else 750
    th = threshold if threshold is not None else (spec.threshold if spec else 0.5)
    run = _checked(artefact_runner(fmt, path), path, window)
    spd = int(round(streams.sample_rate_hz * STEP_S))
    traces, skipped = [], {"shorter than one window": 0}
    for k, (ei, label) in enumerate(zip(events, labels, strict=True)):
        rows = streams.segment_rows(int(ei))
        samples = np.concatenate([streams.samples[s:s + n] for s, n, _ in rows]) if len(rows) \
            else np.empty(0, np.float32)
        dp_global = np.concatenate([np.arange(s // spd, (s + n) // spd) for s, n, _ in rows]) \
            if len(rows) else np.empty(0, np.int64)
        x, dps = app_windows(samples, window, spd)
        if not len(x):
            skipped["shorter than one window"] += 1
        with one_thread():
            logits = np.concatenate([run(x[i:i + 1]) for i in range(len(x))]) if len(x) \
                else np.empty((0, 2), np.float32)
        z = logits - logits.max(axis=1, keepdims=True) if len(logits) else logits
        p = (np.exp(z)[:, 1] / np.exp(z).sum(axis=1)) if len(z) else np.empty(0)
        traces.append(trace_of(streams, int(ei), int(label), dp_global[dps], p,
                             np.zeros(len(p), np.int64), spd))
        if progress:
            progress(k + 1)
    rows = [score_trace(t, th) for t in traces]
    summary = {"model": str(path), "format": fmt, "runtime": RUNTIMES[fmt], "threshold": th,
               "spec": spec is not None, "n_events": len(traces),
               "skipped": {k: v for k, v in skipped.items() if v},
               "events": event_summary(rows)}
    return Replay(path, fmt, RUNTIMES[fmt], th, traces, rows, summary, skipped)


def _checked(run, path: Path, window: int):
    """Wrap `run` so that a window it cannot take, or an output that is not (1, 2) logits,
    is one clear ``InputError`` naming the file (checked on the first call)."""
    from osdml.errors import InputError

    checked = False

    def call(x: np.ndarray) -> np.ndarray:
        nonlocal checked
        try:
            y = np.asarray(run(x))
        except InputError:
            raise
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"{path}: the model does not take a (1, 1, {window}) float32 "
                             f"window ({first})") from None
        if not checked:
            if y.shape != (1, 2):
                raise InputError(f"{path}: the model gives output of shape {tuple(y.shape)}; "
                                 "replay needs logits of shape (1, 2) (non-seizure, seizure) "
                                 "as the app reads them")
            checked = True
        return y
    return call


def compare_histories(replays: Sequence[Replay]) -> list[dict[str, Any]]:
    """Events whose alarm state histories differ between `replays` (empty when identical).

    Returns
    -------
    list of dict
        Per differing event: ``id`` and ``states`` (format -> state history), and the first
        decision where they differ with each format's p(seizure) there.
    """
    if len(replays) < 2:
        return []
    out = []
    for i, row in enumerate(replays[0].rows):
        hist = {r.format if sum(x.format == r.format for x in replays) == 1 else str(r.model):
                r.rows[i]["states"] for r in replays}
        if len(set(hist.values())) > 1:
            first = min(k for k in range(max(len(h) for h in hist.values()))
                        if len({h[k:k + 1] for h in hist.values()}) > 1)
            out.append({"id": row["id"], "states": hist, "first_difference": first,
                        "p": {name: float(r.traces[i].p[first]) if first < len(r.traces[i].p)
                              else None for name, r in zip(hist, replays, strict=True)}})
    return out


def write_replay(result: Replay, out_dir: str | Path, streams, timelines: int = 4
                 ) -> dict[str, Path]:
    """Write ``replay.csv``, ``replay.json`` and the reports of `result` into `out_dir`."""
    from osdml.evaluate.runreport import write_replay_report
    from osdml.fileio import write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": write_events_csv(out / "replay.csv", result.rows, REPLAY_COLUMNS),
             "json": write_json(out / "replay.json", result.summary)}
    md, html = write_replay_report(out, result.traces, result.rows, result.summary, streams,
                                   streams.index_of(), result.threshold, timelines,
                                   title=f"Replay of {result.model.name}")
    paths.update(md=md, html=html)
    return paths
