"""The reports of a cross-validation run and of a replay: ``report.md`` and ``report.html``.

Both are built from files the run or replay wrote (fold summaries, ``predictions.npz``,
``sweep.json``) and the event streams, with the plots of ``osdml.evaluate.report``. The HTML
file is self-contained (plots embedded), the markdown file links the PNGs in ``plots/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from osdml.evaluate.events import (
    EventTrace,
    event_acceleration,
    score_trace,
    traces_from_windows,
)
from osdml.evaluate.metrics import event_summary, threshold_sweep
from osdml.fileio import write_json

FOLD_COLUMNS = ["fold", "epoch", "val event sens.", "val FAR/24h", "test window sens.",
                "test window FPR", "ROC AUC", "test event sens.", "test FAR/24h",
                "latency s", "OSD sens.", "OSD FAR/24h"]
FOLD_KEYS = ["chosen_epoch", "val_event_sensitivity", "val_far_24h", "test_window_sensitivity",
             "test_window_fpr", "test_window_roc_auc", "test_event_sensitivity", "test_far_24h",
             "test_latency_mean_s", "osd_event_sensitivity", "osd_far_24h"]


def fold_predictions(fold_dir: Path, streams, part: str = "test"):
    """The windows and p(seizure) a fold recorded for `part` ("validation" or "test").

    Returns
    -------
    (starts, event, labels, p) or None
        Window starts in ``streams.samples``, event indices, labels and p(seizure); None when
        the fold has no ``predictions.npz`` or it does not match `streams` (the data changed
        since the fold was trained).
    """
    path = Path(fold_dir) / "predictions.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        ids = z["event_ids"].tolist()
        if ids != [e.id for e in streams.events]:
            return None
        starts, event = z[f"{part}_starts"], z[f"{part}_event"]
        labels, p = z[f"{part}_labels"], z[f"{part}_p"]
    if len(starts) and starts.max() >= len(streams.samples):
        return None
    return starts, event, labels, p


def _fold_traces(fold_dir: Path, streams, selection, split_events: np.ndarray, cfg
                 ) -> tuple[list[EventTrace], np.ndarray, np.ndarray] | None:
    from osdml.data.windows import Windows
    from osdml.evaluate.events import labels_of

    got = fold_predictions(fold_dir, streams)
    if got is None:
        return None
    starts, event, labels, p = got
    window, hop = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    w = Windows(streams, starts, event, labels, window)
    traces = traces_from_windows(w, p, labels_of(selection, split_events),
                                 cfg.data.reader.samples_per_datapoint, hop)
    return traces, labels, p


def write_run_report(result, streams, selection, cfg) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``plots/`` of a cross-validation run.

    Parameters
    ----------
    result : osdml.crossval.CrossValRun
    streams, selection : the run's data (``EventStreams``, ``Selection``)
    cfg : RunConfig
    """
    from osdml.data.split import read_manifest
    from osdml.evaluate import report as rp

    run_dir = Path(result.run_dir)
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    threshold = cfg.train.threshold
    splits = {s.name: s for s in read_manifest(run_dir / "split.json", streams)}
    # ------------------------------------------------------------ pooled out-of-fold test
    traces_by_fold, roc, confusion, sweeps = {}, {}, {}, {}
    for name in result.outer:
        got = _fold_traces(run_dir / "folds" / name, streams, selection, splits[name].test, cfg)
        if got is None:
            continue
        traces, labels, p = got
        traces_by_fold[name] = traces
        roc[name] = (labels, p)
        pred = (p >= threshold).astype(int)
        confusion[f"{name} windows"] = _cm(labels, pred)
        rows = [score_trace(t, threshold) for t in traces]
        confusion[f"{name} events (alarm)"] = _cm([r["label"] for r in rows],
                                                  [int(r["alarm"]) for r in rows])
        sweeps[name] = threshold_sweep(traces)
    pooled = [t for ts in traces_by_fold.values() for t in ts]
    rows = [score_trace(t, threshold) for t in pooled]
    pooled_summary = event_summary(rows)
    if len(traces_by_fold) > 1:
        sweeps["all folds (out-of-fold)"] = threshold_sweep(pooled)
    osd = pooled_summary["osd"]
    images = {
        "roc": rp.plot_roc(roc, plots / "roc.png", title="ROC of test windows per fold"),
        "sweep": rp.plot_sweep(sweeps, plots / "sweep.png", threshold,
                               baseline=(osd["sensitivity"], osd["far_24h"]),
                               title="Threshold sweep on test events (app alarm rule)"),
        "confusion": rp.plot_confusion(confusion, plots / "confusion.png",
                                       title=f"Test confusion matrices at p >= {threshold:g}"),
        "per_user": rp.plot_per_user(pooled_summary["per_user"], plots / "per_user.png",
                                     title="Event sensitivity per user (out-of-fold test)"),
    }
    timelines = _timelines(pooled, rows, streams, threshold, plots, cfg.evaluate.timelines)
    # ------------------------------------------------------------ blocks
    s = result.summary
    blocks: list[tuple] = [
        ("p", f"Method: {s['method']} over {len(s['splits'])} splits; decision threshold "
              f"{threshold:g}; best fold {result.best}: {result.reason}."),
    ]
    if result.warning:
        blocks.append(("p", f"Warning: {result.warning}"))
    if result.failures:
        blocks.append(("p", "Artefacts out of tolerance: " + "; ".join(result.failures)))
    blocks += [("h2", "Folds"),
               ("table", FOLD_COLUMNS, [[n] + [s["folds"][n].get(k) for k in FOLD_KEYS]
                                        for n in s["splits"]]),
               ("p", "Validation numbers choose the checkpoint and the best fold; test numbers "
                     "are reported only. Event sensitivity and false alarms per 24 h follow the "
                     "app's alarm rule (ALARM reached); OSD = the OpenSeizureDetector built-in "
                     "algorithm's recorded alarm state 2 on the same events."),
               ("h2", "Mean and standard deviation over folds"),
               ("table", ["metric", "mean", "std", "folds"],
                [[k, v["mean"], v["std"], v["n"]] for k, v in result.stats.items()]),
               ("h2", "Out-of-fold test events: model and OSD algorithm"),
               ("table", *_summary_table(pooled_summary)),
               ("h2", "Per user"), ("table", *_group_table(pooled_summary["per_user"], "user")),
               ("h2", "Per seizure subtype"),
               ("table", *_group_table(pooled_summary["per_subtype"], "subtype")),
               ("h2", "Plots"),
               ("image", images["sweep"], "Event sensitivity against false alarms per 24 h"),
               ("image", images["roc"], "ROC of test windows"),
               ("image", images["confusion"], "Confusion matrices (rows: true class)"),
               ("image", images["per_user"], "Event sensitivity per user"),
               ("h2", "Training curves")]
    blocks += [("image", run_dir / "folds" / n / "training.png", n) for n in s["splits"]]
    blocks += _timeline_blocks(timelines)
    blocks += [("h2", "Best model"), ("p", f"Copied to {run_dir / 'best'} (see manifest.json).")]
    write_json(run_dir / "pooled_test.json", {"summary": pooled_summary, "events": rows})
    return rp.write_report(run_dir / "report.md", run_dir / "report.html",
                           f"Cross-validation run {run_dir.name}", blocks)


