"""The phone's runtime: ExecuTorch 1.0.1, older than the 1.4.1 that osdml exports with.

The OpenSeizureDetector app loads a ``.pte`` with ``org.pytorch:executorch-android:1.0.1``
(APP_CONTRACT.md). A program written by a newer ExecuTorch must still load and give the same
logits there. The Python wheel ``executorch==1.0.1`` (with ``torch==2.9.0``) holds the same
runtime and XNNPACK delegate, so the check runs on the host: ``benchmarks/app_runtime.py``
builds that wheel into a side virtual environment, writes each kind of ``.pte`` osdml makes
with osdml's own commands, runs every file on the same real windows in both runtimes
(``check_in_runtime`` for the side one) and compares. ``MEASURED`` holds what it found;
``phone_runtime_record`` is what a ``model.pte.json`` says about its file on the phone.

Only numpy is imported at module level: the checks run in another interpreter, and reading
the table needs neither torch nor ExecuTorch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from osdml.errors import InputError

PHONE_RUNTIME = "executorch 1.0.1"
PHONE_EXECUTORCH = "1.0.1"
PHONE_TORCH = "2.9.0"  # the torch the executorch 1.0.1 wheel is built against
# Same program, same input, two runtime versions: anything beyond float rounding is a change
AGREE_ATOL = 1e-4
KINDS = ("xnnpack-fp32", "xnnpack-int8", "portable-fp32")
MEASURE_COMMAND = ".venv/bin/python benchmarks/app_runtime.py"

# What benchmarks/app_runtime.py measured: each kind written by osdml (executorch 1.4.1,
# torch 2.13.0) from the demo model (DeepEpiCnn, `osdml demo`) and run in the executorch 1.0.1
# wheel (torch 2.9.0) and in 1.4.1 on the same 256 held-out real test windows, one at a time.
# The logits were bit-identical for every kind. Caveat found on the way: an XNNPACK partition
# that is only a copy (an identity clone between the delegate's input and output, which 1.4.1
# serialises as an XNNCopy node) does not load in 1.0.1 ("Unhandled node type", 0x11
# NotImplemented); the default lowering of DeepEpiCnn makes none, per-op partitioning does.
_ON = "256 held-out test windows of the demo run (32 events)"


def _agreed(command: str, on: str) -> dict[str, Any]:
    """A measured record: loaded in 1.0.1, logits bit-identical to 1.4.1 on 256 windows."""
    return {"loads": True, "agrees": True, "max_abs_logit_diff": 0.0, "windows": 256,
            "checked": "2026-12-01", "command": command, "on": on}


MEASURED_ARCH = "deep_epi_cnn"  # the architecture the table was measured on
MEASURED: dict[str, dict[str, Any]] = {
    kind: _agreed(MEASURE_COMMAND, _ON) for kind in ("xnnpack-fp32", "xnnpack-int8",
                                                     "portable-fp32")}

# osdml ensemble's programs (arch hd_ensemble: DeepEpiCnn members, the Harrell-Davis graph with
# its minimum / maximum sorting network): ENSEMBLE_COMMAND ran the demo data's ensemble.pte in
# both runtimes on its held-out test windows.
ENSEMBLE_COMMAND = ".venv/bin/python benchmarks/app_runtime.py --ensemble ENSEMBLE.pte"
MEASURED_ENSEMBLE: dict[str, dict[str, Any]] = {"xnnpack-fp32": _agreed(
    ENSEMBLE_COMMAND, "256 held-out test windows of the demo data's ensemble (6 members, 3 "
    "kept; 40 events of 2 held-out users)")}
# CnnLstm (osdml.models.cnn_lstm, its LSTM written out step by step when exported): a short
# `osdml train` run with [model] arch = "cnn_lstm" on `osdml synth --users 4 --seed 0` data,
# its model.pt converted with `osdml convert` (3 XNNPACK delegate calls), checked with
# CNN_LSTM_COMMAND on the run's held-out test windows. Only fp32 XNNPACK was checked.
CNN_LSTM_COMMAND = ".venv/bin/python benchmarks/app_runtime.py --ensemble RUN/model.pte"
MEASURED_CNN_LSTM: dict[str, dict[str, Any]] = {"xnnpack-fp32": _agreed(
    CNN_LSTM_COMMAND, "256 held-out test windows of a short cnn_lstm run on synthetic OSDB "
    "data (16 events)")}
MEASURED_BY_ARCH = {MEASURED_ARCH: MEASURED, "hd_ensemble": MEASURED_ENSEMBLE,
                    "cnn_lstm": MEASURED_CNN_LSTM}


def kind_of(backend: str, quantization: str | None) -> str:
    """The kind of program, as ``MEASURED`` names it: ``"<backend>-<fp32|int8|...>"``.

    Parameters
    ----------
    backend : str
        ``"xnnpack"`` or ``"portable"`` (any case; other names give kinds never measured).
    quantization : str or None
        None (or ``""``, ``"fp32"``) for float programs, ``"int8"`` for PT2E int8.

    Returns
    -------
    str
        For example ``"xnnpack-int8"``.
    """
    q = (quantization or "fp32").strip().lower()
    return f"{backend.strip().lower()}-{q}"


def phone_runtime_record(backend: str, quantization: str | None,
                         arch: str = MEASURED_ARCH) -> dict[str, Any]:
    """What a ``model.pte.json`` records under ``"phone_runtime"`` for a program of this kind.

    Parameters
    ----------
    backend : str
    quantization : str or None
        As for ``kind_of``.
    arch : str
        The model's architecture: the table holds DeepEpiCnn's programs; another architecture
        may lower to operators 1.0.1 lacks, so its programs are recorded as not checked.

    Returns
    -------
    dict
        ``runtime`` ("executorch 1.0.1"), ``kind``, ``loads`` and ``agrees`` (bool, or None when
        this kind was never measured, with a ``note`` saying so), ``max_abs_logit_diff``
        (float or None) and ``checked`` (ISO date of the measurement, or None).
    """
    kind = kind_of(backend, quantization)
    table = MEASURED_BY_ARCH.get(arch)
    m = table.get(kind) if table is not None else None
    record: dict[str, Any] = {"runtime": PHONE_RUNTIME, "kind": kind}
    if table is None:
        return {**record, "loads": None, "agrees": None, "max_abs_logit_diff": None,
                "checked": None,
                "note": f"{arch} programs were not checked in {PHONE_RUNTIME} (the tables are "
                        f"{', '.join(MEASURED_BY_ARCH)}'s): run {MEASURE_COMMAND} before "
                        "shipping one"}
    if m is None or m.get("loads") is None:
        return {**record, "loads": None, "agrees": None, "max_abs_logit_diff": None,
                "checked": None,
                "note": f"{kind} programs were not checked in {PHONE_RUNTIME}: run "
                        f"{MEASURE_COMMAND} before shipping one"}
    return {**record, "loads": m["loads"], "agrees": m["agrees"],
            "max_abs_logit_diff": m["max_abs_logit_diff"], "checked": m["checked"]}


# --------------------------------------------------------------------------- another runtime

# Runs in the other interpreter, which has ExecuTorch, torch and numpy but not osdml. One file
# per process: a runtime that crashes on a file loses only that file's result.
CHILD_SCRIPT = r'''
"""osdml: run one ExecuTorch program's forward on windows, in this interpreter's runtime.

