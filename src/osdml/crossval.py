"""Cross-validation runs: k-fold or nested k-fold, best fold chosen on validation, resumable.

``run_crossval`` is what ``osdml run`` calls. A run is a numbered folder under the output
directory (``run-001``, ``run-002``, ...) holding:

- ``config.toml`` (the effective configuration), ``split.json`` (the manifest of every fold),
  ``data_report.json`` and ``run.log`` (one line per step, appended across resumes);
- ``folds/<name>/``: one ``osdml train``-style folder per split (``fold0`` ... for k-fold,
  ``fold0.1`` = outer fold 0, inner fold 1 for nested): metrics, training curves, the
  artefacts and their validation, ``predictions.npz``, ``events.csv`` and ``summary.json``;
- ``best/``: ``model.pt``, ``model.ptl``, ``model.pte``, ``model.pte.json`` of the best fold
  and ``manifest.json`` (which fold, by which rule, its validation and test numbers, sha256);
- ``summary.json``: per-fold numbers, mean and standard deviation over (outer) folds, the best
  fold; ``report.md`` and ``report.html`` with plots.

Each split trains in ``folds/.<name>.partial`` and is renamed to ``folds/<name>`` only when
complete, so a run killed at any moment keeps every complete fold; within the fold in progress
training saves ``last.ckpt`` after every epoch. ``resume`` skips the complete folds, continues
the interrupted one from its last completed epoch (or restarts it if none completed) and trains
the rest from the recorded manifest; the result equals an uninterrupted run's.

Choosing among folds uses validation results only (``EvaluateConfig.best_fold``); for a nested
run the same rule picks each outer fold's model among its inner folds, and that model's test
results are the outer fold's results.
"""

from __future__ import annotations

import datetime as _dt
import math
import shutil
import warnings
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial as partial_fn
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from osdml.config import EvaluateConfig, ExecutorConfig, RunConfig, config_difference
from osdml.errors import InputError
from osdml.fileio import atomic_write, write_json
from osdml.outdir import check_kind, hold, record_kind, with_locks

if TYPE_CHECKING:
    from osdml.executor import Executor

RUN_PREFIX = "run-"
BEST_FILES = ("model.pt", "model.ptl", "model.pte", "model.pte.json")
# metrics summarised over folds: name -> path in a fold's summary["metrics"]
FOLD_METRICS = {
    "threshold_pct": ("app_settings", "threshold_pct"),
    "gate_pct": ("app_settings", "gate_pct"),
    "val_event_sensitivity": ("validation_events", "model", "sensitivity"),
    "val_far_24h": ("validation_events", "model", "far_24h"),
    "test_window_sensitivity": ("test_windows", "sensitivity"),
    "test_window_fpr": ("test_windows", "fpr"),
    "test_window_precision": ("test_windows", "precision"),
    "test_window_f1": ("test_windows", "f1"),
    "test_window_roc_auc": ("test_windows", "roc_auc"),
    "test_event_sensitivity": ("test_app", "model", "sensitivity"),
    "test_event_sensitivity_any_window": ("test_app", "model", "sensitivity_any_window"),
    "test_false_alarms": ("test_app", "model", "false_alarms"),
    "test_far_24h": ("test_app", "model", "far_24h"),
    "test_latency_mean_s": ("test_app", "model", "latency_mean_s"),
    "test_tonic_clonic_sensitivity": ("test_app", "tonic_clonic", "sensitivity"),
    "osd_event_sensitivity": ("test_app", "osd", "sensitivity"),
    "osd_far_24h": ("test_app", "osd", "far_24h"),
    "combined_event_sensitivity": ("test_app", "combined", "sensitivity"),
    "combined_far_24h": ("test_app", "combined", "far_24h"),
    # the paper's event scoring (Spahr et al. 2025, osdml.evaluate.paper) on the same votes
    "test_paper_sensitivity": ("test_paper", "sensitivity"),
    "test_paper_far_24h": ("test_paper", "far_24h"),
}


@dataclass
class CrossValRun:
    """The outcome of ``run_crossval``.

    ``folds`` holds every split's ``summary.json`` (by name), ``outer`` the name of the model
    that stands for each outer fold (the fold itself for k-fold), ``best`` the chosen fold's
    name with ``reason`` and an optional ``warning``; ``failures`` lists artefacts that failed
    their parity check (``fold: format: why``).
    """

    run_dir: Path
    folds: dict[str, dict[str, Any]]
    outer: list[str]
    best: str
    reason: str
    warning: str | None
    stats: dict[str, dict[str, Any]]
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def next_run_dir(root: Path) -> Path:
    """Create and return ``root/run-NNN`` with the next free number (never reuses one)."""
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[len(RUN_PREFIX):]) for p in root.glob(f"{RUN_PREFIX}*")
             if p.name[len(RUN_PREFIX):].isdigit()]
    n = max(taken, default=0) + 1
    while True:
        path = root / f"{RUN_PREFIX}{n:03d}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


