"""Commands that train: ``train``, ``demo`` and ``run`` (cross-validation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from osdml.cli.common import (
    AcceleratorOpt,
    CacheDirOpt,
    ConfigOpt,
    DevicesOpt,
    JsonOpt,
    NoCacheOpt,
    PrecisionOpt,
    StrategyOpt,
    app,
    checked_out,
    fmt2,
    fmt_any,
    get_console,
    make_table,
    plural,
    print_json,
    quiet_libraries,
)
from osdml.errors import InputError


@app.command()
def train(
    out: Annotated[str, typer.Option("--out", "-o", help="Run folder to write.")],
    data: Annotated[list[Path] | None, typer.Option(
        "--data", "-d", help="OSDB files or folders (repeat the option; default: data.files of "
        "the configuration).")] = None,
    config: ConfigOpt = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="train.max_epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="train.seed.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Replace a previous run in --out: the new run is built beside it "
        "and swapped in only when complete and checked (otherwise refused).")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the interrupted run in --out from its last completed epoch "
        "(its own configuration and split).")] = False,
    json_out: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    accelerator: AcceleratorOpt = None,
    devices: DevicesOpt = None,
    precision: PrecisionOpt = None,
    strategy: StrategyOpt = None,
) -> None:
    """Train on OSDB files, export .pt / .ptl / .pte and validate each (the main job).

    One train / validation / test split of the selected events; the checkpoint is chosen on the
    validation part; every artefact is run in its own runtime against the trained model on
    held-out windows, and the command exits 1 if one is out of tolerance. See README "Run
    folder" for what is written."""
    from osdml.cli.common import placement_options
    from osdml.config import load_config

    placement = placement_options(accelerator, devices, precision, strategy)
    if resume and replace:
        raise InputError("--resume continues the run in --out, --replace starts it again: "
                         "give one of them")
    if resume:
        if epochs is not None or seed is not None:
            raise InputError("--epochs and --seed cannot change a run being resumed: it "
                             f"continues with its own configuration ({out}/config.toml)")
        cfg = None if config is None else load_config(config)
        _train_and_report(list(data or []), cfg, checked_out(out), quiet=quiet,
                          json_out=json_out, no_cache=no_cache, cache_dir=cache_dir,
                          resume=True, placement=placement)
        return
    cfg = load_config(config, {"train": {"max_epochs": epochs, "seed": seed, **placement}})
    files = list(data or cfg.data.files)
    if not files:
        raise InputError("no data: pass --data FILES (or set data.files in --config)")
    _train_and_report(files, cfg, checked_out(out), quiet=quiet, json_out=json_out,
                      no_cache=no_cache, cache_dir=cache_dir, replace=replace)


def _train_and_report(files, cfg, out: Path, *, quiet: bool, json_out: bool,
                      no_cache: bool = False, cache_dir: Path | None = None,
                      title: str = "", replace: bool = False, resume: bool = False,
                      placement: dict | None = None) -> None:
    from osdml.errors import CheckFailed
    from osdml.pipeline import train_run

    console = get_console(stderr=True)
    show = not quiet and not json_out and console.is_terminal
    run = train_run(files, cfg, out, progress=show, cache=not no_cache, cache_dir=cache_dir,
                    replace=replace, resume=resume, placement=placement)
    if json_out:
        print_json(run.summary)
    else:
        _render_run(run, title)
    if not run.passed:
        kept = ("" if Path(run.out_dir).resolve() == out.resolve() else
                f" ({out} kept as it was; the failed replacement is in {run.out_dir})")
        raise CheckFailed(f"artefacts out of tolerance in {run.out_dir}{kept}: "
                          + "; ".join(run.failures()))


