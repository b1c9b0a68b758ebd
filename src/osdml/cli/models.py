"""Commands on model files: ``convert``, ``inspect``, ``validate``, ``bench``, ``doctor``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from osdml.cli.common import (
    STATE,
    JsonOpt,
    app,
    checked_out,
    get_console,
    make_table,
    plural,
    print_json,
    quiet_libraries,
    require_executorch_for,
)
from osdml.errors import InputError


def _shape(value: str | None) -> tuple[int, int, int] | None:
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or shape[0] != 1 or min(shape) < 1:
        raise InputError(f"--input-shape {value!r}: give 1,channels,samples such as 1,1,750")
    return shape  # type: ignore[return-value]


@app.command()
def convert(
    inputs: Annotated[list[Path], typer.Argument(
        help="Model files (.pt, .pth, .ptl, TorchScript), or folders with --recursive.",
        show_default=False)],
    out: Annotated[str | None, typer.Option(
        "--out", "-o", help="Output file (one input) or folder (several inputs or a folder); "
        "default: beside each input.")] = None,
    to: Annotated[str, typer.Option("--to", help="pte, ptl or bpte (self-test bundle).")] = "pte",
    backend: Annotated[str, typer.Option(help="xnnpack or portable (.pte only).")] = "xnnpack",
    quantize: Annotated[str | None, typer.Option(
        help="int8: post-training quantization for XNNPACK (needs --calibration).")] = None,
    calibration: Annotated[list[Path] | None, typer.Option(
        help="OSDB files: real windows for int8 calibration, bundled test cases and the "
        "parity check (repeat the option).")] = None,
    calibration_windows: Annotated[int, typer.Option(
        help="int8: calibration windows, spread over the calibration events (0: all).")
                                   ] = 1024,
    observer: Annotated[str, typer.Option(
        help="int8: activation range observer: minmax, histogram or moving_average.")
                        ] = "minmax",
    fp32_layers: Annotated[str, typer.Option(
        help="int8: Linear layers kept in fp32: none (every layer int8), auto (none if "
        "decisions agree on 99% of the calibration windows and 98% of positives stay; else "
        "the most sensitive, measured one by one, until they do, at most 4) or NAME,....")
                           ] = "none",
    qat_epochs: Annotated[int, typer.Option(
        min=0, help="int8: quantization-aware fine-tuning epochs on the labelled calibration "
        "events (0: post-training quantization only).")] = 0,
    qat_lr: Annotated[float, typer.Option(help="int8: fine-tuning learning rate.")] = 1e-5,
    input_shape: Annotated[str | None, typer.Option(
        help="1,channels,samples when the file has no spec (default 1,1,750).")] = None,
    num_classes: Annotated[int | None, typer.Option(
        min=1, help="Expected classes; checked against the weights.")] = None,
    trust: Annotated[bool, typer.Option(
        help="Allow unpickling a whole nn.Module (runs code from the file).")] = False,
    force: Annotated[bool, typer.Option(help="Convert even when the output is up to date.")
                     ] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r",
                                            help="Convert the model files in folders.")] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes for batches.")
                       ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Convert model files to .pte (ExecuTorch), .ptl or a .bpte self-test bundle.

    Inputs are recognised by content: osdml and nnTraining2 checkpoints, state dicts,
    TorchScript and .ptl files, and (with --trust) pickled modules. Every output is checked
    in its own runtime against the input model; a folder is converted in parallel, one broken
    file does not stop the rest, and the exit status is non-zero if any failed."""
    from osdml.export.convert import ConvertOptions, find_inputs

    opts = ConvertOptions(to=to, backend=backend, quantize=quantize,
                          calibration=[str(p) for p in calibration or []],
                          input_shape=_shape(input_shape), num_classes=num_classes,
                          trust=trust, force=force, calibration_windows=calibration_windows,
                          observer=observer, fp32_layers=fp32_layers, qat_epochs=qat_epochs,
                          qat_lr=qat_lr)
    opts.check()
    found = find_inputs(inputs, recursive)
    if to in ("pte", "bpte"):
        require_executorch_for()
    from osdml.export.convert import BatchInterrupted

    try:
        with quiet_libraries():
            results = _run_conversions(found, opts, out, to, quantize, workers)
    except BatchInterrupted as e:  # Ctrl-C: workers stopped, partial outputs removed
        import signal

        try:  # stopping now: another Ctrl-C changes nothing
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread
            pass
        sys.stderr.write(f"osdml: interrupted: {e}\n")
        STATE["interrupt_reported"] = True
        raise typer.Exit(130) from None
    if json_out:
        print_json([r.to_dict() for r in results])
    elif not quiet:
        _render_conversions(results)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        code = 2 if any(r.exit_code == 2 for r in failed) else max(r.exit_code for r in failed)
        sys.stderr.write(f"osdml: error: {plural(len(failed), 'file')} of {len(results)} failed\n")
        raise typer.Exit(code)


