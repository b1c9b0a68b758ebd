"""``osdml replay``: events through models exactly as the app runs them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from osdml.cli.common import (
    CacheDirOpt,
    ConfigOpt,
    JsonOpt,
    NoCacheOpt,
    app,
    checked_out,
    fmt_any,
    get_console,
    make_table,
    plural,
    print_json,
    quiet_libraries,
    read_osdb,
)
from osdml.errors import InputError


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
    out_dir = checked_out(out)
    for i, m in enumerate(model):
        if not m.is_file():
            raise InputError(f"{m}: no such model file")
        if any(m.resolve() == other.resolve() for other in model[:i]):
            raise InputError(f"--model {m} is given twice; give each file once")
    streams = read_osdb(data, cfg, no_cache, cache_dir)
    selection = select_events(streams, cfg.data.selection)
    if not len(selection):
        raise InputError(f"no events to replay in {', '.join(map(str, data))} (of "
                         f"{streams.n_events} events read, none has a type the label map "
                         "knows; see `osdml data summary`)")
    console = get_console(stderr=True)
    results, written = [], {}
    with quiet_libraries(), Progress("replay", BarColumn(), MofNCompleteColumn(),
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
        print_json({"replays": [r.summary for r in results],
                     "identical_alarm_histories": None if len(results) < 2 else not differ,
                     "differences": differ})
    else:
        _render_replays(results, written, differ)
    if differ:
        from osdml.errors import CheckFailed

        raise CheckFailed(f"alarm histories differ between {', '.join(map(str, model))} on "
                          f"{plural(len(differ), 'event')} (first: {differ[0]['id']}); see "
                          f"{out_dir / 'parity.json'}")


def _replay_name(m: Path, models: list[Path]) -> str:
    names = [x.name for x in models]
    return m.name if names.count(m.name) == 1 else f"{m.parent.name}-{m.name}"


def _render_replays(results, written, differ) -> None:
    con = get_console()
    rows = []
    for r in results:
        m, o = r.summary["events"]["model"], r.summary["events"]["osd"]
        rows.append([str(r.model), r.runtime, f"{r.threshold:g}", str(r.summary["n_events"]),
                     f"{m['detected']}/{m['seizure_events']}", fmt_any(m["sensitivity"]),
                     fmt_any(m["far_24h"]), fmt_any(m["latency_median_s"]),
                     fmt_any(o["sensitivity"]), fmt_any(o["far_24h"])])
    con.print(make_table("Replay (the app's buffer and alarm rule)",
                     ["model", "runtime", "threshold", "events", "seizures alarmed",
                      "sens.", "FAR/24h", "median latency s", "OSD sens.", "OSD FAR/24h"],
                     rows, no_wrap=1))
    for r in results:
        if r.summary["skipped"]:
            con.print(f"{r.model}: no decision on " + ", ".join(
                f"{plural(v, 'event')} {k}" for k, v in r.summary["skipped"].items()))
    if len(results) > 1:
        con.print("identical alarm histories across " + ", ".join(r.format for r in results)
                  if not differ else f"alarm histories DIFFER on {plural(len(differ), 'event')}")
    for m, paths in written.items():
        con.print(f"{m}: wrote {paths['csv']}, {paths['html']}")