def _render_run(run, title: str) -> None:
    s = run.summary
    m = s["metrics"]
    con = get_console()
    by_format = m.get("test_events_by_format") or {}
    rows = []
    for check in run.validation:
        ev = by_format.get(check.format, {})
        diff = "-" if check.error else f"{check.max_abs_logit_diff:.1e}"
        agree = "-" if check.error else f"{check.decision_agreement:.1%}"
        rows.append([f".{check.format}", check.runtime, f"{run.sizes[check.format] / 1024:,.0f}",
                     diff, agree, fmt2(ev.get("sensitivity")), fmt_any(ev.get("far_24h")),
                     "ok" if check.passed else f"FAILED {check.error or ''}".strip()])
    for fmt, why in run.missing.items():
        rows.append([f".{fmt}", "-", "-", "-", "-", "-", "-", f"not written: {why}"])
    con.print(make_table(title or f"Run folder {run.out_dir}",
                         ["format", "runtime", "KiB", "max |logit diff|", "decisions agree",
                          "event sensitivity", "FAR/24h", "status"], rows))
    app_settings = s.get("app_settings") or {}
    con.print(f"parity on {s['validation_windows']}; event sensitivity and false alarms per "
              "24 h: test events by the app's engine, the model alone, each format in its own "
              "runtime")
    tw = m["test_windows"]
    con.print(f"chosen epoch {s['chosen_epoch']} of {s['epochs_run']} ({s['criterion']}); "
              f"test windows: sensitivity {fmt2(tw['sensitivity'])}, FPR {fmt2(tw['fpr'])}")
    if app_settings:
        con.print(f"app settings: {app_settings.get('reason')}")
    app = m.get("test_app")
    if app:
        mo, osd, comb = app["model"], app["osd"], app["combined"]
        con.print(f"test events by the app's engine: model alone {mo['detected']} of "
                  f"{plural(mo['seizure_events'], 'seizure')} alarmed, "
                  f"{fmt_any(mo['far_24h'])} false alarms per 24 h over "
                  f"{mo['non_seizure_hours']:.1f} h of non-seizure recording; OSD algorithm "
                  f"alone {osd['detected']} alarmed, {fmt_any(osd['far_24h'])} per 24 h; model "
                  f"+ OSD {comb['detected']} alarmed, {fmt_any(comb['far_24h'])} per 24 h")
    for w in (s.get("warning"), s.get("app_warning")):
        if w:
            con.print(f"warning: {w}")
    con.print(f"written to {run.out_dir}: " + ", ".join(sorted(p.name for p in
                                                               run.out_dir.iterdir())))


@app.command()
def demo(
    out: Annotated[str, typer.Option("--out", "-o", help="Demo folder (its run is replaced "
                                     "on every demo).")] = "outputs/demo",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """The main job on the demo data (a few minutes on 2 cores).

    Generates a synthetic OSDB release into OUT/data, trains DeepEpiCnn into OUT/run, exports
    .pt / .ptl / .pte, validates each in its own runtime and prints the results."""
    from osdml.data.synthetic import SynthSpec, write_synthetic
    from osdml.pipeline import demo_config

    out = checked_out(out)
    result = write_synthetic(out / "data", SynthSpec())
    get_console(stderr=True).print(
        f"demo data: {sum(result.events_by_type.values())} synthetic events from "
        f"{SynthSpec().users} users in {out / 'data'}; training ...")
    _train_and_report([out / "data"], demo_config(), out / "run", quiet=quiet, json_out=False,
                      title="Demo: DeepEpiCnn on synthetic OSDB data (test part)", replace=True)


@app.command()
def run(
    config: ConfigOpt = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", help="A run folder (run-NNN) to continue: complete folds are kept, an "
        "interrupted one is restarted.")] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Folder under which the numbered run "
                                     "folder is created.")] = "outputs/runs",
    data: Annotated[list[Path] | None, typer.Option(
        "--data", "-d", help="OSDB files or folders (default: data.files of the "
        "configuration).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    json_out: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    executor: Annotated[str | None, typer.Option(
        "--executor", help="Where the folds train: local (one after the other in this "
        "process) or ray (in parallel as Ray tasks; pip install 'osdml[ray]'). Default: "
        "[executor] kind of the configuration.")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster to join (auto, ray://host:port; implies --executor "
        "ray). Default: [executor] ray_address, else a local Ray instance.")] = None,
    accelerator: AcceleratorOpt = None,
    devices: DevicesOpt = None,
    precision: PrecisionOpt = None,
    strategy: StrategyOpt = None,
) -> None:
    """Cross-validate: k-fold or nested k-fold over events, best fold chosen on validation.

    data.split.method (kfold / nested), n_folds, n_inner_folds and group_by_user set the
    folds. Each fold trains with checkpoint choice on its validation part, is tested on its
    test part and exports .pt / .ptl / .pte; the best fold (evaluate.best_fold, validation
    numbers only) is copied to RUN/best/. Writes summary.json, report.md and report.html with
    mean and standard deviation over folds. Interrupted? Run again with --resume RUN.
    --executor ray trains the folds in parallel as Ray tasks ([executor] of the configuration:
    CPUs and GPUs per fold; --ray-address joins a cluster)."""
    from osdml.config import load_config
    from osdml.crossval import run_crossval

    if config is None and resume is None:
        raise InputError("osdml run needs --config CFG (or --resume RUN)")
    from osdml.cli.common import placement_options

    where = _executor_options(executor, ray_address)
    placement = placement_options(accelerator, devices, precision, strategy)
    overrides = {"executor": where, "train": placement}
    cfg = load_config(config, overrides) if config is not None else None
    console = get_console(stderr=True)
    show = not quiet and not json_out and console.is_terminal
    say = None if json_out or quiet else (lambda line: console.print(line, highlight=False))
    with quiet_libraries():
        result = run_crossval(cfg, checked_out(out), resume=resume, files=data, progress=show,
                              cache=not no_cache, cache_dir=cache_dir, say=say,
                              overrides=overrides)
    if json_out:
        print_json(result.summary)
    else:
        _render_crossval(result)
    if result.failures:
        from osdml.errors import CheckFailed

        raise CheckFailed(f"artefacts out of tolerance in {result.run_dir}: "
                          + "; ".join(result.failures))