def _run_conversions(found, opts, out: str | None, to: str, quantize, workers):
    from osdml.export.convert import convert_file, convert_many, output_path

    out_path = None if out is None else checked_out(out, folder=False)
    if len(found) == 1 and found[0][1] is None:  # one file: errors are raised as they are
        return [convert_file(found[0][0], output_path(found[0][0], to, out_path, None,
                                                       quantize), opts)]
    if out_path is not None:  # fail now, not after every file was converted
        from osdml.outdir import check_kind, record_kind

        check_kind(out_path, "convert", "write a conversion batch into")  # not into a run
        out_path.mkdir(parents=True, exist_ok=True)
        record_kind(out_path, "convert")
    # beside each input, or under --out (mirroring the folders given)
    items = [(src, output_path(src, to, out_path, None if out_path is None
                               else root or src.parent, quantize)) for src, root in found]
    return convert_many(items, opts, workers)


def _render_conversions(results) -> None:
    con = get_console()
    if len(results) == 1 and results[0].status == "converted":
        r = results[0]
        con.print(f"{r.input} -> {r.output} ({r.size_bytes / 1024:,.0f} KiB, {r.seconds:.1f} s): "
                  f"{r.origin}")
        for note in r.notes:
            con.print(f"  {note}")
        con.print(f"  check: {r.check.get('summary', '')}; on {r.check.get('on', '-')}")
        return
    rows = [[r.input, r.status, r.output or "-",
             "-" if r.size_bytes is None else f"{r.size_bytes / 1024:,.0f}",
             r.reason or r.check.get("summary", "")] for r in results]
    con.print(make_table(f"{len(results)} model file(s)", ["input", "result", "output", "KiB",
                                                     "reason / check"], rows))


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="A model file of any kind.", show_default=False)],
    json_out: JsonOpt = False,
) -> None:
    """Say what a model file is and what it holds: kind, spec, methods, input and output
    shapes, size, and for a .pte which operators run in the XNNPACK delegate."""
    from osdml.export.inspect import describe

    require_executorch_for([file])

    with quiet_libraries():
        info = describe(file)
    if json_out:
        print_json(info)
        return
    con = get_console()
    con.print(f"{info['path']}: {info['description']}, {info['size_bytes']:,} bytes, "
              f"sha256 {info['sha256'][:16]}...")
    for key in ("contents", "test_cases", "training_mode", "parameters"):
        if key in info:
            con.print(f"  {key.replace('_', ' ')}: {info[key]}")
    for note in info.get("notes", []):
        con.print(f"  {note}")
    fwd = info.get("forward", {})
    if "inputs" in fwd:
        io = lambda ts: ", ".join(f"{tuple(t.get('shape', []))} {t.get('dtype', '')}"  # noqa
                                  for t in ts)
        con.print(f"  forward: {io(fwd['inputs'])} -> {io(fwd.get('outputs', []))}")
    elif "error" in fwd:
        con.print(f"  forward: {fwd['error']}")
    if "constants" in info:
        con.print("  constants: " + ", ".join(f"{k}={v}" for k, v in info["constants"].items()))
    if "delegation" in info:
        con.print(f"  delegation: {info['delegation']['summary']}")
    if info.get("kind") == "tflite":
        if "operators" in info:
            con.print(f"  operators: {', '.join(info['operators'])}")
        if "app" in info:
            con.print(f"  app: {info['app']['detail']}")
    spec = info.get("spec")
    if spec:
        kwargs = spec.get("arch_kwargs") or {}
        if spec.get("arch") == "hd_ensemble" and isinstance(kwargs.get("members"), list):
            names = [m.get("name") for m in (spec.get("training") or {}).get("members", [])
                     if isinstance(m, dict)]
            kwargs = {"quantile": kwargs.get("quantile"), "members": names or [
                m.get("arch") for m in kwargs["members"] if isinstance(m, dict)]}
        con.print(f"  spec: {spec.get('arch')} {kwargs}, input "
                  f"{tuple(spec.get('input_shape', []))} {spec.get('input_units', '')}, "
                  f"threshold {spec.get('threshold')}")
        tuned = spec.get("app_settings") or {}
        if tuned:
            con.print("  app settings: " + (tuned.get("reason") or
                                            f"threshold {tuned.get('threshold_pct')} %, gate "
                                            f"{tuned.get('gate_pct')} %"))
    elif "spec" in info:
        con.print("  spec: none in the file")
    if "sidecar" in info:
        con.print(f"  sidecar: {info['sidecar']}")


