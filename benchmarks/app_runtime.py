"""Does every kind of .pte osdml writes load and agree in the phone's runtime, ExecuTorch 1.0.1?

The app runs ``org.pytorch:executorch-android:1.0.1`` (APP_CONTRACT.md); osdml exports with
executorch 1.4.1. This script

1. builds, once, a side virtual environment with the PyPI wheels ``executorch==1.0.1`` and
   ``torch==2.9.0`` (the same runtime and XNNPACK delegate as the Android library; several GB)
   in ``~/.cache/osdml/app-runtime-executorch-1.0.1`` (``--env DIR`` or
   ``$OSDML_APP_RUNTIME_ENV`` elsewhere), with Python 3.11;
2. makes the three kinds of .pte with osdml's own commands in this environment: the run's
   ``model.pte`` (XNNPACK fp32; the run is ``outputs/demo/run`` when ``osdml demo`` has made
   one, else a short ``osdml train`` on ``osdml synth`` data in the work folder),
   ``osdml convert --quantize int8 --calibration DATA`` and ``osdml convert --backend portable``;
3. takes real windows (the run's held-out test windows, float32 (n, 1, 750) in g), saves them as
   ``windows.npy``, runs each file on them in executorch 1.4.1 (``PteRunner``, here) and in
   executorch 1.0.1 (``osdml.export.phone_runtime.check_in_runtime`` with the side python),
   one window at a time, and compares: loads or not (with the runtime's error), max |logit
   difference|, decision agreement (softmax p(seizure) > 0.5), windows.

When a kind does not load or disagrees in 1.0.1, export variants of it are tried (other
lowering settings) and reported. Prints a Markdown table; the results go to ``--json-out``
(default ``outputs/app-runtime/app_runtime.json``)::

    .venv/bin/python benchmarks/app_runtime.py
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENV = Path.home() / ".cache/osdml/app-runtime-executorch-1.0.1"
STAMP = ".osdml-app-runtime.json"
# The short training run when there is no demo run: small synthetic data, a few epochs
SYNTH = ["--users", "4", "--seizures", "4", "--false-alarms", "3", "--nda", "3", "--seed", "0"]
SHORT_CONFIG = """\
[data.augment]
noise_copies = 2

[train]
max_epochs = 4
batch_size = 64
windows_per_epoch = 1024
early_stopping_patience = 0
seed = 3
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the side runtime

def python311() -> str:
    """A Python 3.11 to build the side environment with (pyenv's, else python3.11 on PATH)."""
    candidates = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.11*/bin/python3.11")),
                        reverse=True)
    candidates += sorted(glob.glob("/root/.pyenv/versions/3.11*/bin/python3.11"), reverse=True)
    candidates += [p for p in [shutil.which("python3.11")] if p]
    for c in candidates:
        ok = subprocess.run([c, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 11))"],
                            capture_output=True)
        if ok.returncode == 0:
            return c
    sys.exit("no Python 3.11 found (pyenv or python3.11 on PATH): the executorch 1.0.1 wheels "
             "need one")


def ensure_env(env: Path) -> tuple[Path, dict]:
    """The side environment's python and its versions; built the first time (minutes, GBs)."""
    from osdml.export.phone_runtime import PHONE_EXECUTORCH, PHONE_TORCH

    py = env / "bin" / "python"
    stamp = env / STAMP
    if py.exists() and stamp.is_file():
        return py, json.loads(stamp.read_text())
    if not py.exists():
        base = python311()
        log(f"building the ExecuTorch {PHONE_EXECUTORCH} environment in {env} with {base}")
        subprocess.run([base, "-m", "venv", str(env)], check=True)
    log(f"pip install executorch=={PHONE_EXECUTORCH} torch=={PHONE_TORCH} into {env} "
        "(several GB, once)")
    subprocess.run([str(py), "-m", "pip", "install", "--progress-bar", "off",
                    f"executorch=={PHONE_EXECUTORCH}", f"torch=={PHONE_TORCH}"],
                   check=True, stdout=sys.stderr)
    probe = subprocess.run([str(py), "-c", (
        "import json, sys, torch, executorch.runtime; from importlib.metadata import version; "
        "print(json.dumps({'executorch': version('executorch'), 'torch': "
        "torch.__version__.split('+')[0], 'python': sys.version.split()[0]}))")],
        capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"{py} cannot import executorch.runtime: {probe.stderr.strip()[-500:]}")
    versions = json.loads(probe.stdout.strip().splitlines()[-1])
    if (versions["executorch"], versions["torch"]) != (PHONE_EXECUTORCH, PHONE_TORCH):
        sys.exit(f"{env} holds executorch {versions['executorch']} and torch "
                 f"{versions['torch']}, not {PHONE_EXECUTORCH} and {PHONE_TORCH}; remove it")
    stamp.write_text(json.dumps(versions))
    return py, versions