def _executor_options(kind: str | None, address: str | None) -> dict[str, str]:
    """--executor and --ray-address as ``[executor]`` overrides (only those given)."""
    if kind is not None and kind.lower() not in ("local", "ray"):
        raise InputError(f"--executor {kind!r}: choose local or ray")
    kind = kind.lower() if kind is not None else None
    if address is not None:
        if kind == "local":
            raise InputError("--ray-address joins a Ray cluster: use it with --executor ray "
                             "(or without --executor)")
        kind = "ray"
    return {k: v for k, v in (("kind", kind), ("ray_address", address)) if v is not None}


def _render_crossval(result) -> None:
    from osdml.evaluate.runreport import FOLD_COLUMNS, FOLD_KEYS

    s = result.summary
    con = get_console()
    rows = [[n + (" (best)" if n == result.best else "")]
            + [fmt_any(s["folds"][n].get(k)) for k in FOLD_KEYS] for n in s["splits"]]
    con.print(make_table(f"Cross-validation {result.run_dir}", FOLD_COLUMNS, rows, no_wrap=1))
    st = result.stats
    con.print(make_table("Mean ± standard deviation over folds", ["metric", "mean", "std", "folds"],
                     [[k, fmt_any(v["mean"]), fmt_any(v["std"]), str(v["n"])]
                      for k, v in st.items() if v["n"]]))
    con.print(f"best fold {result.best}: {result.reason}")
    if result.warning:
        con.print(f"warning: {result.warning}")
    if result.skipped:
        con.print(f"resumed: {', '.join(result.skipped)} were complete and kept")
    con.print(f"written: {result.run_dir / 'best'}, {result.run_dir / 'summary.json'}, "
              f"{result.run_dir / 'report.html'}")