@with_locks
def run_crossval(config: RunConfig | None, out_root: str | Path | None = None, *,
                 resume: str | Path | None = None, files: Sequence[str | Path] | None = None,
                 progress: bool = True, cache: bool = True, cache_dir: str | Path | None = None,
                 say: Callable[[str], None] | None = None,
                 executor: ExecutorConfig | Executor | None = None,
                 overrides: dict[str, Any] | None = None, _locks=None) -> CrossValRun:
    """Run k-fold (or nested k-fold) cross-validation, choose the best fold, write reports.

    Parameters
    ----------
    config : RunConfig or None
        ``data.split`` gives the method (``kfold``, ``nested``; ``holdout`` is one fold).
        With `resume` it may be None (the run's own configuration is used); if given it must
        equal the run's.
    out_root : path-like
        Folder under which the numbered run folder is created (not used with `resume`).
    resume : path-like, optional
        A run folder to continue.
    files : sequence of path-like, optional
        OSDB files or folders; default ``config.data.files``.
    say : callable, optional
        Receives one line per step (also appended to ``run.log``).
    executor : ExecutorConfig or Executor, optional
        Where the folds train (``osdml.executor``); default the ``[executor]`` section of
        `config` (with `resume` and no `config`: of the run's own configuration). The section
        may differ from the run's when resuming. The driver (this process) does everything
        else: the run folder, renaming each complete fold, the choice and the reports.
    overrides : dict, optional
        With `resume`: where the run goes on, applied over its recorded configuration (to
        continue on another machine): ``{"train": {accelerator, devices, precision,
        strategy}, "executor": {...}}``, keys the resume check does not compare.

    Returns
    -------
    CrossValRun

    Raises
    ------
    InputError
        If the data, configuration or run folder cannot be used (the message names it), or
        the executor cannot start (Ray not installed, cluster unreachable); an ``InputError``
        raised while training a fold (in a Ray task too) arrives as itself.
    """
    from osdml.config import load_config
    from osdml.data.split import read_manifest, split_events, split_manifest, write_manifest
    from osdml.pipeline import _check_model

    if resume is not None:
        run_dir = Path(resume)
        _locks.enter_context(hold(run_dir, f"osdml run --resume {run_dir}"))
        check_kind(run_dir, "crossval", "resume")
        if not run_dir.is_dir():
            raise InputError(f"cannot resume {run_dir}: "
                             f"{'not a folder' if run_dir.exists() else 'no such folder'}; pass "
                             "the run-NNN folder an earlier osdml run wrote")
        lacking = [n for n in ("config.toml", "split.json") if not (run_dir / n).is_file()]
        if lacking:
            raise InputError(f"cannot resume {run_dir}: not a run folder ({' and '.join(lacking)}"
                             f" missing); pass the run-NNN folder an earlier osdml run wrote")
        recorded = load_config(run_dir / "config.toml", overrides)
        if config is not None and config_difference(config, recorded):
            raise InputError(f"cannot resume {run_dir}: --config differs from the run's own "
                             f"configuration ({config_difference(config, recorded)}); resume "
                             "without --config, or start a new run")
        cfg = recorded
    else:
        if config is None:
            raise InputError("osdml run needs --config (or --resume RUN)")
        cfg = config
    from osdml.executor import make_executor

    if executor is None or isinstance(executor, ExecutorConfig):
        executor = make_executor(executor or (config or cfg).executor)
    window, _ = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    _check_model(cfg, window)
    if executor.in_process:  # (a Ray task's node may have the GPU this driver lacks)
        from osdml.train.devices import resolve_placement

        resolve_placement(cfg.train)  # a device this machine lacks: said before any work
    streams, selection, cfg = load_selected(cfg, files, cache=cache, cache_dir=cache_dir,
                                            what="run")
    counts = np.bincount(selection.labels, minlength=2)
    if resume is not None:
        splits = read_manifest(run_dir / "split.json", streams)
    else:
        splits = split_events(streams, selection, cfg.data.split)
        run_dir = next_run_dir(Path(out_root or "outputs/runs"))
        _locks.enter_context(hold(run_dir, f"osdml run (writing {run_dir})"))
        record_kind(run_dir, "crossval")
        with atomic_write(run_dir / "config.toml", "w", encoding="utf-8") as f:
            f.write(cfg.to_toml())
        write_manifest(run_dir / "split.json",
                       split_manifest(streams, selection, splits, cfg.data.split))
        write_json(run_dir / "data_report.json", streams.report.to_dict())
    if resume is not None:
        from osdml.fileio import remove_stale_temporaries

        remove_stale_temporaries(run_dir)
        for stale in (run_dir / ".best.partial", run_dir / ".best.old"):
            if stale.is_dir():
                shutil.rmtree(stale)
    log = _Log(run_dir / "run.log", say)
    log(f"{'resumed' if resume is not None else 'started'} {run_dir}: {len(splits)} splits "
        f"({cfg.data.split.method}), {len(selection)} events ({counts[1]} seizure)")
    folds_dir = run_dir / "folds"
    folds_dir.mkdir(exist_ok=True)
    from osdml.train.fit import CHECKPOINT

    for stale in folds_dir.glob(".*.partial"):
        if (stale / CHECKPOINT).is_file():
            log(f"{stale.name[1:-8]}: resuming the unfinished fold from its last completed "
                "epoch")
        else:
            log(f"{stale.name[1:-8]}: removing the unfinished attempt (no completed epoch)")
            shutil.rmtree(stale)
    # ---------------------------------------------------------------- the folds
    folds: dict[str, dict[str, Any]] = {}
    skipped, jobs = [], []
    # a task elsewhere (Ray) writes to absolute paths; in this process, today's paths
    where = folds_dir if executor.in_process else folds_dir.resolve()
    cache_root = None if cache_dir is None else str(Path(cache_dir).resolve())
    for split in splits:
        final = folds_dir / split.name
        if (final / "summary.json").is_file() and _readable(final / "summary.json"):
            skipped.append(split.name)
            log(f"{split.name}: complete, skipped")
            folds[split.name] = _read_json(final / "summary.json")
            log(f"{split.name}: {_fold_line(folds[split.name])}")
            continue
        if final.exists():
            log(f"{split.name}: summary.json missing or unreadable; training it again")
        if final.exists():  # renamed but unreadable should not happen; never trust it
            shutil.rmtree(final)
        jobs.append(FoldJob(split.name, str(run_dir.resolve()),
                            str(where / f".{split.name}.partial"), cfg, cache=cache,
                            cache_dir=cache_root, progress=progress and executor.in_process))
    by_name = {s.name: s for s in splits}

    def started(job: FoldJob) -> None:
        split = by_name[job.name]
        log(f"{job.name}: training on {len(split.train)} events, choosing on "
            f"{len(split.val)}, testing on {len(split.test)}")

    def finished(name: str, summary: dict) -> None:
        folds[name] = summary
        log(f"{name}: {_fold_line(summary)}")

    run_jobs(executor, jobs, (streams, selection, splits), log, started=started,
             finished=finished, resume_hint=f"resume with osdml run --resume {run_dir}")
    folds = {s.name: folds[s.name] for s in splits}
    # ---------------------------------------------------------------- choice and summary
    ecfg = cfg.evaluate
    groups: dict[int, list[str]] = {}
    for split in splits:
        groups.setdefault(split.fold, []).append(split.name)
    outer, notes = [], []
    for k in sorted(groups):
        name, _, warning = choose_best({n: folds[n] for n in groups[k]}, ecfg)
        outer.append(name)
        if warning and len(groups[k]) > 1:
            notes.append(f"outer fold {k}: {warning}")
    best, reason, warning = choose_best({n: folds[n] for n in outer}, ecfg)
    for w in [*notes, warning]:
        if w:
            warnings.warn(w, stacklevel=2)
            log(f"warning: {w}")
    log(f"best fold: {best} ({reason})")
    _copy_best(run_dir, folds_dir / best, folds[best], reason, warning)
    stats = fold_stats([folds[n] for n in outer])
    failures = [f"{name}: {check['format']}: {check.get('error') or 'out of tolerance'}"
                for name, s in folds.items() for check in _checks(folds_dir / name)
                if not check.get("passed", True)]
    summary = {"run_dir": str(run_dir), "method": cfg.data.split.method,
               "splits": [s.name for s in splits], "outer": outer, "best": best,
               "best_reason": reason, "best_warning": warning, "rule": ecfg.model_dump(),
               "threshold": cfg.train.threshold,
               "best_app_settings": folds[best].get("app_settings"), "stats": stats,
               "folds": {n: _fold_row(folds[n]) for n in folds}, "failures": failures}
    write_json(run_dir / "summary.json", summary)
    result = CrossValRun(run_dir, folds, outer, best, reason, warning, stats, skipped,
                         failures, summary)
    from osdml.evaluate.runreport import write_run_report

    write_run_report(result, streams, selection, cfg)
    log(f"done: {run_dir / 'summary.json'}, {run_dir / 'report.html'}")
    return result


