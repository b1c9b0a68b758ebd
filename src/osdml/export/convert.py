"""Convert model files to .pte, .ptl or .bpte, one at a time or a folder in parallel.

Every conversion: identify the input by content and load it (``source.load_source``), export
it (``pte`` / ``ptl`` / ``bundle``, optionally int8 with ``quantize``), then check the written
file in its own runtime against the loaded model on real windows (from ``--calibration`` OSDB
files; without them, on windows of osdml's generated OSDB data, and the result says so). An
fp32 file beyond 1e-4 on the logits fails; an int8 file is reported with its probability
difference and decision agreement against the fp32 model on held-out windows, and with its
size against the fp32 file (a warning below 2.5x). Outputs are written atomically: a failed
conversion leaves the output path as it was.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osdml.errors import CheckFailed, InputError, OsdmlError

TARGETS = {"pte": ".pte", "ptl": ".ptl", "bpte": ".bpte"}
MODEL_SUFFIXES = (".pt", ".pth", ".ptl", ".ckpt", ".bin")
FP32_ATOL = 1e-4
INT8_MIN_RATIO = 2.5


@dataclass
class ConvertOptions:
    """What to make. ``calibration`` lists OSDB files (real windows)."""

    to: str = "pte"
    backend: str = "xnnpack"
    quantize: str | None = None
    calibration: list[str] = field(default_factory=list)
    input_shape: tuple[int, int, int] | None = None
    num_classes: int | None = None
    trust: bool = False
    force: bool = False
    bundle_windows: int = 32
    # int8 (osdml.export.quantize; measured choices in docs/export.md): calibration windows
    # (<= 0: all of the calibration side), activation observer, layers kept in fp32 (None,
    # "auto" or module names) and quantization-aware fine-tuning epochs / learning rate
    calibration_windows: int = 1024
    observer: str = "minmax"
    fp32_layers: str | None = "none"
    qat_epochs: int = 0
    qat_lr: float = 1e-5
    held_out_windows: int = 1024

    def check(self) -> None:
        """Raise ``InputError`` for option combinations that cannot work."""
        if self.to not in TARGETS:
            raise InputError(f"--to {self.to!r}: must be one of {', '.join(TARGETS)}")
        if self.quantize not in (None, "int8"):
            raise InputError(f"--quantize {self.quantize!r}: only int8 is supported")
        if self.quantize and not self.calibration:
            raise InputError("--quantize int8 needs --calibration OSDB files: activation "
                             "ranges must come from real windows")
        if self.quantize and self.to == "ptl":
            raise InputError("--quantize int8 makes ExecuTorch programs: use --to pte or bpte")
        if self.quantize and self.backend != "xnnpack":
            raise InputError("--quantize int8 targets the XNNPACK backend; drop --backend "
                             "portable")
        if self.to == "bpte" and not self.calibration:
            raise InputError("--to bpte bundles real test windows: pass --calibration OSDB files")
        if self.to == "ptl" and self.backend != "xnnpack":
            raise InputError("--backend applies to ExecuTorch programs (--to pte or bpte), not "
                             "to .ptl")
        if self.backend not in ("xnnpack", "portable"):
            raise InputError(f"--backend {self.backend!r}: must be xnnpack or portable")
        if not self.quantize and (self.fp32_layers not in (None, "auto", "none")
                                  or self.qat_epochs):
            raise InputError("--fp32-layers and --qat-epochs apply to --quantize int8")
        from osdml.export.quantize import OBSERVERS

        if self.observer not in OBSERVERS:
            raise InputError(f"--observer {self.observer!r}: must be one of "
                             f"{', '.join(OBSERVERS)}")
        if self.qat_epochs < 0 or not self.qat_lr > 0:
            raise InputError("--qat-epochs must be >= 0 and --qat-lr > 0")

    def stamp(self, src: Path) -> dict[str, Any]:
        """What the sidecar records about the conversion (an output is up to date only if its
        stamp matches the options asked for now)."""
        int8 = ({"calibration_windows": self.calibration_windows, "observer": self.observer,
                 "fp32_layers": self.fp32_layers, "qat_epochs": self.qat_epochs,
                 "qat_lr": self.qat_lr} if self.quantize else {})
        return {"source": str(src), "to": self.to, "backend": self.backend,
                "quantize": self.quantize, **int8}


@dataclass
class ConvertResult:
    """One file's outcome: ``converted``, ``skipped`` (output up to date) or ``failed``."""

    input: str
    output: str | None
    status: str
    reason: str = ""
    origin: str | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    size_bytes: int | None = None
    fp32_size_bytes: int | None = None
    check: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    int8: dict[str, Any] = field(default_factory=dict)  # how the int8 model was made

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_path(src: Path, to: str, out: Path | None = None, root: Path | None = None,
                quantize: str | None = None) -> Path:
    """Where the converted file goes: `out` itself for a single file, else beside the input
    (or under `out`, mirroring the input's place below `root`), named after the input."""
    name = src.stem + ("_int8" if quantize else "") + TARGETS[to]
    if out is None:
        return src.with_name(name)
    if root is None:
        return out
    return out / src.parent.relative_to(root) / name


