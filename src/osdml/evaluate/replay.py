"""Replay events through models exactly as the OpenSeizureDetector app runs them.

For each event, its datapoints are fed in time order. Each model has its own buffer of its
input length (750 samples for DeepEpiCnn, 125 for the app's TFLite cnn_v0.24): every datapoint
appends its 125 samples (g), and once the buffer is full the model runs after every datapoint,
one inference at a time in the file's own runtime (eager torch for .pt, the lite interpreter for
.ptl, ExecuTorch for .pte / .bpte, LiteRT for .tflite). p is the softmax of the two logits
(ExecuTorch and torch formats) or a TFLite model's output[0][1] as is, like the app. The app's
engine (``osdml.app.engine``) then applies the movement gate, the threshold, voting with the
built-in OSD algorithm (re-run from the raw samples) and the WarnTime / AlarmTime counter,
starting from OK for each event. Like the app, a gap in the recording does not reset anything.

Each model alone is scored with its own settings (the threshold and gate tuned into its spec,
or the app's defaults), the OSD algorithm alone and all models + OSD combined with the common
settings. Each model alone is also scored by the event rule of Spahr et al. (Epilepsia 2025,
``osdml.evaluate.paper``) on the same votes. Formats of one model (the same spec) must give
identical alarm histories; ``compare_histories`` says where they do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osdml.app.engine import AppSettings
from osdml.evaluate.events import EventTrace, buffer_windows, event_trace, score_trace
from osdml.evaluate.metrics import event_summary
from osdml.evaluate.paper import paper_columns, paper_scores

RUNTIMES = {"pt": "eager torch", "ptl": "lite interpreter", "pte": "ExecuTorch",
            "bpte": "ExecuTorch", "tflite": "LiteRT"}
REPLAY_COLUMNS = ("id", "user", "type", "subtype", "label", "model", "format",
                  "threshold_pct", "gate_pct", "recording_s", "datapoints", "decisions",
                  "gated", "max_p", "alarm", "warning", "alarms", "first_alarm_s", "latency_s",
                  "states", "osd_alarm", "osd_alarms", "osd_latency_s", "osd_states",
                  "combined_alarm", "combined_alarms", "combined_latency_s", "combined_states",
                  "recorded_alarm", "recorded_alarms", "recorded_latency_s",
                  "paper_detected", "paper_false_alarms", "paper_latency_s")


@dataclass
class ReplayModel:
    """One model file as the app would run it.

    ``name`` is unique within a replay (the file name, or folder-file when names repeat);
    ``settings`` the model's own: its spec's tuned threshold and gate over the common ones;
    ``spec_json`` the spec (None without one), which groups the formats of one model.
    """

    path: Path
    name: str
    format: str
    runtime: str
    input_size: int
    settings: AppSettings
    spec_json: str | None
    p_of: Callable[[np.ndarray], float] = field(repr=False)


@dataclass
class Replay:
    """Models replayed over events: ``traces`` (one per event, a row of p per model),
    ``rows`` (model name -> ``score_trace`` rows, with the paper's per-event columns
    ``paper_detected``, ``paper_false_alarms``, ``paper_latency_s``), ``settings`` (the common
    settings of the OSD-alone and combined results) and ``summary`` (per model ``events``, the
    app engine's ``event_summary``, and ``paper``, the ``osdml.evaluate.paper`` summary of
    Spahr et al. 2025 on the same votes)."""

    models: list[ReplayModel]
    settings: AppSettings
    traces: list[EventTrace]
    rows: dict[str, list[dict[str, Any]]]
    summary: dict[str, Any]


def model_format(path: str | Path) -> str:
    """``pt``, ``ptl``, ``pte``, ``bpte`` or ``tflite`` from the file's content.

    Raises
    ------
    InputError
        If the file is not a model file osdml can run.
    """
    from osdml.errors import InputError
    from osdml.export import sniff as sn

    found = sn.sniff(path)
    fmt = {sn.PTE: "pte", sn.BPTE: "bpte", sn.PTL: "ptl",
           getattr(sn, "TFLITE", "tflite"): "tflite"}.get(found.kind)
    if fmt:
        return fmt
    if found.kind in (sn.CHECKPOINT, sn.TORCHSCRIPT):
        return "pt"
    raise InputError(f"cannot replay {path}: {found.description}")


def model_spec(path: str | Path):
    """The ``ModelSpec`` stored in a model file of any torch format, or None without one."""
    from osdml.export.inspect import describe
    from osdml.spec import ModelSpec

    spec = describe(path).get("spec")
    return None if not spec else ModelSpec.model_validate(spec)


def load_model(path: str | Path, name: str, common: AppSettings,
               overrides: dict[str, Any] | None = None, tflite_mg: bool = False
               ) -> ReplayModel:
    """Load a model file in its own runtime for replay.

    Parameters
    ----------
    path : path-like
    name : str
    common : AppSettings
        The settings every model starts from.
    overrides : dict, optional
        Settings given explicitly (they beat the spec's tuned values).
    tflite_mg : bool, default=False
        Feed a .tflite model milli-g, as app versions before V4.4.0 (January 2026) did; the
        current app feeds g (``rawData / 1000``), and a model trained on milli-g then sees
        inputs 1000 times too small.

    Raises
    ------
    InputError
        If the file cannot be loaded, does not take the app's input (a three-axis model,
        spec input "xyz", is refused: the app feeds magnitude only) or does not give what
        the app reads.
    """
    from osdml.app.engine import app_probability

    path = Path(path)
    fmt = model_format(path)
    if fmt == "tflite":
        from osdml.export.tflite import TfliteRunner

        runner = TfliteRunner(path)
        scale = np.float32(1000.0 if tflite_mg else 1.0)
        return ReplayModel(path, name, fmt, RUNTIMES[fmt] + (", fed milli-g" if tflite_mg
                                                            else ""),
                           int(runner.input_size), common.with_(**(overrides or {})), None,
                           lambda x, r=runner: float(r.p(x * scale)))
    from osdml.export.validate import artefact_runner

    spec = model_spec(path)
    if spec is not None and spec.input != "magnitude":
        from osdml.errors import InputError
        from osdml.spec import XYZ_REFUSED

        raise InputError(XYZ_REFUSED.format(what="replay", path=path) + "; its run folder's "
                         "events.csv holds what the app's engine would do if fed x, y, z")
    size = spec.window_samples if spec else _input_size(fmt, path)
    tuned = {k: (spec.app_settings or {}).get(k) for k in ("threshold_pct", "gate_pct")} \
        if spec else {}
    settings = common.with_(**tuned).with_(**(overrides or {}))
    run = _checked(artefact_runner(fmt, path), path, size)
    return ReplayModel(path, name, fmt, RUNTIMES[fmt], size, settings,
                       spec.model_dump_json(exclude={"created_utc"}) if spec else None,
                       lambda x: float(app_probability(run(x))[0]))


def _input_size(fmt: str, path: Path) -> int:
    """A spec-less file's input length: the program's own for .pte, else DeepEpiCnn's 750."""
    if fmt == "pte":
        from osdml.export.pte import PteRunner

        return int(PteRunner(path).input_shape[-1])
    return 750


