"""The ``osdml`` command line: parse options, call the library, render results.

This is the only module that prints. Errors become one line on stderr (``osdml: error: ...``)
with exit status 2 for bad input or usage and 1 for a failed check; ``--debug`` shows the
traceback instead. Heavy modules (numpy, torch, lightning, executorch) are imported inside the
commands, so ``osdml --help`` starts fast.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from osdml import __version__
from osdml.errors import InputError, OsdmlError

app = typer.Typer(
    help="Train seizure-detection CNNs on Open Seizure Database (OSDB) events and ship them to "
    "the OpenSeizureDetector app.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Read, summarise and split OSDB files.", no_args_is_help=True)
app.add_typer(data_app, name="data")
config_app = typer.Typer(help="Show or import run configurations.", no_args_is_help=True)
app.add_typer(config_app, name="config")

_STATE = {"debug": False, "verbose": False}

Files = Annotated[list[Path], typer.Argument(
    help="OSDB files (JSON array or NDJSON, optionally .gz) or folders of them.",
    show_default=False)]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="Run configuration (TOML or JSON); see `osdml config show`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
NoCacheOpt = Annotated[bool, typer.Option(
    "--no-cache", help="Parse the files even if a cached parse exists; do not store one.")]
CacheDirOpt = Annotated[Path | None, typer.Option(
    "--cache-dir", help="Parse cache folder (default: $OSDML_CACHE_DIR or ~/.cache/osdml).")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"osdml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Log more detail, including the libraries' warnings.")] = False,
) -> None:
    """Global options. main() takes --debug and --verbose from anywhere on the command line
    before parsing; they are declared here so that --help lists them."""


# --------------------------------------------------------------------------- rendering

def _console(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False)
    if not console.is_terminal:  # logs and pipes: do not wrap tables at 80 columns
        console = Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False,
                          width=120)
    return console


def _table(title: str, columns: list[str], rows: list[list[Any]], no_wrap: int = 0):
    """A table; its first `no_wrap` columns are never wrapped."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", title_style="bold")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right", no_wrap=i < no_wrap)
    for r in rows:
        t.add_row(*[f"{v:,.2f}" if isinstance(v, float) else
                    f"{v:,}" if isinstance(v, int) else str(v) for v in r])
    return t


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _load_streams(files: list[Path], cfg, no_cache: bool, cache_dir: Path | None):
    """Read OSDB files with a progress bar on stderr (shown only on a terminal)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from osdml.data.cache import load_streams
    from osdml.data.osdb import expand_inputs

    paths = expand_inputs(files)
    total = sum(p.stat().st_size for p in paths)
    console = _console(stderr=True)
    with Progress("reading OSDB", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("read", total=total)
        return load_streams(paths, cfg.data.reader, cache=not no_cache, cache_dir=cache_dir,
                            progress=lambda n: bar.advance(task, n))


# --------------------------------------------------------------------------- commands

def _out_path(value: str, option: str = "--out", folder: bool = True) -> Path:
    """An output option as a Path; an empty one is an error, not the current folder. With
    `folder`, an existing file is an error too (checked now, before any work)."""
    if not value.strip():
        raise InputError(f"{option} is empty; give the folder to write into")
    path = Path(value)
    if not folder:
        return path
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file; give a folder to write into")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{option} {path}: {parent} is a file, not a folder")
            break
    return path


@app.command()
def synth(
    out: Annotated[str, typer.Option("--out", "-o", help="Folder to write into.")],
    users: Annotated[int, typer.Option(min=1, help="Number of users.")] = 8,
    seizures: Annotated[int, typer.Option(min=0, help="Seizure events per user.")] = 8,
    false_alarms: Annotated[int, typer.Option(min=0, help="False-alarm events per user.")] = 6,
    nda: Annotated[int, typer.Option(min=0, help="Normal-daily-activity events per user.")] = 6,
    seed: Annotated[int, typer.Option(min=0, max=2**32 - 1,
                                      help="Random seed; same seed, same bytes.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="json (array) or ndjson.")] = "json",
    defect_rate: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Chance that an interior datapoint is damaged like in real "
        "files; damaged datapoints are at least 4 apart (0 = clean).")] = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Generate a synthetic OSDB release (the demo data), same seed, same bytes.

    Plausible wrist-accelerometer events (tonic-clonic seizures, look-alike false alarms,
    daily activity) in the format of real OSDB files: 25 Hz, milli-g, one file per kind."""
    from osdml.data.synthetic import SynthSpec, write_synthetic

    out = _out_path(out)
    if fmt not in ("json", "ndjson"):
        raise InputError(f"--format {fmt!r}: must be json or ndjson")
    spec = SynthSpec(users=users, seizures_per_user=seizures, false_alarms_per_user=false_alarms,
                     nda_per_user=nda, seed=seed, format=fmt, defect_rate=defect_rate)
    result = write_synthetic(out, spec)
    if json_out:
        _print_json({**result.to_dict(), "folder": str(out)})
        return
    rows = [[p.name, n] for p, n in zip(result.files, result.events_by_type.values(), strict=True)]
    con = _console()
    con.print(_table(f"Synthetic OSDB release in {out} (seed {seed})", ["file", "events"], rows))
    con.print(f"{_n(sum(result.events_by_type.values()), 'event')} from {_n(users, 'user')}, "
              f"{_n(result.datapoints, 'datapoint')}"
              + (f", defects injected: {dict(result.defects)}" if result.defects else ""))


