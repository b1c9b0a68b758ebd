"""Parity of exported artefacts with the eager model, each run in its own runtime.

``.pt`` is rebuilt from its spec and run in eager torch, ``.ptl`` in the lite interpreter and
``.pte`` in the ExecuTorch runtime, one window at a time as the app runs them, on real windows.
Per artefact: the largest absolute and relative logit difference, the largest difference in
p(seizure), and the share of windows with the same decision at the threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

RUNTIMES = {"pt": "eager torch", "ptl": "lite interpreter", "pte": "ExecuTorch runtime"}


@dataclass
class FormatParity:
    """One artefact against the eager reference."""

    format: str
    path: str
    runtime: str
    windows: int
    max_abs_logit_diff: float | None
    max_rel_logit_diff: float | None
    max_prob_diff: float | None
    decision_agreement: float | None
    atol: float
    passed: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def eager_logits(model: torch.nn.Module, windows: np.ndarray, batch: int = 256) -> np.ndarray:
    """Logits (n, classes) of `model` in eval mode for windows (n, 1, L) float32."""
    model = model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            out.append(model(torch.from_numpy(np.ascontiguousarray(windows[i:i + batch]))).numpy())
    return np.concatenate(out) if out else np.empty((0, 2), np.float32)


def artefact_logits(fmt: str, path: str | Path, windows: np.ndarray) -> np.ndarray:
    """Run each window (1, 1, L) through the artefact in its own runtime; logits (n, classes).

    Raises
    ------
    InputError
        If the artefact cannot be loaded, or a window does not fit its input.
    """
    if fmt == "pt":  # any checkpoint or TorchScript file, loaded as the converter loads it
        from osdml.export.source import load_source

        model = load_source(path).module()
        with torch.no_grad():
            return np.concatenate([model(torch.from_numpy(windows[i:i + 1].copy())).numpy()
                                   for i in range(len(windows))])
    if fmt == "ptl":
        from osdml.export.ptl import load_ptl

        module, _ = load_ptl(path)
        with torch.no_grad():
            return np.concatenate([module(torch.from_numpy(windows[i:i + 1].copy())).numpy()
                                   for i in range(len(windows))])
    if fmt == "pte":
        from osdml.export.pte import PteRunner

        run = PteRunner(path)
        return np.concatenate([run(windows[i:i + 1].copy()) for i in range(len(windows))])
    raise ValueError(f"unknown format {fmt!r}")


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def compare(reference: np.ndarray, logits: np.ndarray, *, threshold: float = 0.5,
            positive_class: int = 1) -> dict[str, float]:
    """Differences between two logit arrays (n, classes) and their decision agreement."""
    diff = np.abs(reference.astype(np.float64) - logits.astype(np.float64))
    rel = diff / np.maximum(np.abs(reference.astype(np.float64)), 1e-6)
    p_ref = _softmax(reference.astype(np.float64))[:, positive_class]
    p = _softmax(logits.astype(np.float64))[:, positive_class]
    return {"max_abs_logit_diff": float(diff.max()), "max_rel_logit_diff": float(rel.max()),
            "max_prob_diff": float(np.abs(p_ref - p).max()),
            "decision_agreement": float(np.mean((p_ref >= threshold) == (p >= threshold)))}


def validate_artefacts(model: torch.nn.Module, artefacts: dict[str, Path], windows: np.ndarray, *,
                       threshold: float = 0.5, atol: float = 1e-4, positive_class: int = 1,
                       logits_out: dict[str, np.ndarray] | None = None) -> list[FormatParity]:
    """Check every artefact against the eager `model` on `windows` (n, 1, L) float32.

    An artefact passes when its largest absolute logit difference is within `atol` and every
    decision agrees. A runtime failure is recorded as a failed check with its error, never
    raised, so one broken artefact does not hide the others' results. When `logits_out` is
    given, each artefact's logits (n, classes) are stored in it under its format, and the
    eager model's under ``"eager"``.
    """
    reference = eager_logits(model, windows)
    if logits_out is not None:
        logits_out["eager"] = reference
    results = []
    for fmt, path in artefacts.items():
        try:
            got = artefact_logits(fmt, path, windows)
            if logits_out is not None:
                logits_out[fmt] = got
            c = compare(reference, got, threshold=threshold, positive_class=positive_class)
            passed = c["max_abs_logit_diff"] <= atol and c["decision_agreement"] == 1.0
            results.append(FormatParity(fmt, str(path), RUNTIMES[fmt], len(windows), **c,
                                        atol=atol, passed=passed))
        except Exception as e:  # reported per artefact
            results.append(FormatParity(fmt, str(path), RUNTIMES[fmt], len(windows), None, None,
                                        None, None, atol, False,
                                        f"{type(e).__name__}: {str(e).splitlines()[0]}"))
    return results
