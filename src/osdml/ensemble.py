"""Ensembles: the published method (Spahr et al., Epilepsia 2025, doi 10.1111/epi.18406).

``run_ensemble`` is what ``osdml ensemble`` calls. The method:

1. the test users (``data.split.test_fraction`` of the users) are held out first; no member
   ever sees them;
2. each of ``[ensemble] members`` models trains on its own random user-level train /
   validation split of the other users (users seldom drawn into validation before are drawn
   first, so every user serves about equally; validation holds ``val_seizures`` seizure
   events);
3. the ``keep`` members nearest to (sensitivity 1, 0 false alarms per day) on their own
   validation part are kept (Euclidean distance, FAR in false alarms per day);
4. their p(seizure) are combined by the Harrell-Davis quantile q (``osdml.models.ensemble``),
   q chosen among ``[ensemble] quantile`` on the kept members' validation events (the union
   of their validation parts: each kept member trained on some of them, as the paper chose q
   on its cross-validation training set);
5. the test part is scored once at the end, by the paper's event scoring and by the app's
   alarm engine, beside the best single member (nearest to (1, 0) on validation);
6. the kept members and the aggregation are exported as one ``ensemble.pte`` the app runs like
   any model (``osdml.export.ensemble``), checked in the ExecuTorch runtime against the same
   ensemble computed with scipy's Harrell-Davis estimator.

The folder::

    DIR/config.toml  split.json (test part + one split per member)  data_report.json  run.log
    DIR/members/<name>/   one osdml train folder per member (model.pt with its spec, ...)
    DIR/ensemble.pt  ensemble.pte  ensemble.pte.json   the ensemble, one model file each
    DIR/ensemble.json     members (kept, validation numbers), quantile, Harrell-Davis weights
    DIR/summary.json  report.md  report.html

Members train in ``members/.<name>.partial`` and are renamed when complete; ``resume``
skips complete members and continues the interrupted ones from their last epoch.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from osdml.config import ExecutorConfig, RunConfig, config_difference
from osdml.errors import InputError
from osdml.fileio import atomic_write, write_json
from osdml.outdir import check_kind, hold, record_kind, with_locks

if TYPE_CHECKING:
    from osdml.data.split import Split
    from osdml.executor import Executor

MEMBER_PREFIX = "member"
ENSEMBLE_FILES = ("ensemble.pt", "ensemble.pte", "ensemble.pte.json", "ensemble.json",
                  "summary.json", "report.md", "report.html")


@dataclass
class EnsembleRun:
    """The outcome of ``run_ensemble``.

    ``members`` maps each member's name to its validation numbers (``sensitivity``,
    ``far_24h``, ``distance``, ``kept``); ``quantile`` is the chosen q; ``summary`` is what
    ``summary.json`` holds; ``passed`` is False when the exported ensemble failed parity.
    """

    out_dir: Path
    members: dict[str, dict[str, Any]]
    kept: list[str]
    quantile: float
    summary: dict[str, Any]
    passed: bool
    skipped: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- splits

def member_name(i: int, n: int) -> str:
    """``member01`` ... (zero-padded to the number of members)."""
    return f"{MEMBER_PREFIX}{i + 1:0{max(2, len(str(n)))}d}"


def ensemble_splits(streams, selection, cfg: RunConfig) -> list[Split]:
    """The test part and every member's train / validation split, by user.

    Parameters
    ----------
    streams : EventStreams
    selection : Selection
    cfg : RunConfig
        ``data.split.test_fraction`` and ``seed`` for the test users; ``[ensemble]`` members,
        ``val_seizures`` (else ``data.split.val_fraction``) and ``seed`` for the members.

    Returns
    -------
    list of Split
        One per member (``tag`` = its name), all with the same ``test`` part.

    Raises
    ------
    InputError
        If there are too few users: the test part and every validation part need seizure
        users, and every member's training part needs one too.
    """
    from osdml.data.split import Split, _two_way

    labels = selection.labels
    users = np.array([streams.events[i].user_id for i in selection.indices])
    seizure_users = sorted(set(users[labels == 1].tolist()))
    if len(seizure_users) < 3:
        raise InputError(f"an ensemble holds out test users and splits the rest by user for "
                         f"every member: that needs at least 3 users with seizure events, the "
                         f"selection has {len(seizure_users)}")
    pos = np.arange(len(labels))
    split = cfg.data.split
    rest, test = _two_way(pos, labels, users, split.test_fraction, split.seed,
                          "data.split.test_fraction")
    if not (labels[test] == 1).any():
        raise InputError("the held-out test users have no seizure events; change "
                         "data.split.seed or test_fraction")
    rest_users = sorted(set(users[rest].tolist()))
    seizures_of = {u: int(((users[rest] == u) & (labels[rest] == 1)).sum()) for u in rest_users}
    with_seizures = [u for u in rest_users if seizures_of[u]]
    if len(with_seizures) < 2:
        raise InputError(f"after holding out the test users, {len(with_seizures)} user has "
                         "seizure events: members need seizure users for both training and "
                         "validation; add users or lower data.split.test_fraction")
    ecfg = cfg.ensemble
    total = sum(seizures_of.values())
    target = ecfg.val_seizures or max(1, round(split.val_fraction * total))
    others = [u for u in rest_users if not seizures_of[u]]
    n_other_val = round(split.val_fraction * len(others))
    served = dict.fromkeys(rest_users, 0)
    splits = []
    for m in range(ecfg.members):
        rng = np.random.default_rng([ecfg.seed, m])

        def order(group: list[str], rng=rng) -> list[str]:
            # weighted sampling without replacement (Efraimidis-Spirakis): users seldom in
            # validation so far weigh more
            keys = rng.random(len(group)) ** (1.0 + np.array([served[u] for u in group]))
            return [group[i] for i in np.argsort(-keys, kind="stable")]

        val_users, held = [], 0
        for u in order(with_seizures):
            if held >= target or len(val_users) == len(with_seizures) - 1:
                break
            val_users.append(u)
            held += seizures_of[u]
        val_users += order(others)[:n_other_val]
        for u in val_users:
            served[u] += 1
        in_val = np.isin(users[rest], val_users)
        name = member_name(m, ecfg.members)
        if not (labels[rest[in_val]] == 0).any():
            raise InputError(f"{name}: its validation users ({', '.join(val_users)}) have no "
                             "non-seizure events, so false alarms cannot be counted; add "
                             "false alarm or NDA events of more users")
        idx = selection.indices
        splits.append(Split(np.sort(idx[rest[~in_val]]), np.sort(idx[rest[in_val]]),
                            np.sort(idx[test]), fold=m, tag=name))
    return splits


# --------------------------------------------------------------------------- the run

@with_locks
def run_ensemble(config: RunConfig | None, out_dir: str | Path, *,
                 files: Sequence[str | Path] | None = None, resume: bool = False,
                 progress: bool = True, cache: bool = True, cache_dir: str | Path | None = None,
                 say: Callable[[str], None] | None = None,
                 executor: ExecutorConfig | Executor | None = None,
                 overrides: dict[str, Any] | None = None, _locks=None) -> EnsembleRun:
    """Train an ensemble's members, keep the best, choose q, score the test part, export.

    Parameters
    ----------
    config : RunConfig or None
        ``[ensemble]`` and everything a member needs (``[data]``, ``[model]``, ``[train]``,
        ``[app]``); with `resume` it may be None (the folder's own configuration), else it
        must equal it.
    out_dir : path-like
        The ensemble folder; it must not hold another run unless `resume`.
    files : sequence of path-like, optional
        OSDB files or folders; default ``config.data.files``.
    resume : bool
        Continue the interrupted ensemble in `out_dir`.
    say : callable, optional
        Receives one line per step (also appended to ``run.log``).
    executor : ExecutorConfig or Executor, optional
        Where members train (``osdml.executor``: in this process, or Ray tasks); default the
        ``[executor]`` section.
    overrides : dict, optional
        With `resume`: ``{"train": {placement keys}, "executor": {...}}`` over the recorded
        configuration.

    Returns
    -------
    EnsembleRun

    Raises
    ------
    InputError
        If the data, configuration or folder cannot be used, or there are too few users.
    """
    from osdml.config import load_config
    from osdml.data.split import read_manifest, split_manifest, write_manifest
    from osdml.pipeline import _check_model

    out = Path(out_dir)
    _locks.enter_context(hold(out, f"osdml ensemble --out {out}"))
    if resume:
        check_kind(out, "ensemble", "resume")
        if not (out / "config.toml").is_file() or not (out / "split.json").is_file():
            raise InputError(f"cannot resume {out}: not an osdml ensemble folder (config.toml "
                             "and split.json missing)")
        if (out / "summary.json").is_file():
            raise InputError(f"cannot resume {out}: the ensemble is complete (summary.json); "
                             "start a new one with another --out")
        recorded = load_config(out / "config.toml", overrides)
        diff = config is not None and config_difference(config, recorded)
        if diff:
            raise InputError(f"cannot resume {out}: --config differs from the ensemble's own "
                             f"configuration ({diff}); resume without --config")
        cfg = recorded
    else:
        if config is None:
            raise InputError("osdml ensemble needs --config (or --resume with --out)")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InputError(f"{out} is not empty: it holds another run; pass --resume to "
                             "continue the ensemble there, or another --out")
        cfg = config
    from osdml.executor import make_executor

    if executor is None or isinstance(executor, ExecutorConfig):
        executor = make_executor(executor or (config or cfg).executor)
    window, _ = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    if cfg.data.windows.input != "magnitude":
        raise InputError("osdml ensemble builds a model for the app, which feeds acceleration "
                         "magnitude only; data.windows.input = \"xyz\" is for research runs "
                         "(osdml train, osdml run)")
    _check_model(cfg, window)
    if executor.in_process:
        from osdml.train.devices import resolve_placement

        resolve_placement(cfg.train)
    from osdml.crossval import load_selected

    streams, selection, cfg = load_selected(cfg, files, cache=cache, cache_dir=cache_dir,
                                            what="build an ensemble")
    if resume:
        splits = read_manifest(out / "split.json", streams)
        from osdml.fileio import remove_stale_temporaries

        remove_stale_temporaries(out)
    else:
        splits = ensemble_splits(streams, selection, cfg)
        out.mkdir(parents=True, exist_ok=True)
        record_kind(out, "ensemble")
        with atomic_write(out / "config.toml", "w", encoding="utf-8") as f:
            f.write(cfg.to_toml())
        manifest = split_manifest(streams, selection, splits, cfg.data.split)
        manifest["ensemble"] = cfg.ensemble.model_dump(mode="json")
        write_manifest(out / "split.json", manifest)
        write_json(out / "data_report.json", streams.report.to_dict())
    from osdml.crossval import _Log

    log = _Log(out / "run.log", say)
    test = splits[0].test
    log(f"{'resumed' if resume else 'started'} {out}: {len(splits)} members, keeping "
        f"{cfg.ensemble.keep}; {len(test)} test events from "
        f"{len({streams.events[i].user_id for i in test})} held-out users")
    skipped = _train_members(out, splits, cfg, streams, selection, executor, log,
                             cache=cache, cache_dir=cache_dir, progress=progress)
    return _finish(out, splits, cfg, streams, selection, log, skipped)


def member_config(cfg: RunConfig, m: int) -> RunConfig:
    """Member `m`'s configuration: the run's with training seed ``train.seed + m``."""
    return cfg.model_copy(update={"train": cfg.train.model_copy(
        update={"seed": cfg.train.seed + m})})


def _train_members(out: Path, splits, cfg, streams, selection, executor, log, *, cache,
                   cache_dir, progress) -> list[str]:
    from osdml.crossval import FoldJob, _readable, run_jobs
    from osdml.train.fit import CHECKPOINT

    members_dir = out / "members"
    members_dir.mkdir(exist_ok=True)
    for stale in members_dir.glob(".*.partial"):
        if not (stale / CHECKPOINT).is_file():
            shutil.rmtree(stale)
    where = members_dir if executor.in_process else members_dir.resolve()
    cache_root = None if cache_dir is None else str(Path(cache_dir).resolve())
    skipped, jobs = [], []
    for m, split in enumerate(splits):
        final = members_dir / split.name
        if (final / "summary.json").is_file() and _readable(final / "summary.json"):
            skipped.append(split.name)
            continue
        if final.exists():
            shutil.rmtree(final)
        jobs.append(FoldJob(split.name, str(out.resolve()), str(where / f".{split.name}.partial"),
                            member_config(cfg, m), cache=cache, cache_dir=cache_root,
                            progress=progress and executor.in_process))
    if skipped:
        log(f"{len(skipped)} members complete, skipped: {', '.join(skipped)}")
    by_name = {s.name: s for s in splits}

    def started(job) -> None:
        s = by_name[job.name]
        log(f"{job.name}: training on {len(s.train)} events, validating on {len(s.val)}")

    def finished(name: str, s: dict) -> None:
        v = s["metrics"].get("validation_events", {}).get("model", {})
        log(f"{name}: done, epoch {s.get('chosen_epoch')}; validation event sensitivity "
            f"{_f(v.get('sensitivity'))}, {_f(v.get('far_24h'))} false alarms/24h (app engine, "
            "its tuned settings)")

    run_jobs(executor, jobs, (streams, selection, splits), log, started=started,
             finished=finished, resume_hint=f"resume with osdml ensemble --resume --out {out}")
    return skipped


# --------------------------------------------------------------------------- scoring

def ensemble_settings(cfg: RunConfig):
    """The app settings an ensemble is scored and shipped with: the ``[app]`` section with
    the ensemble's threshold (its q is what is tuned, not the threshold)."""
    return cfg.app.settings().with_(threshold_pct=round(100.0 * cfg.ensemble.threshold, 6))


def score(traces: list, settings, scoring: str) -> dict[str, Any]:
    """Event sensitivity and false alarms per 24 h of the model alone over `traces`, by the
    paper's scoring or the app's engine, with ``distance`` to (1, 0): sqrt((1 - sensitivity)^2
    + FAR per day^2) (Spahr et al. 2025: members are ranked by it). Undefined sensitivity
    counts as 0 and undefined FAR as 0 in the distance only."""
    from osdml.evaluate.events import score_trace
    from osdml.evaluate.metrics import event_summary
    from osdml.evaluate.paper import paper_scores

    paper = paper_scores(traces, settings)["summary"]
    app = event_summary([score_trace(t, settings) for t in traces])["model"]
    sens, far = ((paper["sensitivity"], paper["far_24h"]) if scoring == "paper"
                 else (app["sensitivity"], app["far_24h"]))
    dist = math.hypot(1.0 - (sens or 0.0), far or 0.0)
    return {"sensitivity": sens, "far_24h": far, "distance": dist, "paper": paper, "app": app}


def choose_members(numbers: dict[str, dict[str, Any]], keep: int
                   ) -> tuple[list[str], list[str]]:
    """Rank members by their validation numbers and keep the `keep` best (Spahr et al. 2025:
    the lowest Euclidean distance to (sensitivity 1, FAR 0)).

    Parameters
    ----------
    numbers : dict
        Member name -> ``distance`` (as ``score`` gives it) and ``sensitivity``.
    keep : int

    Returns
    -------
    (ranked, kept)
        All names, best first (ties: higher sensitivity, then name); the `keep` best, sorted
        by name.
    """
    ranked = sorted(numbers, key=lambda n: (numbers[n]["distance"],
                                            -(numbers[n]["sensitivity"] or 0.0), n))
    return ranked, sorted(ranked[:keep])


def choose_quantile(table: Sequence[tuple[float, dict[str, Any]]]) -> float:
    """The quantile whose validation result is nearest to (sensitivity 1, FAR 0) (``distance``
    of ``score``); ties: fewer false alarms per 24 h, then the q nearest the paper's 0.6.

    Raises
    ------
    ValueError
        If `table` is empty.
    """
    if not table:
        raise ValueError("no quantiles to choose from")
    return min(table, key=lambda r: (r[1]["distance"], r[1]["far_24h"] or 0.0,
                                     abs(r[0] - 0.6)))[0]


def _member_p(model_path: Path, streams, starts: np.ndarray, window: int) -> np.ndarray:
    """p(seizure) of the member at `model_path` on the inputs at `starts`, float32, eager."""
    from osdml.app.engine import app_probability
    from osdml.export.source import load_source
    from osdml.export.validate import eager_logits
    from osdml.pipeline import inputs_at

    model = load_source(model_path).module()
    out = [app_probability(eager_logits(model, inputs_at(streams, starts[i:i + 2048], window)))
           for i in range(0, len(starts), 2048)]
    return np.concatenate(out) if out else np.empty(0, np.float32)


def _app_starts(streams, events: np.ndarray, window: int) -> np.ndarray:
    from osdml.evaluate.events import buffer_windows

    parts = [buffer_windows(streams, int(e), window)[1] for e in events]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)