# --------------------------------------------------------------------------- the programs

def osdml(*args: str, run: bool = True) -> str:
    """Run an osdml command in this environment (unless `run` is False); return it as typed
    (for the record)."""
    typed = "osdml " + " ".join(args)
    if run:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "osdml.cli", *args], check=True, stdout=sys.stderr)
        log(f"ran {typed} ({time.perf_counter() - t:.0f} s)")
    return typed


def the_run(run: Path, work: Path) -> tuple[Path, list[str]]:
    """A run folder with model.pt and model.pte, and the commands that made it: the demo's,
    else a short one trained in `work` (once)."""
    if (run / "model.pt").is_file() and (run / "model.pte").is_file():
        return run, [f"osdml demo (the run in {run})"]
    run, data, config = work / "run", work / "data", work / "short.toml"
    needed = not (run / "model.pte").is_file()
    if needed:
        work.mkdir(parents=True, exist_ok=True)
        config.write_text(SHORT_CONFIG)
    commands = [osdml("synth", "-o", str(data), *SYNTH, run=needed and not data.is_dir()),
                osdml("train", "-o", str(run), "-d", str(data), "-c", str(config), "--replace",
                      "--quiet", run=needed)]
    return run, commands


def build_programs(run: Path, work: Path, force: bool) -> tuple[dict[str, Path], dict[str, str]]:
    """The three kinds and the osdml command that made each; the converted ones are made again
    when the run's model.pt is not the one they were made from (or with `force`)."""
    from osdml.config import load_config
    from osdml.export.pte import sha256_of

    data = [str(f) for f in load_config(run / "config.toml").data.files]
    if not data:
        sys.exit(f"{run}/config.toml names no data files to calibrate int8 on")
    source = run / "model.pt"
    work.mkdir(parents=True, exist_ok=True)
    made_from = work / "made_from.json"
    known = json.loads(made_from.read_text()) if made_from.is_file() else {}
    digest = sha256_of(source)
    files = {"xnnpack-fp32": run / "model.pte"}
    commands = {}
    for kind, name, opts in (
            ("xnnpack-int8", "model_int8.pte", ["--quantize", "int8",
                                                *[a for f in data for a in ("--calibration", f)]]),
            ("portable-fp32", "model_portable.pte", ["--backend", "portable"])):
        target = work / name
        stale = force or not target.exists() or known.get(name) != digest
        commands[kind] = osdml("convert", str(source), *opts, "-o", str(target), "--force",
                               "--quiet", run=stale)
        known[name] = digest
        made_from.write_text(json.dumps(known))
        files[kind] = target
    return files, commands


def real_windows(run: Path, n: int, sidecar: str = "model.pte.json") -> tuple[np.ndarray, str]:
    """Held-out test windows of the run (float32 (n, 1, 750), g), else held-out OSDB windows."""
    from osdml.config import load_config
    from osdml.export.quantize import real_windows as from_files
    from osdml.export.validate import run_folder_windows
    from osdml.spec import ModelSpec

    spec = ModelSpec.model_validate(json.loads((run / sidecar).read_text())["spec"])
    got = run_folder_windows(run, spec.window_samples, spec.hop_samples, n)
    if got is not None:
        return got
    rw = from_files(load_config(run / "config.toml").data.files, spec, n_held_out=n)
    return rw.held_out, rw.source


# --------------------------------------------------------------------------- comparing

def p_seizure(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z.astype(np.float64))
    return e[:, 1] / e.sum(axis=1)


def in_141(path: Path, x: np.ndarray) -> np.ndarray:
    from osdml.export.pte import PteRunner

    runner = PteRunner(path)
    return np.concatenate([runner(x[i:i + 1]) for i in range(len(x))]).astype(np.float32)


def compare(kind: str, path: Path, new: dict, old: np.ndarray) -> dict:
    """One row: `new` is check_in_runtime's entry (1.0.1), `old` the 1.4.1 logits."""
    from osdml.export.phone_runtime import AGREE_ATOL

    row = {"kind": kind, "file": path.name, "size_bytes": path.stat().st_size,
           "runtime": new["runtime"], "loads": new["loads"], "ran": new["ran"],
           "error": new["error"], "windows": len(old), "max_abs_logit_diff": None,
           "decision_agreement": None, "positives_141": int((p_seizure(old) > 0.5).sum()),
           "positives_101": None, "agrees": False}
    if new["ran"]:
        got = new["logits"]
        if got.shape != old.shape:
            row["error"] = f"output shape {got.shape} in 1.0.1, {old.shape} in 1.4.1"
            return row
        diff = float(np.abs(got.astype(np.float64) - old).max())
        a, b = p_seizure(got) > 0.5, p_seizure(old) > 0.5
        row.update(max_abs_logit_diff=diff, decision_agreement=float((a == b).mean()),
                   positives_101=int(a.sum()),
                   agrees=bool(diff <= AGREE_ATOL and (a == b).all()))
    return row


