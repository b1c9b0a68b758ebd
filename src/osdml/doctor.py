"""Check the installation against the supported stack: what ``osdml doctor`` reports.

The supported matrix is narrow on purpose: ExecuTorch pins the torch it was built against, and
an ExecuTorch 1.4.x wheel imported next to another torch fails deep inside its C++ extension
(an undefined symbol, or an op schema mismatch) rather than saying so. :func:`stack_problem`
reads only package metadata (no import, a few milliseconds), so every command that needs
ExecuTorch can check the matrix first and name the mismatch in one line
(:func:`require_executorch`). :func:`run_checks` adds the checks that do import: the XNNPACK
backend registered in the ExecuTorch runtime, torch's own XNNPACK, a lite-interpreter round
trip, an ExecuTorch export-and-run round trip, and a writable output folder.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from osdml.errors import InputError

#: Supported (major, minor) of each package; the Makefile and pyproject.toml pin these.
SUPPORTED = {"python": (3, 11), "torch": (2, 13), "executorch": (1, 4), "lightning": (2, 6)}
#: The torch each ExecuTorch release line is built against.
EXECUTORCH_NEEDS_TORCH = {(1, 4): (2, 13)}
PINS = {"torch": "torch==2.13.0", "executorch": "executorch==1.4.1",
        "lightning": "'lightning>=2.6,<2.7'"}

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    """One line of the report: ``status`` is ok, warn or fail; ``fix`` says what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def installed(dist: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _line(version: str) -> tuple[int, int]:
    """(major, minor) of a version string such as ``2.13.0+cpu`` or ``1.4.1``."""
    from packaging.version import InvalidVersion, Version

    try:
        release = Version(version).release
    except InvalidVersion:
        return (0, 0)
    return (release + (0, 0))[:2]


def _fmt(line: tuple[int, int]) -> str:
    return f"{line[0]}.{line[1]}.x"


def stack_problem() -> str | None:
    """None when the installed torch and ExecuTorch fit together, else the mismatch in one line.

    Reads package metadata only; imports nothing.
    """
    et, torch = installed("executorch"), installed("torch")
    if torch is None:
        return f"torch is not installed; run: pip install {PINS['torch']}"
    if et is None:
        return f"executorch is not installed; run: pip install {PINS['executorch']}"
    needs = EXECUTORCH_NEEDS_TORCH.get(_line(et))
    if needs is None:
        return (f"executorch {et} is not supported (osdml supports executorch "
                f"{_fmt(SUPPORTED['executorch'])} with torch {_fmt(SUPPORTED['torch'])}); run: "
                f"pip install {PINS['executorch']} {PINS['torch']}")
    if _line(torch) != needs:
        return (f"executorch {et} needs torch {_fmt(needs)}, found torch {torch}; run: "
                f"pip install {PINS['torch']}")
    return None


def require_executorch() -> None:
    """Check the torch/ExecuTorch matrix before a command imports ExecuTorch.

    Raises
    ------
    InputError
        Naming the mismatch and the fix, e.g. "executorch 1.4.1 needs torch 2.13.x, found
        torch 2.12.0; run: pip install torch==2.13.0" (exit status 2).
    """
    problem = stack_problem()
    if problem:
        raise InputError(problem + " (osdml doctor checks the whole installation)")


# --------------------------------------------------------------------------- the checks

def check_versions() -> list[Check]:
    """Python, torch, ExecuTorch, torchao and Lightning against the supported matrix."""
    checks = []
    py = sys.version_info[:2]
    want = SUPPORTED["python"]
    checks.append(Check("python", OK if py == want else WARN, sys.version.split()[0],
                        "" if py == want else f"osdml is tested on Python {want[0]}.{want[1]}; "
                        "ExecuTorch wheels exist for few versions"))
    for dist in ("torch", "lightning"):
        v = installed(dist)
        want = SUPPORTED[dist]
        if v is None:
            checks.append(Check(dist, FAIL, "not installed", f"pip install {PINS[dist]}"))
        elif _line(v) != want:
            checks.append(Check(dist, FAIL, f"{v}, supported {_fmt(want)}",
                                f"pip install {PINS[dist]}"))
        else:
            checks.append(Check(dist, OK, v))
    et = installed("executorch")
    problem = stack_problem()
    if et is None:
        checks.append(Check("executorch", FAIL, "not installed (no .pte export or checks)",
                            f"pip install {PINS['executorch']}"))
    elif problem:
        detail, _, fix = problem.partition("; run: ")
        checks.append(Check("executorch", FAIL, detail, fix))
    else:
        checks.append(Check("executorch", OK, f"{et} (built for torch "
                                              f"{_fmt(EXECUTORCH_NEEDS_TORCH[_line(et)])})"))
    checks.append(_check_torchao())
    return checks


def _check_torchao() -> Check:
    """torchao must satisfy ExecuTorch's own requirement (int8 quantization uses it)."""
    from packaging.requirements import Requirement

    v = installed("torchao")
    wanted = None
    reqs = importlib.metadata.requires("executorch") if installed("executorch") else None
    for req in reqs or []:
        r = Requirement(req)
        if r.name == "torchao" and r.marker is None:
            wanted = r
    if v is None:
        return Check("torchao", FAIL, "not installed (int8 quantization needs it)",
                     f"pip install '{wanted or 'torchao'}'")
    if wanted is not None and not wanted.specifier.contains(v, prereleases=True):
        return Check("torchao", FAIL, f"{v}, executorch wants {wanted}",
                     f"pip install '{wanted}'")
    return Check("torchao", OK, v + (f" (executorch wants {wanted.specifier})" if wanted else ""))


def check_runtime() -> list[Check]:
    """XNNPACK in the ExecuTorch runtime, torch's XNNPACK, lite interpreter, export round trip."""
    checks = []
    if stack_problem():
        checks.append(Check("executorch runtime", FAIL, "not checked: fix the versions first",
                            "see the executorch line"))
    else:
        checks.extend(_check_executorch_runtime())
    from osdml.export.ptl import torch_has_xnnpack

    checks.append(Check("torch XNNPACK", OK, "present (optimize_for_mobile available)")
                  if torch_has_xnnpack() else
                  Check("torch XNNPACK", WARN, "absent in this torch build (the CPU wheel): "
                        ".ptl files are written without optimize_for_mobile",
                        "nothing to do unless you need optimized .ptl files; .pte uses "
                        "ExecuTorch's own XNNPACK"))
    checks.append(_check_lite_interpreter())
    return checks


def _tiny_model():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv1d(1, 4, 5), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, 2)).eval()


