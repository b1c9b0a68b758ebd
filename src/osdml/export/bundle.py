"""Self-test bundles: an ExecuTorch program with real input windows and the outputs it must give.

``export_bpte`` wraps the lowered program in an ExecuTorch ``BundledProgram`` whose test cases
are K real windows and the logits the Python model (the very model that was lowered: fp32 eager
or int8 graph) gives for them. ``verify_bpte`` runs every case in the ExecuTorch runtime and
compares, so a phone, a CI job or ``osdml validate model.bpte`` can check a build without the
original model.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from osdml.errors import InputError
from osdml.export.pte import _quiet_stderr, program_buffer
from osdml.fileio import atomic_write
from osdml.spec import ModelSpec


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
                backend: str = "xnnpack", exported=None) -> dict:
    """Write a bundled program with `windows` (K, channels, samples) as test cases.

    Parameters
    ----------
    module : callable
        The model being lowered (eager or quantized graph); its outputs are the expected ones.
    windows : np.ndarray of shape (K, channels, samples), float32
        Real windows (never random ones).

    Returns
    -------
    dict
        ``size_bytes``, ``sha256``, ``cases``.

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

    manager, _ = program_buffer(module, spec, backend=backend, exported=exported, program=True)
    cases = []
    with torch.no_grad():
        for i in range(len(windows)):
            x = torch.from_numpy(windows[i:i + 1].copy())  # (1, C, L), plain strides
            cases.append(MethodTestCase(inputs=[x], expected_outputs=[module(x).detach()]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bundled = BundledProgram(manager, [MethodTestSuite(method_name="forward",
                                                          test_cases=cases)])
        buffer = serialize_from_bundled_program_to_flatbuffer(bundled)
    with atomic_write(path, "wb") as f:
        f.write(buffer)
    return {"size_bytes": len(buffer), "sha256": hashlib.sha256(buffer).hexdigest(),
            "cases": len(cases)}


def verify_bpte(path: str | Path, *, rtol: float = 1e-4, atol: float = 1e-4) -> BundleCheck:
    """Run every test case of a bundle in the ExecuTorch runtime against its expected outputs.

    Raises
    ------
    InputError
        If the file cannot be loaded as a bundled program.
    """
    from executorch.devtools.bundled_program.serialize import (
        deserialize_from_flatbuffer_to_bundled_program,
    )
    from executorch.extension.pybindings.portable_lib import _load_bundled_program_from_buffer

    path = Path(path)
    buffer = path.read_bytes()
    try:
        with _quiet_stderr():
            bundle = _load_bundled_program_from_buffer(buffer)
        n = len(deserialize_from_flatbuffer_to_bundled_program(buffer)
                .method_test_suites[0].test_cases)
    except Exception as e:
        raise InputError(f"cannot load {path} as a bundled program: "
                         f"{str(e).strip().splitlines()[0]}") from None
    failed, first = 0, None
    for i in range(n):
        try:
            with _quiet_stderr():
                bundle.verify_result_with_bundled_expected_output("forward", i, rtol, atol)
        except RuntimeError as e:
            failed += 1
            first = first or f"case {i + 1} of {n}: {str(e).strip().splitlines()[0]}"
    return BundleCheck(str(path), n, failed, rtol, atol, first)
