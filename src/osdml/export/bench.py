"""Benchmark model files: size, load time, first inference, steady-state latency, peak memory.

Each file is measured in a fresh Python process (``python -m osdml.export.bench FILE``), so
one file's caches, threads and memory never flatter or burden another's. In the child: import
the runtime, load the file (eager torch for checkpoints, the lite interpreter for ``.ptl``,
ExecuTorch for ``.pte``), run one window for the first inference, a few warm-up runs, then
``runs`` timed runs of one (1, 1, L) window each, as the app runs the model; the peak resident
memory of the process is read at the end. For ``.pte`` the share of operators in the XNNPACK
delegate comes from the program itself (XNNPACK graph nodes against portable kernel calls).

``--profile`` asks ExecuTorch for an ETDump and reads per-operator times with the Inspector;
the pip wheel of ExecuTorch 1.4.1 is built without the event tracer, so there it reports that
instead of a table.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

FIELDS = ("file", "format", "runtime", "size_bytes", "load_ms", "first_ms", "p50_ms", "p95_ms",
          "p99_ms", "mean_ms", "runs", "threads", "peak_rss_mb", "import_rss_mb",
          "delegated_share", "xnnpack_nodes", "portable_calls")


def bench_files(paths: list[Path], *, runs: int = 200, threads: int = 1, warmup: int = 10,
                profile: bool = False, timeout_s: float = 600) -> list[dict[str, Any]]:
    """Measure each file in its own process; a file that fails gets an ``error`` entry."""
    out = []
    for path in paths:
        cmd = [sys.executable, "-m", "osdml.export.bench", str(path), "--runs", str(runs),
               "--threads", str(threads), "--warmup", str(warmup)]
        if profile:
            cmd.append("--profile")
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            out.append({"file": str(path), "error": f"timed out after {timeout_s:g} s"})
            continue
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            out.append({"file": str(path), "error": tail.removeprefix("osdml: error: ")})
            continue
        out.append(json.loads(lines[-1]))
    return out


# --------------------------------------------------------------------------- in the child

def _rss_mb() -> float:
    """Peak resident memory of this process so far, MB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this process's own address
    space. Not ``ru_maxrss``: Linux carries it across ``execve``, so a child started by a big
    parent would report the parent's peak. Elsewhere ``ru_maxrss`` (bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def measure(path: Path, runs: int, threads: int, warmup: int, profile: bool) -> dict[str, Any]:
    """Load and time one file in this process (call it in a fresh one)."""
    import warnings

    warnings.filterwarnings("ignore")
    from osdml.export import sniff as sn

    kind = sn.sniff(path).kind
    import torch

    torch.set_num_threads(threads)
    result: dict[str, Any] = dict.fromkeys(FIELDS)  # every field, null where it does not apply
    result.update(file=str(path), size_bytes=path.stat().st_size, runs=runs, threads=threads)
    if kind in (sn.PTE, sn.BPTE):
        run, load_ms, info = _load_pte(path, kind, threads, profile)
    elif kind == sn.PTL:
        run, load_ms, info = _load_ptl(path)
    else:
        run, load_ms, info = _load_eager(path)
    shape = info.pop("_input_shape")
    read_profile = info.pop("_profile", None)
    result.update(info)
    rng = np.random.default_rng(0)
    x = (1.0 + 0.2 * rng.standard_normal(shape)).astype(np.float32)
    t = time.perf_counter()
    run(x)
    result["first_ms"] = (time.perf_counter() - t) * 1e3
    for _ in range(warmup):
        run(x)
    times = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        run(x)
        times[i] = time.perf_counter() - t
    times *= 1e3
    result.update(load_ms=load_ms, p50_ms=float(np.percentile(times, 50)),
                  p95_ms=float(np.percentile(times, 95)), p99_ms=float(np.percentile(times, 99)),
                  mean_ms=float(times.mean()), peak_rss_mb=_rss_mb())
    if profile:
        result["profile"] = (read_profile() if read_profile is not None
                             else {"error": "per-operator profiles exist for .pte files only"})
    return result