def check(files: dict[str, Path], x: np.ndarray, py: Path, logits: Path) -> list[dict]:
    """Run each file in both runtimes; keep both runtimes' logits in `logits` as .npy."""
    from osdml.export.phone_runtime import check_in_runtime

    kinds = list(files)
    logits.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind, new in zip(kinds, check_in_runtime([files[k] for k in kinds], x, py), strict=True):
        old = in_141(files[kind], x)
        stem = files[kind].stem
        np.save(logits / f"{stem}.executorch-1.4.1.npy", old)
        if new["logits"] is not None:
            np.save(logits / f"{stem}.executorch-1.0.1.npy", new["logits"])
        rows.append(compare(kind, files[kind], new, old))
    return rows


# --------------------------------------------------------------------------- variants

# Export settings to try when a kind fails in 1.0.1 (or with --try-variants): each changes
# one thing a newer exporter could write that an older runtime might not read
VARIANTS = {
    "no-constant-methods": "no spec constant methods beside forward",
    "inline-delegate-data": "XNNPACK payload inside the flatbuffer, not in a separate segment "
                            "(ExecutorchBackendConfig(extract_delegate_segments=False))",
    "per-op-partitions": "one XNNPACK delegate call per operator "
                         "(XnnpackPartitioner(per_op_mode=True))",
}


def variants(kind: str, run: Path, work: Path, calibration: np.ndarray | None,
             names: list[str]) -> dict[str, Path]:
    """`kind` written again with each setting in `names`, beside the others; a setting that
    does not apply to the kind (per-op partitions of a portable program) is skipped."""
    import torch

    from osdml.export.pte import quiet_torch_logs
    from osdml.export.quantize import quantize_int8
    from osdml.export.source import load_source

    source = load_source(run / "model.pt")
    spec = source.spec
    module = source.module().eval()
    if kind == "xnnpack-int8":
        module = quantize_int8(module, spec, calibration)
    example = (torch.zeros(spec.input_shape, dtype=torch.float32),)
    out = {}
    with quiet_torch_logs():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
            XnnpackPartitioner,
        )
        from executorch.exir import ExecutorchBackendConfig, to_edge, to_edge_transform_and_lower

        exported = torch.export.export(module, example)
        for name in names:
            if name != "no-constant-methods" and kind.startswith("portable"):
                continue  # no delegate to partition or inline
            constants = {} if name == "no-constant-methods" else spec.constant_methods()
            try:
                if kind.startswith("portable"):
                    edge = to_edge(exported, constant_methods=constants)
                else:
                    part = XnnpackPartitioner(per_op_mode=name == "per-op-partitions")
                    edge = to_edge_transform_and_lower(exported, partitioner=[part],
                                                       constant_methods=constants)
                config = ExecutorchBackendConfig(
                    extract_delegate_segments=name != "inline-delegate-data")
                path = work / f"variant_{kind}_{name}.pte"
                path.write_bytes(edge.to_executorch(config).buffer)
                out[name] = path
            except Exception as e:  # a variant that cannot be made is reported, not fatal
                log(f"variant {kind} {name} could not be made: {type(e).__name__}: {e}")
    return out


# --------------------------------------------------------------------------- report

def fmt(row: dict) -> dict:
    d = row["max_abs_logit_diff"]
    agree = row["decision_agreement"]
    return {
        "kind": row["kind"], "file": row["file"], "KiB": f"{row['size_bytes'] / 1024:,.0f}",
        "loads in 1.0.1": "yes" if row["loads"] else "NO",
        "max abs logit diff vs 1.4.1": "-" if d is None else f"{d:.1e}" if d else "0",
        "decisions agree": "-" if agree is None else f"{agree:.1%}",
        "p>0.5 (1.4.1 / 1.0.1)": f"{row['positives_141']} / "
                                 f"{'-' if row['positives_101'] is None else row['positives_101']}",
        "windows": row["windows"], "verdict": "agrees" if row["agrees"] else "FAILS",
        "error": row["error"] or "",
    }