def _check_executorch_runtime() -> list[Check]:
    import torch

    from osdml.export.pte import quiet_torch_logs
    from osdml.fileio import silenced_stderr

    try:
        with quiet_torch_logs(), silenced_stderr():
            from executorch.runtime import Runtime

            registry = Runtime.get().backend_registry
            names = list(registry.registered_backend_names)
    except Exception as e:  # an ABI mismatch surfaces here as anything
        return [Check("executorch runtime", FAIL, f"cannot start: {type(e).__name__}: "
                      f"{str(e).splitlines()[0] if str(e) else ''}",
                      f"pip install --force-reinstall {PINS['executorch']} {PINS['torch']}")]
    checks = [Check("XNNPACK delegate", OK, "XnnpackBackend registered in the runtime")
              if "XnnpackBackend" in names and registry.is_available("XnnpackBackend") else
              Check("XNNPACK delegate", FAIL, f"XnnpackBackend not registered (found: "
                    f"{', '.join(names) or 'none'})", "use the executorch pip wheel, which "
                    "includes XNNPACK, or build with EXECUTORCH_BUILD_XNNPACK=ON")]
    try:  # the real thing, on a model of a few parameters: export, lower, load, run
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
            XnnpackPartitioner,
        )
        from executorch.exir import to_edge_transform_and_lower

        model = _tiny_model()
        x = torch.randn(1, 1, 32)
        with quiet_torch_logs(), silenced_stderr(), torch.no_grad():
            ep = torch.export.export(model, (x,))
            buffer = to_edge_transform_and_lower(
                ep, partitioner=[XnnpackPartitioner()]).to_executorch().buffer
            got = Runtime.get().load_program(buffer).load_method("forward").execute([x])[0]
            diff = float((got - model(x)).abs().max())
        checks.append(Check("executorch round trip", OK if diff < 1e-5 else FAIL,
                            f"export, XNNPACK lowering and run: max |diff| {diff:.1e}",
                            "" if diff < 1e-5 else "reinstall: pip install --force-reinstall "
                            f"{PINS['executorch']} {PINS['torch']}"))
    except Exception as e:
        checks.append(Check("executorch round trip", FAIL, f"{type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}",
                            f"pip install --force-reinstall {PINS['executorch']} "
                            f"{PINS['torch']}"))
    return checks


def _check_lite_interpreter() -> Check:
    import io
    import warnings

    import torch
    from torch.jit.mobile import _load_for_lite_interpreter

    try:
        model = _tiny_model()
        x = torch.randn(1, 1, 32)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Lite Interpreter is deprecated": we know
            buf = io.BytesIO(torch.jit.trace(model, x)._save_to_buffer_for_lite_interpreter())
            diff = float((_load_for_lite_interpreter(buf)(x) - model(x)).abs().max())
    except Exception as e:
        return Check("lite interpreter", FAIL, f"{type(e).__name__}: "
                     f"{str(e).splitlines()[0] if str(e) else ''}",
                     f"pip install --force-reinstall {PINS['torch']}")
    return Check("lite interpreter", OK if diff < 1e-5 else FAIL,
                 f"trace, save and run a .ptl: max |diff| {diff:.1e}")


def check_output(folder: Path) -> Check:
    """The output folder (or its nearest existing parent) takes a file; free space noted."""
    target = Path(folder)
    probe = target
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return Check("output folder", FAIL, f"{probe} is not a folder", "pass --out FOLDER")
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".osdml-doctor-"):
            pass
    except OSError as e:
        return Check("output folder", FAIL, f"{probe} is not writable ({e.strerror})",
                     f"choose another folder or fix its permissions (chmod u+w {probe})")
    free_gb = shutil.disk_usage(probe).free / 1e9
    where = str(target) + ("" if target.exists() else f" (will be created in {probe})")
    if free_gb < 1:
        return Check("output folder", WARN, f"{where}: writable, {free_gb:.2f} GB free",
                     "a training run with its parse cache needs about 1 GB")
    return Check("output folder", OK, f"{where}: writable, {free_gb:,.0f} GB free")


def run_checks(output: str | os.PathLike = "outputs") -> list[Check]:
    """Every check, in the order ``osdml doctor`` prints them."""
    return [*check_versions(), *check_runtime(), check_output(Path(output))]