@data_app.command("summary")
def data_summary(files: Files, config: ConfigOpt = None, json_out: JsonOpt = False,
                 no_cache: NoCacheOpt = False, cache_dir: CacheDirOpt = None) -> None:
    """Summarise OSDB files: what they hold and what was skipped.

    Events, datapoints, hours and windows by type, subType, user and data source; events and
    windows per label after selection; every skipped or repaired item, with the reason."""
    from osdml.config import load_config
    from osdml.data.filters import select_events
    from osdml.data.summary import summarize

    cfg = load_config(config)
    streams = _load_streams(files, cfg, no_cache, cache_dir)
    window, hop = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    summary = summarize(streams, select_events(streams, cfg.data.selection), window, hop,
                        cfg.data.reader.datapoint_s)
    if json_out:
        _print_json(summary.to_dict())
        return
    _render_summary(summary, cfg.data.selection.labels)


def _render_summary(s, labels: dict[str, int]) -> None:
    from osdml.data.report import NOTE_REASONS, SKIP_REASONS

    con = _console()
    t = s.totals
    cached = " (read from the parse cache)" if s.from_cache else ""
    con.print(f"{len(s.files)} file(s){cached}: {t.events:,} events "
              f"({t.seizure_events:,} seizures), {t.datapoints:,} datapoints, {t.hours:,.2f} h, "
              f"{t.windows:,} windows of {s.window_samples} samples, hop {s.hop_samples}")
    cols = ["events", "seizures", "datapoints", "hours", "windows"]
    for title, groups in (("By type", s.by_type), ("By subType", s.by_subtype),
                          ("By user", s.by_user), ("By data source", s.by_source)):
        rows = [[k, g.events, g.seizure_events, g.datapoints, g.hours, g.windows]
                for k, g in groups.items()]
        con.print(_table(title, [title.split()[-1], *cols], rows))
    names: dict[int, list[str]] = {}
    for typ, label in labels.items():
        names.setdefault(label, []).append(typ)
    rows = [[f"{k} ({', '.join(names.get(k, []))})", g.events, g.seizure_events, g.datapoints,
             g.hours, g.windows] for k, g in s.by_label.items()]
    con.print(_table("Selected, by label", ["label", *cols], rows))
    if s.excluded:
        con.print(_table("Excluded by selection", ["reason", "events"],
                         [[k, v] for k, v in s.excluded.items()]))
    r = s.report
    rows = ([[SKIP_REASONS.get(k, k), "events", v] for k, v in r["skipped_events"].items()]
            + [[SKIP_REASONS.get(k, k), "datapoints", v]
               for k, v in r["skipped_datapoints"].items()]
            + [[NOTE_REASONS.get(k, k), "kept", v] for k, v in r["notes"].items()])
    if s.events_without_windows:
        rows.append([NOTE_REASONS["no_window"], "events", s.events_without_windows])
    if rows:
        con.print(_table("Skipped and repaired", ["reason", "what", "count"], rows))
    else:
        con.print("Nothing skipped.")


