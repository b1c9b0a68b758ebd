"""What every command shares: the Typer apps, common options, rendering and output paths.

Only typer is imported at the top: ``osdml --help`` must start fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from osdml import __version__
from osdml.errors import InputError

app = typer.Typer(
    help="Train seizure-detection CNNs on Open Seizure Database (OSDB) events and ship them to "
    "the OpenSeizureDetector app.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
data_app = typer.Typer(help="Read, summarise, split and compare OSDB files.", no_args_is_help=True)
app.add_typer(data_app, name="data")
config_app = typer.Typer(help="Show or import run configurations.", no_args_is_help=True)
app.add_typer(config_app, name="config")

STATE = {"debug": False, "verbose": False}

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
AcceleratorOpt = Annotated[str | None, typer.Option(
    "--accelerator", help="train.accelerator: auto (a CUDA GPU when there is one), cpu, cuda or "
    "mps.", show_default=False)]
DevicesOpt = Annotated[int | None, typer.Option(
    "--devices", min=1, help="train.devices: GPUs (or CPU processes) that train one model "
    "together, with DDP when more than 1.", show_default=False)]
PrecisionOpt = Annotated[str | None, typer.Option(
    "--precision", help="train.precision: auto, 32-true, bf16-mixed or 16-mixed (CUDA).",
    show_default=False)]
StrategyOpt = Annotated[str | None, typer.Option(
    "--strategy", help="train.strategy: auto or ddp.", show_default=False)]


def placement_options(accelerator: str | None, devices: int | None, precision: str | None,
                      strategy: str | None) -> dict:
    """The ``[train]`` placement keys given on the command line (unset ones left out)."""
    given = {"accelerator": accelerator, "devices": devices, "precision": precision,
             "strategy": strategy}
    return {k: v for k, v in given.items() if v is not None}


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

def get_console(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False)
    if not console.is_terminal:  # logs and pipes: do not wrap tables at 80 columns
        console = Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False,
                          width=120)
    return console


def make_table(title: str, columns: list[str], rows: list[list[Any]], no_wrap: int = 0):
    """A table; its first `no_wrap` columns are never wrapped."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", title_style="bold")
    for i, c in enumerate(columns):
        t.add_column(c, justify="left" if i == 0 else "right", no_wrap=i < no_wrap)
    for r in rows:
        t.add_row(*[f"{v:,.2f}" if isinstance(v, float) else
                    f"{v:,}" if isinstance(v, int) else str(v) for v in r])
    return t


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def read_osdb(files: list[Path], cfg, no_cache: bool, cache_dir: Path | None):
    """Read OSDB files with a progress bar on stderr (shown only on a terminal)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from osdml.data.cache import load_streams
    from osdml.data.osdb import expand_inputs

    paths = expand_inputs(files)
    total = sum(p.stat().st_size for p in paths)
    console = get_console(stderr=True)
    with Progress("reading OSDB", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("read", total=total)
        return load_streams(paths, cfg.data.reader, cache=not no_cache, cache_dir=cache_dir,
                            progress=lambda n: bar.advance(task, n))


# --------------------------------------------------------------------------- commands

def checked_out(value: str, option: str = "--out", folder: bool = True) -> Path:
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


def plural(count: int, noun: str) -> str:
    """'1 event', '2 events'."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def fmt2(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def fmt_any(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def quiet_libraries():
    """The libraries' internal log notes, hidden unless --verbose."""
    import contextlib

    if STATE.get("verbose"):
        return contextlib.nullcontext()
    from osdml.export.pte import quiet_torch_logs

    return quiet_torch_logs()


def require_executorch_for(files: list[Path] | None = None) -> None:
    """Name a torch/ExecuTorch mismatch in one line before anything imports ExecuTorch;
    with `files`, only when one of them is an ExecuTorch program."""
    if files is not None:
        from osdml.export import sniff as sn

        if not any(sn.sniff(f).kind in (sn.PTE, sn.BPTE) for f in files):
            return
    from osdml.doctor import require_executorch

    require_executorch()