# --------------------------------------------------------------------------- shared steps

def load_selected(cfg: RunConfig, files: Sequence[str | Path] | None, *, cache: bool,
                  cache_dir: str | Path | None, what: str):
    """Open the data of a run of several trainings and select its events.

    Returns
    -------
    (EventStreams, Selection, RunConfig)
        The configuration with ``data.files`` resolved to what was read.

    Raises
    ------
    InputError
        If there are no files, or the selection lacks a class (`what` names the command:
        "cannot run", "cannot build an ensemble").
    """
    from osdml.data.cache import load_streams
    from osdml.pipeline import select_for

    data = list(files or cfg.data.files)
    if not data:
        raise InputError("no data: set data.files in the configuration (or pass --data)")
    streams = load_streams(data, cfg.data.reader, cache=cache, cache_dir=cache_dir)
    selection = select_for(streams, cfg)
    counts = np.bincount(selection.labels, minlength=2) if len(selection) else np.zeros(2, int)
    if counts[0] == 0 or counts[1] == 0:
        raise InputError(f"cannot {what}: the selected events hold {counts[1]} seizure and "
                         f"{counts[0]} non-seizure events; both classes are needed")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={
        "files": [str(Path(p).resolve()) for p in streams.report.files]})})
    return streams, selection, cfg