def _traces(streams, selection, events, window, starts, p) -> list:
    """Traces of `events` with p given at the sorted input `starts`."""
    from osdml.evaluate.events import p_lookup
    from osdml.pipeline import _not_expected, app_event_traces

    return app_event_traces(streams, selection, events, window,
                            p_lookup(starts, p, _not_expected))


def _finish(out: Path, splits, cfg: RunConfig, streams, selection, log, skipped) -> EnsembleRun:
    from osdml.crossval import _read_json
    from osdml.models.ensemble import harrell_davis_weights, hd_combine

    ecfg = cfg.ensemble
    window, _ = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    settings = ensemble_settings(cfg)
    members_dir = out / "members"
    # ---------------------------------------------------------------- members on validation
    members: dict[str, dict[str, Any]] = {}
    for s in splits:
        folder = members_dir / s.name
        with np.load(folder / "predictions.npz") as z:
            starts, p = z["validation_app_starts"], z["validation_app_p"]
        order = np.argsort(starts, kind="stable")
        val = score(_traces(streams, selection, s.val, window, starts[order], p[order]),
                    settings, ecfg.scoring)
        summary = _read_json(folder / "summary.json")
        members[s.name] = {"name": s.name, "model": str(folder / "model.pt"),
                           "validation_events": len(s.val),
                           "validation_users": sorted({streams.events[i].user_id
                                                       for i in s.val}),
                           "sensitivity": val["sensitivity"], "far_24h": val["far_24h"],
                           "distance": val["distance"], "paper": val["paper"],
                           "app": val["app"], "chosen_epoch": summary.get("chosen_epoch"),
                           "validation_passed": summary.get("validation_passed")}
    ranked, kept = choose_members(members, ecfg.keep)
    for n in members:
        members[n]["kept"] = n in kept
        members[n]["rank"] = ranked.index(n) + 1
    best_member = ranked[0]
    log(f"kept {len(kept)} of {len(members)} members nearest to (sensitivity 1, FAR 0) on "
        f"validation ({ecfg.scoring} scoring): {', '.join(kept)}")
    # ---------------------------------------------------------------- q on validation
    by_name = {s.name: s for s in splits}
    val_events = np.unique(np.concatenate([by_name[n].val for n in kept]))
    val_starts = _app_starts(streams, val_events, window)
    test = splits[0].test
    test_starts = _app_starts(streams, test, window)
    log(f"running the kept members on {len(val_starts)} validation and {len(test_starts)} "
        "test inputs")
    p_val = np.stack([_member_p(members_dir / n / "model.pt", streams, val_starts, window)
                      for n in kept])
    p_test = np.stack([_member_p(members_dir / n / "model.pt", streams, test_starts, window)
                       for n in kept])
    quantiles = sorted(set(ecfg.quantile))
    val_table, test_table = [], []
    for q in quantiles:
        pv = hd_combine(p_val, q).astype(np.float32)
        val_table.append((q, score(_traces(streams, selection, val_events, window, val_starts,
                                           pv), settings, ecfg.scoring)))
        pt = hd_combine(p_test, q).astype(np.float32)
        test_table.append((q, score(_traces(streams, selection, test, window, test_starts, pt),
                                    settings, ecfg.scoring)))
    q = choose_quantile([(qq, r) for qq, r in val_table])
    chosen = dict(val_table)[q]
    log(f"quantile {q:g} chosen on {len(val_events)} validation events: sensitivity "
        f"{_f(chosen['sensitivity'])}, {_f(chosen['far_24h'])} false alarms/24h "
        f"({ecfg.scoring} scoring)")
    test_result = dict(test_table)[q]
    # the best single member on the same test part with the same settings
    with np.load(members_dir / best_member / "predictions.npz") as z:
        bs, bp = z["test_app_starts"], z["test_app_p"]
    order = np.argsort(bs, kind="stable")
    single = score(_traces(streams, selection, test, window, bs[order], bp[order]), settings,
                   ecfg.scoring)
    log(f"test ({len(test)} events): ensemble sensitivity {_f(test_result['sensitivity'])}, "
        f"{_f(test_result['far_24h'])} false alarms/24h; best single member {best_member}: "
        f"{_f(single['sensitivity'])}, {_f(single['far_24h'])} ({ecfg.scoring} scoring)")
    # ---------------------------------------------------------------- export
    from osdml.export.ensemble import write_ensemble
    from osdml.pipeline import inputs_at

    weights = harrell_davis_weights(len(kept), q)
    app_record = {**settings.to_dict(), "rule": "ensemble",
                  "reason": f"Harrell-Davis quantile {q:g} chosen on validation; threshold "
                            f"{ecfg.threshold:g} (Spahr et al. 2025)",
                  "warning": None,
                  "validation": {"sensitivity": chosen["app"]["sensitivity"],
                                 "detected": chosen["app"]["detected"],
                                 "seizure_events": chosen["app"]["seizure_events"],
                                 "false_alarms": chosen["app"]["false_alarms"],
                                 "far_24h": chosen["app"]["far_24h"]}}
    if "osd" in app_record:
        app_record["osd"] = settings.osd
    take = np.unique(np.linspace(0, len(test_starts) - 1,
                                 min(len(test_starts), cfg.export.validate_windows))
                     .round().astype(int)) if len(test_starts) else np.empty(0, int)
    x = inputs_at(streams, test_starts[take], window)
    export = write_ensemble(
        [members_dir / n / "model.pt" for n in kept], q, out,
        threshold=ecfg.threshold, app_settings=app_record,
        training={"method": "Spahr et al., Epilepsia 2025 (doi 10.1111/epi.18406)",
                  "members": kept, "trained": len(members), "quantile": q,
                  "weights": weights.tolist(), "scoring": ecfg.scoring,
                  "files": list(cfg.data.files), "test_events": len(test)},
        metrics={"validation": _brief(chosen), "test": _brief(test_result)},
        windows=x, windows_source=f"{len(x)} test inputs of the held-out users",
        backend=cfg.export.pte_backend, ptl="ptl" in cfg.export.formats)
    parity = [c.to_dict() if hasattr(c, "to_dict") else c for c in export.checks]
    passed = all(c.get("passed", False) for c in parity) if parity else False
    # ---------------------------------------------------------------- records
    record = {"method": "Spahr et al., Epilepsia 2025 (doi 10.1111/epi.18406)",
              "members": [{k: members[n][k] for k in ("name", "kept", "rank", "sensitivity",
                                                       "far_24h", "distance",
                                                       "validation_events",
                                                       "validation_users", "chosen_epoch")}
                          for n in members],
              "kept": kept, "quantile": q, "quantiles": quantiles,
              "weights": weights.tolist(), "threshold": ecfg.threshold,
              "scoring": ecfg.scoring,
              "files": {f: p.name for f, p in export.paths.items()}}
    write_json(out / "ensemble.json", record)
    summary = {
        "out_dir": str(out), "members": len(members), "kept": kept, "quantile": q,
        "scoring": ecfg.scoring, "threshold": ecfg.threshold,
        "app_settings": app_record, "test_events": len(test),
        "test_users": sorted({streams.events[i].user_id for i in test}),
        "validation_events": len(val_events),
        "validation": {"paper": chosen["paper"], "app": chosen["app"]},
        "test": {"paper": test_result["paper"], "app": test_result["app"]},
        "best_member": {"name": best_member, "paper": single["paper"], "app": single["app"]},
        "quantile_table": {"validation": [_table_row(qq, r) for qq, r in val_table],
                           "test": [_table_row(qq, r) for qq, r in test_table]},
        "parity": parity, "parity_passed": passed,
        "artefacts": {f: {"path": str(p), "size_bytes": p.stat().st_size}
                      for f, p in export.paths.items()},
        "missing": dict(export.missing),
    }
    write_json(out / "summary.json", summary)
    _write_report(out, summary, members)
    log(f"done: {out / 'ensemble.pte'}, {out / 'report.html'}")
    return EnsembleRun(out, members, kept, q, summary, passed, skipped)


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("seizures", "tp", "fn", "fp", "sensitivity", "far_24h")
    return {"paper": {k: r["paper"].get(k) for k in keys},
            "app": {k: r["app"].get(k) for k in ("seizure_events", "detected", "sensitivity",
                                                 "false_alarms", "far_24h")}}