@app.command()
def ensemble(
    config: ConfigOpt = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Ensemble folder to write (or to "
                                     "continue with --resume).")] = "outputs/ensemble",
    data: Annotated[list[Path] | None, typer.Option(
        "--data", "-d", help="OSDB files or folders (default: data.files of the "
        "configuration).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the interrupted ensemble in --out: complete members are "
        "kept, interrupted ones continue from their last completed epoch.")] = False,
    members: Annotated[int | None, typer.Option(min=1, help="ensemble.members.")] = None,
    keep: Annotated[int | None, typer.Option(min=1, help="ensemble.keep.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    json_out: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
    executor: Annotated[str | None, typer.Option(
        "--executor", help="Where the members train: local (one after the other) or ray (in "
        "parallel as Ray tasks). Default: [executor] kind of the configuration.")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster to join (implies --executor ray).")] = None,
    accelerator: AcceleratorOpt = None,
    devices: DevicesOpt = None,
    precision: PrecisionOpt = None,
    strategy: StrategyOpt = None,
) -> None:
    """Train an ensemble the way Spahr et al. (Epilepsia 2025) did and ship it as one .pte.

    The test users are held out first; each of [ensemble] members models trains on its own
    random user-level train / validation split of the rest; the keep members nearest to
    (sensitivity 1, 0 false alarms) on validation are kept and combined by the Harrell-Davis
    quantile q chosen on validation; the test part is scored once, by the paper's event
    scoring and the app's engine, beside the best single member. Writes OUT/members/<name>/
    (one train folder each), OUT/ensemble.pte (the app runs it like any model: two logits,
    softmax[1] = the ensemble's p) with ensemble.pt and ensemble.json, summary.json,
    report.md and report.html. Exit 1 when the ensemble .pte fails parity."""
    from osdml.cli.common import placement_options
    from osdml.config import load_config
    from osdml.ensemble import run_ensemble

    if config is None and not resume:
        raise InputError("osdml ensemble needs --config CFG (or --resume with --out)")
    where = _executor_options(executor, ray_address)
    placement = placement_options(accelerator, devices, precision, strategy)
    overrides = {"executor": where, "train": placement}
    if resume and (members is not None or keep is not None):
        raise InputError("--members and --keep cannot change an ensemble being resumed")
    sizes = {k: v for k, v in (("members", members), ("keep", keep)) if v is not None}
    cfg = (load_config(config, {**overrides, "ensemble": sizes})
           if config is not None else None)
    console = get_console(stderr=True)
    show = not quiet and not json_out and console.is_terminal
    say = None if json_out or quiet else (lambda line: console.print(line, highlight=False))
    with quiet_libraries():
        result = run_ensemble(cfg, checked_out(out), files=data, resume=resume, progress=show,
                              cache=not no_cache, cache_dir=cache_dir, say=say,
                              overrides=overrides)
    if json_out:
        print_json(result.summary)
    else:
        _render_ensemble(result)
    if not result.passed:
        from osdml.errors import CheckFailed

        raise CheckFailed(f"the ensemble .pte in {result.out_dir} failed its parity check: "
                          + "; ".join(str(c.get("failure") or c.get("error") or "out of "
                                          "tolerance") for c in result.summary["parity"]
                                      if not c.get("passed")))


def _render_ensemble(result) -> None:
    s = result.summary
    con = get_console()
    rows = [[n + (" (kept)" if m["kept"] else ""), str(m["rank"]), fmt2(m["sensitivity"]),
             fmt_any(m["far_24h"]), fmt2(m["distance"])] for n, m in result.members.items()]
    con.print(make_table(f"Ensemble members in {result.out_dir} (validation, "
                         f"{s['scoring']} scoring)",
                         ["member", "rank", "sensitivity", "FAR/24h", "distance to (1, 0)"],
                         rows, no_wrap=1))
    qrows = [[f"{r['quantile']:g}" + (" (chosen)" if r["quantile"] == s["quantile"] else ""),
              str(r["tp"]), str(r["fn"]), str(r["fp"]), fmt2(r["sensitivity"]),
              fmt_any(r["far_24h"])] for r in s["quantile_table"]["test"]]
    con.print(make_table("Test by quantile (paper scoring; q chosen on validation)",
                         ["q", "TP", "FN", "FP", "sensitivity", "FAR/24h"], qrows))
    rows = []
    for name, r in ((f"ensemble q={s['quantile']:g}", s["test"]),
                    (f"best member {s['best_member']['name']}", s["best_member"])):
        p, a = r["paper"], r["app"]
        rows.append([name, fmt2(p["sensitivity"]), fmt_any(p["far_24h"]),
                     fmt2(a["sensitivity"]), fmt_any(a["far_24h"])])
    con.print(make_table(f"Test: {s['test_events']} events of held-out users",
                         ["model", "paper sensitivity", "paper FAR/24h", "app sensitivity",
                          "app FAR/24h"], rows))
    for c in s["parity"]:
        con.print(f"{c.get('format')}: parity {'ok' if c.get('passed') else 'FAILED'} "
                  f"(max p difference {fmt_any(c.get('max_prob_diff'))} on "
                  f"{c.get('windows')} windows)")
    if result.skipped:
        con.print(f"resumed: {', '.join(result.skipped)} were complete and kept")
    con.print(f"written: {result.out_dir / 'ensemble.pte'}, {result.out_dir / 'summary.json'}, "
              f"{result.out_dir / 'report.html'}")