def replay(models: Sequence[ReplayModel], streams, events: Sequence[int],
           labels: Sequence[int], settings: AppSettings,
           progress: Callable[[int], None] | None = None) -> Replay:
    """Replay `events` of `streams` through `models` as the app does.

    Parameters
    ----------
    models : sequence of ReplayModel
        From ``load_model``.
    streams : EventStreams
    events, labels : sequence of int
        Event indices and labels (1 seizure, 0 not), in the order to report.
    settings : AppSettings
        The common settings (OSD alone, models + OSD combined).
    progress : callable, optional
        Called with the number of events done.

    Raises
    ------
    InputError
        If a model does not take its input or does not give what the app reads.
    """
    from osdml.export.validate import one_thread

    names = [m.name for m in models]
    traces = []
    for k, (ei, label) in enumerate(zip(events, labels, strict=True)):
        n = len(streams.event_datapoints(int(ei)))
        p = np.full((len(models), n), np.nan, dtype=np.float32)
        for i, m in enumerate(models):
            dp, starts = buffer_windows(streams, int(ei), m.input_size)
            with one_thread():
                for d, s in zip(dp.tolist(), starts.tolist(), strict=True):
                    x = np.array(streams.samples[s:s + m.input_size],  # a writable copy
                                 dtype=np.float32).reshape(1, 1, -1)
                    p[i, d] = m.p_of(x)
        traces.append(event_trace(streams, int(ei), int(label), p, names))
        if progress:
            progress(k + 1)
    rows = {m.name: [score_trace(t, m.settings, i, settings) for t in traces]
            for i, m in enumerate(models)}
    # the paper's event rule (Spahr et al. 2025) on each model's own votes
    paper = {m.name: paper_scores(traces, m.settings, i) for i, m in enumerate(models)}
    for m in models:
        for r, pr in zip(rows[m.name], paper[m.name]["events"], strict=True):
            r.update(paper_columns(pr))
    first = rows[names[0]] if names else []
    summary = {
        "settings": settings.to_dict(), "n_events": len(traces),
        "no_decision": {m.name: sum(1 for r in rows[m.name] if not r["decisions"])
                        for m in models},
        "models": [{"model": str(m.path), "name": m.name, "format": m.format,
                    "runtime": m.runtime, "input_size": m.input_size,
                    "settings": m.settings.to_dict(), "spec": m.spec_json is not None,
                    "events": event_summary(rows[m.name]),
                    "paper": paper[m.name]["summary"]} for m in models],
        "osd": event_summary(first)["osd"] if first else None,
        "combined": event_summary(first)["combined"] if first else None,
        "recorded": event_summary(first)["recorded"] if first else None,
        "osd_reproduction": osd_reproduction(traces),
        "notes": model_notes(models, traces),
    }
    return Replay(list(models), settings, traces, rows, summary)