def convert_file(src: str | Path, out: str | Path, opts: ConvertOptions) -> ConvertResult:
    """Convert one file, check it in its runtime, and only then put it at `out`.

    The file is written under a temporary name beside `out`, checked, and renamed to `out`
    (with its sidecar ``<out>.json``) only when the check passes: after any failure `out` is
    exactly as it was.

    Raises
    ------
    InputError
        If the input is not a convertible model, or the options do not fit it, or another
        process is writing `out` (its lock, ``osdml.outdir.hold``).
    CheckFailed
        If the converted file does not match the model beyond tolerance (nothing is written).
    ExportError
        If exporting or lowering fails.
    """
    t0 = time.perf_counter()
    src, out = Path(src), Path(out)
    opts.check()
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise InputError(f"{out}: the output would overwrite the input; choose another -o")
    from osdml.export.source import load_source

    source = load_source(src, trust=opts.trust, input_shape=opts.input_shape,
                         num_classes=opts.num_classes)
    result = ConvertResult(str(src), str(out), "converted", origin=source.origin,
                           notes=list(source.notes))
    windows = _windows(opts, source.spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.converting")
    from osdml.outdir import hold

    with hold(out, f"osdml convert {src} -o {out}"):  # one writer per output
        try:
            facts = _export(source, tmp, opts, windows, result)
            result.check = _check(tmp, opts, source.module(), windows)
            if not result.check["passed"]:
                raise CheckFailed(f"{out}: {result.check['summary']}; nothing was written")
            # the output and its sidecar go in together: a Ctrl-C or a batch stopping its
            # workers (SIGTERM) is held until both are written, so no output is left without
            # its sidecar
            with _signals_held():
                os.replace(tmp, out)
                _write_sidecar(out, facts.pop("spec"), facts, opts.stamp(src), result)
        finally:
            tmp.unlink(missing_ok=True)
    result.size_bytes = out.stat().st_size
    result.seconds = round(time.perf_counter() - t0, 2)
    return result


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT and SIGTERM in this thread while the block runs (delivered after it)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask (Windows)
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _export(source, path: Path, opts: ConvertOptions, windows: dict,
            result: ConvertResult) -> dict[str, Any]:
    """Write the requested format to `path`; return facts for the sidecar."""
    from osdml.export.pte import PteInfo, export_pte, program_buffer

    module = source.module()
    graph = source.exported if source.model is None else None
    lowered = module
    spec = source.spec
    if opts.quantize and spec.arch == "hd_ensemble":
        raise InputError(f"{source.path}: int8 of an ensemble is not supported: its parity is "
                         "judged on p against scipy's Harrell-Davis estimate, which int8 "
                         "members would not meet; convert it as fp32")
    if opts.quantize:
        from osdml.export.source import eager_from_weights

        spec = spec.model_copy(update={"quantization": opts.quantize})  # read on the phone too
        # torchao cannot quantize every converted TorchScript graph: use the eager model its
        # weights fit, when there is one
        eager = eager_from_weights(source)
        if eager is not source:
            result.notes = eager.notes
        lowered, graph = _int8(eager.module(), source.spec, opts, windows, result), None
    if opts.to == "ptl":
        _to_ptl(source, path)
        return {"format": "ptl", "spec": spec}
    if opts.to == "bpte":
        from osdml.export.bundle import export_bpte

        k = min(opts.bundle_windows, len(windows["held_out"]))
        facts = export_bpte(lowered, spec, path, windows["held_out"][:k],
                            backend=opts.backend, exported=graph, reference=module)
        return {"format": "bpte", "quantization": opts.quantize, "spec": spec, **facts}
    info: PteInfo = export_pte(lowered, spec, path, backend=opts.backend, exported=graph,
                               quantization=opts.quantize, sidecar=False)
    if opts.quantize:
        fp32, _ = program_buffer(source.model, source.spec, exported=source.exported
                                 if source.model is None else None)
        result.fp32_size_bytes = len(fp32)
        ratio = len(fp32) / info.size_bytes
        result.notes.append(f"int8 is {ratio:.2f}x smaller than fp32 ({info.size_bytes:,} vs "
                            f"{len(fp32):,} bytes)")
        if ratio < INT8_MIN_RATIO:
            warnings.warn(f"{source.path}: the int8 program is only {ratio:.2f}x smaller than "
                          f"fp32 (expected at least {INT8_MIN_RATIO}x)", stacklevel=2)
    return {"format": "pte", "info": info, "spec": spec}


def _int8(module, spec, opts: ConvertOptions, windows: dict, result: ConvertResult):
    """The int8 graph module by `opts` (``osdml.export.quantize``); what was done goes to
    ``result.int8`` (and so to the sidecar)."""
    from osdml.export.quantize import QatSettings, choose_fp32_layers, quantize_int8

    calibration = windows["calibration"]
    info: dict[str, Any] = {"calibration_windows": len(calibration), "observer": opts.observer}
    layers: list[str] = []
    if opts.fp32_layers == "auto":
        choice = choose_fp32_layers(module, spec, calibration, observer=opts.observer)
        layers = choice.layers
        info["fp32_layers_choice"] = {"goal_met_on_calibration": choice.met, **choice.final,
                                      "ranking": choice.ranking}
    elif opts.fp32_layers and opts.fp32_layers != "none":
        layers = [n.strip() for n in opts.fp32_layers.split(",") if n.strip()]
    info["fp32_layers"] = layers
    qat = None
    if opts.qat_epochs:
        x, y = windows["train"]
        qat = QatSettings(x, y, epochs=opts.qat_epochs, lr=opts.qat_lr)
        info["qat"] = {"epochs": opts.qat_epochs, "lr": opts.qat_lr, "windows": len(x),
                       "batch": qat.batch, "distill": qat.distill, "seed": qat.seed}
    graph = quantize_int8(module, spec, calibration, observer=opts.observer,
                          fp32_layers=layers, qat=qat)
    info["input_centre_g"] = getattr(graph, "input_centre", None)
    result.int8 = info
    if layers:
        result.notes.append(f"layers kept in fp32: {', '.join(layers)}")
    return graph


def _write_sidecar(out: Path, spec, facts: dict[str, Any], stamp: dict[str, Any],
                   result: ConvertResult) -> None:
    from osdml.export.pte import sha256_of, write_pte_manifest
    from osdml.fileio import write_json

    # the parity check, under the key osdml train also writes and osdml publish reads
    extra = {"conversion": stamp, "validation": {
        "against": f"the source model {stamp.get('source', '')}".strip(),
        **{k: v for k, v in result.check.items() if isinstance(v, str | int | float | bool)}}}
    if result.int8:
        extra["int8"] = result.int8
    if facts["format"] == "pte":
        info = facts["info"]
        info.path = str(out)
        write_pte_manifest(out, spec, info, extra)
        return
    write_json(Path(str(out) + ".json"), {
        "file": out.name, "size_bytes": out.stat().st_size, "sha256": sha256_of(out),
        **{k: v for k, v in facts.items() if k not in ("format", "size_bytes", "sha256")},
        **extra, "spec": spec.model_dump(mode="json")})


def _to_ptl(source, out: Path) -> None:
    from osdml.export.ptl import export_ptl

    if source.model is None:
        raise InputError(f"cannot make a .ptl from {source.path}: it is already TorchScript "
                         "without an osdml spec; use it as it is, or convert --to pte")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no XNNPACK in the CPU wheel: expected
        export_ptl(source.model, source.spec, out)


def _windows(opts: ConvertOptions, spec) -> dict[str, Any]:
    """Real windows from --calibration, else windows of generated OSDB data (said so)."""
    from osdml.export.quantize import real_windows

    if opts.calibration:
        n = opts.calibration_windows if opts.quantize else 256
        rw = real_windows(opts.calibration, spec, n_calibration=0 if opts.qat_epochs else n,
                          n_held_out=opts.held_out_windows)
        calibration, labels = rw.calibration, rw.calibration_labels
        if opts.qat_epochs and n > 0 and len(calibration) > n:  # QAT trains on all of them
            take = np.unique(np.linspace(0, len(calibration) - 1, n).round().astype(int))
            calibration = calibration[take]
        return {"calibration": calibration, "held_out": rw.held_out, "source": rw.source,
                "train": (rw.calibration, labels)}
    if spec.input_shape[1] != (3 if spec.input == "xyz" else 1) or spec.window_samples < 125:
        rng = np.random.default_rng(0)  # the model does not take OSDB windows
        x = (1.0 + 0.3 * rng.standard_normal((64, *spec.input_shape[1:]))).astype(np.float32)
        return {"calibration": None, "held_out": x,
                "source": "64 random inputs only (the model does not take OSDB magnitude or "
                          "x, y, z windows, so real windows cannot be used)"}
    from osdml.data.synthetic import SynthSpec, write_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        write_synthetic(tmp, SynthSpec(users=2, seizures_per_user=2, false_alarms_per_user=2,
                                       nda_per_user=2, seed=0))
        from osdml.data.cache import load_streams  # noqa: F401  (warm import)

        rw = real_windows([tmp], spec, n_calibration=2, n_held_out=64)
    return {"calibration": None, "held_out": rw.held_out,
            "source": f"{len(rw.held_out)} windows of generated OSDB data (pass --calibration "
                      "OSDB files to check on real windows)"}


def _check(out: Path, opts: ConvertOptions, module, windows: dict) -> dict[str, Any]:
    """Run the written file in its own runtime against the loaded (fp32) model; a
    Harrell-Davis ensemble on p against its members' p combined by scipy
    (``osdml.export.validate.validate_ensemble``)."""
    x = windows["held_out"]
    if opts.to == "bpte":
        from osdml.export.bundle import verify_bpte

        c = verify_bpte(out)
        return {"windows": c.cases, "on": "the bundled real windows", "passed": c.passed,
                "atol": c.atol,
                "summary": (f"{c.cases} bundled cases pass in the ExecuTorch runtime (atol "
                            f"{c.atol:g})" if c.passed
                            else f"bundled cases fail: {c.first_failure}")}
    import torch

    from osdml.export.validate import (
        Tolerance,
        artefact_logits,
        compare,
        is_hd_ensemble,
        judge,
        validate_ensemble,
    )

    if is_hd_ensemble(module) and not opts.quantize:  # judged on p against scipy's estimate
        c = validate_ensemble(module, {opts.to: out}, x, raise_input_errors=True)[0]
        if c.error:
            raise CheckFailed(f"{out}: {c.error}")
        summary = (f"max p diff {c.max_prob_diff:.1e} (tolerance {c.atol:g}) against "
                   f"{c.reference}, decisions agree {c.decision_agreement:.1%} on {len(x)} "
                   "windows" + (f": {c.failure}" if c.failure else ""))
        return {"max_prob_diff": c.max_prob_diff, "decision_agreement": c.decision_agreement,
                "p_atol": c.atol, "windows": len(x), "on": windows["source"],
                "passed": c.passed, "summary": summary}
    with torch.no_grad():
        reference = np.concatenate([module(torch.from_numpy(x[i:i + 1].copy())).numpy()
                                    for i in range(len(x))])
    got = artefact_logits(opts.to, out, x)
    c = compare(reference, got)
    failure = judge(c, opts.quantize, Tolerance(fp32_atol=FP32_ATOL))
    if opts.quantize:
        kept = c["positive_agreement"]
        sqnr = c["sqnr_db"]
        summary = (f"int8 vs fp32 on {len(x)} held-out windows: max p difference "
                   f"{c['max_prob_diff']:.3f}, decisions agree {c['decision_agreement']:.1%}"
                   + ("" if kept is None else f", fp32 positives kept {kept:.1%}")
                   + ("" if sqnr is None else f", SQNR {sqnr:.1f} dB"))
    else:
        summary = (f"max |logit diff| {c['max_abs_logit_diff']:.1e} (tolerance {FP32_ATOL:g}), "
                   f"decisions agree {c['decision_agreement']:.1%} on {len(x)} windows")
    if failure:
        summary += f": {failure}"
    return {**c, "windows": len(x), "on": windows["source"], "passed": failure is None,
            "summary": summary}


# --------------------------------------------------------------------------- batches

def find_inputs(paths: Sequence[str | Path], recursive: bool) -> list[tuple[Path, Path | None]]:
    """Expand the command line into (file, root folder or None) pairs.

    Raises
    ------
    InputError
        If a folder is given without `recursive`, or a path does not exist.
    """
    out: list[tuple[Path, Path | None]] = []
    for p in map(Path, paths):
        if p.is_dir():
            if not recursive:
                raise InputError(f"{p} is a folder; pass --recursive to convert the model files "
                                 "in it")
            files = sorted(f for f in p.rglob("*") if f.is_file()
                           and f.suffix.lower() in MODEL_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            out.extend((f, p) for f in files)
        elif p.exists():
            out.append((p, None))
        else:
            raise InputError(f"cannot read model: {p} does not exist")
    return out


def up_to_date(src: Path, out: Path, opts: ConvertOptions) -> bool:
    """The output exists, is newer than its input, and its sidecar says it was made from this
    input with these options (a failed conversion leaves no output, so it is never current)."""
    import json

    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        return False
    try:
        stamp = json.loads(Path(str(out) + ".json").read_text()).get("conversion")
    except (OSError, ValueError, AttributeError):
        return False
    return stamp == opts.stamp(src)


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a batch: the workers were stopped, their partial outputs removed; the
    message says what was done and what was not (``osdml convert`` prints it, exit 130)."""

    def __init__(self, converted: int, stopped: int, not_started: int):
        self.converted, self.stopped, self.not_started = converted, stopped, not_started
        parts = [f"{converted} converted"]
        if stopped:
            parts.append(f"{stopped} stopped half-way and removed")
        parts.append(f"{not_started} not started")
        super().__init__(f"{', '.join(parts)}; rerun the same command to convert the rest")


def carries_spec(path: Path) -> bool:
    """Whether `path` is an osdml checkpoint with its spec (read with ``weights_only``: no
    code in the file runs)."""
    from osdml.export import sniff as sn

    try:
        if sn.sniff(path).kind != sn.CHECKPOINT:
            return False
        import torch

        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return False
    return (isinstance(obj, dict) and obj.get("format") == "osdml-checkpoint"
            and isinstance(obj.get("spec"), dict))


def _plan(items: list[tuple[Path, Path]], opts: ConvertOptions,
          results: dict[int, ConvertResult]) -> list[int]:
    """Settle, before any work, what each input does; return the indices to convert.

    Inputs in one folder that would write the same output (a run's ``model.pt`` and
    ``model.ptl`` both make ``model.pte``): the osdml checkpoint carrying the spec is
    converted, the others are skipped and say so. Any other two inputs with one output fail,
    as does an output that would overwrite its own input.
    """
    inputs = {src.resolve(): src for src, _ in items}
    groups: dict[Path, list[int]] = {}
    for i, (_, out) in enumerate(items):
        groups.setdefault(out.resolve(), []).append(i)
    chosen: list[int] = []
    for key, members in groups.items():
        first = members[0]
        if len(members) > 1 and len({items[i][0].resolve().parent for i in members}) == 1:
            with_spec = [i for i in members if carries_spec(items[i][0])]
            if len(with_spec) == 1:
                first = with_spec[0]
                for i in members:
                    if i != first:
                        results[i] = ConvertResult(
                            str(items[i][0]), None, "skipped",
                            f"same output as {items[first][0]}, which carries the spec")
        for i in members:
            if i != first and i not in results:
                results[i] = ConvertResult(
                    str(items[i][0]), str(items[i][1]), "failed",
                    f"{items[i][1]} is also the output of {items[first][0]}; convert them "
                    "separately with -o", exit_code=2)
        src, out = items[first]
        if key in inputs:  # its own input, or another input of the batch (model.ptl, --to ptl)
            what = "the input" if src.resolve() == key else f"the input {inputs[key]}"
            results[first] = ConvertResult(str(src), str(out), "failed", f"the output would "
                                           f"overwrite {what}; choose another -o", exit_code=2)
        elif not opts.force and up_to_date(src, out, opts):
            results[first] = ConvertResult(str(src), str(out), "skipped",
                                           "output is up to date (--force to redo)")
        else:
            chosen.append(first)
    return sorted(chosen)


def convert_many(items: list[tuple[Path, Path]], opts: ConvertOptions,
                 workers: int | None = None) -> list[ConvertResult]:
    """Convert (input, output) pairs in worker processes; one failure never stops the rest.

    Outputs newer than their inputs are skipped unless ``opts.force``; inputs that would write
    the same output are settled first (``_plan``).

    Raises
    ------
    BatchInterrupted
        On Ctrl-C (a ``KeyboardInterrupt``): the workers are stopped at once (they ignore
        SIGINT; this process terminates them), their temporary files are removed, finished
        outputs are kept; a rerun converts what is missing.
    """
    results: dict[int, ConvertResult] = {}
    todo = _plan(items, opts, results)
    for i in todo:
        _remove_temporaries(items[i][1], stale_only=True)
    before = {i: _stat(items[i][1]) for i in todo}
    started: set[int] = set()
    try:
        if opts.calibration and todo:  # parse once here so that the workers hit the cache
            from osdml.data.cache import load_streams

            load_streams(opts.calibration)
        workers = workers or min(len(todo), max(1, (os.cpu_count() or 2)), 4) or 1
        if workers <= 1 or len(todo) <= 1:
            for i in todo:
                started.add(i)
                results[i] = _safe_convert(items[i][0], items[i][1], opts)
        else:
            _in_workers(items, todo, opts, workers, results, started)
    except KeyboardInterrupt:
        with _sigint_ignored():  # a second Ctrl-C must not cut the clean-up short
            left = [i for i in todo if i not in results]
            for i in left:
                _remove_temporaries(items[i][1])
            done = sum(results[i].status == "converted" for i in todo if i in results)
            # finished just as the batch stopped (output and sidecar written, result unsent)
            done += sum(_stat(items[i][1]) != before[i] and up_to_date(*items[i], opts)
                        for i in left)
            not_started = sum(i not in started for i in left)
            raise BatchInterrupted(done, len(todo) - done - not_started, not_started) from None
    return [results[i] for i in range(len(items))]


def _in_workers(items, todo: list[int], opts: ConvertOptions, workers: int,
                results: dict[int, ConvertResult], started: set[int]) -> None:
    import multiprocessing
    import shutil
    from concurrent.futures import FIRST_COMPLETED, wait

    ctx = multiprocessing.get_context("spawn")  # fork after torch threads can hang
    scratch = tempfile.mkdtemp(prefix="osdml-convert-")  # the workers' tempfile folder
    # Ctrl-C at a terminal reaches every process of the group: the workers ignore it (started
    # while this process ignores it, they inherit that; the initializer makes sure) and this
    # process stops them
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                               initargs=(scratch,))
    pending: dict = {}
    try:
        with _sigint_ignored():  # the workers start here
            pending = {pool.submit(_safe_convert, items[i][0], items[i][1], opts): i
                       for i in todo}
        while pending:
            done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in done:
                results[pending.pop(fut)] = fut.result()
    except BaseException:
        with _sigint_ignored():
            # the call queue holds a few more than the workers run: the first ones are in work
            running = sorted(i for fut, i in pending.items() if not fut.cancel())
            started.update(running[:workers])
            _stop_workers(pool)
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    pool.shutdown(wait=True)
    shutil.rmtree(scratch, ignore_errors=True)


def _worker_init(scratch: str) -> None:
    import signal as _signal

    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # the parent handles Ctrl-C
    tempfile.tempdir = scratch  # removed by the parent, even if this worker is killed


def _stop_workers(pool) -> None:
    """Cancel what has not started, terminate the workers (SIGTERM, then SIGKILL after 1 s)."""
    # concurrent.futures has no public way to stop running tasks (before Python 3.14)
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + 1.0
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
    for p in processes:
        with contextlib.suppress(Exception):
            if p.is_alive():
                p.kill()
                p.join(1.0)


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT in the block (main thread only; elsewhere a no-op)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _remove_temporaries(out: Path, stale_only: bool = False) -> None:
    """Remove the temporary files a conversion to `out` writes beside it
    (``.NAME.PID.converting``, the ``.tmp`` files of atomic writes, the sidecar's); with
    `stale_only`, only ``.converting`` files of processes that no longer exist."""
    from osdml.outdir import process_alive, remove_stale_lock

    remove_stale_lock(out)  # a worker stopped while converting leaves its lock
    try:
        names = [p for p in out.parent.iterdir()
                 if p.name.startswith((f".{out.name}.", f"..{out.name}."))
                 and p.name.endswith((".converting", ".tmp"))]
    except OSError:
        return
    for p in names:
        if stale_only:  # .NAME.PID.converting and ..NAME.PID.converting.XXXX.tmp
            pid, _, rest = p.name.lstrip(".")[len(out.name) + 1:].partition(".")
            if not (rest.startswith("converting") and pid.isdigit()
                    and not process_alive(int(pid))):
                continue
        with contextlib.suppress(OSError):
            p.unlink()



def _safe_convert(src: Path, out: Path, opts: ConvertOptions) -> ConvertResult:
    """``convert_file`` that reports failures instead of raising (for batches)."""
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            result = convert_file(src, out, opts)
        result.notes += [str(w.message) for w in caught
                         if "osdml" in (w.filename or "") or str(out) in str(w.message)]
        return result
    except OsdmlError as e:
        return ConvertResult(str(src), str(out), "failed", str(e), exit_code=e.exit_code,
                             seconds=round(time.perf_counter() - t0, 2))
    except Exception as e:  # a bug must not take the batch down; reported as such
        return ConvertResult(str(src), str(out), "failed",
                             f"internal error: {type(e).__name__}: {e}", exit_code=3,
                             seconds=round(time.perf_counter() - t0, 2))
