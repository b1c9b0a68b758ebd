"""Scale benchmark: a synthetic release the size of the real OSDB, data preparation and one
training epoch, with time and peak memory per stage.

Builds synthetic OSDB releases (JSON arrays with 3-D data, as real releases) of about 20,000
events, 500 of them seizures, from 30 users (a few GB), and a quarter-size one to show how
memory grows. For each release, each stage runs in a fresh process:

1. prepare (cold): parse the JSON into the parse cache, select, split, augment and index the
   training / validation / test windows with the default configuration;
2. prepare (cached): the same from the parse cache;
3. train: prepare from the cache, then one training epoch (``--windows-per-epoch`` windows in
   batches of ``--batch-size``) with checkpoint choice on the validation windows.

Reports wall time and peak resident memory (VmHWM) per stage, and for training also the
memory before the epoch and the anonymous (non-file) memory at its end. Goals (issue 7): data
preparation under 1.5 GB and growing less than linearly with the release; training memory
independent of the number of windows.

    .venv/bin/python benchmarks/bench_scale.py --markdown            # 20,000 and 5,000 events
    .venv/bin/python benchmarks/bench_scale.py --events 2000 --fractions 1 --markdown  # quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(stage: str, data: str, cache: str, windows_per_epoch: int, batch_size: int) -> None:
    """One stage in this process; print a JSON line with its numbers."""
    import warnings

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    from osdml.config import load_config
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events
    from osdml.data.split import split_events
    from osdml.pipeline import split_windows

    cfg = load_config(None, {"train": {"max_epochs": 1, "windows_per_epoch": windows_per_epoch,
                                       "batch_size": batch_size,
                                       "early_stopping_patience": 0}})
    t1 = time.perf_counter()
    streams = load_streams([data], cfg.data.reader, cache=True, cache_dir=cache)
    selection = select_events(streams, cfg.data.selection)
    (split,) = split_events(streams, selection, cfg.data.split)
    parts = split_windows(streams, selection, split, cfg)
    t2 = time.perf_counter()
    out = {"stage": stage, "events": streams.n_events, "from_cache": streams.from_cache,
           "windows": len(parts.train) + len(parts.val) + len(parts.test),
           "train_windows": len(parts.train), "import_s": t1 - t0, "prepare_s": t2 - t1,
           "prepare_peak_rss_mb": _status_mb("VmHWM")}
    if stage == "train":
        from osdml.train.fit import fit

        out["before_epoch_rss_mb"] = _status_mb("VmRSS")
        t3 = time.perf_counter()
        fit(cfg, parts.train, parts.val, progress=False)
        out.update(train_s=time.perf_counter() - t3, train_peak_rss_mb=_status_mb("VmHWM"),
                   end_rss_anon_mb=_status_mb("RssAnon"), end_rss_file_mb=_status_mb("RssFile"))
    print(json.dumps(out))


def run_child(stage: str, data: Path, cache: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", stage, "--data", str(data), "--cache-dir",
           str(cache), "--windows-per-epoch", str(args.windows_per_epoch), "--batch-size",
           str(args.batch_size)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    if proc.returncode:
        sys.exit(f"stage {stage} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - t
    return result


def make_release(folder: Path, events: int, seizures: int, users: int, seed: int) -> dict:
    """Generate (or reuse) a release; return its size and counts."""
    from osdml.data.synthetic import SynthSpec, write_synthetic

    per_user_seizures = max(1, round(seizures / users))
    rest = max(2, round((events - per_user_seizures * users) / users))
    spec = SynthSpec(users=users, seizures_per_user=per_user_seizures,
                     false_alarms_per_user=max(1, round(rest * 0.3)),
                     nda_per_user=max(1, rest - round(rest * 0.3)), seed=seed)
    t = time.perf_counter()
    if not (folder / ".osdml-synth.json").exists():
        write_synthetic(folder, spec)
    gen_s = time.perf_counter() - t
    info = json.loads((folder / ".osdml-synth.json").read_text())
    return {"json_mb": sum(p.stat().st_size for p in folder.glob("*.json")) / 1e6,
            "events": sum(info["events_by_type"].values()),
            "seizures": sum(v for k, v in info["events_by_type"].items()
                            if k.lower() == "seizure"),
            "users": users, "generate_s": gen_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000, help="events of the full release")
    ap.add_argument("--seizures", type=int, default=500)
    ap.add_argument("--users", type=int, default=30)
    ap.add_argument("--fractions", default="0.25,1", help="release sizes as fractions of "
                    "--events, comma-separated")
    ap.add_argument("--windows-per-epoch", type=int, default=20_000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--workdir", type=Path, help="where releases go (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the releases and caches")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data, args.cache_dir, args.windows_per_epoch, args.batch_size)
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="osdml-scale-"))
    rows = []
    try:
        for f in (float(x) for x in args.fractions.split(",")):
            n = round(args.events * f)
            data = work / f"release_{n}"
            rel = make_release(data, n, round(args.seizures * f), args.users, seed=n)
            print(f"release {data}: {rel['events']:,} events ({rel['seizures']} seizures), "
                  f"{rel['json_mb']:,.0f} MB, generated in {rel['generate_s']:.0f} s",
                  file=sys.stderr, flush=True)
            cache = work / f"cache_{n}"
            shutil.rmtree(cache, ignore_errors=True)
            cold = run_child("prepare", data, cache, args)
            warm = run_child("prepare", data, cache, args)
            train = run_child("train", data, cache, args)
            rows.append({
                "events": rel["events"], "seizures": rel["seizures"], "users": rel["users"],
                "json_mb": round(rel["json_mb"]), "windows": cold["windows"],
                "prepare_s": round(cold["prepare_s"], 1),
                "prepare_peak_rss_mb": round(cold["prepare_peak_rss_mb"]),
                "cached_prepare_s": round(warm["prepare_s"], 1),
                "cached_peak_rss_mb": round(warm["prepare_peak_rss_mb"]),
                "epoch_windows": args.windows_per_epoch,
                "train_epoch_s": round(train["train_s"], 1),
                "before_epoch_rss_mb": round(train["before_epoch_rss_mb"]),
                "train_peak_rss_mb": round(train["train_peak_rss_mb"]),
                "train_end_anon_mb": round(train["end_rss_anon_mb"]),
                "train_end_file_mb": round(train["end_rss_file_mb"]),
            })
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        from _table import print_rows

        print_rows(rows, args.markdown)
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        grow = b["events"] / a["events"]
        print(f"\nrelease x{grow:.1f}: prepare peak RSS x"
              f"{b['prepare_peak_rss_mb'] / a['prepare_peak_rss_mb']:.2f} (goal < 1.5 GB and "
              f"less than x{grow:.1f}); training peak RSS x"
              f"{b['train_peak_rss_mb'] / a['train_peak_rss_mb']:.2f} for x"
              f"{b['windows'] / a['windows']:.1f} windows", file=sys.stderr)


if __name__ == "__main__":
    main()