def model_notes(models: Sequence[ReplayModel], traces: Sequence[EventTrace]) -> list[str]:
    """Notes on models whose outputs the app would misread: p that never changes over all
    decisions (fed the wrong units, such as a milli-g TFLite model fed g by the current app),
    a TFLite output outside [0, 1] (logits where the app expects probabilities)."""
    notes = []
    for i, m in enumerate(models):
        p = np.concatenate([t.p[i][~np.isnan(t.p[i])] for t in traces]) if traces else []
        if len(p) and m.format == "tflite" and not ((p >= 0) & (p <= 1)).all():
            notes.append(f"{m.name}: output[0][1] reaches {float(p.min()):.3g} .. "
                         f"{float(p.max()):.3g}, outside [0, 1]: not probabilities (logits?); "
                         "the app reads it as p without a softmax (osdml validate checks it)")
        if len(p) > 1 and float(np.ptp(p)) == 0.0:
            hint = (" (a model made for milli-g, as app versions before V4.4.0 fed TFLite "
                    "models? try --tflite-mg)" if m.format == "tflite" and "milli-g" not in
                    m.runtime else "")
            notes.append(f"{m.name}: p is {float(p[0]):.3g} on every one of {len(p)} "
                         f"decisions: the model never changes its answer{hint}")
    return notes


def osd_reproduction(traces: Sequence[EventTrace]) -> dict[str, Any]:
    """How many datapoints with recorded ``specPower`` and ``roiPower`` the re-run OSD
    algorithm reproduces exactly (both values)."""
    osd = np.concatenate([t.osd for t in traces]) if traces else np.empty((0, 6), np.int64)
    recorded = (osd[:, 4] >= 0) & (osd[:, 5] >= 0)
    same = recorded & (osd[:, 0] == osd[:, 4]) & (osd[:, 1] == osd[:, 5])
    n = int(recorded.sum())
    return {"datapoints": int(len(osd)), "with_recorded_powers": n,
            "reproduced_exactly": int(same.sum()),
            "share": float(same.sum() / n) if n else None}


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
        if not np.isfinite(y).all():
            raise InputError(f"{path}: the model gives non-finite logits {y.ravel().tolist()} "
                             "on a real window; the app's p would be NaN and it would never "
                             "alarm: a broken model")
        return y
    return call