def run_jobs(executor: Executor, jobs: list[FoldJob], loaded: tuple,
             log: Callable[[str], None], *, started: Callable[[FoldJob], None],
             finished: Callable[[str, dict], None], resume_hint: str) -> None:
    """Train `jobs` on `executor`; each complete one's ``partial`` folder is renamed to
    ``job.name`` beside it and ``finished(name, its summary.json)`` is called.

    `loaded` (streams, selection, splits) is handed to in-process jobs. On Ctrl-C the running
    jobs are logged with `resume_hint` and KeyboardInterrupt goes on; a job's error is logged
    and raised as itself.
    """
    from osdml.executor import JobFailed

    if not jobs:
        return
    running: list[str] = []

    def on_start(job: FoldJob) -> None:
        running.append(job.name)
        started(job)

    fn = partial_fn(train_fold, loaded=loaded) if executor.in_process else train_fold
    try:
        with executor, closing(executor.map_unordered(fn, jobs, on_start=on_start)) as done:
            for job, _ in done:
                partial = Path(job.partial)
                final = partial.parent / job.name
                partial.replace(final)
                _relocate(final, partial)
                running.remove(job.name)
                finished(job.name, _read_json(final / "summary.json"))
    except KeyboardInterrupt:
        log(f"{', '.join(running)}: interrupted; {resume_hint}")
        raise
    except JobFailed as failed:
        log(f"{failed.job.name}: error: {failed.error}")
        raise failed.error from None


# --------------------------------------------------------------------------- one fold as a job

@dataclass(frozen=True)
class FoldJob:
    """One fold to train, as an executor job: small and picklable (no sample streams).

    ``run_dir`` holds ``split.json``; the fold trains in ``partial`` (an absolute path when
    the job runs in another process); ``cfg`` is the run's configuration with ``data.files``
    resolved.
    """

    name: str
    run_dir: str
    partial: str
    cfg: RunConfig
    cache: bool = True
    cache_dir: str | None = None
    progress: bool = False