@app.command()
def validate(
    models: Annotated[list[Path], typer.Argument(help="Exported files (.pte, .ptl, .pt, "
                                                 ".bpte, .tflite).", show_default=False)],
    reference: Annotated[Path | None, typer.Option(
        help="The model they were made from (default: the .pt of the same name beside the "
        "first file, else model.pt there; not needed for .bpte bundles; optional for "
        ".tflite: a .pt, .ptl or .pte taking (1, 1, N)).")] = None,
    data: Annotated[list[Path] | None, typer.Option(
        help="OSDB files: the real windows to compare on (default: the held-out test windows "
        "of the reference's run folder).")] = None,
    windows: Annotated[int, typer.Option(min=1, help="Real windows to use at most.")] = 512,
    random: Annotated[int, typer.Option(
        min=0, help="Random windows added to the real ones (never instead of them; .tflite: "
        "32 when 0).")] = 0,
    atol: Annotated[float | None, typer.Option(
        min=0.0, help="fp32: largest logit difference allowed (default 1e-4; a .bpte carries "
        "its own; against an hd_ensemble reference: the largest p difference, default "
        "5e-5).")] = None,
    int8_min_agreement: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="int8: share of decisions that must agree.")] = 0.99,
    int8_min_positive_kept: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="int8: share of the reference's positive windows that must "
        "stay positive.")] = 0.95,
    int8_min_sqnr: Annotated[float, typer.Option(
        help="int8: lowest signal-to-quantization-noise ratio of the logits, dB.")] = 15.0,
    hold_to: Annotated[str, typer.Option(
        help="auto: each file by its kind (int8 files by the int8 tolerance); fp32: every "
        "file by the fp32 tolerance.")] = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Check exported files in their own runtime against the model they came from.

    Each file runs in its runtime (eager torch, lite interpreter, ExecuTorch) on real windows;
    fp32 must match within 1e-4 with every decision the same, int8 by decision agreement,
    kept positives and SQNR. A .bpte is checked against its bundled outputs. A .tflite runs in
    LiteRT as the app's TFLite path runs it (input [1, N, 1], p = output[0][1] with no
    softmax): every output must be a probability pair, and with --reference p must match
    softmax(reference logits)[1] within --atol. An ensemble (reference arch hd_ensemble) is
    judged on p against its members' eager p combined by scipy's Harrell-Davis estimate:
    within 5e-5, every decision the same. Exit 1 names the file that is out of tolerance and
    by how much."""
    from osdml.export.validate import ENSEMBLE_P_ATOL, Tolerance

    if hold_to not in ("auto", "fp32"):
        raise InputError(f"--hold-to {hold_to!r}: choose auto or fp32")
    require_executorch_for(models)
    tol = Tolerance(fp32_atol=1e-4 if atol is None else atol, hold_to=hold_to,
                    int8_min_agreement=int8_min_agreement, int8_min_sqnr_db=int8_min_sqnr,
                    int8_min_positive_kept=int8_min_positive_kept,
                    ensemble_p_atol=ENSEMBLE_P_ATOL if atol is None else atol)
    with quiet_libraries():
        results = _validate(models, reference, data, windows, random, atol, tol)
    failed = [r for r in results if not r["passed"]]
    if json_out:
        print_json(results)
    else:
        get_console().print(make_table("Validation", ["file", "kind", "result", "detail"],
                                [[r["path"], r["kind"], "ok" if r["passed"] else "FAILED",
                                  r["summary"]] for r in results]))
    if failed:
        from osdml.errors import CheckFailed

        raise CheckFailed("; ".join(f"{r['path']}: {r.get('failure') or r['summary']}"
                                    for r in failed))


def _validate(models: list[Path], reference: Path | None, data: list[Path] | None,
              n_windows: int, n_random: int, atol: float | None, tol) -> list[dict]:
    import numpy as np

    from osdml.export import sniff as sn
    from osdml.export.bundle import verify_bpte
    from osdml.export.validate import run_folder_windows, validate_artefacts

    results, others, tflites = [], [], []
    for path in models:
        kind = sn.sniff(path).kind
        if kind == sn.TFLITE:
            tflites.append(path)
        elif kind == sn.BPTE:
            c = verify_bpte(path, atol=atol)
            results.append({"path": str(path), "kind": kind, "passed": c.passed,
                            "summary": f"{c.cases} bundled cases, {c.failed} failed (atol "
                                       f"{c.atol:g})"
                                       + (f": {c.first_failure}" if c.first_failure else "")})
        else:
            others.append((path, {sn.PTE: "pte", sn.PTL: "ptl"}.get(kind, "pt")))
    if tflites:
        results += _validate_tflite(tflites, reference, data, n_windows, n_random, atol)
    if not others:
        return results
    reference = reference or _default_reference(others[0][0])
    from osdml.export.source import load_source

    src = load_source(reference)
    spec = src.spec
    if data:
        from osdml.export.quantize import real_windows

        w = real_windows(data, spec, n_calibration=2,
                         n_held_out=max(2, n_windows - 2))
        x = np.concatenate([w.calibration, w.held_out])
        source = f"{len(x)} real windows from {w.source.split(' windows from ')[-1]}"
    else:
        found = run_folder_windows(Path(reference).parent, spec.window_samples,
                                   spec.hop_samples, n_windows)
        if found is None:
            raise InputError(f"no real windows to validate on: {reference} is not in an osdml "
                             "run folder; pass --data OSDB files (an ensemble's folder lends "
                             "those of its members/*/ run folders)")
        x, source = found
    if n_random:
        rng = np.random.default_rng(0)
        noise = 1.0 + 0.5 * rng.standard_normal((n_random, *x.shape[1:]))
        x = np.concatenate([x, noise.astype(np.float32)])
        source += f" + {n_random} random windows"
    checks = [validate_artefacts(src.module(), {fmt: p}, x, threshold=spec.threshold,
                                 tolerance=tol, raise_input_errors=True)[0]
              for p, fmt in others]
    for c in checks:
        if c.error:
            detail = c.error
        elif c.reference:  # an ensemble: judged on p against the scipy reference
            detail = (f"max p diff {c.max_prob_diff:.1e} (tolerance {c.atol:g}) against "
                      f"{c.reference}, decisions agree {c.decision_agreement:.1%} on {source}"
                      + (f": {c.failure}" if c.failure else ""))
        else:
            detail = (
                f"max |logit diff| {c.max_abs_logit_diff:.1e}, max p diff "
                f"{c.max_prob_diff:.3g}, decisions agree {c.decision_agreement:.1%}"
                + (f", SQNR {c.sqnr_db:.1f} dB" if c.quantization and c.sqnr_db else "")
                + f" on {source}" + (f": {c.failure}" if c.failure else ""))
        results.append({"path": c.path, "kind": c.format + (f" {c.quantization}"
                                                            if c.quantization else ""),
                        "passed": c.passed, "summary": detail, **c.to_dict()})
    return results


def _validate_tflite(files: list[Path], reference: Path | None, data: list[Path] | None,
                     n_windows: int, n_random: int, atol: float | None) -> list[dict]:
    """Each .tflite in LiteRT as the app runs it, on real windows of its input_size (from
    --data, else the reference's run folder) plus random ones; against --reference if given."""
    from osdml.export.tflite import DEFAULT_RANDOM, TfliteRunner, check_tflite
    from osdml.export.validate import one_thread

    results, windows = [], {}
    for path in files:
        n = TfliteRunner(path).input_size
        if n not in windows:
            windows[n] = _tflite_windows(n, reference, data, n_windows,
                                         n_random or DEFAULT_RANDOM)
        x, source = windows[n]
        run = None if reference is None else _reference_runner(reference, n)
        with one_thread():
            results.append(check_tflite(path, x, source, reference=run,
                                        reference_name=None if reference is None
                                        else str(reference),
                                        atol=1e-4 if atol is None else atol))
    return results


def _tflite_windows(n: int, reference: Path | None, data: list[Path] | None, n_windows: int,
                    n_random: int):
    """Windows (k, 1, n) float32 for a .tflite of input_size `n`, and what they are."""
    import numpy as np

    from osdml.export.tflite import random_windows
    from osdml.export.validate import run_folder_windows
    from osdml.spec import ModelSpec

    x, source = np.empty((0, 1, n), np.float32), ""
    if data:
        from osdml.export.quantize import real_windows

        w = real_windows(data, ModelSpec(window_samples=n, input_shape=(1, 1, n)),
                         n_calibration=2,
                         n_held_out=max(2, n_windows - 2))
        x = np.concatenate([w.calibration, w.held_out])
        source = f"{len(x)} real windows from {w.source.split(' windows from ')[-1]}"
    elif reference is not None:
        found = run_folder_windows(Path(reference).parent, n, 125, n_windows)
        if found is not None:
            x, source = found
    noise = random_windows(n_random, n)
    x = np.concatenate([x, noise])
    source = (f"{source} + {n_random} random windows" if source else
              f"{n_random} random windows (no real ones: pass --data OSDB files)")
    return x, source


def _reference_runner(reference: Path, n: int):
    """``run(window (1, 1, n)) -> logits (1, classes)`` for a .tflite's --reference.

    Raises
    ------
    InputError
        If the reference is not a torch model file or does not take (1, 1, n) windows.
    """
    import numpy as np
    import torch

    from osdml.export import sniff as sn
    from osdml.export.validate import artefact_runner

    kind = sn.sniff(reference).kind
    if kind == sn.TFLITE:
        raise InputError(f"--reference {reference}: give the torch model the .tflite was made "
                         "from (.pt, .ptl or .pte), not another .tflite")
    if kind in (sn.PTE, sn.BPTE, sn.PTL):
        run = artefact_runner({sn.PTE: "pte", sn.BPTE: "bpte", sn.PTL: "ptl"}[kind], reference)
        try:
            run(np.ones((1, 1, n), np.float32))
        except Exception as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InputError(f"--reference {reference} does not take the .tflite's (1, 1, {n}) "
                             f"windows ({reason.replace(f'{reference}: ', '')[:160]})") from None
        return run
    from osdml.export.source import load_source

    src = load_source(reference)
    if tuple(src.spec.input_shape) != (1, 1, n):
        try:  # a file without a spec: its input shape was a guess
            src = load_source(reference, input_shape=(1, 1, n))
        except InputError:
            raise InputError(f"--reference {reference} takes {tuple(src.spec.input_shape)} "
                             f"windows; the .tflite takes {n} samples") from None
    module = src.module()

    def run(x):
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    return run


def _default_reference(model: Path) -> Path:
    """The .pt of the same name beside `model` (``ensemble.pt`` for ``ensemble.pte``), else
    ``model.pt`` there (a run folder's; converted files such as ``model_int8.pte``)."""
    stem = model.name.split(".")[0]
    for candidate in (model.parent / f"{stem}.pt", model.parent / "model.pt"):
        if candidate.is_file() and candidate.resolve() != model.resolve():
            return candidate
    raise InputError(f"no --reference given and no {stem}.pt or model.pt beside {model}; pass "
                     "--reference MODEL")


@app.command()
def bench(
    files: Annotated[list[Path], typer.Argument(help="Model files (.pt, .ptl, .pte, .bpte).",
                                                show_default=False)],
    runs: Annotated[int, typer.Option(min=1, help="Timed inferences per file.")] = 200,
    threads: Annotated[int, typer.Option(min=1, help="Threads for every runtime.")] = 1,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs before timing.")] = 10,
    profile: Annotated[bool, typer.Option(
        help="Per-operator times from an ExecuTorch ETDump (.pte).")] = False,
    json_out: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table.")
                        ] = False,
) -> None:
    """Measure each file in a fresh process: size, load time, first inference, latency
    (p50/p95/p99 over --runs of one window), peak memory, and for .pte the share of operators
    in the XNNPACK delegate."""
    from osdml.export import sniff as sn
    from osdml.export.bench import bench_files

    for f in files:
        sn.sniff(f)  # bad input: one line before any process starts
    require_executorch_for(files)
    results = bench_files(files, runs=runs, threads=threads, warmup=warmup, profile=profile)
    if json_out:
        print_json(results)
    else:
        _render_bench(results, markdown)
    errors = [r for r in results if "error" in r]
    if errors:
        raise InputError("; ".join(r["error"] if r["file"] in r["error"] else
                                   f"{r['file']}: {r['error']}" for r in errors))