def _load_pte(path: Path, kind: str, threads: int, profile: bool):
    import torch

    from osdml.export.inspect import describe
    from osdml.fileio import silenced_stderr

    with silenced_stderr():
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        runtime = Runtime.get()
    import_rss = _rss_mb()
    if threads:
        portable_lib._unsafe_reset_threadpool(threads)
    data: bytes | Path = path
    if kind == "bpte":
        from executorch.devtools.bundled_program.serialize import (
            deserialize_from_flatbuffer_to_bundled_program,
        )

        data = deserialize_from_flatbuffer_to_bundled_program(path.read_bytes()).program
    etdump = Path(str(path) + ".etdp") if profile else None
    t = time.perf_counter()
    from osdml.errors import InputError
    from osdml.export.pte import unloadable

    try:
        with silenced_stderr():
            program = runtime.load_program(data, enable_etdump=profile,
                                           debug_buffer_size=(1 << 20) if profile else 0)
            method = program.load_method("forward")
    except Exception as e:
        raise InputError(unloadable(path, e, data if isinstance(data, bytes) else None)
                         ) from None
    load_ms = (time.perf_counter() - t) * 1e3
    meta = method.metadata.input_tensor_meta(0)
    about = describe(path)
    fwd = about.get("forward", {})
    quant = (about.get("spec") or {}).get("quantization") or (
        about.get("sidecar") or {}).get("quantization")
    delegated = len(fwd.get("delegates", []))
    label = (f"pte xnnpack {quant or 'fp32'}" if delegated else "pte portable")
    nodes, calls = delegation_counts(data if isinstance(data, bytes) else path.read_bytes())

    def run(x):
        return method.execute([torch.from_numpy(x)])

    def read_profile():
        program.write_etdump_result_to_file(str(etdump), str(etdump) + ".debug")
        if not etdump.exists():
            return {"error": "this ExecuTorch build records no ETDump (the pip wheel is built "
                             "without EXECUTORCH_ENABLE_EVENT_TRACER); per-operator times need "
                             "a runtime built with it"}
        from executorch.devtools import Inspector

        inspector = Inspector(etdump_path=str(etdump))
        rows = []
        for block in inspector.event_blocks:
            for ev in block.events:
                if ev.perf_data is not None:
                    rows.append({"operator": ev.name, "calls": len(ev.perf_data.raw),
                                 "p50_ms": float(ev.perf_data.p50)})
        return {"operators": rows}

    info = {"format": label, "runtime": "ExecuTorch", "import_rss_mb": import_rss,
            "xnnpack_nodes": nodes, "portable_calls": calls,
            "delegated_share": (nodes / (nodes + calls)) if nodes + calls else None,
            "_input_shape": tuple(meta.sizes()), "_profile": read_profile}
    return run, load_ms, info


def delegation_counts(program_bytes: bytes) -> tuple[int, int]:
    """(XNNPACK graph nodes inside the delegate payloads, kernel calls outside them) of the
    ``forward`` method, read from the program without running it."""
    import warnings

    from executorch.exir._serialize._program import deserialize_pte_binary

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = deserialize_pte_binary(program_bytes).program
    plan = next(p for p in program.execution_plan if p.name == "forward")
    calls = sum(1 for chain in plan.chains for ins in chain.instructions
                if type(ins.instr_args).__name__ == "KernelCall")
    nodes = 0
    for ref in plan.delegates:
        if ref.id == "XnnpackBackend":
            nodes += _xnn_node_count(program.backend_delegate_data[ref.processed.index].data)
    return nodes, calls


def _xnn_node_count(blob: bytes) -> int:
    """Length of ``XNNGraph.xnodes`` in an XNNPACK delegate payload.

    The payload is an ``XNNHeader`` (magic ``XH00`` at bytes 4-8, header size at 8-10, the
    flatbuffer's offset at 10-14 and size at 14-18, little-endian; ``XNNHeader`` in
    executorch/backends/xnnpack/serialization) followed by an ``XNNGraph`` flatbuffer whose second
    field is the node vector (executorch/backends/xnnpack/serialization/schema.fbs); the
    vector is read with the flatbuffers runtime, no generated code needed.
    """
    import flatbuffers

    if blob[4:8] != b"XH00":
        return 0
    start = int.from_bytes(blob[10:14], "little")
    buf = bytearray(blob[start:start + int.from_bytes(blob[14:18], "little")])
    table = flatbuffers.table.Table(buf, flatbuffers.encode.Get(
        flatbuffers.packer.uoffset, buf, 0))
    slot = table.Offset(6)  # field 1 (xnodes): vtable slot 4 + 2 * 1
    return table.VectorLen(slot) if slot else 0


def _load_ptl(path: Path):
    import torch
    from torch.jit.mobile import _load_for_lite_interpreter

    from osdml.export.ptl import read_ptl_spec

    import_rss = _rss_mb()
    t = time.perf_counter()
    module = _load_for_lite_interpreter(str(path))
    load_ms = (time.perf_counter() - t) * 1e3
    spec = read_ptl_spec(path)
    shape = tuple(spec.input_shape) if spec else (1, 1, 750)

    def run(x):
        with torch.no_grad():
            return module(torch.from_numpy(x))

    return run, load_ms, {"format": "ptl", "runtime": "lite interpreter",
                          "import_rss_mb": import_rss, "_input_shape": shape}


def _load_eager(path: Path):
    import torch

    from osdml.export.source import load_source

    import_rss = _rss_mb()
    t = time.perf_counter()
    src = load_source(path)
    load_ms = (time.perf_counter() - t) * 1e3
    model = src.module()

    def run(x):
        with torch.no_grad():
            return model(torch.from_numpy(x))

    return run, load_ms, {"format": "pt (eager)", "runtime": "eager torch",
                          "import_rss_mb": import_rss,
                          "_input_shape": tuple(src.spec.input_shape)}


def main(argv: list[str] | None = None) -> int:
    import argparse

    from osdml.errors import OsdmlError

    ap = argparse.ArgumentParser(description="measure one model file (run by osdml bench)")
    ap.add_argument("file", type=Path)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    try:
        result = measure(args.file, args.runs, args.threads, args.warmup, args.profile)
    except OsdmlError as e:
        sys.stderr.write(f"osdml: error: {e}\n")
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