def train_fold(job: FoldJob, loaded: tuple | None = None) -> str:
    """Train `job`'s fold into ``job.partial``, continuing from its ``last.ckpt`` if any.

    Parameters
    ----------
    job : FoldJob
    loaded : (EventStreams, Selection, list of Split), optional
        The data already open in this process. Without it (a Ray task) the data files are
        re-opened (a parse-cache hit when the cache is on), the events reselected and the
        split read from ``run_dir/split.json``.

    Returns
    -------
    str
        The fold's name (its results are the files in ``job.partial``).

    Raises
    ------
    InputError
        If the data or manifest cannot be read, the manifest lacks the fold, or training
        fails on the data (``train_split``).
    """
    from osdml.pipeline import train_split

    if loaded is None:
        from osdml.data.cache import load_streams
        from osdml.data.filters import select_events
        from osdml.data.split import read_manifest

        cfg = job.cfg
        streams = load_streams(cfg.data.files, cfg.data.reader, cache=job.cache,
                               cache_dir=job.cache_dir)
        selection = select_events(streams, cfg.data.selection,
                                  need_3d=cfg.data.windows.input == "xyz")
        splits = read_manifest(Path(job.run_dir) / "split.json", streams)
    else:
        streams, selection, splits = loaded
    split = next((s for s in splits if s.name == job.name), None)
    if split is None:
        raise InputError(f"split manifest {Path(job.run_dir) / 'split.json'} has no fold "
                         f"{job.name}")
    train_split(streams, selection, split, job.cfg, Path(job.partial), progress=job.progress,
                resume=True)
    return job.name


# --------------------------------------------------------------------------- best-fold choice

def _get(d: dict, path: Sequence[str]):
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def choose_best(folds: dict[str, dict[str, Any]], cfg: EvaluateConfig
                ) -> tuple[str, str, str | None]:
    """The best of `folds` (name -> fold ``summary.json``) by validation results only.

    Returns
    -------
    (name, reason, warning)
        ``reason`` gives the rule and the numbers that decided; ``warning`` is set when no
        fold met the false-alarm limit and the fallback (fewest false alarms per 24 h) was used,
        and when the chosen fold's validation sensitivity is 0 (events by the app's engine, or
        windows): its model alarmed on none of its validation seizures.

    Raises
    ------
    ValueError
        If `folds` is empty.
    """
    best, reason, warning = _choose_best(folds, cfg)
    zero = _no_validation_seizure_found(best, folds[best])
    return best, reason, (f"{warning}; {zero}" if warning and zero else warning or zero)


def _no_validation_seizure_found(name: str, summary: dict[str, Any]) -> str | None:
    """A warning when fold `name` found none of its validation seizures, else None."""
    events = _get(summary.get("metrics") or {}, ("validation_events", "model")) or {}
    windows = _get(summary.get("metrics") or {}, ("validation",)) or {}
    if events.get("sensitivity") == 0:
        n = events.get("seizure_events")
        what = (f"none of its {n} validation seizure events" if n
                else "none of its validation seizure events")
        return (f"the chosen fold {name} alarmed on {what} (validation event sensitivity 0): "
                "its model may detect no seizures; look at every fold's numbers before using it")
    if events.get("sensitivity") is None and windows.get("sensitivity") == 0:
        return (f"the chosen fold {name} has validation window sensitivity 0: its model "
                "may detect no seizures; look at every fold's numbers before using it")
    return None


def _choose_best(folds: dict[str, dict[str, Any]], cfg: EvaluateConfig
                 ) -> tuple[str, str, str | None]:
    if not folds:
        raise ValueError("no folds to choose from")

    def val(name, *path):
        return _get(folds[name]["metrics"], path)

    def num(v, missing):
        return missing if v is None or (isinstance(v, float) and math.isnan(v)) else v

    names = sorted(folds)
    loss = {n: num(val(n, "validation", "loss"), math.inf) for n in names}
    if cfg.best_fold == "val_loss":
        best = min(names, key=lambda n: loss[n])
        return best, f"lowest validation loss ({loss[best]:.4g})", None
    if cfg.best_fold == "youden":
        you = {n: num(val(n, "validation", "youden"), -math.inf) for n in names}
        best = max(names, key=lambda n: (you[n], -loss[n]))
        return best, f"highest validation Youden index ({_f(you[best])})", None
    sens = {n: num(val(n, "validation_events", "model", "sensitivity"), -1.0) for n in names}
    far = {n: num(val(n, "validation_events", "model", "far_24h"), math.inf) for n in names}
    within = [n for n in names if far[n] <= cfg.max_far_24h]
    if within:
        best = max(within, key=lambda n: (sens[n], -far[n], -loss[n]))
        return best, (f"highest validation event sensitivity {_f(sens[best])} with "
                      f"{_f(far[best])} false alarms per 24 h (limit {cfg.max_far_24h:g})"), None
    best = min(names, key=lambda n: (far[n], -sens[n], loss[n]))
    warning = (f"no fold kept validation false alarms within {cfg.max_far_24h:g} per 24 h "
               f"(fewest: {_f(far[best])} in {best}); chose the fold with the fewest")
    return best, (f"fewest validation false alarms per 24 h ({_f(far[best])}), event "
                  f"sensitivity {_f(sens[best])}"), warning


