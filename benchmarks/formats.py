"""Every deployment format of the demo model, measured side by side in one run.

Takes the demo run's ``model.pt`` (running ``osdml demo`` first if there is none), builds the
formats the app could ship:

- ``.pt`` in eager torch (the reference, not a phone format),
- ``.ptl`` in the PyTorch Mobile lite interpreter (what the app ships today),
- ``.pte`` ExecuTorch with XNNPACK, fp32 (the deployment format),
- ``.pte`` ExecuTorch with XNNPACK, int8 (PT2E post-training quantization, calibrated on the
  demo's training data),
- ``.pte`` ExecuTorch portable kernels (no delegate; the fallback),

then measures each one with ``osdml bench`` (a fresh process per file: load time, first
inference, p50/p95/p99 latency of one 30 s window, peak RSS of the process and the part of it
added by loading and running the model, after the runtime's import). Latency is reported as
the speed-up over the ``.ptl`` file (``.ptl`` p50 / file p50) and as achieved GFLOP/s:
2 x multiply-accumulates of the architecture / p50 (DeepEpiCnn: 26.1 M MACs per window; for
int8 these are 8-bit operations, the same count).

Goals (issue 5), checked at the end: ``.pte`` XNNPACK fp32 at least 3x faster than ``.ptl``
(p50), int8 ``.pte`` at least 2.5x smaller than fp32, every ``.pte`` loads in under 10 ms.

    .venv/bin/python benchmarks/formats.py --runs 500 --markdown

The formats are written to ``outputs/bench-formats/`` and rebuilt only when ``model.pt`` is
newer; the results go to ``outputs/bench-formats/formats.json`` as well.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOALS = {"speedup_over_ptl": 3.0, "int8_size_ratio": 2.5, "load_ms": 10.0}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_formats(run: Path, work: Path, force: bool) -> dict[str, Path]:
    """The demo model in every format, in `work`; rebuilt when model.pt is newer."""
    from osdml.config import load_config
    from osdml.export.convert import ConvertOptions, convert_file

    work.mkdir(parents=True, exist_ok=True)
    source = run / "model.pt"
    files = {}
    for name in ("model.pt", "model.ptl", "model.pte"):
        target = work / name
        if force or not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
            shutil.copy2(run / name, target)
        files[name.split(".")[1]] = target
    calibration = [str(f) for f in load_config(run / "config.toml").data.files]
    if not calibration:
        sys.exit(f"{run}/config.toml names no data files to calibrate int8 on; rerun osdml demo")
    for name, opts in {"int8": ConvertOptions(quantize="int8", calibration=calibration,
                                              force=force),
                       "portable": ConvertOptions(backend="portable", force=force)}.items():
        target = work / f"model_{name}.pte"
        t = time.perf_counter()
        result = convert_file(work / "model.pt", target, opts)
        if result.status == "failed":
            sys.exit(f"building {target} failed: {result.reason}")
        if result.status == "converted":
            print(f"built {target.name} in {time.perf_counter() - t:.1f} s: "
                  f"{result.check.get('summary', '')}", file=sys.stderr)
        files[name] = target
    return files


def _relative(size: int, reference: int) -> str:
    if size == reference:
        return "1 (reference)"
    if size < reference:
        return f"{reference / size:.2f}x smaller"
    return f"{size / reference:.2f}x larger"


def table(results: list[dict], macs: int) -> tuple[list[str], list[list[str]], dict]:
    by = {r["format"]: r for r in results}
    ptl = by["ptl"]["p50_ms"]
    fp32 = by["pte xnnpack fp32"]["size_bytes"]
    cols = ["format", "runtime", "size KiB", "size vs fp32 .pte", "load ms", "first ms",
            "p50 ms", "p95 ms", "p99 ms", "speed-up vs .ptl", "GFLOP/s", "peak RSS MB",
            "model RSS MB", "XNNPACK share"]
    rows = []
    for r in results:
        share = r["delegated_share"]
        rows.append([r["format"], r["runtime"], f"{r['size_bytes'] / 1024:,.0f}",
                     _relative(r["size_bytes"], fp32), f"{r['load_ms']:.2f}",
                     f"{r['first_ms']:.2f}", f"{r['p50_ms']:.3f}", f"{r['p95_ms']:.3f}",
                     f"{r['p99_ms']:.3f}", f"{ptl / r['p50_ms']:.2f}x",
                     f"{2 * macs / (r['p50_ms'] * 1e-3) / 1e9:.1f}", f"{r['peak_rss_mb']:.0f}",
                     f"{r['peak_rss_mb'] - r['import_rss_mb']:.1f}",
                     "-" if share is None else f"{share:.0%}"])
    goals = {
        "speedup_over_ptl": ptl / by["pte xnnpack fp32"]["p50_ms"],
        "int8_size_ratio": fp32 / by["pte xnnpack int8"]["size_bytes"],
        "load_ms": max(r["load_ms"] for r in results if r["format"].startswith("pte")),
    }
    return cols, rows, goals


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=ROOT / "outputs/demo/run",
                    help="a run folder with model.pt, model.ptl, model.pte and config.toml")
    ap.add_argument("--work", type=Path, default=ROOT / "outputs/bench-formats")
    ap.add_argument("--runs", type=int, default=500, help="timed inferences per file")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--force", action="store_true", help="rebuild every format")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()

    if not (args.run / "model.pt").exists():
        print(f"no {args.run / 'model.pt'}: running osdml demo first", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "osdml.cli", "demo", "--out",
                        str(args.run.parent)], check=True)
    import warnings

    warnings.filterwarnings("ignore")
    from osdml.export.bench import bench_files
    from osdml.export.pte import quiet_torch_logs
    from osdml.models.cost import multiply_accumulates
    from osdml.spec import ModelSpec

    with quiet_torch_logs():
        files = build_formats(args.run, args.work, args.force)
    order = ["pt", "ptl", "pte", "int8", "portable"]
    results = bench_files([files[k] for k in order], runs=args.runs, threads=args.threads)
    failed = [r for r in results if "error" in r]
    if failed:
        sys.exit("; ".join(f"{r['file']}: {r['error']}" for r in failed))
    spec = ModelSpec.model_validate(json.loads(
        (args.run / "model.pte.json").read_text())["spec"])
    macs = multiply_accumulates(spec.build(), spec.input_shape)
    cols, rows, goals = table(results, macs)

    import torch

    versions = (f"Python {platform.python_version()}, torch {torch.__version__}, executorch "
                f"{_version('executorch')}")
    about = (f"{cpu_name()}, {os.cpu_count()} logical CPUs, {args.threads} thread(s), "
             f"{args.runs} runs of one (1, 1, 750) window per file, each file in a fresh "
             f"process; {versions}; DeepEpiCnn {macs / 1e6:.1f} M MACs per window")
    if args.markdown:
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join("---" for _ in cols) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        print(f"\n{about}.")
    else:
        width = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w) for c, w in zip(cols, width, strict=True)))
        for row in rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, width, strict=True)))
        print(about)
    verdict = [
        ("pte xnnpack fp32 p50 speed-up over ptl", goals["speedup_over_ptl"],
         goals["speedup_over_ptl"] >= GOALS["speedup_over_ptl"],
         f">= {GOALS['speedup_over_ptl']:g}x", "x"),
        ("int8 pte size vs fp32 pte", goals["int8_size_ratio"],
         goals["int8_size_ratio"] >= GOALS["int8_size_ratio"],
         f">= {GOALS['int8_size_ratio']:g}x smaller", "x smaller"),
        ("slowest pte load", goals["load_ms"], goals["load_ms"] < GOALS["load_ms"],
         f"< {GOALS['load_ms']:g} ms", " ms"),
    ]
    print()
    for name, value, met, goal, unit in verdict:
        print(f"{'met   ' if met else 'MISSED'} {name}: {value:.2f}{unit} (goal {goal})")
    out = args.work / "formats.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"about": about, "macs": macs, "results": results,
                               "goals": goals}, indent=2))
    tmp.replace(out)
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    sys.exit(main())
