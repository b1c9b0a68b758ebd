"""Commands on OSDB data and configurations: ``synth``, ``data summary``, ``data split``,
``data compare``, ``config show``, ``config import``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from osdml.cli.common import (
    CacheDirOpt,
    ConfigOpt,
    Files,
    JsonOpt,
    NoCacheOpt,
    app,
    checked_out,
    config_app,
    data_app,
    get_console,
    make_table,
    plural,
    print_json,
    read_osdb,
)
from osdml.errors import InputError


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

    out = checked_out(out)
    if fmt not in ("json", "ndjson"):
        raise InputError(f"--format {fmt!r}: must be json or ndjson")
    spec = SynthSpec(users=users, seizures_per_user=seizures, false_alarms_per_user=false_alarms,
                     nda_per_user=nda, seed=seed, format=fmt, defect_rate=defect_rate)
    result = write_synthetic(out, spec)
    if json_out:
        print_json({**result.to_dict(), "folder": str(out)})
        return
    rows = [[p.name, n] for p, n in zip(result.files, result.events_by_type.values(), strict=True)]
    con = get_console()
    con.print(make_table(f"Synthetic OSDB release in {out} (seed {seed})", ["file", "events"],
                         rows))
    con.print(f"{plural(sum(result.events_by_type.values()), 'event')} from "
              f"{plural(users, 'user')}, "
              f"{plural(result.datapoints, 'datapoint')}"
              + (f", defects injected: {dict(result.defects)}" if result.defects else ""))


@data_app.command("summary")
def data_summary(files: Files, config: ConfigOpt = None, json_out: JsonOpt = False,
                 no_cache: NoCacheOpt = False, cache_dir: CacheDirOpt = None) -> None:
    """Summarise OSDB files: what they hold and what was skipped.

    Events, datapoints, hours and windows by type, subType, user and data source; events and
    windows per label after selection; every skipped or repaired item, with the reason; with
    [data.labels] use_seizure_times, how many seizure events are labelled by their
    seizureTimes and how many windows that leaves out or makes non-seizure."""
    from osdml.config import load_config
    from osdml.data.filters import select_events
    from osdml.data.summary import summarize

    cfg = load_config(config)
    streams = read_osdb(files, cfg, no_cache, cache_dir)
    window, hop = cfg.data.windows.samples(cfg.data.reader.sample_rate_hz)
    xyz = cfg.data.windows.input == "xyz"  # three-axis input leaves out events without 3-D
    summary = summarize(streams, select_events(streams, cfg.data.selection, need_3d=xyz),
                        window, hop, cfg.data.reader.datapoint_s, cfg.data.labels)
    if json_out:
        print_json(summary.to_dict())
        return
    _render_summary(summary, cfg.data.selection.labels)


def _render_summary(s, labels: dict[str, int]) -> None:
    from osdml.data.report import NOTE_REASONS, SKIP_REASONS

    con = get_console()
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
        con.print(make_table(title, [title.split()[-1], *cols], rows))
    names: dict[int, list[str]] = {}
    for typ, label in labels.items():
        names.setdefault(label, []).append(typ)
    rows = [[f"{k} ({', '.join(names.get(k, []))})", g.events, g.seizure_events, g.datapoints,
             g.hours, g.windows] for k, g in s.by_label.items()]
    con.print(make_table("Selected, by label", ["label", *cols], rows))
    if s.excluded:
        con.print(make_table("Excluded by selection", ["reason", "events"],
                         [[k, v] for k, v in s.excluded.items()]))
    if s.seizure_time_labels is not None:
        c = s.seizure_time_labels
        con.print(make_table("Seizure-time labels ([data.labels])", ["what", "count"], [
            ["seizure events labelled by their seizureTimes", c["events_by_seizure_times"]],
            ["  of those, with no window in the seizure", c["events_no_window_in_seizure"]],
            ["  their windows overlapping the seizure", c["windows_in_seizure"]],
            ["  their windows outside it, excluded", c["windows_excluded"]],
            ["  their windows outside it, made non-seizure", c["windows_negative"]],
            ["seizure events keeping the whole-event label", c["events_whole_event"]]]))
    r = s.report
    rows = ([[SKIP_REASONS.get(k, k), "events", v] for k, v in r["skipped_events"].items()]
            + [[SKIP_REASONS.get(k, k), "datapoints", v]
               for k, v in r["skipped_datapoints"].items()]
            + [[NOTE_REASONS.get(k, k), "kept", v] for k, v in r["notes"].items()])
    if s.events_without_windows:
        rows.append([NOTE_REASONS["no_window"], "events", s.events_without_windows])
    if rows:
        con.print(make_table("Skipped and repaired", ["reason", "what", "count"], rows))
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
    streams = read_osdb(files, cfg, no_cache, cache_dir)
    selection = select_events(streams, cfg.data.selection,
                              need_3d=cfg.data.windows.input == "xyz")  # as osdml train
    splits = split_events(streams, selection, cfg.data.split)
    manifest = split_manifest(streams, selection, splits, cfg.data.split)
    write_manifest(out, manifest)
    if json_out:
        print_json(manifest)
        return
    rows = []
    for s in manifest["splits"]:
        row = [s["name"]]
        for part in ("train", "val", "test"):
            p = s[part]
            row.append(f"{plural(p['n_events'], 'event')} ({p['by_label'].get('1', 0)} seizure) "
                       f"{plural(len(p['users']), 'user')}")
        rows.append(row)
    get_console().print(make_table(f"{cfg.data.split.method} split of {len(selection)} events "
                            f"-> {out}", ["split", "train", "validation", "test"], rows))


@data_app.command("compare")
def data_compare(
    files: Annotated[list[Path], typer.Argument(
        help="Set A (e.g. real recordings): OSDB files or folders of them.",
        show_default=False)],
    against: Annotated[list[Path], typer.Option(
        "--against", "-a", help="Set B (e.g. synthetic data): an OSDB file or folder; repeat "
        "the option for each one (a path after it without --against belongs to set A).",
        show_default=False)],
    out: Annotated[str, typer.Option("--out", "-o", help="Folder to write compare.json and "
                                     "compare.html into.")] = "outputs/compare",
    gate_pct: Annotated[float, typer.Option(
        "--gate-pct", min=0.0, max=100.0, help="The app's movement gate "
        "(MlAccelStdThresholdPct, %): under_gate is the share of datapoints whose movement "
        "(100 x std / mean) is below it.")] = 5.0,
    json_out: JsonOpt = False,
) -> None:
    """Compare two sets of OSDB files: where do their statistics differ?

    Groups of datapoints: each event type ("all"), and for seizures with seizureTimes the
    datapoints inside and outside the seizure. Features of each 5 s datapoint: movement %
    (and the share under the movement gate), magnitude percentiles and range (mg), the OSD
    algorithm's roiPower and roi ratio, dominant frequency; per seizure, its duration. For
    each: medians of A and B and the two-sample Kolmogorov-Smirnov D, with a verdict: close
    (D < 0.1), differs (D < 0.3), far, or too few (n < 5). Writes compare.json and
    compare.html (plots of the empirical CDFs) into --out."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from osdml.data.compare import compare_sets, fmt_value, write_html
    from osdml.data.osdb import expand_inputs
    from osdml.fileio import write_json

    out_dir = checked_out(out)
    total = sum(p.stat().st_size for p in expand_inputs([*files, *against]))
    labels = (", ".join(map(str, files)), ", ".join(map(str, against)))
    console = get_console(stderr=True)
    with Progress("reading OSDB", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("read", total=total)
        cmp = compare_sets(files, against, gate_pct, progress=lambda n: bar.advance(task, n),
                           labels=labels)
    result = cmp.to_dict()
    write_json(out_dir / "compare.json", result)
    write_html(cmp, out_dir / "compare.html")
    if json_out:
        print_json(result)
        return
    con = get_console()
    for name, s in (("A", result["a"]), ("B", result["b"])):
        con.print(f"{name}: {s['label']}: {plural(len(s['files']), 'file')}, "
                  f"{plural(s['events'], 'event')}, {plural(s['datapoints'], 'datapoint')}")
    rows, far = [], []
    for r in result["rows"]:
        f = r["feature"]
        key = "mean" if f == "under_gate" else "median"
        far.append(r["verdict"] == "far")
        rows.append([r["group"], f"{f} (share)" if f == "under_gate" else f, r["n_a"], r["n_b"],
                     fmt_value(r[f"{key}_a"], f), fmt_value(r[f"{key}_b"], f),
                     "-" if r["ks_d"] is None else f"{r['ks_d']:.3f}", r["verdict"]])
    table = make_table("A vs B: medians and Kolmogorov-Smirnov D (close < 0.1 <= differs < "
                       "0.3 <= far)", ["group", "feature", "n A", "n B", "median A", "median B",
                                       "D", "verdict"], rows, no_wrap=2)
    for row, is_far in zip(table.rows, far, strict=True):
        if is_far:
            row.style = "bold red"
    con.print(table)
    for name, key in (("A", "only_in_a"), ("B", "only_in_b")):
        if result[key]:
            con.print(f"Only in {name}: {', '.join(result[key])}")
    con.print(f"wrote {out_dir / 'compare.json'} and {out_dir / 'compare.html'}")


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

    Every key is mapped to the same behaviour, or listed with the reason: "differs" (mapped,
    but osdml does not do exactly what nnTraining2 does: the note says how) or "ignored"."""
    from osdml.fileio import atomic_write
    from osdml.nnconfig import import_nnconfig

    cfg, notes = import_nnconfig(nnconfig)
    header = f"# imported from {nnconfig} by osdml config import\n"
    header += "".join(f"# {n.kind} {n.key}: {n.why}\n" for n in notes)
    text = header + "\n" + cfg.to_toml()
    if out is None:
        sys.stdout.write(text)
    else:
        with atomic_write(out, "w", encoding="utf-8") as f:
            f.write(text)
    con = get_console(stderr=out is None)
    for kind, title in (("differs", "nnConfig keys mapped with a behaviour that differs from "
                                    "nnTraining2's"),
                        ("ignored", "nnConfig keys ignored")):
        rows = [[n.key, n.why] for n in notes if n.kind == kind]
        if rows:
            con.print(make_table(f"{len(rows)} {title}", ["key", "why"], rows))
    if out is not None:
        con.print(f"wrote {out}")
