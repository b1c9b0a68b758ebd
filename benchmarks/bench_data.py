"""Data pipeline benchmark: parse-and-window throughput, peak memory and the cache speed-up.

Generates synthetic OSDB releases of the given sizes (JSON arrays, with 3-D data, as real
releases), then for each size runs, each in a fresh process on one core:

1. parse + window with an empty parse cache (the streams are written to the cache as they are
   parsed, so memory should stay flat whatever the size);
2. the same again: a cache hit (memory-mapped streams);
3. parse + window without the cache (streams built in memory), for comparison.

Reports MB/s of JSON, wall time, peak RSS and the cached speed-up. Goals (issue 2): at least
40 MB/s on one core, peak RSS under 1 GB and flat across sizes, cached run at least 20x faster.

    .venv/bin/python benchmarks/bench_data.py --sizes 100,1000 --markdown
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bytes of JSON per synthetic event with 3-D data (measured: about 120 KB)
BYTES_PER_EVENT = 120_000


def child(data: str, cache: str | None) -> None:
    """Load and window one release; print timings and peak RSS as JSON."""
    t0 = time.perf_counter()
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events
    from osdml.data.windows import make_windows

    t1 = time.perf_counter()
    streams = load_streams([data], cache=cache is not None, cache_dir=cache)
    sel = select_events(streams)
    windows = make_windows(streams, sel.indices, sel.labels)
    t2 = time.perf_counter()
    # Peak RSS of parse + window, read before the fingerprint below: touching memory-mapped
    # windows brings file pages (and the kernel's readahead) into RSS.
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # a light fingerprint (not timed) to check the cached run gives the same windows
    step = max(1, len(windows) // 1000)
    sample = windows.batch(range(0, len(windows), step))
    checksum = float(windows.starts.sum()) + float(sample.sum())
    print(json.dumps({
        "import_s": t1 - t0, "load_window_s": t2 - t1, "windows": len(windows),
        "events": streams.n_events, "from_cache": streams.from_cache, "checksum": checksum,
        "peak_rss_mb": peak_rss_mb,
    }))


def run_child(data: Path, cache: Path | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    cmd = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    cmd += [sys.executable, __file__, "--child", str(data)]
    if cache is not None:
        cmd += ["--cache", str(cache)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def make_release(folder: Path, size_mb: int) -> float:
    from osdml.data.synthetic import SynthSpec, write_synthetic

    events = size_mb * 1_000_000 / BYTES_PER_EVENT
    users = max(2, round(events / 40))
    per_kind = max(1, round(events / users / 3))
    if not (folder / ".osdml-synth.json").exists():
        write_synthetic(folder, SynthSpec(users=users, seizures_per_user=per_kind,
                                          false_alarms_per_user=per_kind, nda_per_user=per_kind,
                                          seed=size_mb))
    return sum(p.stat().st_size for p in folder.glob("*.json")) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,1000", help="release sizes in MB, comma-separated")
    ap.add_argument("--workdir", type=Path, help="where releases go (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the generated releases")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.cache)
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="osdml-bench-"))
    rows = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            data = work / f"release_{size}MB"
            t = time.perf_counter()
            mb = make_release(data, size)
            gen_s = time.perf_counter() - t
            cache = work / f"cache_{size}MB"
            shutil.rmtree(cache, ignore_errors=True)
            cold = run_child(data, cache)
            warm = run_child(data, cache)
            nocache = run_child(data, None)
            assert warm["from_cache"] and warm["checksum"] == cold["checksum"]
            rows.append({
                "json_mb": round(mb, 1), "events": cold["events"], "windows": cold["windows"],
                "generate_s": round(gen_s, 1),
                "parse_window_s": round(cold["load_window_s"], 2),
                "mb_per_s": round(mb / cold["load_window_s"], 1),
                "peak_rss_mb": round(cold["peak_rss_mb"]),
                "cached_s": round(warm["load_window_s"], 3),
                "cached_peak_rss_mb": round(warm["peak_rss_mb"]),
                "cache_speedup": round(cold["load_window_s"] / warm["load_window_s"], 1),
                "no_cache_mb_per_s": round(mb / nocache["load_window_s"], 1),
                "no_cache_peak_rss_mb": round(nocache["peak_rss_mb"]),
            })
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    from _table import print_rows

    print_rows(rows, args.markdown)


if __name__ == "__main__":
    main()