@data_app.command("split")
def data_split(
    files: Files,
    out: Annotated[Path, typer.Option("--out", "-o", help="Manifest file to write (JSON).")],
    config: ConfigOpt = None,
    method: Annotated[str | None, typer.Option(help="holdout, kfold or nested.")] = None,
    folds: Annotated[int | None, typer.Option(help="Folds (outer folds for nested).")] = None,
    group_by_user: Annotated[bool | None, typer.Option(
        "--group-by-user/--no-group-by-user", help="Keep each user on one side.")] = None,
    seed: Annotated[int | None, typer.Option(help="Split seed.")] = None,
    json_out: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Split events into train / validation / test parts and write the manifest.

    By event, stratified on the label, optionally grouped by user; the manifest lists the
    event ids of every part, for audit and reproduction."""
    from osdml.config import load_config
    from osdml.data.filters import select_events
    from osdml.data.split import split_events, split_manifest, write_manifest

    cfg = load_config(config, {"data": {"split": {"method": method, "n_folds": folds,
                                                  "group_by_user": group_by_user, "seed": seed}}})
    streams = _load_streams(files, cfg, no_cache, cache_dir)
    selection = select_events(streams, cfg.data.selection)
    splits = split_events(streams, selection, cfg.data.split)
    manifest = split_manifest(streams, selection, splits, cfg.data.split)
    write_manifest(out, manifest)
    if json_out:
        _print_json(manifest)
        return
    rows = []
    for s in manifest["splits"]:
        row = [s["name"]]
        for part in ("train", "val", "test"):
            p = s[part]
            row.append(f"{_n(p['n_events'], 'event')} ({p['by_label'].get('1', 0)} seizure) "
                       f"{_n(len(p['users']), 'user')}")
        rows.append(row)
    _console().print(_table(f"{cfg.data.split.method} split of {len(selection)} events "
                            f"-> {out}", ["split", "train", "validation", "test"], rows))


@config_app.command("show")
def config_show(config: Annotated[Path | None, typer.Argument(
        help="Configuration file (TOML or JSON); without it, the defaults.")] = None) -> None:
    """Print the effective configuration (defaults filled in) as TOML, each key described."""
    from osdml.config import load_config

    sys.stdout.write(load_config(config).to_toml())


@config_app.command("import")
def config_import(
    nnconfig: Annotated[Path, typer.Argument(help="An nnTraining2 nnConfig*.json file.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the TOML here "
                                             "instead of printing it.")] = None,
) -> None:
    """Convert an nnTraining2 nnConfig*.json into an osdml configuration.

    Every key is mapped, or listed as ignored with the reason."""
    from osdml.fileio import atomic_write
    from osdml.nnconfig import import_nnconfig

    cfg, ignored = import_nnconfig(nnconfig)
    header = f"# imported from {nnconfig} by osdml config import\n"
    header += "".join(f"# ignored {k}: {why}\n" for k, why in ignored)
    text = header + "\n" + cfg.to_toml()
    if out is None:
        sys.stdout.write(text)
    else:
        with atomic_write(out, "w", encoding="utf-8") as f:
            f.write(text)
    con = _console(stderr=out is None)
    if ignored:
        con.print(_table(f"{len(ignored)} nnConfig keys ignored", ["key", "why"],
                         [list(row) for row in ignored]))
    if out is not None:
        con.print(f"wrote {out}")


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
        "--replace", help="Replace a previous run in --out (otherwise refused).")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the interrupted run in --out from its last completed epoch "
        "(its own configuration and split).")] = False,
    json_out: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Train on OSDB files, export .pt / .ptl / .pte and validate each (the main job).

    One train / validation / test split of the selected events; the checkpoint is chosen on the
    validation part; every artefact is run in its own runtime against the trained model on
    held-out windows, and the command exits 1 if one is out of tolerance. See README "Run
    folder" for what is written."""
    from osdml.config import load_config

    if resume and replace:
        raise InputError("--resume continues the run in --out, --replace starts it again: "
                         "give one of them")
    if resume:
        if epochs is not None or seed is not None:
            raise InputError("--epochs and --seed cannot change a run being resumed: it "
                             f"continues with its own configuration ({out}/config.toml)")
        cfg = None if config is None else load_config(config)
        _train_and_report(list(data or []), cfg, _out_path(out), quiet=quiet,
                          json_out=json_out, no_cache=no_cache, cache_dir=cache_dir,
                          resume=True)
        return
    cfg = load_config(config, {"train": {"max_epochs": epochs, "seed": seed}})
    files = list(data or cfg.data.files)
    if not files:
        raise InputError("no data: pass --data FILES (or set data.files in --config)")
    _train_and_report(files, cfg, _out_path(out), quiet=quiet, json_out=json_out,
                      no_cache=no_cache, cache_dir=cache_dir, replace=replace)


def _train_and_report(files, cfg, out: Path, *, quiet: bool, json_out: bool,
                      no_cache: bool = False, cache_dir: Path | None = None,
                      title: str = "", replace: bool = False, resume: bool = False) -> None:
    from osdml.errors import CheckFailed
    from osdml.pipeline import train_run

    console = _console(stderr=True)
    show = not quiet and not json_out and console.is_terminal
    run = train_run(files, cfg, out, progress=show, cache=not no_cache, cache_dir=cache_dir,
                    replace=replace, resume=resume)
    if json_out:
        _print_json(run.summary)
    else:
        _render_run(run, title)
    if not run.passed:
        raise CheckFailed(f"artefacts out of tolerance in {out}: " + "; ".join(run.failures()))


def _render_run(run, title: str) -> None:
    s = run.summary
    m = s["metrics"]
    con = _console()
    by_format = m.get("test_events_by_format") or {}
    rows = []
    for check in run.validation:
        ev = by_format.get(check.format, {}).get("alarm", {})
        diff = "-" if check.error else f"{check.max_abs_logit_diff:.1e}"
        agree = "-" if check.error else f"{check.decision_agreement:.1%}"
        rows.append([f".{check.format}", check.runtime, f"{run.sizes[check.format] / 1024:,.0f}",
                     diff, agree, _fmt(ev.get("sensitivity")), _fmt(ev.get("fpr")),
                     "ok" if check.passed else f"FAILED {check.error or ''}".strip()])
    for fmt, why in run.missing.items():
        rows.append([f".{fmt}", "-", "-", "-", "-", "-", "-", f"not written: {why}"])
    con.print(_table(title or f"Run folder {run.out_dir}",
                     ["format", "runtime", "KiB", "max |logit diff|", "decisions agree",
                      "event sensitivity", "event FPR", "status"], rows))
    con.print(f"parity on {s['validation_windows']}; event metrics: test events by the app's "
              "alarm rule, computed in each format's runtime")
    tw, te = m["test_windows"], m["test_events"]
    con.print(f"chosen epoch {s['chosen_epoch']} of {s['epochs_run']} ({s['criterion']}); "
              f"test windows: sensitivity {_fmt(tw['sensitivity'])}, FPR {_fmt(tw['fpr'])}; "
              f"test events ({_n(te['seizure_events'], 'seizure')} of {te['events']}): alarm rule "
              f"sensitivity {_fmt(te['alarm']['sensitivity'])}, FPR {_fmt(te['alarm']['fpr'])};"
              f" any-window rule sensitivity {_fmt(te['any_window']['sensitivity'])}, "
              f"FPR {_fmt(te['any_window']['fpr'])}")
    app = m.get("test_app")
    if app:
        mo, osd = app["model"], app["osd"]
        con.print(f"test events by the app's alarm rule: {mo['detected']} of "
                  f"{_n(mo['seizure_events'], 'seizure')} alarmed, "
                  f"{_fmt_any(mo['far_24h'])} false alarms per 24 h over "
                  f"{mo['non_seizure_hours']:.1f} h of non-seizure recording; OSD algorithm "
                  f"on the same events: sensitivity {_fmt_any(osd['sensitivity'])}, "
                  f"{_fmt_any(osd['far_24h'])} false alarms per 24 h")
    con.print(f"written to {run.out_dir}: " + ", ".join(sorted(p.name for p in
                                                               run.out_dir.iterdir())))


def _n(count: int, noun: str) -> str:
    """'1 event', '2 events'."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"


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

    out = _out_path(out)
    result = write_synthetic(out / "data", SynthSpec())
    _console(stderr=True).print(
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
) -> None:
    """Cross-validate: k-fold or nested k-fold over events, best fold chosen on validation.

    data.split.method (kfold / nested), n_folds, n_inner_folds and group_by_user set the
    folds. Each fold trains with checkpoint choice on its validation part, is tested on its
    test part and exports .pt / .ptl / .pte; the best fold (evaluate.best_fold, validation
    numbers only) is copied to RUN/best/. Writes summary.json, report.md and report.html with
    mean and standard deviation over folds. Interrupted? Run again with --resume RUN."""
    from osdml.config import load_config
    from osdml.crossval import run_crossval

    if config is None and resume is None:
        raise InputError("osdml run needs --config CFG (or --resume RUN)")
    cfg = load_config(config) if config is not None else None
    console = _console(stderr=True)
    show = not quiet and not json_out and console.is_terminal
    say = None if json_out or quiet else (lambda line: console.print(line, highlight=False))
    with _quiet_libraries():
        result = run_crossval(cfg, _out_path(out), resume=resume, files=data, progress=show,
                              cache=not no_cache, cache_dir=cache_dir, say=say)
    if json_out:
        _print_json(result.summary)
    else:
        _render_crossval(result)
    if result.failures:
        from osdml.errors import CheckFailed

        raise CheckFailed(f"artefacts out of tolerance in {result.run_dir}: "
                          + "; ".join(result.failures))


def _render_crossval(result) -> None:
    from osdml.evaluate.runreport import FOLD_COLUMNS, FOLD_KEYS

    s = result.summary
    con = _console()
    rows = [[n + (" (best)" if n == result.best else "")]
            + [_fmt_any(s["folds"][n].get(k)) for k in FOLD_KEYS] for n in s["splits"]]
    con.print(_table(f"Cross-validation {result.run_dir}", FOLD_COLUMNS, rows, no_wrap=1))
    st = result.stats
    con.print(_table("Mean ± standard deviation over folds", ["metric", "mean", "std", "folds"],
                     [[k, _fmt_any(v["mean"]), _fmt_any(v["std"]), str(v["n"])]
                      for k, v in st.items() if v["n"]]))
    con.print(f"best fold {result.best}: {result.reason}")
    if result.skipped:
        con.print(f"resumed: {', '.join(result.skipped)} were complete and kept")
    con.print(f"written: {result.run_dir / 'best'}, {result.run_dir / 'summary.json'}, "
              f"{result.run_dir / 'report.html'}")


def _fmt_any(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


@app.command()
def replay(
    model: Annotated[list[Path], typer.Option(
        "--model", "-m", help="Model file (.pt, .ptl, .pte, .bpte); repeat to replay several "
        "formats of one model and compare their alarm histories.", show_default=False)],
    data: Annotated[list[Path], typer.Option(
        "--data", "-d", help="OSDB files or folders (repeat the option).", show_default=False)],
    threshold: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="Decision threshold on p(seizure) (default: the model's).")
    ] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Folder to write replay.csv, "
                                     "replay.json and the reports into.")] = "outputs/replay",
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Feed each event's datapoints through a model exactly as the app does.

    A 750-sample buffer filled 125 samples (one 5 s datapoint) at a time, one inference per
    datapoint once it is full, the app's WARNING / ALARM counters reset per event. Writes
    replay.csv (one row per event: alarm and warning reached, seconds from seizure start to
    alarm, max p, state history), replay.json and report.md / report.html; the
    OpenSeizureDetector algorithm's recorded alarms are reported beside the model. With several
    --model files, exits 1 if their alarm histories differ."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from osdml.config import load_config
    from osdml.data.filters import select_events
    from osdml.evaluate.replay import compare_histories, write_replay
    from osdml.evaluate.replay import replay as run_replay

    cfg = load_config(config)
    out_dir = _out_path(out)
    for i, m in enumerate(model):
        if not m.is_file():
            raise InputError(f"{m}: no such model file")
        if any(m.resolve() == other.resolve() for other in model[:i]):
            raise InputError(f"--model {m} is given twice; give each file once")
    streams = _load_streams(data, cfg, no_cache, cache_dir)
    selection = select_events(streams, cfg.data.selection)
    if not len(selection):
        raise InputError(f"no events to replay in {', '.join(map(str, data))} (of "
                         f"{streams.n_events} events read, none has a type the label map "
                         "knows; see `osdml data summary`)")
    console = _console(stderr=True)
    results, written = [], {}
    with _quiet_libraries(), Progress("replay", BarColumn(), MofNCompleteColumn(),
                                      console=console, transient=True,
                                      disable=json_out or not console.is_terminal) as bar:
        for m in model:
            task = bar.add_task(m.name, total=len(selection))
            r = run_replay(m, streams, selection.indices, selection.labels, threshold=threshold,
                           progress=lambda n, t=task: bar.update(t, completed=n))
            where = out_dir if len(model) == 1 else out_dir / _replay_name(m, model)
            written[str(m)] = write_replay(r, where, streams, cfg.evaluate.timelines)
            results.append(r)
    differ = compare_histories(results)
    if len(results) > 1:
        from osdml.fileio import write_json

        write_json(out_dir / "parity.json", {"models": [str(m) for m in model],
                                             "identical": not differ, "differences": differ})
    if json_out:
        _print_json({"replays": [r.summary for r in results],
                     "identical_alarm_histories": None if len(results) < 2 else not differ,
                     "differences": differ})
    else:
        _render_replays(results, written, differ)
    if differ:
        from osdml.errors import CheckFailed

        raise CheckFailed(f"alarm histories differ between {', '.join(map(str, model))} on "
                          f"{_n(len(differ), 'event')} (first: {differ[0]['id']}); see "
                          f"{out_dir / 'parity.json'}")


def _replay_name(m: Path, models: list[Path]) -> str:
    names = [x.name for x in models]
    return m.name if names.count(m.name) == 1 else f"{m.parent.name}-{m.name}"


def _render_replays(results, written, differ) -> None:
    con = _console()
    rows = []
    for r in results:
        m, o = r.summary["events"]["model"], r.summary["events"]["osd"]
        rows.append([str(r.model), r.runtime, f"{r.threshold:g}", str(r.summary["n_events"]),
                     f"{m['detected']}/{m['seizure_events']}", _fmt_any(m["sensitivity"]),
                     _fmt_any(m["far_24h"]), _fmt_any(m["latency_median_s"]),
                     _fmt_any(o["sensitivity"]), _fmt_any(o["far_24h"])])
    con.print(_table("Replay (the app's buffer and alarm rule)",
                     ["model", "runtime", "threshold", "events", "seizures alarmed",
                      "sens.", "FAR/24h", "median latency s", "OSD sens.", "OSD FAR/24h"],
                     rows, no_wrap=1))
    for r in results:
        if r.summary["skipped"]:
            con.print(f"{r.model}: no decision on " + ", ".join(
                f"{_n(v, 'event')} {k}" for k, v in r.summary["skipped"].items()))
    if len(results) > 1:
        con.print("identical alarm histories across " + ", ".join(r.format for r in results)
                  if not differ else f"alarm histories DIFFER on {_n(len(differ), 'event')}")
    for m, paths in written.items():
        con.print(f"{m}: wrote {paths['csv']}, {paths['html']}")


def _shape(value: str | None) -> tuple[int, int, int] | None:
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or shape[0] != 1 or min(shape) < 1:
        raise InputError(f"--input-shape {value!r}: give 1,channels,samples such as 1,1,750")
    return shape  # type: ignore[return-value]


@app.command()
def convert(
    inputs: Annotated[list[Path], typer.Argument(
        help="Model files (.pt, .pth, .ptl, TorchScript), or folders with --recursive.",
        show_default=False)],
    out: Annotated[str | None, typer.Option(
        "--out", "-o", help="Output file (one input) or folder (several inputs or a folder); "
        "default: beside each input.")] = None,
    to: Annotated[str, typer.Option("--to", help="pte, ptl or bpte (self-test bundle).")] = "pte",
    backend: Annotated[str, typer.Option(help="xnnpack or portable (.pte only).")] = "xnnpack",
    quantize: Annotated[str | None, typer.Option(
        help="int8: post-training quantization for XNNPACK (needs --calibration).")] = None,
    calibration: Annotated[list[Path] | None, typer.Option(
        help="OSDB files: real windows for int8 calibration, bundled test cases and the "
        "parity check (repeat the option).")] = None,
    input_shape: Annotated[str | None, typer.Option(
        help="1,channels,samples when the file has no spec (default 1,1,750).")] = None,
    num_classes: Annotated[int | None, typer.Option(
        min=1, help="Expected classes; checked against the weights.")] = None,
    trust: Annotated[bool, typer.Option(
        help="Allow unpickling a whole nn.Module (runs code from the file).")] = False,
    force: Annotated[bool, typer.Option(help="Convert even when the output is up to date.")
                     ] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r",
                                            help="Convert the model files in folders.")] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes for batches.")
                       ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Convert model files to .pte (ExecuTorch), .ptl or a .bpte self-test bundle.

    Inputs are recognised by content: osdml and nnTraining2 checkpoints, state dicts,
    TorchScript and .ptl files, and (with --trust) pickled modules. Every output is checked
    in its own runtime against the input model; a folder is converted in parallel, one broken
    file does not stop the rest, and the exit status is non-zero if any failed."""
    from osdml.export.convert import ConvertOptions, find_inputs

    opts = ConvertOptions(to=to, backend=backend, quantize=quantize,
                          calibration=[str(p) for p in calibration or []],
                          input_shape=_shape(input_shape), num_classes=num_classes,
                          trust=trust, force=force)
    opts.check()
    found = find_inputs(inputs, recursive)
    if to in ("pte", "bpte"):
        _require_executorch()
    with _quiet_libraries():
        results = _run_conversions(found, opts, out, to, quantize, workers)
    if json_out:
        _print_json([r.to_dict() for r in results])
    elif not quiet:
        _render_conversions(results)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        code = 2 if any(r.exit_code == 2 for r in failed) else max(r.exit_code for r in failed)
        sys.stderr.write(f"osdml: error: {_n(len(failed), 'file')} of {len(results)} failed\n")
        raise typer.Exit(code)


def _run_conversions(found, opts, out: str | None, to: str, quantize, workers):
    from osdml.export.convert import convert_file, convert_many, output_path

    out_path = None if out is None else _out_path(out, folder=False)
    if len(found) == 1 and found[0][1] is None:  # one file: errors are raised as they are
        return [convert_file(found[0][0], output_path(found[0][0], to, out_path, None,
                                                       quantize), opts)]
    if out_path is not None:  # fail now, not after every file was converted
        out_path.mkdir(parents=True, exist_ok=True)
    # beside each input, or under --out (mirroring the folders given)
    items = [(src, output_path(src, to, out_path, None if out_path is None
                               else root or src.parent, quantize)) for src, root in found]
    return convert_many(items, opts, workers)


def _quiet_libraries():
    """The libraries' internal log notes, hidden unless --verbose."""
    import contextlib

    if _STATE.get("verbose"):
        return contextlib.nullcontext()
    from osdml.export.pte import quiet_torch_logs

    return quiet_torch_logs()


def _render_conversions(results) -> None:
    con = _console()
    if len(results) == 1 and results[0].status == "converted":
        r = results[0]
        con.print(f"{r.input} -> {r.output} ({r.size_bytes / 1024:,.0f} KiB, {r.seconds:.1f} s): "
                  f"{r.origin}")
        for note in r.notes:
            con.print(f"  {note}")
        con.print(f"  check: {r.check.get('summary', '')}; on {r.check.get('on', '-')}")
        return
    rows = [[r.input, r.status, r.output or "-",
             "-" if r.size_bytes is None else f"{r.size_bytes / 1024:,.0f}",
             r.reason or r.check.get("summary", "")] for r in results]
    con.print(_table(f"{len(results)} model file(s)", ["input", "result", "output", "KiB",
                                                     "reason / check"], rows))


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="A model file of any kind.", show_default=False)],
    json_out: JsonOpt = False,
) -> None:
    """Say what a model file is and what it holds: kind, spec, methods, input and output
    shapes, size, and for a .pte which operators run in the XNNPACK delegate."""
    from osdml.export.inspect import describe

    _require_executorch([file])

    with _quiet_libraries():
        info = describe(file)
    if json_out:
        _print_json(info)
        return
    con = _console()
    con.print(f"{info['path']}: {info['description']}, {info['size_bytes']:,} bytes, "
              f"sha256 {info['sha256'][:16]}...")
    for key in ("contents", "test_cases", "training_mode", "parameters"):
        if key in info:
            con.print(f"  {key.replace('_', ' ')}: {info[key]}")
    for note in info.get("notes", []):
        con.print(f"  {note}")
    fwd = info.get("forward", {})
    if "inputs" in fwd:
        io = lambda ts: ", ".join(f"{tuple(t.get('shape', []))} {t.get('dtype', '')}"  # noqa
                                  for t in ts)
        con.print(f"  forward: {io(fwd['inputs'])} -> {io(fwd.get('outputs', []))}")
    elif "error" in fwd:
        con.print(f"  forward: {fwd['error']}")
    if "constants" in info:
        con.print("  constants: " + ", ".join(f"{k}={v}" for k, v in info["constants"].items()))
    if "delegation" in info:
        con.print(f"  delegation: {info['delegation']['summary']}")
    spec = info.get("spec")
    if spec:
        con.print(f"  spec: {spec.get('arch')} {spec.get('arch_kwargs')}, input "
                  f"{tuple(spec.get('input_shape', []))} {spec.get('input_units', '')}, "
                  f"threshold {spec.get('threshold')}")
    elif "spec" in info:
        con.print("  spec: none in the file")
    if "sidecar" in info:
        con.print(f"  sidecar: {info['sidecar']}")