@app.command()
def doctor(
    out: Annotated[Path, typer.Option(
        "--out", help="The output folder to check for writing.")] = Path("outputs"),
    json_out: JsonOpt = False,
) -> None:
    """Check the installation: Python, torch, ExecuTorch, torchao and Lightning against the
    supported matrix, XNNPACK in the ExecuTorch runtime (with an export-and-run round trip),
    torch's own XNNPACK, the lite interpreter, and a writable output folder. One line each:
    ok, warn or fail with the fix. Exit 1 when any check fails."""
    from osdml.doctor import FAIL, run_checks

    with quiet_libraries():
        checks = run_checks(out)
    if json_out:
        print_json([c.to_dict() for c in checks])
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            sys.stdout.write(f"{c.status:<4}  {c.name:<{width}}  {c.detail}\n")
            if c.fix:
                sys.stdout.write(f"      {'':<{width}}  fix: {c.fix}\n")
    failed = [c.name for c in checks if c.status == FAIL]
    if failed:
        from osdml.errors import CheckFailed

        raise CheckFailed(f"doctor: {len(failed)} check(s) failed: {', '.join(failed)}")


def _render_bench(results: list[dict], markdown: bool) -> None:
    cols = ["file", "format", "KiB", "load ms", "first ms", "p50 ms", "p95 ms", "p99 ms",
            "peak MB", "model MB", "XNNPACK"]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["file"], "error: " + r["error"]] + ["-"] * (len(cols) - 2))
            continue
        share = r.get("delegated_share")
        rows.append([Path(r["file"]).name, r["format"], f"{r['size_bytes'] / 1024:,.0f}",
                     f"{r['load_ms']:.2f}", f"{r['first_ms']:.2f}", f"{r['p50_ms']:.3f}",
                     f"{r['p95_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['peak_rss_mb']:.0f}",
                     f"{r['peak_rss_mb'] - r['import_rss_mb']:.1f}",
                     "-" if share is None else f"{share:.0%}"])
    if markdown:
        sys.stdout.write("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
        for row in rows:
            sys.stdout.write("| " + " | ".join(map(str, row)) + " |\n")
    else:
        get_console().print(make_table(f"Benchmark ({results[0].get('runs', '?')} runs, "
                                f"{results[0].get('threads', '?')} thread(s), fresh process per "
                                "file)", cols, rows, no_wrap=2))
        get_console().print("peak MB: the process's peak resident memory (the Python runtime "
                         "included); model MB: what loading and running the file added. "
                         "XNNPACK: share of operators in the delegate.")
    for r in results:
        prof = r.get("profile")
        if prof:
            if "error" in prof:
                get_console(stderr=True).print(f"profile of {r['file']}: {prof['error']}")
            else:
                get_console().print(make_table(f"Operators of {r['file']}", ["operator", "calls",
                                                                       "p50 ms"],
                                        [[o["operator"], o["calls"], f"{o['p50_ms']:.4f}"]
                                         for o in prof["operators"]]))
