"""``osdml replay``: events through models exactly as the app runs them."""

from __future__ import annotations

import math
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
        "--model", "-m", help="Model file (.pt, .ptl, .pte, .bpte, .tflite); repeat to run "
        "several as the app runs its installed models (voting), and to check that formats of "
        "one model give identical alarm histories.", show_default=False)],
    data: Annotated[list[Path], typer.Option(
        "--data", "-d", help="OSDB files or folders (repeat the option).", show_default=False)],
    threshold_pct: Annotated[float | None, typer.Option(
        "--threshold-pct", help="MlSeizureProbabilityThresholdPct: a model "
        "votes ALARM when p > this / 100 (default: each model's tuned value, else [app] "
        "threshold_pct, 50).")] = None,
    gate_pct: Annotated[float | None, typer.Option(
        "--gate-pct", help="MlAccelStdThresholdPct: p = 0 when 100 x std / "
        "mean of a datapoint is below it (default: the model's tuned value, else 5).")] = None,
    warn_s: Annotated[float | None, typer.Option(
        "--warn-s", help="WarnTime, s (default [app] warn_s, 5).")] = None,
    alarm_s: Annotated[float | None, typer.Option(
        "--alarm-s", help="AlarmTime, s (default [app] alarm_s, 10).")
    ] = None,
    voting: Annotated[str | None, typer.Option(
        "--voting", help="any, majority, unanimous or weighted (default [app] voting, any).")
    ] = None,
    osd: Annotated[bool | None, typer.Option(
        "--osd/--no-osd", help="The built-in OSD algorithm votes beside the models (default "
        "[app] osd_active, on).")] = None,
    tflite_mg: Annotated[bool, typer.Option(
        "--tflite-mg", help="Feed .tflite models milli-g, as app versions before V4.4.0 "
        "(January 2026) did; the current app feeds g, in which a model trained on milli-g "
        "(such as cnn_v0.24) never alarms.")] = False,
    detail: Annotated[bool, typer.Option(
        "--detail", help="Also write decisions.csv: one row per datapoint (p, gate, OSD "
        "powers and vote, combined vote, state).")] = False,
    out: Annotated[str, typer.Option("--out", "-o", help="Folder to write replay.csv, "
                                     "replay.json and the reports into.")] = "outputs/replay",
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    no_cache: NoCacheOpt = False,
    cache_dir: CacheDirOpt = None,
) -> None:
    """Feed each event's datapoints through models exactly as the app does.

    Each model has its own buffer of its input length (750 samples for DeepEpiCnn, 125 for
    the app's TFLite models), filled 125 samples (one 5 s datapoint) at a time, p = 0 until
    it is full; then one inference per datapoint in the file's own runtime. The app's engine
    applies the movement gate, p > threshold, voting with the built-in OSD algorithm (re-run
    from the raw samples) and the WarnTime / AlarmTime counter, reset per event. Each model
    alone uses its own tuned threshold and gate (from its spec) unless given; the OSD
    algorithm alone and models + OSD use the common settings (the first model's). Writes
    replay.csv (one row per event and model), replay.json, report.md / report.html and, with
    --detail, decisions.csv. Exits 1 if formats of one model give different alarm histories."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from osdml.app.engine import VOTING
    from osdml.config import load_config
    from osdml.data.filters import select_events
    from osdml.evaluate.replay import compare_histories, load_model, write_replay
    from osdml.evaluate.replay import replay as run_replay

    if voting is not None and voting.lower() not in VOTING:
        raise InputError(f"--voting {voting!r}: choose one of {', '.join(VOTING)}")
    for option, value, top in (("--threshold-pct", threshold_pct, 100),
                               ("--gate-pct", gate_pct, 100), ("--warn-s", warn_s, 3600),
                               ("--alarm-s", alarm_s, 3600)):
        if value is not None and not (math.isfinite(value) and 0 <= value <= top):
            raise InputError(f"{option} {value:g}: give a number from 0 to {top}")
    cfg = load_config(config)
    out_dir = checked_out(out)
    for i, m in enumerate(model):
        if m.is_dir():
            raise InputError(f"--model {m} is a folder; give the model file in it")
        if not m.is_file():
            raise InputError(f"{m}: no such model file")
        if any(m.resolve() == other.resolve() for other in model[:i]):
            raise InputError(f"--model {m} is given twice; give each file once")
    overrides = {"threshold_pct": threshold_pct, "gate_pct": gate_pct, "warn_s": warn_s,
                 "alarm_s": alarm_s, "voting": voting.lower() if voting else None, "osd": osd}
    base = cfg.app.settings().with_(**overrides)
    with quiet_libraries():
        models = [load_model(m, name, base, overrides, tflite_mg)
                  for m, name in zip(model, replay_names(model), strict=True)]
    if tflite_mg and not any(m.format == "tflite" for m in models):
        raise InputError("--tflite-mg changes what .tflite models are fed, and no --model is a "
                         ".tflite")
    common = base.with_(threshold_pct=models[0].settings.threshold_pct,
                        gate_pct=models[0].settings.gate_pct)
    streams = read_osdb(data, cfg, no_cache, cache_dir)
    selection = select_events(streams, cfg.data.selection)
    if not len(selection):
        raise InputError(f"no events to replay in {', '.join(map(str, data))} (of "
                         f"{streams.n_events} events read, none has a type the label map "
                         "knows; see `osdml data summary`)")
    console = get_console(stderr=True)
    with quiet_libraries(), Progress("replay", BarColumn(), MofNCompleteColumn(),
                                     console=console, transient=True,
                                     disable=json_out or not console.is_terminal) as bar:
        task = bar.add_task("replay", total=len(selection))
        result = run_replay(models, streams, selection.indices, selection.labels, common,
                            progress=lambda n: bar.update(task, completed=n))
    differ = compare_histories(result)
    groups = _groups(models)
    result.summary["identical_alarm_histories"] = None if not groups else not differ
    parity = None if not groups else {
        "groups": [[models[i].name for i in g] for g in groups], "identical": not differ,
        "differences": differ}
    written = write_replay(result, out_dir, streams, cfg.evaluate.timelines, detail=detail,
                           parity=parity)
    if json_out:
        print_json({**result.summary, "differences": differ,
                    "written": {k: str(v) for k, v in written.items()}})
    else:
        _render_replay(result, written, differ)
    if differ:
        from osdml.errors import CheckFailed

        raise CheckFailed(f"alarm histories differ between formats of one model on "
                          f"{plural(len(differ), 'event')} (first: {differ[0]['id']}); see "
                          f"{out_dir / 'parity.json'}")


def _groups(models):
    from osdml.evaluate.replay import parity_groups

    return parity_groups(models)


def replay_names(models: list[Path]) -> list[str]:
    """A unique, short name per model file: its file name, with as many parent folders as it
    takes to tell apart files of the same name (``run-001/best/model.pte`` and
    ``run-002/best/model.pte`` -> ``run-001-best-model.pte``, ``run-002-best-model.pte``)."""
    parts = [Path(m).resolve().parts for m in models]
    for depth in range(1, max(len(p) for p in parts) + 1):
        names = ["-".join(p[-depth:]).lstrip("/") for p in parts]
        if len(set(names)) == len(names):
            return names
    return [f"{i}-{Path(m).name}" for i, m in enumerate(models)]


def _render_replay(result, written, differ) -> None:
    con = get_console()
    s = result.summary
    rows = []
    for m, ms in zip(result.models, s["models"], strict=True):
        e, pp = ms["events"]["model"], ms["paper"]
        rows.append([f"{m.name} alone", f"{m.runtime}, {m.input_size} samples",
                     f"{m.settings.threshold_pct:g} / {m.settings.gate_pct:g}",
                     f"{e['detected']}/{e['seizure_events']}", fmt_any(e["sensitivity"]),
                     fmt_any(e["far_24h"]), fmt_any(e["latency_median_s"]),
                     fmt_any(pp["sensitivity"]), fmt_any(pp["far_24h"])])
    st = result.settings
    for label, e in (("OSD algorithm alone", s["osd"]),
                     (f"models + OSD ({st.voting})" if st.osd else f"models ({st.voting})",
                      s["combined"]),
                     ("recorded by the phone", s["recorded"])):
        rows.append([label, "-", f"{st.threshold_pct:g} / {st.gate_pct:g}"
                     if "model" in label else "-",
                     f"{e['detected']}/{e['seizure_events']}", fmt_any(e["sensitivity"]),
                     fmt_any(e["far_24h"]), fmt_any(e["latency_median_s"]), "-", "-"])
    con.print(make_table(f"Replay of {s['n_events']} events by the app's engine (WarnTime "
                         f"{st.warn_s:g} s, AlarmTime {st.alarm_s:g} s)",
                         ["", "runtime", "threshold / gate %", "seizures alarmed", "sens.",
                          "FAR/24h", "median latency s", "paper sens.", "paper FAR/24h"],
                         rows, no_wrap=1))
    con.print("paper sens. / FAR/24h: the event rule of Spahr et al. 2025 (seizureTimes "
              "padded 120 s before, 10 s after; false positives merged over 150 s; FAR over "
              "all recording) on each model's own votes")
    rep = s["osd_reproduction"]
    if rep["with_recorded_powers"]:
        con.print(f"OSD algorithm re-run from the samples: reproduces the recorded specPower and "
                  f"roiPower exactly on {rep['reproduced_exactly']:,} of "
                  f"{rep['with_recorded_powers']:,} datapoints ({rep['share']:.1%})")
    for note in s["notes"]:
        con.print(f"note: {note}")
    for name, n in s["no_decision"].items():
        if n:
            con.print(f"{name}: no decision on {plural(n, 'event')} (shorter than its input)")
    if s.get("identical_alarm_histories") is not None:
        con.print("identical alarm histories across formats of one model" if not differ
                  else f"alarm histories DIFFER on {plural(len(differ), 'event')}")
    con.print("wrote " + ", ".join(str(p) for p in written.values()))