@app.command()
def validate(
    models: Annotated[list[Path], typer.Argument(help="Exported files (.pte, .ptl, .pt, "
                                                 ".bpte).", show_default=False)],
    reference: Annotated[Path | None, typer.Option(
        help="The model they were made from (default: model.pt beside the first file; not "
        "needed for .bpte bundles).")] = None,
    data: Annotated[list[Path] | None, typer.Option(
        help="OSDB files: the real windows to compare on (default: the held-out test windows "
        "of the reference's run folder).")] = None,
    windows: Annotated[int, typer.Option(min=1, help="Real windows to use at most.")] = 512,
    random: Annotated[int, typer.Option(
        min=0, help="Random windows added to the real ones (never instead of them).")] = 0,
    atol: Annotated[float | None, typer.Option(
        min=0.0, help="fp32: largest logit difference allowed (default 1e-4; a .bpte carries "
        "its own).")] = None,
    int8_min_agreement: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="int8: share of decisions that must agree.")] = 0.95,
    int8_min_sqnr: Annotated[float, typer.Option(
        help="int8: lowest signal-to-quantization-noise ratio of the logits, dB.")] = 15.0,
    hold_to: Annotated[str, typer.Option(
        help="auto: each file by its kind (int8 files by the int8 tolerance); fp32: every "
        "file by the fp32 tolerance.")] = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Check exported files in their own runtime against the model they came from.

    Each file runs in its runtime (eager torch, lite interpreter, ExecuTorch) on real windows;
    fp32 must match within 1e-4 with every decision the same, int8 by decision agreement,
    kept positives and SQNR. A .bpte is checked against its bundled outputs. Exit 1 names the
    file that is out of tolerance and by how much."""
    from osdml.export.validate import Tolerance

    if hold_to not in ("auto", "fp32"):
        raise InputError(f"--hold-to {hold_to!r}: choose auto or fp32")
    _require_executorch(models)
    tol = Tolerance(fp32_atol=1e-4 if atol is None else atol, hold_to=hold_to,
                    int8_min_agreement=int8_min_agreement, int8_min_sqnr_db=int8_min_sqnr)
    with _quiet_libraries():
        results = _validate(models, reference, data, windows, random, atol, tol)
    failed = [r for r in results if not r["passed"]]
    if json_out:
        _print_json(results)
    else:
        _console().print(_table("Validation", ["file", "kind", "result", "detail"],
                                [[r["path"], r["kind"], "ok" if r["passed"] else "FAILED",
                                  r["summary"]] for r in results]))
    if failed:
        from osdml.errors import CheckFailed

        raise CheckFailed("; ".join(f"{r['path']}: {r.get('failure') or r['summary']}"
                                    for r in failed))


def _validate(models: list[Path], reference: Path | None, data: list[Path] | None,
              n_windows: int, n_random: int, atol: float | None, tol) -> list[dict]:
    import numpy as np

    from osdml.export import sniff as sn
    from osdml.export.bundle import verify_bpte
    from osdml.export.validate import run_folder_windows, validate_artefacts

    results, others = [], []
    for path in models:
        kind = sn.sniff(path).kind
        if kind == sn.BPTE:
            c = verify_bpte(path, atol=atol)
            results.append({"path": str(path), "kind": kind, "passed": c.passed,
                            "summary": f"{c.cases} bundled cases, {c.failed} failed (atol "
                                       f"{c.atol:g})"
                                       + (f": {c.first_failure}" if c.first_failure else "")})
        else:
            others.append((path, {sn.PTE: "pte", sn.PTL: "ptl"}.get(kind, "pt")))
    if not others:
        return results
    reference = reference or _default_reference(others[0][0])
    from osdml.export.source import load_source

    src = load_source(reference)
    spec = src.spec
    if data:
        from osdml.export.quantize import real_windows

        w = real_windows(data, spec, n_calibration=2, n_held_out=n_windows)
        x = np.concatenate([w.calibration, w.held_out])
        source = f"{len(x)} real windows from {w.source.split(' windows from ')[-1]}"
    else:
        found = run_folder_windows(Path(reference).parent, spec.window_samples,
                                   spec.hop_samples, n_windows)
        if found is None:
            raise InputError(f"no real windows to validate on: {reference} is not in an osdml "
                             "run folder; pass --data OSDB files")
        x, source = found
    if n_random:
        rng = np.random.default_rng(0)
        noise = 1.0 + 0.5 * rng.standard_normal((n_random, *x.shape[1:]))
        x = np.concatenate([x, noise.astype(np.float32)])
        source += f" + {n_random} random windows"
    checks = [validate_artefacts(src.module(), {fmt: p}, x, threshold=spec.threshold,
                                 tolerance=tol, raise_input_errors=True)[0]
              for p, fmt in others]
    for c in checks:
        detail = c.error or (
            f"max |logit diff| {c.max_abs_logit_diff:.1e}, max p diff {c.max_prob_diff:.3g}, "
            f"decisions agree {c.decision_agreement:.1%}"
            + (f", SQNR {c.sqnr_db:.1f} dB" if c.quantization and c.sqnr_db else "")
            + f" on {source}" + (f": {c.failure}" if c.failure else ""))
        results.append({"path": c.path, "kind": c.format + (f" {c.quantization}"
                                                            if c.quantization else ""),
                        "passed": c.passed, "summary": detail, **c.to_dict()})
    return results


def _default_reference(model: Path) -> Path:
    candidate = model.parent / "model.pt"
    if candidate.is_file() and candidate.resolve() != model.resolve():
        return candidate
    raise InputError(f"no --reference given and no model.pt beside {model}; pass --reference "
                     "MODEL")


@app.command()
def bench(
    files: Annotated[list[Path], typer.Argument(help="Model files (.pt, .ptl, .pte, .bpte).",
                                                show_default=False)],
    runs: Annotated[int, typer.Option(min=1, help="Timed inferences per file.")] = 200,
    threads: Annotated[int, typer.Option(min=1, help="Threads for every runtime.")] = 1,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs before timing.")] = 10,
    profile: Annotated[bool, typer.Option(
        help="Per-operator times from an ExecuTorch ETDump (.pte).")] = False,
    json_out: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")
                        ] = False,
) -> None:
    """Measure each file in a fresh process: size, load time, first inference, latency
    (p50/p95/p99 over --runs of one window), peak memory, and for .pte the share of operators
    in the XNNPACK delegate."""
    from osdml.export import sniff as sn
    from osdml.export.bench import bench_files

    for f in files:
        sn.sniff(f)  # bad input: one line before any process starts
    _require_executorch(files)
    results = bench_files(files, runs=runs, threads=threads, warmup=warmup, profile=profile)
    if json_out:
        _print_json(results)
    else:
        _render_bench(results, markdown)
    errors = [r for r in results if "error" in r]
    if errors:
        raise InputError("; ".join(r["error"] if r["file"] in r["error"] else
                                   f"{r['file']}: {r['error']}" for r in errors))


def _require_executorch(files: list[Path] | None = None) -> None:
    """Name a torch/ExecuTorch mismatch in one line before anything imports ExecuTorch;
    with `files`, only when one of them is an ExecuTorch program."""
    if files is not None:
        from osdml.export import sniff as sn

        if not any(sn.sniff(f).kind in (sn.PTE, sn.BPTE) for f in files):
            return
    from osdml.doctor import require_executorch

    require_executorch()


@app.command()
def doctor(
    out: Annotated[Path, typer.Option(
        "--out", help="The output folder to check for writing.")] = Path("outputs"),
    json_out: JsonOpt = False,
) -> None:
    """Check the installation: Python, torch, ExecuTorch, torchao and Lightning against the
    supported matrix, XNNPACK in the ExecuTorch runtime (with an export-and-run round trip),
    torch's own XNNPACK, the lite interpreter, and a writable output folder. One line each:
    ok, warn or fail with the fix. Exit 1 when any check fails."""
    from osdml.doctor import FAIL, run_checks

    with _quiet_libraries():
        checks = run_checks(out)
    if json_out:
        _print_json([c.to_dict() for c in checks])
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            sys.stdout.write(f"{c.status:<4}  {c.name:<{width}}  {c.detail}\n")
            if c.fix:
                sys.stdout.write(f"      {'':<{width}}  fix: {c.fix}\n")
    failed = [c.name for c in checks if c.status == FAIL]
    if failed:
        from osdml.errors import CheckFailed

        raise CheckFailed(f"doctor: {len(failed)} check(s) failed: {', '.join(failed)}")


def _render_bench(results: list[dict], markdown: bool) -> None:
    cols = ["file", "format", "KiB", "load ms", "first ms", "p50 ms", "p95 ms", "p99 ms",
            "peak MB", "model MB", "XNNPACK"]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["file"], "error: " + r["error"]] + ["-"] * (len(cols) - 2))
            continue
        share = r.get("delegated_share")
        rows.append([Path(r["file"]).name, r["format"], f"{r['size_bytes'] / 1024:,.0f}",
                     f"{r['load_ms']:.2f}", f"{r['first_ms']:.2f}", f"{r['p50_ms']:.3f}",
                     f"{r['p95_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['peak_rss_mb']:.0f}",
                     f"{r['peak_rss_mb'] - r['import_rss_mb']:.1f}",
                     "-" if share is None else f"{share:.0%}"])
    if markdown:
        sys.stdout.write("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
        for row in rows:
            sys.stdout.write("| " + " | ".join(map(str, row)) + " |\n")
    else:
        _console().print(_table(f"Benchmark ({results[0].get('runs', '?')} runs, "
                                f"{results[0].get('threads', '?')} thread(s), fresh process per "
                                "file)", cols, rows, no_wrap=2))
        _console().print("peak MB: the process's peak resident memory (the Python runtime "
                         "included); model MB: what loading and running the file added. "
                         "XNNPACK: share of operators in the delegate.")
    for r in results:
        prof = r.get("profile")
        if prof:
            if "error" in prof:
                _console(stderr=True).print(f"profile of {r['file']}: {prof['error']}")
            else:
                _console().print(_table(f"Operators of {r['file']}", ["operator", "calls",
                                                                       "p50 ms"],
                                        [[o["operator"], o["calls"], f"{o['p50_ms']:.4f}"]
                                         for o in prof["operators"]]))


# --------------------------------------------------------------------------- entry point

def _one_line(message: object) -> str:
    """A message as one printable line, whatever a file name or library text holds."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(f"osdml: warning: {_one_line(message)}\n")


