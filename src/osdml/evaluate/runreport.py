"""The reports of a cross-validation run and of a replay: ``report.md`` and ``report.html``.

Both are built from files the run or replay wrote (fold summaries, ``predictions.npz``,
``sweep.json``) and the event streams, with the plots of ``osdml.evaluate.report``. The HTML
file is self-contained (plots embedded), the markdown file links the PNGs in ``plots/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from osdml.app.engine import AppSettings
from osdml.evaluate.events import EventTrace, event_acceleration, score_trace
from osdml.evaluate.metrics import event_summary, threshold_sweep
from osdml.evaluate.paper import paper_scores, paper_summary, paper_table
from osdml.fileio import write_json

FOLD_COLUMNS = ["fold", "epoch", "threshold %", "gate %", "val event sens.", "val FAR/24h",
                "test window sens.", "test window FPR", "ROC AUC", "test event sens.",
                "test FAR/24h", "latency s", "OSD sens.", "OSD FAR/24h", "model+OSD sens.",
                "model+OSD FAR/24h", "paper sens.", "paper FAR/24h"]
FOLD_KEYS = ["chosen_epoch", "threshold_pct", "gate_pct", "val_event_sensitivity",
             "val_far_24h", "test_window_sensitivity", "test_window_fpr",
             "test_window_roc_auc", "test_event_sensitivity", "test_far_24h",
             "test_latency_mean_s", "osd_event_sensitivity", "osd_far_24h",
             "combined_event_sensitivity", "combined_far_24h", "test_paper_sensitivity",
             "test_paper_far_24h"]


def fold_predictions(fold_dir: Path, streams, part: str = "test"):
    """What a fold recorded for `part` ("validation" or "test") in ``predictions.npz``.

    Returns
    -------
    dict or None
        ``starts``, ``event``, ``labels``, ``p`` of the evaluation windows, and ``app_starts``,
        ``app_p`` of every input the app's buffer gave the model; None when the fold has no
        ``predictions.npz``, an older one, or one that does not match `streams` (the data
        changed since the fold was trained).
    """
    path = Path(fold_dir) / "predictions.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if f"{part}_app_starts" not in z or z["event_ids"].tolist() != \
                [e.id for e in streams.events]:
            return None
        got = {k: z[f"{part}_{k}"] for k in ("starts", "event", "labels", "p", "app_starts",
                                              "app_p")}
    n = len(streams.samples)
    if any(len(got[k]) and got[k].max() >= n for k in ("starts", "app_starts")):
        return None
    return got


def fold_settings(summary: dict[str, Any], cfg) -> AppSettings:
    """The app settings a fold was evaluated with (tuned on its validation part)."""
    rec = summary.get("app_settings") or {}
    keys = ("threshold_pct", "gate_pct", "warn_s", "alarm_s", "voting", "osd")
    return cfg.app.settings().with_(**{k: rec.get(k) for k in keys})


def _fold_traces(fold_dir: Path, streams, selection, split_events: np.ndarray, cfg
                 ) -> tuple[list[EventTrace], np.ndarray, np.ndarray] | None:
    from osdml.evaluate.events import p_lookup, traces_for

    got = fold_predictions(fold_dir, streams)
    if got is None:
        return None
    window, _ = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    p_at = p_lookup(got["app_starts"], got["app_p"],
                    lambda st: np.full(len(st), np.nan, np.float32))
    traces = traces_for(streams, split_events, selection.labels_for(split_events), window, p_at)
    return traces, got["labels"], got["p"]


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
    best_settings = fold_settings(result.folds[result.best], cfg)
    # ------------------------------------------------------------ pooled out-of-fold test
    traces_by_fold, roc, confusion, sweeps, rows, settings_of = {}, {}, {}, {}, [], {}
    paper_by_fold: dict[str, dict] = {}  # the paper's scoring, each fold with its settings
    for name in result.outer:
        got = _fold_traces(run_dir / "folds" / name, streams, selection, splits[name].test, cfg)
        if got is None:
            continue
        traces, labels, p = got
        settings = fold_settings(result.folds[name], cfg)
        traces_by_fold[name] = traces
        roc[name] = (labels, p)
        pred = (p >= threshold).astype(int)
        confusion[f"{name} windows"] = _cm(labels, pred)
        fold_rows = [score_trace(t, settings) for t in traces]
        rows += fold_rows
        paper_by_fold[name] = paper_scores(traces, settings)
        settings_of.update({t.id: settings for t in traces})
        confusion[f"{name} events (alarm)"] = _cm([r["label"] for r in fold_rows],
                                                  [int(r["alarm"]) for r in fold_rows])
        sweeps[f"{name} (gate {settings.gate_pct:g} %)"] = threshold_sweep(traces, settings)
    pooled = [t for ts in traces_by_fold.values() for t in ts]
    pooled_summary = event_summary(rows)
    paper_rows = [r for f in paper_by_fold.values() for r in f["events"]]
    pooled_paper = paper_summary(paper_rows)
    if len(traces_by_fold) > 1:
        sweeps[f"all folds (out-of-fold, gate {best_settings.gate_pct:g} %)"] = \
            threshold_sweep(pooled, best_settings)
    osd = pooled_summary["osd"]
    images = {
        "roc": rp.plot_roc(roc, plots / "roc.png", title="ROC of test windows per fold"),
        "sweep": rp.plot_sweep(sweeps, plots / "sweep.png", best_settings.threshold_pct / 100,
                               baseline=(osd["sensitivity"], osd["far_24h"]),
                               title="Threshold sweep on test events (the app's engine, "
                                     "model alone)"),
        "confusion": rp.plot_confusion(confusion, plots / "confusion.png",
                                       title=f"Test confusion matrices (windows at p >= "
                                             f"{threshold:g}; events by the app's engine)"),
        "per_user": rp.plot_per_user(pooled_summary["per_user"], plots / "per_user.png",
                                     title="Event sensitivity per user (out-of-fold test)"),
    }
    timelines = _timelines(pooled, rows, streams, settings_of, plots, cfg.evaluate.timelines)
    # ------------------------------------------------------------ blocks
    s = result.summary
    blocks: list[tuple] = [
        ("p", f"Method: {s['method']} over {len(s['splits'])} splits; window decision threshold "
              f"{threshold:g}; alarms by the app's engine with each fold's threshold and "
              f"movement gate tuned on its validation part ({cfg.app.tune}); best fold "
              f"{result.best}: {result.reason}."),
    ]
    if result.warning:
        blocks.append(("p", f"Warning: {result.warning}"))
    if result.failures:
        blocks.append(("p", "Artefacts out of tolerance: " + "; ".join(result.failures)))
    blocks += [("h2", "Folds"),
               ("table", FOLD_COLUMNS, [[n] + [s["folds"][n].get(k) for k in FOLD_KEYS]
                                        for n in s["splits"]]),
               ("p", "Validation numbers choose the checkpoint, the app settings and the best "
                     "fold; test numbers are reported only. Event sensitivity and false alarms "
                     "per 24 h come from the app's engine (ALARM reached): model alone, OSD = "
                     "the OpenSeizureDetector built-in algorithm re-run from the samples, "
                     "model+OSD = both as the app combines them (voting "
                     f"{cfg.app.voting})."),
               ("h2", "Mean and standard deviation over folds"),
               ("table", ["metric", "mean", "std", "folds"],
                [[k, v["mean"], v["std"], v["n"]] for k, v in result.stats.items()]),
               ("h2", "Out-of-fold test events by the app's engine"),
               ("table", *_summary_table(pooled_summary)),
               ("h2", "Paper scoring (Spahr et al. 2025)"),
               ("table", *paper_table([*((n, f["summary"]) for n, f in paper_by_fold.items()),
                                       ("all folds (out-of-fold)", pooled_paper)],
                                      label="fold")),
               ("p", _PAPER_NOTE.format(**pooled_paper)),
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
    write_json(run_dir / "pooled_test.json", {
        "summary": pooled_summary, "events": rows,
        "paper": {"summary": pooled_paper,
                  "folds": {n: f["summary"] for n, f in paper_by_fold.items()},
                  "events": paper_rows}})
    return rp.write_report(run_dir / "report.md", run_dir / "report.html",
                           f"Cross-validation run {run_dir.name}", blocks)


def write_replay_report(out_dir: Path, result, streams, timelines: int = 4
                        ) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``plots/`` of a replay
    (``osdml.evaluate.replay.Replay``)."""
    from osdml.evaluate import report as rp

    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    s = result.summary
    first = result.models[0]
    ev = s["models"][0]["events"]
    osd = s["osd"]
    sweeps = {m.name: threshold_sweep(result.traces, m.settings, model=i)
              for i, m in enumerate(result.models)}
    images = [
        (rp.plot_sweep(sweeps, plots / "sweep.png", first.settings.threshold_pct / 100,
                       baseline=(osd["sensitivity"], osd["far_24h"]),
                       title="Threshold sweep (the app's engine, each model alone)"),
         "Event sensitivity against false alarms per 24 h"),
        (rp.plot_per_user(ev["per_user"], plots / "per_user.png",
                          title=f"Event sensitivity per user ({first.name})"),
         "Sensitivity per user"),
    ]
    if len({t.label for t in result.traces}) == 2:
        curves = {}
        for i, m in enumerate(result.models):
            p = np.concatenate([t.p[i] for t in result.traces])
            labels = np.concatenate([np.full(t.n, t.label) for t in result.traces])
            keep = ~np.isnan(p)
            curves[m.name] = (labels[keep], p[keep])
        images.insert(0, (rp.plot_roc(curves, plots / "roc.png"), "ROC of decisions"))
        rows = result.rows[first.name]
        images.append((rp.plot_confusion(
            {f"{first.name} (alarm)": _cm([r["label"] for r in rows],
                                          [int(r["alarm"]) for r in rows])},
            plots / "confusion.png"), "Confusion matrix of events"))
    tl = _timelines(result.traces, result.rows[first.name], streams,
                    {t.id: first.settings for t in result.traces}, plots, timelines)
    st = result.settings
    models = "; ".join(f"{m.name} ({m.format}, {m.runtime}, {m.input_size} samples, threshold "
                       f"{m.settings.threshold_pct:g} %, gate {m.settings.gate_pct:g} %)"
                       for m in result.models)
    rep = s["osd_reproduction"]
    blocks: list[tuple] = [
        ("p", f"{s['n_events']} events fed datapoint by datapoint as the app does: {models}. "
              f"Common settings: threshold {st.threshold_pct:g} %, movement gate "
              f"{st.gate_pct:g} %, WarnTime {st.warn_s:g} s, AlarmTime {st.alarm_s:g} s, voting "
              f"{st.voting}, OSD algorithm {'on' if st.osd else 'off'}."),
        ("p", f"The OSD algorithm re-run from the raw samples reproduces the recorded "
              f"specPower and roiPower exactly on {rep['reproduced_exactly']} of "
              f"{rep['with_recorded_powers']} datapoints that recorded them."
              if rep["with_recorded_powers"] else "No datapoint recorded the OSD algorithm's "
              "specPower and roiPower: its re-run could not be compared."),
        *[("p", f"Note: {note}") for note in s["notes"]],
        ("h2", "Events by the app's engine"), ("table", *_replay_table(s)),
        ("h2", "Paper scoring (Spahr et al. 2025)"),
        ("table", *paper_table([(m["name"] + " alone", m["paper"]) for m in s["models"]],
                               label="model")),
        ("p", _PAPER_NOTE.format(**(s["models"][0]["paper"] if s["models"] else
                                    paper_summary([])))),
        ("h2", f"Per user ({first.name})"), ("table", *_group_table(ev["per_user"], "user")),
        ("h2", f"Per seizure subtype ({first.name})"),
        ("table", *_group_table(ev["per_subtype"], "subtype")),
        ("h2", "Plots")]
    blocks += [("image", path, cap) for path, cap in images]
    blocks += _timeline_blocks(tl)
    return rp.write_report(out_dir / "report.md", out_dir / "report.html",
                           f"Replay of {', '.join(m.name for m in result.models)}", blocks)