def parity_groups(models: Sequence[ReplayModel]) -> list[list[int]]:
    """Indices of models that are formats of one model (the same spec), groups of 2 or more."""
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(models):
        if m.spec_json is not None:
            groups.setdefault(m.spec_json, []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def compare_histories(result: Replay) -> list[dict[str, Any]]:
    """Events whose alarm histories differ between formats of one model (empty when every
    group is identical).

    Returns
    -------
    list of dict
        Per differing event and group: ``id``, ``states`` (model name -> state history), the
        first datapoint where they differ and each model's p there.
    """
    out = []
    for group in parity_groups(result.models):
        names = [result.models[i].name for i in group]
        for k, trace in enumerate(result.traces):
            hist = {n: result.rows[n][k]["states"] for n in names}
            if len(set(hist.values())) > 1:
                first = min(j for j in range(max(len(h) for h in hist.values()))
                            if len({h[j:j + 1] for h in hist.values()}) > 1)
                out.append({"id": trace.id, "states": hist, "first_difference": first,
                            "p": {n: (None if np.isnan(trace.p[i, first]) else
                                      float(trace.p[i, first]))
                                  for n, i in zip(names, group, strict=True)}})
    return out


REPLAY_FILES = ("replay.csv", "replay.json", "decisions.csv", "parity.json", "report.md",
                "report.html", "plots")


def write_replay(result: Replay, out_dir: str | Path, streams, timelines: int = 4,
                 detail: bool = False, parity: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``replay.csv`` (one row per event and model), ``replay.json``, the reports, with
    `detail` ``decisions.csv`` (one row per datapoint) and, given, ``parity.json`` into
    `out_dir`.

    Everything is written into a temporary folder inside `out_dir` first; only when all is
    written are the files moved in, replacing those of an earlier replay (and removing the
    ones this replay does not write), so `out_dir` never mixes two replays' files.
    """
    import shutil

    from osdml.evaluate.events import write_events_csv
    from osdml.evaluate.runreport import write_replay_report
    from osdml.fileio import write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = out / ".replay.partial"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    rows = [dict(r, model=m.name, format=m.format, threshold_pct=m.settings.threshold_pct,
                 gate_pct=m.settings.gate_pct)
            for k in range(len(result.traces)) for m in result.models
            for r in (result.rows[m.name][k],)]
    write_events_csv(work / "replay.csv", rows, REPLAY_COLUMNS)
    write_json(work / "replay.json", result.summary)
    if detail:
        write_decisions(work / "decisions.csv", result)
    if parity is not None:
        write_json(work / "parity.json", parity)
    write_replay_report(work, result, streams, timelines)
    for name in REPLAY_FILES:  # the earlier replay's files go, this one's come in
        old = out / name
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
        if (work / name).exists():
            (work / name).replace(old)
    work.rmdir()
    return {key: out / name for key, name in (("csv", "replay.csv"), ("json", "replay.json"),
                                              ("decisions", "decisions.csv"),
                                              ("parity", "parity.json"), ("md", "report.md"),
                                              ("html", "report.html"))
            if (out / name).exists()}


DECISION_COLUMNS = ("event_id", "user", "label", "data_time", "t_s", "datapoint",
                    "movement_pct", "gate")


def write_decisions(path: Path, result: Replay) -> Path:
    """``decisions.csv``: one row per datapoint the detector saw, in event and time order.

    Columns: ``event_id``, ``user``, ``label``, ``data_time`` (ISO 8601 UTC), ``t_s`` (s from
    the event time), ``datapoint`` (position in the event), ``movement_pct`` and ``gate`` (1
    when the movement gate set every model's p to 0); per model ``p_<name>`` (its output,
    empty while its buffer is not full), ``vote_<name>`` and ``state_<name>`` (the model
    alone with its settings); the OSD algorithm's ``osd_spec_power``, ``osd_roi_power``,
    ``osd_recorded_spec_power``, ``osd_recorded_roi_power`` (empty when not recorded),
    ``osd_vote`` and ``osd_state`` (alone); ``combined_vote`` and ``state`` (models + OSD as the
    app combines them, common settings); ``recorded_state`` (the app's ``alarmState``).
    """
    import csv
    from datetime import UTC, datetime

    from osdml.fileio import atomic_write

    s = result.settings
    names = [m.name for m in result.models]
    cols = [*DECISION_COLUMNS, *(f"{k}_{n}" for n in names for k in ("p", "vote", "state")),
            "osd_spec_power", "osd_roi_power", "osd_recorded_spec_power",
            "osd_recorded_roi_power", "osd_vote", "osd_state", "combined_vote", "state",
            "recorded_state"]
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for t in result.traces:
            comb = t.engine(s)
            osd = t.engine(s, [], osd=True)
            alone = [t.engine(m.settings, [i], osd=False) for i, m in enumerate(result.models)]
            gate = t.movement_pct < s.gate_pct
            osd_votes = t.osd_votes
            for j in range(t.n):
                when = t.data_time_s[j] if len(t.data_time_s) else np.nan
                row = [t.id, t.user, t.label,
                       "" if not np.isfinite(when) else
                       datetime.fromtimestamp(float(when), UTC).isoformat().replace("+00:00", "Z"),
                       f"{t.t_s[j]:g}", j, f"{t.movement_pct[j]:.4f}", int(gate[j])]
                for i in range(len(names)):
                    pv = t.p[i, j]
                    row += ["" if np.isnan(pv) else f"{pv:.6f}", int(alone[i].votes[0, j]),
                            int(alone[i].states[j])]
                rec_s, rec_r = int(t.osd[j, 4]), int(t.osd[j, 5])
                row += [int(t.osd[j, 0]), int(t.osd[j, 1]), "" if rec_s < 0 else rec_s,
                        "" if rec_r < 0 else rec_r, int(osd_votes[j]), int(osd.states[j]),
                        int(comb.combined[j]), int(comb.states[j]),
                        int(t.recorded_state[j])]
                w.writerow(row)
    return Path(path)