def markdown(rows: list[dict]) -> str:
    cells = [fmt(r) for r in rows]
    if not any(c["error"] for c in cells):
        for c in cells:
            del c["error"]
    cols = list(cells[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(c[k]).replace("|", "\\|") for k in cols) + " |"
              for c in cells]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", type=Path, default=Path(os.environ.get("OSDML_APP_RUNTIME_ENV")
                                                     or DEFAULT_ENV),
                    help="side environment with executorch 1.0.1 (built when missing)")
    ap.add_argument("--run", type=Path, default=ROOT / "outputs/demo/run",
                    help="a run folder with model.pt and model.pte (else a short run is "
                         "trained in --work)")
    ap.add_argument("--work", type=Path, default=ROOT / "outputs/app-runtime")
    ap.add_argument("--windows", type=int, default=256, help="real windows to compare on")
    ap.add_argument("--json-out", type=Path, default=None,
                    help="results as JSON (default WORK/app_runtime.json)")
    ap.add_argument("--force", action="store_true", help="rebuild the converted programs")
    ap.add_argument("--try-variants", action="store_true",
                    help="try the export variants even when every kind agrees")
    ap.add_argument("--ensemble", type=Path, default=None,
                    help="check this ensemble.pte (osdml ensemble), or any run's model.pte, "
                         "on its folder's held-out test windows instead of the run's three "
                         "kinds")
    args = ap.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    py, side = ensure_env(args.env.expanduser())
    log(f"side runtime: {py} (executorch {side['executorch']}, torch {side['torch']})")
    if args.ensemble is not None:  # one ensemble.pte, in its own folder (osdml ensemble)
        run = args.ensemble.parent
        sidecar = json.loads(Path(str(args.ensemble) + ".json").read_text())
        arch = sidecar.get("spec", {}).get("arch", "hd_ensemble")
        files = {f"xnnpack-fp32 ({arch})": args.ensemble}
        commands = {k: f"{'osdml ensemble' if arch == 'hd_ensemble' else 'osdml convert'} "
                       f"(the folder {run})" for k in files}
        x, about = real_windows(run, args.windows, args.ensemble.name + ".json")
    else:
        run, made_run = the_run(args.run, args.work)
        files, converted = build_programs(run, args.work, args.force)
        commands = {"xnnpack-fp32": "; ".join(made_run), **converted}
        x, about = real_windows(run, args.windows)
    args.work.mkdir(parents=True, exist_ok=True)
    np.save(args.work / "windows.npy", x)
    log(f"comparing on {about}: {x.shape} {x.dtype}")
    rows = check(files, x, py, args.work / "logits")
    for row in rows:
        row["made_by"] = commands[row["kind"]]

    tried = []
    for row in rows:
        if row["agrees"] and not args.try_variants:
            continue
        calibration = None
        if row["kind"] == "xnnpack-int8":
            from osdml.config import load_config
            from osdml.export.quantize import real_windows as from_files
            from osdml.spec import ModelSpec

            spec = ModelSpec.model_validate(
                json.loads((run / "model.pte.json").read_text())["spec"])
            calibration = from_files(load_config(run / "config.toml").data.files,
                                     spec).calibration
        made = variants(row["kind"], run, args.work, calibration, list(VARIANTS))
        for name, path in made.items():
            v = check({f"{row['kind']} ({name})": path}, x, py, args.work / "logits")[0]
            v.update(variant_of=row["kind"], setting=VARIANTS[name])
            tried.append(v)

    import torch

    from osdml.export.phone_runtime import AGREE_ATOL

    versions = {"exported_with": {"executorch": _version("executorch"),
                                  "torch": torch.__version__.split("+")[0]},
                "phone_runtime": side}
    today = datetime.date.today().isoformat()
    print(markdown(rows))
    print()
    for kind, command in commands.items():
        print(f"- {kind}: {command}")
    if tried:
        print("\nVariants tried:\n")
        print(markdown(tried))
    print(f"\n{len(x)} windows: {about}. Programs written by executorch "
          f"{versions['exported_with']['executorch']} (torch {versions['exported_with']['torch']}"
          f"); run in executorch {side['executorch']} (torch {side['torch']}, Python "
          f"{side['python']}) and in {versions['exported_with']['executorch']}, one window at a "
          f"time. Agrees: loads, max |logit diff| <= {AGREE_ATOL:g} and every decision "
          f"(p > 0.5) the same. {today}.")
    out = args.json_out or args.work / "app_runtime.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"checked": today, "command": "benchmarks/app_runtime.py", "windows": about,
              "atol": AGREE_ATOL, "versions": versions, "run": str(run),
              "results": rows, "variants": tried}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(out)
    log(f"results in {out}")
    return 0 if all(r["agrees"] for r in rows) else 1


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    sys.exit(main())