def _replay_table(s: dict[str, Any]) -> tuple[list[str], list[list]]:
    cols = ["", "seizures", "detected", "sensitivity", "non-seizure h", "false alarms",
            "FAR/24h", "median latency s"]
    rows = []
    for name, d in ([(m["name"] + " alone", m["events"]["model"]) for m in s["models"]]
                    + [("OSD algorithm alone", s["osd"]),
                       ("models + OSD (as the app combines them)", s["combined"]),
                       ("recorded by the phone", s["recorded"])]):
        rows.append([name, d["seizure_events"], d["detected"], d["sensitivity"],
                     d["non_seizure_hours"], d["false_alarms"], d["far_24h"],
                     d["latency_median_s"]])
    return cols, rows


# --------------------------------------------------------------------------- pieces

_PAPER_NOTE = (
    "The event rule of Spahr et al. (Epilepsia 2025, doi 10.1111/epi.18406, section 2.7) on the "
    "same votes as the app's engine (movement gate, then p > threshold, each model alone): a "
    "seizure is detected when some positive datapoint lies within its seizureTimes padded by "
    "{t_before_s:g} s before and {t_after_s:g} s after (the whole event without seizureTimes); "
    "positives outside are false positives, merged into events at most {t_max_s:g} s long and "
    "at least {t_max_s:g} s apart; FAR/24h over all recording (seizure events included). "
    "95 % intervals are Wald intervals. The app's engine instead needs the alarm counter to "
    "reach ALARM, anywhere in the event.")

