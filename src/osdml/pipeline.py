"""The main job on one split: data -> train -> evaluate -> export -> validate, into a run folder.

``train_run`` is what ``osdml train`` and ``osdml demo`` call. The run folder holds:

- ``config.toml``: the effective configuration; ``split.json``: the split manifest;
  ``data_report.json``: what the reader read and skipped;
- ``metrics.csv``: one row per epoch (validation metrics, learning rate, chosen so far);
  ``training.png``: loss, validation sensitivity and false-positive rate per epoch;
- ``model.pt``, ``model.ptl``, ``model.pte`` and ``model.pte.json``: the artefacts;
- ``validation.json``: each artefact run in its own runtime against the eager model;
- ``summary.json``: data, chosen epoch, validation and test metrics, artefacts.

Training never fails because an optional export failed: the artefacts that could not be
written are listed with the reason (and a warning) and the rest goes on.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osdml.config import RunConfig
from osdml.data.augment import augment_training
from osdml.data.cache import load_streams
from osdml.data.filters import select_events
from osdml.data.report import SKIP_REASONS
from osdml.data.split import split_events, split_manifest, write_manifest
from osdml.data.windows import Windows, WindowSet, make_windows
from osdml.errors import ExportError, InputError
from osdml.fileio import atomic_write, write_json
from osdml.spec import ModelSpec

PER_FORMAT_MAX = 5000  # test windows up to which every artefact runs on all of them


@dataclass
class TrainRun:
    """The outcome of ``train_run``: where everything is and whether every artefact passed."""

    out_dir: Path
    artefacts: dict[str, Path]
    missing: dict[str, str]
    validation: list[Any]
    summary: dict[str, Any]
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.validation)

    def failures(self) -> list[str]:
        """One phrase per failed artefact: format and by how much."""
        out = []
        for v in self.validation:
            if v.passed:
                continue
            if v.error:
                out.append(f"{v.format}: {v.error}")
            else:
                out.append(f"{v.format}: max logit difference {v.max_abs_logit_diff:.3g} "
                           f"(tolerance {v.atol:g}), decisions agree on "
                           f"{v.decision_agreement:.1%} of {v.windows} windows")
        return out


def train_run(files: Sequence[str | Path], config: RunConfig, out_dir: str | Path, *,
              progress: bool = True, cache: bool = True, cache_dir: str | Path | None = None,
              read_progress: Callable[[int], None] | None = None,
              replace: bool = False, resume: bool = False,
              placement: dict[str, Any] | None = None) -> TrainRun:
    """Train, evaluate, export and validate one model on one train/validation/test split.

    Parameters
    ----------
    files : sequence of path-like
        OSDB files or folders.
    config : RunConfig
        The split is always a holdout split here (``data.split`` fractions and seed).
    out_dir : path-like
        The run folder; created once the data has been checked.
    progress : bool
        Lightning's progress bar.
    replace : bool, default=False
        Replace the files of a previous run in `out_dir` (otherwise that is an error: a new
        run must not mix its files with an old one's).
    resume : bool, default=False
        Continue the interrupted run in `out_dir`: its recorded configuration (`config` may be
        None, else it must equal it) and split, training from the last completed epoch
        (``last.ckpt``); the result equals an uninterrupted run's.
    placement : dict, optional
        With `resume`: ``[train]`` placement keys (accelerator, devices, precision, strategy)
        that replace the recorded ones, to continue on another machine.

    Returns
    -------
    TrainRun
        Check ``passed``: False when an artefact failed its parity check.

    Raises
    ------
    InputError
        If the files are not OSDB; if the configuration cannot build the model; if `out_dir`
        holds a previous run and `replace` is False; if a part of the split lacks windows or
        a class that training needs; if training diverges.
    """
    from osdml.outdir import hold, recover

    out = Path(out_dir)
    with hold(out, f"osdml train --out {out}"):
        note = recover(out)
        if note:
            warnings.warn(note, stacklevel=2)
        if resume:
            return _resume_run(out, config, files, progress=progress, cache=cache,
                               cache_dir=cache_dir, read_progress=read_progress,
                               placement=placement)
        return _new_run(files, config, out, replace=replace, progress=progress, cache=cache,
                        cache_dir=cache_dir, read_progress=read_progress)


def _new_run(files, cfg: RunConfig, out: Path, *, replace: bool, progress: bool, cache: bool,
             cache_dir, read_progress) -> TrainRun:
    """``train_run`` without resume, the lock held. Replacing a previous run builds the new
    one in ``.NAME.replacing`` and swaps it in only when it is complete and passed its
    checks: any failure leaves the previous run as it was."""
    from osdml.outdir import record_kind, staging

    final = out
    if _check_out_dir(out, replace):
        out = staging(final)
        if out.exists():  # an earlier replacement that failed or was stopped
            shutil.rmtree(out)
    window, hop = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    _check_model(cfg, window)
    from osdml.train.devices import resolve_placement

    resolve_placement(cfg.train)  # a device this machine lacks: said before any work
    # ---------------------------------------------------------------- data
    streams = load_streams(files, cfg.data.reader, cache=cache, cache_dir=cache_dir,
                           progress=read_progress)
    selection = select_for(streams, cfg)
    counts = np.bincount(selection.labels, minlength=2) if len(selection) else np.zeros(2, int)
    if not len(selection):
        raise InputError(f"cannot train: no usable events ({_why_empty(streams, selection)})")
    if counts[0] == 0 or counts[1] == 0:
        raise InputError(f"cannot train: the selected events hold {counts[1]} seizure and "
                         f"{counts[0]} non-seizure events; both classes are needed (add false "
                         "alarm or NDA events, or check the selection filters)")
    split_cfg = cfg.data.split
    if split_cfg.method != "holdout":
        warnings.warn(f"data.split.method={split_cfg.method!r}: osdml train makes one holdout "
                      "split (test_fraction, val_fraction); use osdml run for k-fold "
                      "cross-validation", stacklevel=2)
        split_cfg = split_cfg.model_copy(update={"method": "holdout"})
    (split,) = split_events(streams, selection, split_cfg)
    # the effective configuration: the files and the split actually used
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={
        "files": [str(Path(p).resolve()) for p in streams.report.files], "split": split_cfg})})
    parts = split_windows(streams, selection, split, cfg)
    out.mkdir(parents=True, exist_ok=True)
    record_kind(out, "train")
    with atomic_write(out / "config.toml", "w", encoding="utf-8") as f:
        f.write(cfg.to_toml())
    write_manifest(out / "split.json", split_manifest(streams, selection, [split], split_cfg))
    write_json(out / "data_report.json", streams.report.to_dict())
    run = train_split(streams, selection, split, cfg, out, parts=parts, progress=progress)
    if out == final or not run.passed:  # a failed replacement stays beside the old run
        return run
    _swap_keeping_yours(out, final)
    return relocated(run, out, final)


def _swap_keeping_yours(new: Path, final: Path) -> None:
    """Swap the complete replacement `new` in for `final`, moving into it first what the
    previous run folder holds that osdml train did not write there (a converted
    ``model_int8.pte``, notes): replacing a run never deletes a user's own files."""
    from osdml.outdir import swap_in

    if final.is_dir():
        for entry in final.iterdir():
            if entry.name not in RUN_FILES and not (new / entry.name).exists():
                entry.replace(new / entry.name)
    swap_in(new, final)


def relocated(run: TrainRun, old: Path, new: Path) -> TrainRun:
    """`run` after its folder moved from `old` to `new`: paths in the result and in its
    ``summary.json`` rewritten."""
    def move(p):
        p = Path(p)
        return new / p.relative_to(old) if p.is_relative_to(old) else p

    summary = dict(run.summary, out_dir=str(new), artefacts={
        f: dict(a, path=str(move(a["path"]))) for f, a in run.summary["artefacts"].items()})
    write_json(new / "summary.json", summary)
    return TrainRun(new, {f: move(p) for f, p in run.artefacts.items()}, run.missing,
                    run.validation, summary, run.sizes)


def _resume_run(out: Path, config: RunConfig | None, files, placement=None,
                **load) -> TrainRun:
    from osdml.config import config_difference, load_config
    from osdml.data.split import read_manifest
    from osdml.outdir import check_kind, staging

    check_kind(out, "train", "resume")
    final, stage = out, staging(out)
    if ((out / "summary.json").is_file() and (stage / "split.json").is_file()
            and not (stage / "summary.json").is_file()):
        out = stage  # an interrupted --replace: resumed beside the old run, swapped in at the end
    if not out.is_dir():
        what = "not a folder" if out.exists() else "no such folder"
        raise InputError(f"cannot resume {out}: {what}; pass the --out folder of the "
                         "interrupted osdml train")
    lacking = [n for n in ("config.toml", "split.json") if not (out / n).is_file()]
    if lacking:
        raise InputError(f"cannot resume {out}: not an interrupted osdml train folder "
                         f"({' and '.join(lacking)} missing)")
    if (out / "summary.json").is_file():
        raise InputError(f"cannot resume {out}: the run is complete (summary.json); start a new "
                         "run with another --out")
    cfg = load_config(out / "config.toml", {"train": placement} if placement else None)
    if config is not None:
        split = config.data.split.model_copy(update={"method": "holdout"})  # as train_run
        given = config.model_copy(update={"data": config.data.model_copy(
            update={"split": split})})
        diff = config_difference(given, cfg)
        if diff:
            raise InputError(f"cannot resume {out}: --config differs from the run's own "
                             f"configuration ({diff}); resume without --config")
    from osdml.fileio import remove_stale_temporaries

    remove_stale_temporaries(out)
    streams = load_streams(list(files or cfg.data.files), cfg.data.reader,
                           cache=load["cache"], cache_dir=load["cache_dir"],
                           progress=load["read_progress"])
    selection = select_for(streams, cfg)
    (split,) = read_manifest(out / "split.json", streams)
    run = train_split(streams, selection, split, cfg, out, progress=load["progress"],
                      resume=True)
    if out == final or not run.passed:
        return run
    _swap_keeping_yours(out, final)
    return relocated(run, out, final)


@dataclass
class SplitWindows:
    """The windows of one split: training (with augmented copies), validation and test.

    ``labels``: what seizure-time labelling (``[data.labels]``, ``osdml.data.labels``) did to
    each part, ``LabelCounts.to_dict()`` by part (``train``, ``train_copies``, ``validation``,
    ``test``); empty when it is off.
    """

    train: WindowSet
    val: Windows
    test: Windows
    augmentation: dict[str, int]
    labels: dict[str, dict[str, int]] = field(default_factory=dict)


def split_windows(streams, selection, split, cfg: RunConfig) -> SplitWindows:
    """Augment the training events and index the windows of each part of `split`, labelled
    by ``[data.labels]`` (``osdml.data.labels.seizure_time_labels``) in every part.

    Raises
    ------
    InputError
        If a part has no windows, or training / validation lacks a class.
    """
    from osdml.data.labels import seizure_time_labels

    window, hop = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    inp = cfg.data.windows.input
    aug = augment_training(streams, selection, split.train, cfg.data.augment, window, hop)
    copies = aug.copies
    if inp == "magnitude" and len(copies.xyz):  # the copies' x, y, z are not inputs: free them
        copies.xyz = copies.xyz[:0].copy()
        copies.segments[:, 2] = -1
    rule = cfg.data.labels
    own = seizure_time_labels(make_windows(streams, aug.train, selection.labels_for(aug.train),
                                           window, hop, inp), rule)
    copied = seizure_time_labels(make_windows(copies, np.arange(copies.n_events), aug.labels,
                                              window, hop, inp),
                                 rule, source=streams, source_starts=aug.source_starts,
                                 source_scales=aug.source_scales)
    train = WindowSet([own.windows, copied.windows])
    val_l, test_l = (seizure_time_labels(make_windows(streams, idx, selection.labels_for(idx),
                                                      window, hop, inp), rule)
                     for idx in (split.val, split.test))
    val, test = val_l.windows, test_l.windows
    labels = ({part: lw.counts.to_dict() for part, lw in (
        ("train", own), ("train_copies", copied), ("validation", val_l), ("test", test_l))}
        if rule.use_seizure_times else {})
    where = "" if split.name == "fold0" and split.inner is None else f"{split.name}: "
    try:
        _check_parts(train, val, test, window // cfg.data.reader.samples_per_datapoint + 1)
    except InputError as e:
        raise InputError(where + str(e)) from None
    return SplitWindows(train, val, test, dict(aug.counts), labels)


def train_split(streams, selection, split, cfg: RunConfig, out: Path, *,
                parts: SplitWindows | None = None, progress: bool = True,
                resume: bool = False) -> TrainRun:
    """Train on one split's training part, choose the checkpoint on its validation part,
    evaluate on validation and test, export and validate the artefacts into `out`.

    Writes ``metrics.csv``, ``training.png``, the artefacts, ``validation.json``,
    ``predictions.npz`` (p(seizure) of every validation and test window, and of every input the
    app's buffer gave the model), ``events.csv`` (one row per validation and test event by the
    app's engine with the settings tuned on validation, and by the paper's event scoring,
    ``osdml.evaluate.paper``), ``sweep.json`` and ``summary.json`` last; ``summary.json``'s
    metrics carry ``validation_paper`` and ``test_paper`` (``paper_summary``) beside the app
    engine's ``validation_events`` and ``test_app``.
    Training saves ``last.ckpt`` after every epoch; with `resume` it continues from there
    (it is removed once ``summary.json`` is written).

    Raises
    ------
    InputError
        As ``split_windows``; if training diverges.
    """
    parts = parts or split_windows(streams, selection, split, cfg)
    train, val, test = parts.train, parts.val, parts.test
    window, hop = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    out.mkdir(parents=True, exist_ok=True)
    # ---------------------------------------------------------------- train
    from osdml.evaluate.report import plot_training
    from osdml.train.fit import fit

    result = fit(cfg, train, val, out_dir=out, progress=progress, resume=resume)
    plot_training(result.history, result.chosen_epoch, out / "training.png",
                  title=f"{split.name}: chosen epoch {result.chosen_epoch} ({result.criterion})")
    # ---------------------------------------------------------------- evaluate
    from osdml.evaluate.events import score_trace, write_events_csv
    from osdml.evaluate.metrics import event_summary, threshold_sweep, window_metrics
    from osdml.evaluate.paper import paper_columns, paper_scores

    threshold = cfg.train.threshold
    p = {"validation": _p_seizure(result.model, val), "test": _p_seizure(result.model, test)}
    windows = {"validation": val, "test": test}
    traces = {part: app_traces(result.model, streams, selection, idx, windows[part], p[part],
                               window)
              for part, idx in (("validation", split.val), ("test", split.test))}
    tuned, tuning = tune_app(traces["validation"], cfg)
    settings, app_record = tuned.settings, tuned.record()
    app, rows, sweeps, paper = {}, [], {"tuning (validation)": tuning}, {}
    for part, part_traces in traces.items():
        part_rows = [dict(score_trace(t, settings), part=part) for t in part_traces]
        rows += part_rows
        app[part] = event_summary(part_rows)
        # the paper's event rule (Spahr et al. 2025) on the same votes (gate + threshold)
        paper[part] = paper_scores(part_traces, settings)
        for r, pr in zip(part_rows, paper[part]["events"], strict=True):
            r.update(paper_columns(pr))
        sweeps[part] = threshold_sweep(part_traces, settings)
    metrics = {
        "validation": {k[4:]: v for k, v in result.chosen.items() if k.startswith("val_")},
        "validation_events": app["validation"],
        "test_windows": window_metrics(test.labels, p["test"], threshold, cfg.train.f_beta),
        "test_app": app["test"],
        "app_settings": app_record,
        "validation_paper": paper["validation"]["summary"],
        "test_paper": paper["test"]["summary"],
    }
    with atomic_write(out / "predictions.npz", "wb") as f:
        np.savez_compressed(f, **{
            f"{part}_{k}": v for part, w in windows.items() for k, v in
            (("p", p[part]), ("labels", w.labels), ("event", w.event), ("starts", w.starts))},
            **{f"{part}_app_{k}": v for part, tr in traces.items()
               for k, v in zip(("starts", "p"), decisions_of(streams, tr, window),
                               strict=True)},
            event_ids=np.array([e.id for e in streams.events]))
    write_events_csv(out / "events.csv", rows)
    write_json(out / "sweep.json", sweeps)
    # ---------------------------------------------------------------- spec and export
    spec = ModelSpec(
        arch=cfg.model.arch, arch_kwargs=result.arch_kwargs,
        input_shape=(1, val.channels, window), **input_fields(cfg.data.windows.input),
        sample_rate_hz=cfg.data.reader.sample_rate_hz, window_samples=window, hop_samples=hop,
        class_names=class_names(cfg), threshold=threshold,
        training={"files": list(cfg.data.files), "split": split.name,
                  "events": {"train": len(split.train), "validation": len(split.val),
                             "test": len(split.test)},
                  "windows": {"train": train.count_by_label(), "validation":
                              val.count_by_label(), "test": test.count_by_label()},
                  "augmentation": parts.augmentation, "chosen_epoch": result.chosen_epoch,
                  "epochs_run": result.epochs_run, "criterion": result.criterion,
                  "seed": cfg.train.seed, "placement": result.placement,
                  **({"seizure_time_labels": parts.labels} if parts.labels else {})},
        metrics={"validation": metrics["validation"], "test_windows": metrics["test_windows"],
                 "test_events": {k: app["test"][k] for k in ("model", "osd", "combined")}},
        app_settings=app_record,
    ).stamped()
    artefacts, missing = export_artefacts(result.model, spec, out, cfg,
                                          metrics=metrics, config=cfg.model_dump(mode="json"))
    # ---------------------------------------------------------------- validate
    from osdml.export.validate import validate_artefacts

    test_starts, _ = decisions_of(streams, traces["test"], window)
    x, source, n_test = _check_windows(streams, test_starts, val, window,
                                       cfg.export.validate_windows)
    logits: dict[str, np.ndarray] = {}
    checks = validate_artefacts(result.model, artefacts, x, threshold=threshold,
                                atol=cfg.export.fp32_atol, logits_out=logits)
    by_format = {}
    if n_test == len(test_starts):  # every decision ran in every runtime: alarms per format
        from osdml.app.engine import app_probability
        from osdml.evaluate.events import p_lookup

        for fmt, lg in logits.items():
            p_at = p_lookup(test_starts, app_probability(lg[:n_test]), _not_expected)
            fmt_traces = app_event_traces(streams, selection, split.test, window, p_at)
            by_format[fmt] = event_summary([score_trace(t, settings)
                                            for t in fmt_traces])["model"]
    metrics["test_events_by_format"] = by_format
    if "pte" in artefacts:  # publish reads the parity result beside the file
        from osdml.export.pte import update_pte_manifest

        check = next(c for c in checks if c.format == "pte")
        update_pte_manifest(artefacts["pte"], validation={
            "passed": check.passed, "against": "the eager model", "windows": check.windows,
            "source": source, "max_abs_logit_diff": check.max_abs_logit_diff,
            "decision_agreement": check.decision_agreement,
            "failure": check.failure or check.error})
    write_json(out / "validation.json", {"windows": len(x), "source": source,
                                         "threshold": threshold,
                                         "app_settings": settings.to_dict(),
                                         "results": [c.to_dict() for c in checks],
                                         "test_events_by_format": by_format})
    sizes = {f: q.stat().st_size for f, q in artefacts.items()}
    summary = {"out_dir": str(out), "split": split.name, "fold": split.fold,
               "inner": split.inner, "chosen_epoch": result.chosen_epoch,
               "criterion": result.criterion, "warning": result.warning,
               "app_settings": app_record, "app_warning": tuned.warning,
               "epochs_run": result.epochs_run, "placement": result.placement,
               "metrics": metrics,
               "artefacts": {f: {"path": str(q), "size_bytes": sizes[f]}
                             for f, q in artefacts.items()},
               "missing": missing, "validation_passed": all(c.passed for c in checks),
               "validation_windows": source,
               **({"seizure_time_labels": parts.labels} if parts.labels else {})}
    write_json(out / "summary.json", summary)
    from osdml.train.fit import CHECKPOINT

    (out / CHECKPOINT).unlink(missing_ok=True)  # the run is complete: nothing to resume
    return TrainRun(out, artefacts, missing, checks, summary, sizes)


RUN_FILES = ("config.toml", "split.json", "data_report.json", "metrics.csv", "training.png",
             "model.pt", "model.ptl", "model.pte", "model.pte.json", "validation.json",
             "predictions.npz", "events.csv", "sweep.json", "summary.json", "last.ckpt",
             "kind.json")


def _check_out_dir(out: Path, replace: bool) -> bool:
    """Whether `out` holds a previous run that `replace` allows to replace (built beside it
    and swapped in when complete, never deleted first).

    Raises
    ------
    InputError
        If `out` is a file; if it holds a previous run and `replace` is False; if it holds
        another kind of run (cross-validation, ensemble).
    """
    from osdml.outdir import check_kind

    if out.exists() and not out.is_dir():
        raise InputError(f"cannot write the run to {out}: it is a file, not a folder")
    old = [n for n in RUN_FILES if (out / n).exists()]
    if old and not replace:
        raise InputError(f"{out} holds a previous run ({', '.join(old[:4])}"
                         f"{', ...' if len(old) > 4 else ''}); choose another --out, or pass "
                         "--replace to replace it")
    if replace:
        check_kind(out, "train", "replace")
    return bool(old)


def _check_model(cfg: RunConfig, window: int) -> None:
    """Build the model once before reading any data: a configuration it cannot take fails
    fast, naming the keys."""
    from osdml.models import create_model

    options = cfg.model.arch_options(cfg.data.reader.sample_rate_hz)
    sub = options.get("cnn_window_samples")
    if sub and window % sub:
        raise InputError(f"model {cfg.model.arch} needs data.windows.window_s="
                         f"{cfg.data.windows.window_s:g} to be a whole number of "
                         f"model.cnn_window_s={cfg.model.cnn_window_s:g} (its LSTM steps)")
    if cfg.data.windows.input == "xyz":
        try:
            create_model(cfg.model.arch, input_length=window, **options, in_channels=3)
        except (ValueError, TypeError) as e:
            raise InputError(f"model {cfg.model.arch} cannot take three-axis input "
                             f"(data.windows.input = \"xyz\", in_channels=3): {e}") from None
        return
    try:
        create_model(cfg.model.arch, input_length=window, **options)
    except (ValueError, TypeError) as e:
        raise InputError(f"model {cfg.model.arch} cannot take data.windows.window_s="
                         f"{cfg.data.windows.window_s:g} ({window} samples): {e}") from None


def select_for(streams, cfg: RunConfig):
    """``select_events`` by ``cfg.data.selection``; three-axis input (``[data.windows] input =
    "xyz"``) also leaves out events without rawData3D in every datapoint ("no 3-D data").

    Raises
    ------
    InputError
        If three-axis input leaves no event (one line saying so).
    """
    xyz = cfg.data.windows.input == "xyz"
    selection = select_events(streams, cfg.data.selection, need_3d=xyz)
    if xyz and not len(selection) and selection.excluded.get("no 3-D data"):
        raise InputError(f"data.windows.input = \"xyz\" needs rawData3D in every datapoint of "
                         f"an event, and none of the {streams.n_events:,} events read has it "
                         f"({selection.excluded['no 3-D data']:,} left out for it); use "
                         "input = \"magnitude\" or data recorded with 3-D samples")
    return selection


def input_fields(input: str) -> dict[str, str]:
    """The ``ModelSpec`` fields that say what the model input is: ``input`` and
    ``input_units`` (empty for magnitude: the spec's defaults)."""
    if input != "xyz":
        return {}
    return {"input": "xyz", "input_units": "g: acceleration x, y, z (rawData3D mg / 1000), "
            "gravity kept, unfiltered"}


def _why_empty(streams, selection) -> str:
    r = streams.report
    if not r.events_read:
        return "the files hold no events"
    if not streams.n_events:
        reasons = r.skipped_datapoints.most_common(1) or r.skipped_events.most_common(1)
        top = (f"; most often: {SKIP_REASONS.get(reasons[0][0], reasons[0][0])} "
               f"({reasons[0][1]:,} times)") if reasons else ""
        return f"all {r.events_read:,} events read were skipped{top}; see `osdml data summary`"
    excluded = ", ".join(f"{k}: {v}" for k, v in selection.excluded.most_common(3))
    return f"{streams.n_events:,} events, none selected ({excluded})"


def _check_parts(train, val, test, min_datapoints: int) -> None:
    """Each part must have windows; training and validation need both classes."""
    for name, w in (("training", train), ("validation", val), ("test", test)):
        if not len(w):
            raise InputError(f"cannot train: the {name} part has no windows (events shorter "
                             f"than {min_datapoints} datapoints?); add data")
    for name, w in (("training", train), ("validation", val)):
        labels = set(np.asarray(w.labels).tolist())
        if labels != {0, 1}:
            have = "only seizure" if labels == {1} else "no seizure"
            # no untried "use N folds" here: `osdml data split` names a setting it tried
            raise InputError(f"cannot train: the {name} part has {have} windows ({len(w)} "
                             "windows; events shorter than a window give none); training and "
                             "checkpoint choice need both classes: add events, or run `osdml "
                             "data split` with this configuration, which names a split setting "
                             "tried on these data that gives every part both classes")
    if set(np.asarray(test.labels).tolist()) != {0, 1}:
        warnings.warn("the test part lacks one class: its sensitivity or false-positive rate "
                      "is undefined", stacklevel=3)


def class_names(cfg: RunConfig) -> list[str]:
    """Names of classes 0..k: "seizure" / "non-seizure" for the default label map, otherwise
    the event types mapped to each class."""
    labels = cfg.data.selection.labels
    n = max(labels.values()) + 1
    if {k.lower(): v for k, v in labels.items()} == {"seizure": 1, "false alarm": 0, "nda": 0}:
        return ["non-seizure", "seizure"]
    return [" / ".join(sorted(t for t, v in labels.items() if v == k)) or f"class {k}"
            for k in range(n)]


def export_artefacts(model, spec: ModelSpec, out: Path, cfg: RunConfig, *,
                     metrics: dict | None = None, config: dict | None = None
                     ) -> tuple[dict[str, Path], dict[str, str]]:
    """Write the configured formats; an optional format that fails is reported, not raised.

    Returns
    -------
    (artefacts, missing)
        Format -> path of what was written; format -> why it was not.
    """
    from osdml.export.checkpoint import save_pt

    artefacts: dict[str, Path] = {}
    missing: dict[str, str] = {}
    formats = cfg.export.formats
    if "pt" in formats:
        artefacts["pt"] = save_pt(out / "model.pt", model, spec, metrics=metrics, config=config)
    if "ptl" in formats:
        from osdml.export.ptl import export_ptl

        try:
            artefacts["ptl"] = export_ptl(model, spec, out / "model.ptl")
        except ExportError as e:
            missing["ptl"] = str(e)
    if "pte" in formats:
        from osdml.export.pte import executorch_status, export_pte

        status = executorch_status()
        if status is not None:
            missing["pte"] = status
        else:
            try:
                export_pte(model, spec, out / "model.pte", backend=cfg.export.pte_backend)
                artefacts["pte"] = out / "model.pte"
            except ExportError as e:
                missing["pte"] = str(e)
    for fmt, why in missing.items():
        warnings.warn(f"model.{fmt} not written: {why}", stacklevel=2)
    return artefacts, missing


def _p_seizure(model, windows: Windows, batch: int = 1024) -> np.ndarray:
    """p(seizure) of every window, float32, as the app computes it from the logits."""
    from osdml.app.engine import app_probability
    from osdml.export.validate import eager_logits

    out = []
    for i in range(0, len(windows), batch):
        logits = eager_logits(model, windows.batch(range(i, min(i + batch, len(windows)))))
        out.append(app_probability(logits))
    return np.concatenate(out) if out else np.empty(0, np.float32)


def inputs_at(streams, starts: np.ndarray, input_size: int, input: str = "magnitude"
              ) -> np.ndarray:
    """The model inputs ``samples[start:start + input_size]``, (k, 1, input_size) float32 in g;
    with ``input="xyz"`` their x, y, z, (k, 3, input_size) (``EventStreams.xyz_at``, which
    raises ValueError where there is no 3-D data)."""
    starts = np.asarray(starts, dtype=np.int64)
    if input == "xyz":
        return streams.xyz_at(starts, input_size)
    return np.asarray(streams.samples[starts[:, None] + np.arange(input_size)],
                      dtype=np.float32)[:, None, :]


def app_event_traces(streams, selection, events, window: int, p_at) -> list:
    """``EventTrace`` per event of `events` (a split part) with the model outputs `p_at`."""
    from osdml.evaluate.events import traces_for

    return traces_for(streams, events, selection.labels_for(events), window, p_at)


def app_traces(model, streams, selection, events, windows: Windows, p_windows: np.ndarray,
               window: int) -> list:
    """The app's view of a part's events: p after every datapoint of the app's buffer,
    reusing `p_windows` of the evaluation `windows` and running the model on the inputs that
    span a gap (the app's buffer does not stop at one)."""
    from osdml.app.engine import app_probability
    from osdml.evaluate.events import p_lookup
    from osdml.export.validate import eager_logits

    def compute(starts: np.ndarray) -> np.ndarray:
        return app_probability(eager_logits(model, inputs_at(streams, starts, window,
                                                             windows.input)))

    return app_event_traces(streams, selection, events, window,
                            p_lookup(windows.starts, p_windows, compute))


def decisions_of(streams, traces, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, p) of every model input the app ran over `traces`, in trace order: the
    ``predictions.npz`` record from which reports rebuild the traces."""
    from osdml.evaluate.events import buffer_windows

    index = streams.index_of()
    starts, ps = [], []
    for t in traces:
        dp, st = buffer_windows(streams, index[t.id], window)
        starts.append(st)
        ps.append(t.p[0][dp])
    return (np.concatenate(starts) if starts else np.empty(0, np.int64),
            np.concatenate(ps) if ps else np.empty(0, np.float32))


def tune_app(val_traces: list, cfg: RunConfig):
    """The app's threshold and movement gate chosen on the validation traces
    (``osdml.app.tune``); returns ``(Tuned, the sweep rows)``. A warning (the rule could not be
    met) is in ``Tuned.warning``, recorded in the summary and printed with the results."""
    from osdml.app.tune import choose, sweep

    base = cfg.app.settings()
    rows = (sweep(val_traces, base, cfg.app.tune_thresholds_pct, cfg.app.tune_gates_pct)
            if cfg.app.tune != "none" else [])
    return choose(rows, base, cfg.app.tune, cfg.app.tune_max_far_24h), rows


def _not_expected(starts: np.ndarray) -> np.ndarray:
    raise AssertionError(f"{len(starts)} model inputs missing from the parity windows")


def _check_windows(streams, test_starts: np.ndarray, val: Windows, window: int, n: int
                   ) -> tuple[np.ndarray, str, int]:
    """Held-out windows for the parity check: every model input the app ran over the test
    events when there are at most ``PER_FORMAT_MAX`` (so alarms can be computed per format),
    else `n` spread over them; topped up from validation windows to at least `n`. Returns
    (windows, description, number of test inputs used)."""
    k = len(test_starts)
    take = np.arange(k) if k <= PER_FORMAT_MAX else \
        np.unique(np.linspace(0, k - 1, n).round().astype(int))
    x = inputs_at(streams, test_starts[take], window, val.input)
    source = f"{len(take)} test windows"
    if len(take) < n and len(val):
        extra = np.unique(np.linspace(0, len(val) - 1, min(n - len(take), len(val)))
                          .round().astype(int))
        x = np.concatenate([x, val.batch(extra)])
        source += f" + {len(extra)} validation windows (the test part has only {k})"
    return x, source, len(take)


def demo_config() -> RunConfig:
    """The demo's configuration: the defaults, shortened to train in a few minutes on 2 cores:
    2 noise copies instead of 10, 4096 windows per epoch in batches of 256, 30 epochs, and a
    peak learning rate of 3e-4 for the short schedule."""
    from osdml.config import load_config

    return load_config(None, {
        "data": {"augment": {"noise_copies": 2}},
        "train": {"max_epochs": 30, "batch_size": 256, "windows_per_epoch": 4096,
                  "lr_peak": 3e-4, "lr_end": 3e-5, "early_stopping_patience": 8},
    })
