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
from osdml.errors import OsdmlError

app = typer.Typer(
    help="Train seizure-detection CNNs on Open Seizure Database (OSDB) events and ship them to "
    "the OpenSeizureDetector app.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Read, summarise and split OSDB files.", no_args_is_help=True)
app.add_typer(data_app, name="data")

_STATE = {"debug": False}

Files = Annotated[list[Path], typer.Argument(
    help="OSDB files (JSON array or NDJSON, optionally .gz) or folders of them.",
    show_default=False)]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="Run configuration (TOML or JSON); see `osdml config show`.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
NoCacheOpt = Annotated[bool, typer.Option(
    "--no-cache", help="Parse the files even if a cached parse exists; do not store one.")]
CacheDirOpt = Annotated[Path | None, typer.Option(
    "--cache-dir", help="Parse cache folder [default: $OSDML_CACHE_DIR or ~/.cache/osdml].")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"osdml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more detail.")] = False,
) -> None:
    _STATE["debug"] = debug
    logging.getLogger("osdml").setLevel(logging.INFO if verbose else logging.WARNING)


# --------------------------------------------------------------------------- rendering

def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _table(title: str, columns: list[str], rows: list[list[Any]]):
    from rich.table import Table

    t = Table(title=title, title_justify="left", title_style="bold")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right")
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

@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write into.")],
    users: Annotated[int, typer.Option(min=1, help="Number of users.")] = 8,
    seizures: Annotated[int, typer.Option(min=0, help="Seizure events per user.")] = 5,
    false_alarms: Annotated[int, typer.Option(min=0, help="False-alarm events per user.")] = 6,
    nda: Annotated[int, typer.Option(min=0, help="Normal-daily-activity events per user.")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="json (array) or ndjson.")] = "json",
    defect_rate: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of datapoints damaged like real files (0 = clean).")] = 0.0,
    json_out: JsonOpt = False,
) -> None:
    """Generate a synthetic OSDB release: plausible wrist-accelerometer events (seizures, false
    alarms, daily activity) in the exact format of real OSDB files, 25 Hz, milli-g."""
    from osdml.data.synthetic import SynthSpec, write_synthetic
    from osdml.errors import InputError

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
    con.print(f"{sum(result.events_by_type.values())} events from {users} users, "
              f"{result.datapoints:,} datapoints"
              + (f", defects injected: {dict(result.defects)}" if result.defects else ""))


@data_app.command("summary")
def data_summary(files: Files, config: ConfigOpt = None, json_out: JsonOpt = False,
                 no_cache: NoCacheOpt = False, cache_dir: CacheDirOpt = None) -> None:
    """Summarise OSDB files: events, datapoints, hours and windows by type, subType, user and
    data source; events and windows per label after selection; what was skipped and why."""
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
    con.print(f"[bold]{len(s.files)} file(s)[/bold]{cached}: {t.events:,} events "
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
    """Split the selected events into train / validation / test parts (by event, stratified,
    optionally grouped by user) and write the manifest: event ids per part, for audit and
    reproduction."""
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
            row.append(f"{p['n_events']} ({p['by_label'].get('1', 0)} sz) "
                       f"{len(p['users'])} users")
        rows.append(row)
    _console().print(_table(f"{cfg.data.split.method} split of {len(selection)} events "
                            f"-> {out}", ["split", "train", "validation", "test"], rows))


@app.command()
def demo(out: Annotated[Path, typer.Option("--out", "-o", help="Demo folder.")] = Path(
        "outputs/demo")) -> None:
    """Generate the embedded demo dataset (synthetic OSDB) into OUT/data and summarise it."""
    from osdml.config import load_config
    from osdml.data.filters import select_events
    from osdml.data.summary import summarize
    from osdml.data.synthetic import SynthSpec, write_synthetic

    result = write_synthetic(out / "data", SynthSpec())
    _console().print(f"demo dataset: {sum(result.events_by_type.values())} events written to "
                     f"{out / 'data'}")
    cfg = load_config()
    streams = _load_streams([out / "data"], cfg, False, None)
    window, hop = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    _render_summary(summarize(streams, select_events(streams, cfg.data.selection), window, hop),
                    cfg.data.selection.labels)


# --------------------------------------------------------------------------- entry point

def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(f"osdml: warning: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 check failed, 2 bad input or usage).

    Typer (click) handles usage errors itself (exit 2); errors raised by osdml become one line.
    """
    logging.basicConfig(format="osdml: %(message)s")
    warnings.showwarning = _warning_line
    _STATE["debug"] = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        app(args=argv, prog_name="osdml")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    except OsdmlError as e:
        return _fail(str(e), e.exit_code)
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        return _fail(f"{e.strerror or e}{where}", 2)
    except Exception as e:  # a bug: say so in one line, traceback with --debug
        return _fail(f"internal error: {type(e).__name__}: {e} (rerun with --debug and report "
                     "it)", 3)
    return 0


def _fail(message: str, code: int) -> int:
    if _STATE["debug"]:
        traceback.print_exc()
    sys.stderr.write(f"osdml: error: {message}\n")
    return code
