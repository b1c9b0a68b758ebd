"""Self-test bundles: an ExecuTorch program with real input windows and the outputs it must give.

``export_bpte`` wraps the lowered program in an ExecuTorch ``BundledProgram`` whose test cases
are K real windows and the logits the evaluated model (eager fp32) gives for them, with the
tolerance stored in the program (``bundle_atol``: 1e-4 for fp32; for int8 measured at
export). ``verify_bpte`` runs every case in the ExecuTorch runtime and compares, so a phone, a
CI job or ``osdml validate model.bpte`` can check a build without the original model.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from osdml.errors import InputError
from osdml.export.pte import program_buffer
from osdml.fileio import atomic_write, silenced_stderr
from osdml.spec import ModelSpec

FP32_ATOL = 1e-4


@dataclass
class BundleCheck:
    """Result of running a bundle's test cases: how many, how many failed, the first failure."""

    path: str
    cases: int
    failed: int
    rtol: float
    atol: float
    first_failure: str | None = None

    @property
    def passed(self) -> bool:
        return self.cases > 0 and self.failed == 0


def export_bpte(module, spec: ModelSpec, path: str | Path, windows: np.ndarray, *,
                backend: str = "xnnpack", exported=None, reference=None) -> dict:
    """Write a bundled program with `windows` (K, channels, samples) as test cases.

    Parameters
    ----------
    module : callable
        The model being lowered (eager, graph, or int8 graph).
    windows : np.ndarray of shape (K, channels, samples), float32
        Real windows (never random ones).
    reference : callable, optional
        The model whose outputs are expected (the evaluated fp32 model when `module` is its
        int8 version); default `module`. When it is not `module`, the tolerance is measured:
        twice the largest difference of the runtime's outputs from the reference (at least
        0.05), stored in the program as the constant method ``bundle_atol``; otherwise 1e-4.

    Returns
    -------
    dict
        ``size_bytes``, ``sha256``, ``cases``, ``atol``.

    Raises
    ------
    InputError
        If `windows` is empty.
    ExportError
        If exporting or lowering fails.
    """
    if windows is None or len(windows) == 0:
        raise InputError("a self-test bundle needs real windows: pass --calibration with OSDB "
                         "files")
    from executorch.devtools import BundledProgram
    from executorch.devtools.bundled_program.config import MethodTestCase, MethodTestSuite
    from executorch.devtools.bundled_program.serialize import (
        serialize_from_bundled_program_to_flatbuffer,
    )

    from osdml.export.pte import PteRunner

    inputs = [torch.from_numpy(windows[i:i + 1].copy()) for i in range(len(windows))]
    with torch.no_grad():
        expected = [(reference or module)(x).detach() for x in inputs]
    atol = FP32_ATOL
    if reference is not None and reference is not module:
        first, _ = program_buffer(module, spec, backend=backend, exported=exported)
        run = PteRunner(first, name=str(path))
        worst = max(float(np.abs(run(x.numpy()) - e.numpy()).max())
                    for x, e in zip(inputs, expected, strict=True))
        atol = max(0.05, float(np.ceil(2 * worst * 100) / 100))
    manager, _ = program_buffer(module, spec, backend=backend, exported=exported, program=True,
                                extra_constants={"bundle_atol": atol})
    cases = [MethodTestCase(inputs=[x], expected_outputs=[e])
             for x, e in zip(inputs, expected, strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bundled = BundledProgram(manager, [MethodTestSuite(method_name="forward",
                                                          test_cases=cases)])
        buffer = serialize_from_bundled_program_to_flatbuffer(bundled)
    with atomic_write(path, "wb") as f:
        f.write(buffer)
    return {"size_bytes": len(buffer), "sha256": hashlib.sha256(buffer).hexdigest(),
            "cases": len(cases), "atol": atol}


def verify_bpte(path: str | Path, *, atol: float | None = None,
                rtol: float = 0.0) -> BundleCheck:
    """Run every test case of a bundle in the ExecuTorch runtime against its expected outputs.

    Parameters
    ----------
    atol : float, optional
        Tolerance on each output; default the bundle's own ``bundle_atol`` (1e-4 when absent).

    Raises
    ------
    InputError
        If the file cannot be read as a bundled program. The file is parsed in Python first,
        so a damaged bundle is refused before the C++ loader sees it.
    """
    from executorch.devtools.bundled_program.serialize import (
        deserialize_from_flatbuffer_to_bundled_program,
    )
    from executorch.exir._serialize._program import deserialize_pte_binary
    from executorch.extension.pybindings.portable_lib import _load_bundled_program_from_buffer

    from osdml.export.pte import PteRunner

    path = Path(path)
    buffer = path.read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bundled = deserialize_from_flatbuffer_to_bundled_program(buffer)
            deserialize_pte_binary(bundled.program)
            n = len(bundled.method_test_suites[0].test_cases)
    except Exception as e:
        raise InputError(f"cannot load {path} as a bundled program: it does not parse "
                         f"({type(e).__name__}: {str(e).strip().splitlines()[0][:100]})") from None
    if atol is None:
        program = PteRunner(bundled.program, name=str(path))
        try:
            atol = float(program.constant("bundle_atol"))
        except Exception:  # bundles from elsewhere carry no tolerance
            atol = FP32_ATOL
    try:
        with silenced_stderr():
            bundle = _load_bundled_program_from_buffer(buffer)
    except Exception as e:
        raise InputError(f"cannot load {path} as a bundled program: "
                         f"{str(e).strip().splitlines()[0]}") from None
    failed, first = 0, None
    for i in range(n):
        try:
            with silenced_stderr():
                bundle.verify_result_with_bundled_expected_output("forward", i, rtol, atol)
        except RuntimeError as e:
            failed += 1
            first = first or f"case {i + 1} of {n}: {str(e).strip().splitlines()[0]}"
    return BundleCheck(str(path), n, failed, rtol, atol, first)