def _cm(labels, pred) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(np.asarray(labels, int), np.asarray(pred, int), labels=[0, 1])


def _summary_table(ev: dict[str, Any]) -> tuple[list[str], list[list]]:
    m, o, c, tc = ev["model"], ev["osd"], ev["combined"], ev["tonic_clonic"]
    rows = [
        ["seizure events", m["seizure_events"], o["seizure_events"], c["seizure_events"]],
        ["detected (ALARM reached)", m["detected"], o["detected"], c["detected"]],
        ["event sensitivity", m["sensitivity"], o["sensitivity"], c["sensitivity"]],
        ["event sensitivity, any datapoint voting ALARM", m.get("sensitivity_any_window"),
         None, None],
        ["tonic-clonic sensitivity", tc["sensitivity"], tc["osd_sensitivity"],
         tc["combined_sensitivity"]],
        ["non-seizure events", m["non_seizure_events"], o["non_seizure_events"],
         c["non_seizure_events"]],
        ["non-seizure hours", m["non_seizure_hours"], o["non_seizure_hours"],
         c["non_seizure_hours"]],
        ["false alarms", m["false_alarms"], o["false_alarms"], c["false_alarms"]],
        ["false alarms per 24 h", m["far_24h"], o["far_24h"], c["far_24h"]],
        ["mean latency from seizure start, s", m["latency_mean_s"], o["latency_mean_s"],
         c["latency_mean_s"]],
        ["median latency, s", m["latency_median_s"], o["latency_median_s"],
         c["latency_median_s"]],
    ]
    return ["", "model alone", "OSD algorithm alone", "model + OSD"], rows