usage: python child.py WINDOWS.npy PROGRAM.pte OUT_DIR
writes OUT_DIR/result.json (after loading, then again after running) and OUT_DIR/logits.npy
"""
import json
import os
import re
import sys
import tempfile
from importlib.metadata import version


def write(out_dir, entry):
    tmp = os.path.join(out_dir, "result.json.tmp")
    with open(tmp, "w") as f:
        json.dump(entry, f)
    os.replace(tmp, os.path.join(out_dir, "result.json"))


class Stderr:
    """Send file descriptor 2 (the C++ runtime's log) to a temporary file."""

    def __enter__(self):
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile(mode="w+b")
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.seek(0)
        self.text = self.file.read().decode("utf-8", "replace")
        self.file.close()
        return False


# the runtime's log lines: "[method.cpp:110] Init failed ..." (or "E 00:00:00.1 executorch:...")
LOG_LINE = re.compile(r"^(?:\[[\w./-]+:\d+\]|[EWF] \d\d:\d\d:\S+ executorch:\S+\])\s*(.*)$")
HARMLESS = ("InternalConsistency verification requested but not available",)


# runtime/core/error.h (the same in 1.0.1 and 1.4.1)
CODES = {0x01: "Internal", 0x02: "InvalidState", 0x10: "NotSupported", 0x11: "NotImplemented",
         0x12: "InvalidArgument", 0x13: "InvalidType", 0x14: "OperatorMissing",
         0x20: "NotFound", 0x21: "MemoryAllocationFailed", 0x22: "AccessFailed",
         0x23: "InvalidProgram", 0x24: "InvalidExternalData", 0x25: "OutOfResources",
         0x30: "DelegateInvalidCompatibility", 0x31: "DelegateMemoryAllocationFailed",
         0x32: "DelegateInvalidHandle"}


def reason(e, log):
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    code = re.search(r"error:? 0x:?([0-9a-fA-F]+)", first)
    if code and int(code.group(1), 16) in CODES:
        first += f" ({CODES[int(code.group(1), 16)]})"
    said = [m.group(0).strip() for m in map(LOG_LINE.match, log.splitlines())
            if m and not any(h in m.group(1) for h in HARMLESS)]
    return f"{first}; runtime log: {'; '.join(said[-4:])}" if said else first


def main():
    windows_path, program_path, out_dir = sys.argv[1:4]
    try:
        import numpy as np
        import torch
        from executorch.runtime import Runtime
    except Exception as e:
        print(f"cannot import executorch here: {type(e).__name__}: {e}", file=sys.stderr)
        return 3
    entry = {"executorch": version("executorch"), "torch": torch.__version__.split("+")[0],
             "python": sys.version.split()[0], "loads": False, "ran": False, "error": None}
    x = np.load(windows_path)
    log = Stderr()
    try:
        with log:
            program = Runtime.get().load_program(program_path)
            method = program.load_method("forward")
    except Exception as e:
        entry["error"] = reason(e, log.text)
        write(out_dir, entry)
        return 0
    entry["loads"] = True
    write(out_dir, entry)
    log = Stderr()
    try:
        with log:
            outs = [method.execute([torch.from_numpy(x[i:i + 1].copy())])[0].numpy()
                    for i in range(len(x))]
        logits = np.concatenate([o.reshape(1, -1) for o in outs]).astype(np.float32)
    except Exception as e:
        entry["error"] = "forward failed: " + reason(e, log.text)
        write(out_dir, entry)
        return 0
    np.save(os.path.join(out_dir, "logits.npy"), logits)
    entry["ran"] = True
    write(out_dir, entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def _interpreter(python: str | Path) -> str:
    """The interpreter as an absolute path that exists and can be executed."""
    p = os.path.expanduser(str(python))
    found = shutil.which(p) if os.sep not in p else (p if os.access(p, os.X_OK)
                                                     and Path(p).is_file() else None)
    if not found:
        raise InputError(f"{python}: no such Python interpreter; build the side runtime with "
                         f"{MEASURE_COMMAND} (it prints its interpreter) or pass another")
    return str(Path(found).absolute())


def check_in_runtime(pte_paths: Sequence[str | Path], windows: np.ndarray,
                     python: str | Path, *, timeout_s: float = 600.0) -> list[dict[str, Any]]:
    """Run each program's ``forward`` on `windows`, one at a time, in `python`'s ExecuTorch.

    Each file runs in its own child process of `python` (the side environment with
    ``executorch==1.0.1``, or any interpreter with ExecuTorch, torch and numpy; osdml need not
    be installed there). A file that does not load, fails in ``forward``, crashes the runtime
    or runs past `timeout_s` is reported in its entry, never raised, so one bad file does not
    hide the others.

    Parameters
    ----------
    pte_paths : sequence of str or Path
        ExecuTorch programs (``.pte``).
    windows : np.ndarray of shape (n, channels, samples), float32
        Model inputs (in g for the app's models); window ``i`` runs as ``windows[i:i + 1]``,
        so ``(channels, samples)`` must be the program's input shape without the batch.
    python : str or Path
        The interpreter (a path, ``~`` expanded, or a name found on PATH).
    timeout_s : float, default=600
        Limit per file.

    Returns
    -------
    list of dict
        One per path, in order: ``path`` (str), ``runtime`` ("executorch X.Y.Z" of that
        interpreter, or None if it never reported), ``torch`` (its version or None),
        ``loads`` (bool: the program and its ``forward`` method loaded), ``ran`` (bool: every
        window ran), ``error`` (one line, or None; for load failures the runtime's error and
        its log lines), ``logits`` (np.ndarray of shape (n, outputs), float32, or None).

    Raises
    ------
    InputError
        If `python` does not exist or cannot import ExecuTorch, if `windows` is not a
        non-empty float32 array of shape (n, channels, samples), or if a path does not exist.
    """
    exe = _interpreter(python)
    x = np.asarray(windows)
    if x.ndim != 3 or len(x) == 0 or x.dtype != np.float32:
        raise InputError(f"windows must be a non-empty float32 array (n, channels, samples); "
                         f"got {x.shape} {x.dtype}")
    paths = [Path(p) for p in pte_paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"cannot check {', '.join(missing)}: no such file")
    results = []
    with tempfile.TemporaryDirectory(prefix="osdml-runtime-") as tmp:
        script = Path(tmp) / "child.py"
        script.write_text(CHILD_SCRIPT)
        np.save(Path(tmp) / "windows.npy", np.ascontiguousarray(x))
        for k, path in enumerate(paths):
            out = Path(tmp) / str(k)
            out.mkdir()
            results.append(_run_child(exe, script, Path(tmp) / "windows.npy", path, out,
                                      timeout_s))
    return results


def _run_child(exe: str, script: Path, windows: Path, path: Path, out: Path,
               timeout_s: float) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": str(path), "runtime": None, "torch": None, "loads": False,
                             "ran": False, "error": None, "logits": None}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        proc = subprocess.run([exe, str(script), str(windows), str(path.absolute()), str(out)],
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        proc = None
    if proc is not None and proc.returncode == 3:
        said = proc.stderr.strip().splitlines()
        raise InputError(f"{exe}: {said[-1] if said else 'cannot import executorch'}; use the "
                         f"side runtime's python (see {MEASURE_COMMAND})")
    result = out / "result.json"
    if result.is_file():
        child = json.loads(result.read_text())
        entry.update(runtime=f"executorch {child['executorch']}", torch=child["torch"],
                     loads=child["loads"], ran=child["ran"], error=child["error"])
    if proc is None:
        entry["error"] = (f"{'forward' if entry['loads'] else 'loading'} ran past "
                          f"{timeout_s:g} s and was stopped")
    elif proc.returncode != 0:
        how = (f"signal {-proc.returncode}" if proc.returncode < 0
               else f"exit status {proc.returncode}")
        said = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        entry.update(ran=False, error=f"the runtime crashed while "
                                      f"{'running forward' if entry['loads'] else 'loading'} "
                                      f"({how}){': ' + said[-1] if said else ''}")
    elif not result.is_file():
        entry["error"] = "the child process reported nothing"
    if entry["ran"]:
        entry["logits"] = np.load(out / "logits.npy")
    return entry