def _table_row(q: float, r: dict[str, Any]) -> dict[str, Any]:
    p, a = r["paper"], r["app"]
    return {"quantile": q, "tp": p.get("tp"), "fn": p.get("fn"), "fp": p.get("fp"),
            "sensitivity": p.get("sensitivity"), "far_24h": p.get("far_24h"),
            "app_sensitivity": a.get("sensitivity"), "app_false_alarms": a.get("false_alarms"),
            "app_far_24h": a.get("far_24h"), "distance": r["distance"]}


def _f(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3g}"


def _write_report(out: Path, s: dict[str, Any], members: dict[str, dict]) -> None:
    from osdml.evaluate.report import write_report

    def scored(name, r):
        p, a = r["paper"], r["app"]
        ci = p.get("sensitivity_ci95") or [None, None]
        fci = p.get("far_24h_ci95") or [None, None]
        return [name, p.get("tp"), p.get("fn"), p.get("fp"), p.get("sensitivity"),
                f"{_f(ci[0])}-{_f(ci[1])}", p.get("far_24h"), f"{_f(fci[0])}-{_f(fci[1])}",
                p.get("latency_median_s"), a.get("sensitivity"), a.get("false_alarms"),
                a.get("far_24h")]

    cols = ["model", "TP", "FN", "FP", "sensitivity", "95% CI", "FAR/24h", "95% CI",
            "median latency s", "app sensitivity", "app false alarms", "app FAR/24h"]
    qcols = ["q", "TP", "FN", "FP", "sensitivity", "FAR per day", "app sensitivity",
             "app FAR/24h"]

    def qrows(rows):
        return [["**" + f"{r['quantile']:g}" + "**" if r["quantile"] == s["quantile"]
                 else f"{r['quantile']:g}", r["tp"], r["fn"], r["fp"], r["sensitivity"],
                 r["far_24h"], r["app_sensitivity"], r["app_far_24h"]] for r in rows]

    mrows = [[n, "yes" if m["kept"] else "", m["rank"], m["sensitivity"], m["far_24h"],
              m["distance"], m["validation_events"], ", ".join(m["validation_users"])]
             for n, m in members.items()]
    sizes = [[f, a["path"], a["size_bytes"]] for f, a in s["artefacts"].items()]
    parity = [[c.get("format"), "ok" if c.get("passed") else "FAILED",
               c.get("max_prob_diff"), c.get("decision_agreement"), c.get("windows"),
               c.get("error") or c.get("failure") or ""] for c in s["parity"]]
    blocks = [
        ("p", f"Spahr et al., Epilepsia 2025 (doi 10.1111/epi.18406): {s['members']} members "
              f"trained on random user-level splits, the {len(s['kept'])} nearest to "
              f"(sensitivity 1, FAR 0) on validation kept, combined by the Harrell-Davis "
              f"quantile q = {s['quantile']:g} (chosen on {s['validation_events']} validation "
              f"events), positive when p > {s['threshold']:g}. Members and q were chosen by the "
              f"{s['scoring']} scoring. Test: {s['test_events']} events of the held-out users "
              f"{', '.join(s['test_users'])}, never seen by any member, scored once."),
        ("h2", "Test: ensemble against the best single member"),
        ("p", "Paper scoring: seizure interval from seizureTimes padded 120 s before and 10 s "
              "after, any positive window inside detects it; positives outside are false "
              "alarms, one per 150 s at most; FAR per 24 h of all recording, 95% Wald "
              "intervals. App: the app's alarm engine (counter, WarnTime, AlarmTime) with the "
              "same threshold and gate, false alarms per 24 h of non-seizure recording."),
        ("table", cols, [scored(f"ensemble (q = {s['quantile']:g})", s["test"]),
                         scored(f"best member ({s['best_member']['name']})",
                                s["best_member"])]),
        ("h2", "Quantiles (the paper's Table 1 layout)"),
        ("p", "Validation: the kept members' validation events (q is chosen here)."),
        ("table", qcols, qrows(s["quantile_table"]["validation"])),
        ("p", "Test: reported for every q; only the chosen one (bold) was picked in advance."),
        ("table", qcols, qrows(s["quantile_table"]["test"])),
        ("h2", "Members (validation, each on its own validation part)"),
        ("table", ["member", "kept", "rank", "sensitivity", "FAR/24h", "distance to (1, 0)",
                   "events", "validation users"], mrows),
        ("h2", "The exported ensemble"),
        ("table", ["format", "file", "bytes"], sizes),
        ("p", "Parity: the exported file in its own runtime against the same ensemble computed "
              "in Python (each member's eager p, scipy's Harrell-Davis estimator)."),
        ("table", ["format", "result", "max p diff", "decisions agree", "windows", "note"],
         parity),
    ]
    if s["missing"]:
        blocks.append(("p", "Not written: " + "; ".join(f"{k}: {v}"
                                                        for k, v in s["missing"].items())))
    write_report(out / "report.md", out / "report.html", "Ensemble", blocks)