def _group_table(groups: dict[str, dict], name: str) -> tuple[list[str], list[list]]:
    cols = [name, "seizures", "detected", "sensitivity", "OSD sensitivity",
            "model+OSD sensitivity", "non-seizure h", "false alarms", "FAR/24h", "OSD FAR/24h",
            "model+OSD FAR/24h"]
    return cols, [[k, g["seizure_events"], g["detected"], g["sensitivity"], g["osd_sensitivity"],
                   g["combined_sensitivity"], g["non_seizure_hours"], g["false_alarms"],
                   g["far_24h"], g["osd_far_24h"], g["combined_far_24h"]]
                  for k, g in groups.items()]


def _timelines(traces, rows, streams, settings_of: dict[str, AppSettings], plots: Path, n: int
               ) -> list[tuple[str, Path, str]]:
    """Timelines of up to `n` missed seizures and `n` false alarms (most confident first),
    each with the settings its event was scored with (`settings_of`: event id -> settings)."""
    from osdml.evaluate import report as rp

    index = streams.index_of()
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
            path = rp.plot_timeline(t, settings_of[t.id], plots / f"timeline-{safe}.png",
                                    accel=accel,
                                    title=f"{kind}: event {t.id}, user {t.user}, {t.type}"
                                          f"{' / ' + t.subtype if t.subtype else ''}")
            out.append((kind, path, f"{kind}: event {t.id} (user {t.user}, max p "
                                    f"{(r['max_p'] or 0):.2f}, {r['alarms']} alarms, "
                                    f"{r['gated']} of {r['decisions']} decisions gated)"))
    return out


def _timeline_blocks(timelines) -> list[tuple]:
    blocks: list[tuple] = [("h2", "Missed seizures and false alarms")]
    if not timelines:
        return blocks + [("p", "None: every seizure event reached ALARM and no non-seizure "
                               "event did.")]
    return blocks + [("image", path, cap) for _, path, cap in timelines]