def _f(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3g}"


def fold_stats(summaries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation of ``FOLD_METRICS`` over fold summaries."""
    from osdml.evaluate.metrics import fold_statistics

    return fold_statistics({k: [_get(s["metrics"], path) for s in summaries]
                            for k, path in FOLD_METRICS.items()})


def _fold_row(s: dict[str, Any]) -> dict[str, Any]:
    row = {k: _get(s["metrics"], path) for k, path in FOLD_METRICS.items()}
    row.update(chosen_epoch=s.get("chosen_epoch"), epochs_run=s.get("epochs_run"),
               validation_passed=s.get("validation_passed"))
    return row


def _fold_line(s: dict[str, Any]) -> str:
    r = _fold_row(s)
    warn = f"; warning: {s['app_warning']}" if s.get("app_warning") else ""
    return (f"epoch {r['chosen_epoch']}; app threshold {_f(r['threshold_pct'])} %, gate "
            f"{_f(r['gate_pct'])} %; validation event sensitivity "
            f"{_f(r['val_event_sensitivity'])}, {_f(r['val_far_24h'])} false alarms/24h; test "
            f"event sensitivity {_f(r['test_event_sensitivity'])}, "
            f"{_f(r['test_far_24h'])} false alarms/24h (OSD algorithm "
            f"{_f(r['osd_event_sensitivity'])}, {_f(r['osd_far_24h'])}; paper scoring "
            f"{_f(r['test_paper_sensitivity'])}, {_f(r['test_paper_far_24h'])}){warn}")


# --------------------------------------------------------------------------- files

def _copy_best(run_dir: Path, fold_dir: Path, fold: dict, reason: str,
               warning: str | None) -> Path:
    """Copy the best fold's artefacts to ``run_dir/best`` (replaced as a whole)."""
    import hashlib

    partial = run_dir / ".best.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    copied = {}
    for name in BEST_FILES:
        if (fold_dir / name).is_file():
            shutil.copy2(fold_dir / name, partial / name)
            copied[name] = {"size_bytes": (partial / name).stat().st_size,
                            "sha256": hashlib.sha256((partial / name).read_bytes()).hexdigest()}
    write_json(partial / "manifest.json", {
        "fold": fold_dir.name, "rule": reason, "warning": warning, "files": copied,
        "chosen_epoch": fold.get("chosen_epoch"),
        "validation": {"windows": fold["metrics"].get("validation"),
                       "events": fold["metrics"].get("validation_events", {}).get("model")},
        "app_settings": fold.get("app_settings") or fold["metrics"].get("app_settings"),
        "test": {"windows": fold["metrics"].get("test_windows"),
                 "events": fold["metrics"].get("test_app", {}).get("model"),
                 "osd": fold["metrics"].get("test_app", {}).get("osd"),
                 "combined": fold["metrics"].get("test_app", {}).get("combined")},
        "missing": fold.get("missing", {})})
    best = run_dir / "best"
    if best.exists():
        old = run_dir / ".best.old"
        if old.exists():
            shutil.rmtree(old)
        best.replace(old)
        partial.replace(best)
        shutil.rmtree(old)
    else:
        partial.replace(best)
    return best


def _relocate(final: Path, partial: Path) -> None:
    """Point the paths recorded in a renamed fold's files at its final folder
    (``validation.json`` first: ``summary.json``, rewritten last, marks the fold complete)."""
    import json

    for name in ("validation.json", "summary.json"):
        path = final / name
        if path.is_file():
            text = path.read_text(encoding="utf-8").replace(json.dumps(str(partial))[1:-1],
                                                            json.dumps(str(final))[1:-1])
            write_json(path, json.loads(text))


def _readable(path: Path) -> bool:
    try:
        _read_json(path)
        return True
    except InputError:
        return False


def _checks(fold_dir: Path) -> list[dict]:
    path = fold_dir / "validation.json"
    return _read_json(path).get("results", []) if path.is_file() else []


def _read_json(path: Path) -> dict:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {path}: {e}") from None


class _Log:
    """Append timestamped lines to ``run.log`` and pass them on."""

    def __init__(self, path: Path, say: Callable[[str], None] | None):
        self.path, self.say = path, say

    def __call__(self, line: str) -> None:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{stamp} {line}\n")
        if self.say:
            self.say(line)