def write_replay_report(out_dir: Path, traces: list[EventTrace], rows: list[dict],
                        summary: dict[str, Any], streams, event_index: dict[str, int],
                        threshold: float, timelines: int = 4, title: str = "Replay"
                        ) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``plots/`` of a replay."""
    from osdml.evaluate import report as rp

    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    ev = summary["events"]
    osd = ev["osd"]
    images = [
        (rp.plot_sweep({"model": threshold_sweep(traces)}, plots / "sweep.png", threshold,
                       baseline=(osd["sensitivity"], osd["far_24h"]),
                       title="Threshold sweep (app alarm rule)"), "Threshold sweep"),
        (rp.plot_per_user(ev["per_user"], plots / "per_user.png",
                          title="Event sensitivity per user"), "Sensitivity per user"),
    ]
    if len({t.label for t in traces}) == 2:
        p = np.concatenate([t.p for t in traces])
        labels = np.concatenate([np.full(len(t.p), t.label) for t in traces])
        images.insert(0, (rp.plot_roc({"model": (labels, p)}, plots / "roc.png"),
                          "ROC of decisions"))
        images.append((rp.plot_confusion(
            {"events (alarm)": _cm([r["label"] for r in rows], [int(r["alarm"]) for r in rows])},
            plots / "confusion.png"), "Confusion matrix of events"))
    tl = _timelines(traces, rows, streams, threshold, plots, timelines, event_index)
    blocks: list[tuple] = [
        ("p", f"Model {summary['model']} ({summary['format']}, {summary['runtime']}), threshold "
              f"{threshold:g}, {summary['n_events']} events fed datapoint by datapoint as the "
              "app does (750-sample buffer, one inference per 5 s datapoint, alarm counters "
              "reset per event)."),
        ("h2", "Events: model and OSD algorithm"), ("table", *_summary_table(ev)),
        ("h2", "Per user"), ("table", *_group_table(ev["per_user"], "user")),
        ("h2", "Per seizure subtype"), ("table", *_group_table(ev["per_subtype"], "subtype")),
        ("h2", "Plots")]
    blocks += [("image", path, cap) for path, cap in images]
    blocks += _timeline_blocks(tl)
    return rp.write_report(out_dir / "report.md", out_dir / "report.html", title, blocks)


# --------------------------------------------------------------------------- pieces

def _cm(labels, pred) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(np.asarray(labels, int), np.asarray(pred, int), labels=[0, 1])


def _summary_table(ev: dict[str, Any]) -> tuple[list[str], list[list]]:
    m, o, tc = ev["model"], ev["osd"], ev["tonic_clonic"]
    rows = [
        ["seizure events", m["seizure_events"], o["seizure_events"]],
        ["detected (ALARM reached)", m["detected"], o["detected"]],
        ["event sensitivity", m["sensitivity"], o["sensitivity"]],
        ["event sensitivity, any-window rule", m.get("sensitivity_any_window"), None],
        ["tonic-clonic sensitivity", tc["sensitivity"], tc["osd_sensitivity"]],
        ["non-seizure events", m["non_seizure_events"], o["non_seizure_events"]],
        ["non-seizure hours", m["non_seizure_hours"], o["non_seizure_hours"]],
        ["false alarms", m["false_alarms"], o["false_alarms"]],
        ["false alarms per 24 h", m["far_24h"], o["far_24h"]],
        ["mean latency from seizure start, s", m["latency_mean_s"], o["latency_mean_s"]],
        ["median latency, s", m["latency_median_s"], o["latency_median_s"]],
    ]
    return ["", "model", "OSD algorithm"], rows


def _group_table(groups: dict[str, dict], name: str) -> tuple[list[str], list[list]]:
    cols = [name, "seizures", "detected", "sensitivity", "OSD sensitivity", "non-seizure h",
            "false alarms", "FAR/24h", "OSD FAR/24h"]
    return cols, [[k, g["seizure_events"], g["detected"], g["sensitivity"], g["osd_sensitivity"],
                   g["non_seizure_hours"], g["false_alarms"], g["far_24h"], g["osd_far_24h"]]
                  for k, g in groups.items()]


def _timelines(traces, rows, streams, threshold, plots: Path, n: int,
               event_index: dict[str, int] | None = None) -> list[tuple[str, Path, str]]:
    """Timelines of up to `n` missed seizures and `n` false alarms (most confident first)."""
    from osdml.evaluate import report as rp

    index = event_index or streams.index_of()
    missed = [(t, r) for t, r in zip(traces, rows, strict=True)
              if r["label"] == 1 and not r["alarm"]]
    false = [(t, r) for t, r in zip(traces, rows, strict=True)
             if r["label"] == 0 and r["alarm"]]
    missed.sort(key=lambda tr: -(tr[1]["max_p"] or 0))
    false.sort(key=lambda tr: (-tr[1]["alarms"], -(tr[1]["max_p"] or 0)))
    out = []
    for kind, items in (("missed seizure", missed[:n]), ("false alarm", false[:n])):
        for t, r in items:
            ei = index.get(t.id)
            accel = event_acceleration(streams, ei) if ei is not None else None
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(t.id))[:40]
            path = rp.plot_timeline(t, threshold, plots / f"timeline-{safe}.png", accel=accel,
                                    title=f"{kind}: event {t.id}, user {t.user}, {t.type}"
                                          f"{' / ' + t.subtype if t.subtype else ''}")
            out.append((kind, path, f"{kind}: event {t.id} (user {t.user}, max p "
                                    f"{(r['max_p'] or 0):.2f}, {r['alarms']} alarms)"))
    return out


def _timeline_blocks(timelines) -> list[tuple]:
    blocks: list[tuple] = [("h2", "Missed seizures and false alarms")]
    if not timelines:
        return blocks + [("p", "None: every seizure event reached ALARM and no non-seizure "
                               "event did.")]
    return blocks + [("image", path, cap) for _, path, cap in timelines]