def _setup_messages(verbose: bool) -> None:
    """osdml's own warnings and log lines, one line each; the libraries' chatter (torch,
    torchao, executorch, lightning deprecations and start-up notes) only with --verbose."""
    logging.basicConfig(format="osdml: %(message)s",
                        level=logging.WARNING if verbose else logging.ERROR)
    logging.getLogger("osdml").setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in ("torch", "torchao", "executorch", "lightning"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)
    warnings.showwarning = _warning_line
    if not verbose:
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", module=r"osdml(\.|$)")


GLOBAL_FLAGS = ("--debug", "--verbose", "-v")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 check failed, 2 bad input or usage, 3 a
    bug). Every error is one line on stderr; ``--debug`` (anywhere on the line) adds the
    traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    cut = args.index("--") if "--" in args else len(args)
    flags = {a for a in args[:cut] if a in GLOBAL_FLAGS}
    args = [a for a in args[:cut] if a not in GLOBAL_FLAGS] + args[cut:]
    _STATE["debug"] = "--debug" in flags
    _STATE["verbose"] = bool(flags & {"--verbose", "-v"})
    _setup_messages(verbose=_STATE["verbose"])
    try:
        rv = app(args=args, prog_name="osdml", standalone_mode=False)
    except OsdmlError as e:
        return _fail(str(e), e.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("osdml: interrupted\n")
        return 130
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        return _fail(f"{e.strerror or e}{where}", 2)
    except Exception as e:
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # click usage errors
            if not e.format_message():  # no arguments: the help was printed, nothing to add
                return 2
            ctx = getattr(e, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            return _fail(e.format_message() + hint, 2 if e.exit_code == 2 else e.exit_code)
        if type(e).__name__ == "Abort":  # click's Ctrl-C / EOF on a prompt
            sys.stderr.write("osdml: interrupted\n")
            return 130
        # a bug: say so in one line, traceback with --debug
        return _fail(f"internal error: {type(e).__name__}: {e} (rerun with --debug and report "
                     "it)", 3)
    if rv == 130:  # typer turns Ctrl-C into a silent exit status 130
        sys.stderr.write("osdml: interrupted; files already written are complete, none is "
                         "half-written\n")
    return rv if isinstance(rv, int) else 0


def _fail(message: str, code: int) -> int:
    if _STATE["debug"]:
        traceback.print_exc()
    sys.stderr.write(f"osdml: error: {_one_line(message)}\n")
    return code


if __name__ == "__main__":  # python -m osdml.cli
    sys.exit(main())
