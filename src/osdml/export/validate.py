"""Parity of exported artefacts with the eager model, each run in its own runtime.

``.pt`` is rebuilt from its spec and run in eager torch, ``.ptl`` in the lite interpreter and
``.pte`` in the ExecuTorch runtime, one window at a time as the app runs them, on real windows.
Per artefact: the largest absolute and relative logit difference, the largest difference in
p(seizure), and the share of windows with the same decision at the threshold.

A Harrell-Davis ensemble (``hd_ensemble``, ``osdml.models.ensemble``) is judged on p, not on its
logits: the reference is each member's eager p combined by
``scipy.stats.mstats.hdquantiles`` (computed apart from the graph under test), and the file
passes when every p is within ``ENSEMBLE_P_ATOL`` and every decision (p > threshold) is the
same. Its logits are ``[log(1 - p), log(p)]``: near p = 1, ``1 - p`` keeps few float32 digits,
so a logit tolerance would fail on rounding alone.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

RUNTIMES = {"pt": "eager torch", "ptl": "lite interpreter", "pte": "ExecuTorch runtime",
            "bpte": "ExecuTorch runtime"}
# An ensemble's p against the scipy reference: the single-model fp32 rule carried to p. Order
# statistics and the Harrell-Davis mean (weights >= 0, summing to 1) are 1-Lipschitz in the
# max norm, so p moves at most as much as the members' p do, and a member's p =
# sigmoid(l1 - l0) moves by at most a quarter of the change in l1 - l0, which logits within
# 1e-4 bound by 2e-4: an ensemble of members that each pass the fp32 rule is within 5e-5.
# Measured: fp32 runtimes differ by about 1e-6 in the demo model's logits (p: 2.5e-7); the
# sharpened random members of the tests (logits up to +-12) differ by 5e-5 in the logits and
# 2e-5 in p on generated OSDB windows, the 3-member ensemble's p by 9e-6. A changed quantile
# or member weight moves p by 1e-3 and more.
ENSEMBLE_P_ATOL = 5e-5


@dataclass
class Tolerance:
    """What an artefact must meet against the eager reference.

    fp32: every logit within ``fp32_atol`` and every decision the same. int8: decisions agree
    on at least ``int8_min_agreement`` of the windows, at least ``int8_min_positive_kept`` of
    the windows the reference calls positive stay positive, and the signal-to-quantization-
    noise ratio of the logits is at least ``int8_min_sqnr_db``. ``hold_to`` picks the kind:
    ``"auto"`` (each file's own, from its spec), or ``"fp32"`` / ``"int8"`` for every file.
    """

    fp32_atol: float = 1e-4
    # measured in the ExecuTorch runtime on the demo model's held-out windows
    # (benchmarks/int8.py, docs/export.md): minmax-calibrated int8 agrees on 99.7 % and
    # keeps 96.7 % of positives; the goal of 98 % is not met yet
    int8_min_agreement: float = 0.99
    int8_min_positive_kept: float = 0.95
    int8_min_sqnr_db: float = 15.0
    hold_to: str = "auto"
    ensemble_p_atol: float = ENSEMBLE_P_ATOL  # hd_ensemble files: largest p difference

    def kind(self, quantization: str | None) -> str | None:
        """The tolerance kind a file of this `quantization` is judged by (None = fp32)."""
        return {"auto": quantization, "fp32": None}.get(self.hold_to, self.hold_to)


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
    quantization: str | None = None
    sqnr_db: float | None = None
    positive_agreement: float | None = None
    failure: str | None = None  # what exceeded the tolerance, and by how much
    # what the file was compared with when not the eager model's logits (ensembles: the scipy
    # Harrell-Davis estimate; then `atol` is the p tolerance and the logit differences are
    # reported, not judged)
    reference: str | None = None

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


@contextlib.contextmanager
def one_thread():
    """Run torch on one intra-op thread inside the block (restored after).

    One (1, 1, 750) window at a time is as fast on one thread as on several, and on a busy
    machine torch's spinning worker threads made each window 50-100x slower (measured: 55 ms
    instead of 1 ms per window with two other processes on 2 cores).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def artefact_runner(fmt: str, path: str | Path):
    """Load an artefact once in its own runtime; return ``run(window) -> logits``.

    ``run`` takes one window of shape (1, 1, L), float32, and returns logits (1, classes):
    eager torch for ``pt`` (any checkpoint or TorchScript file, loaded as the converter loads
    it), the lite interpreter for ``ptl``, ExecuTorch for ``pte`` and ``bpte`` (the program
    inside the bundle).

    Raises
    ------
    InputError
        If the artefact cannot be loaded; ``run`` raises it if a window does not fit the
        program's input.
    """
    if fmt == "pt":
        from osdml.export.source import load_source

        model = load_source(path).module()

        def run(x):
            with torch.no_grad():
                return model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        return run
    if fmt == "ptl":
        from osdml.export.ptl import load_ptl

        module, _ = load_ptl(path)

        def run(x):
            with torch.no_grad():
                return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        return run
    if fmt in ("pte", "bpte"):
        from osdml.export.pte import PteRunner

        if fmt == "bpte":
            from executorch.devtools.bundled_program.serialize import (
                deserialize_from_flatbuffer_to_bundled_program,
            )

            program = deserialize_from_flatbuffer_to_bundled_program(Path(path).read_bytes())
            runner = PteRunner(program.program, name=str(path))
        else:
            runner = PteRunner(path)
        return lambda x: runner(np.ascontiguousarray(x))
    raise ValueError(f"unknown format {fmt!r}")


def artefact_logits(fmt: str, path: str | Path, windows: np.ndarray) -> np.ndarray:
    """Run each window (1, 1, L) through the artefact in its own runtime; logits (n, classes).

    Raises
    ------
    InputError
        If the artefact cannot be loaded, or a window does not fit its input.
    """
    run = artefact_runner(fmt, path)
    if not len(windows):
        return np.empty((0, 2), np.float32)
    with one_thread():
        return np.concatenate([run(windows[i:i + 1].copy()) for i in range(len(windows))])


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def compare(reference: np.ndarray, logits: np.ndarray, *, threshold: float = 0.5,
            positive_class: int = 1) -> dict[str, float]:
    """Differences between two logit arrays (n, classes): largest absolute and relative logit
    difference, largest p(positive) difference, decision agreement, the share of the
    reference's positive windows kept positive (None without positives), and the
    signal-to-quantization-noise ratio of the logits in dB (``10 log10(sum ref^2 / sum
    (ref - logits)^2)``; None when identical)."""
    ref, got = reference.astype(np.float64), logits.astype(np.float64)
    diff = np.abs(ref - got)
    rel = diff / np.maximum(np.abs(ref), 1e-6)
    p_ref = _softmax(ref)[:, positive_class]
    p = _softmax(got)[:, positive_class]
    positives = p_ref >= threshold
    noise = float((diff ** 2).sum())
    return {"max_abs_logit_diff": float(diff.max()), "max_rel_logit_diff": float(rel.max()),
            "max_prob_diff": float(np.abs(p_ref - p).max()),
            "decision_agreement": float(np.mean(positives == (p >= threshold))),
            "positive_agreement": (float(np.mean(p[positives] >= threshold))
                                   if positives.any() else None),
            "sqnr_db": (float(10 * np.log10(float((ref ** 2).sum()) / noise)) if noise > 0
                        else None)}


def judge(c: dict[str, Any], quantization: str | None, tol: Tolerance) -> str | None:
    """None when the comparison `c` meets the tolerance for its kind, else what failed."""
    if quantization == "int8":
        if c["decision_agreement"] < tol.int8_min_agreement:
            return (f"decisions agree on {c['decision_agreement']:.1%} of windows (int8 needs "
                    f"{tol.int8_min_agreement:.0%})")
        kept = c.get("positive_agreement")
        if kept is not None and kept < tol.int8_min_positive_kept:
            return (f"keeps {kept:.1%} of the reference's positive windows (int8 needs "
                    f"{tol.int8_min_positive_kept:.0%})")
        sqnr = c.get("sqnr_db")
        if sqnr is not None and sqnr < tol.int8_min_sqnr_db:
            return f"SQNR {sqnr:.1f} dB (int8 needs {tol.int8_min_sqnr_db:g} dB)"
        return None
    if c["max_abs_logit_diff"] > tol.fp32_atol:
        return (f"max logit difference {c['max_abs_logit_diff']:.3g} (fp32 tolerance "
                f"{tol.fp32_atol:g})")
    if c["decision_agreement"] < 1.0:
        return f"decisions agree on {c['decision_agreement']:.1%} of windows (fp32 needs 100%)"
    return None


def artefact_quantization(fmt: str, path: str | Path) -> str | None:
    """``"int8"`` for quantized programs (their spec says so), else None."""
    if fmt not in ("pte", "bpte"):
        return None
    import json

    sidecar = Path(str(path) + ".json")
    try:
        return json.loads(sidecar.read_text()).get("quantization")
    except (OSError, ValueError, AttributeError):
        pass
    from osdml.export.pte import PteRunner

    try:
        return json.loads(PteRunner(path).constant("spec_json")).get("quantization")
    except Exception:  # no spec inside: treat as fp32 (the stricter tolerance)
        return None


def validate_artefacts(model: torch.nn.Module, artefacts: dict[str, Path], windows: np.ndarray, *,
                       threshold: float = 0.5, atol: float = 1e-4, positive_class: int = 1,
                       logits_out: dict[str, np.ndarray] | None = None,
                       tolerance: Tolerance | None = None,
                       raise_input_errors: bool = False) -> list[FormatParity]:
    """Check every artefact against the eager `model` on `windows` (n, 1, L) float32.

    Each artefact is judged by the tolerance of its kind (``Tolerance``; `atol` sets the fp32
    one): fp32 within `atol` on every logit with every decision the same; int8 (its spec says
    so) by decision agreement, kept positives and SQNR. A runtime failure is recorded as a
    failed check with its error, so one broken artefact does not hide the others' results,
    unless `raise_input_errors` (then an ``InputError``, such as a window shape the program
    does not take, is raised). When `logits_out` is given, each artefact's logits are stored
    in it under its format, and the eager model's under ``"eager"``.
    """
    from osdml.errors import InputError

    tol = tolerance or Tolerance(fp32_atol=atol)
    if is_hd_ensemble(model):
        return validate_ensemble(model, artefacts, windows, threshold=threshold,
                                 p_atol=tol.ensemble_p_atol, logits_out=logits_out,
                                 raise_input_errors=raise_input_errors)
    reference = eager_logits(model, windows)
    if logits_out is not None:
        logits_out["eager"] = reference
    results = []
    for fmt, path in artefacts.items():
        runtime = RUNTIMES.get(fmt, fmt)
        try:
            quant = artefact_quantization(fmt, path)
            got = artefact_logits(fmt, path, windows)
            if logits_out is not None:
                logits_out[fmt] = got
            c = compare(reference, got, threshold=threshold, positive_class=positive_class)
            failure = judge(c, tol.kind(quant), tol)
            results.append(FormatParity(fmt, str(path), runtime, len(windows), **c,
                                        atol=tol.fp32_atol, passed=failure is None,
                                        quantization=quant, failure=failure))
        except InputError:
            if raise_input_errors:
                raise
            results.append(_broken(fmt, path, runtime, windows, tol))
        except Exception:  # reported per artefact
            results.append(_broken(fmt, path, runtime, windows, tol))
    return results


def _broken(fmt, path, runtime, windows, tol) -> FormatParity:
    import sys

    e = sys.exc_info()[1]
    return FormatParity(fmt, str(path), runtime, len(windows), None, None, None, None,
                        tol.fp32_atol, False, f"{type(e).__name__}: {str(e).splitlines()[0]}")


# --------------------------------------------------------------------------- ensembles

def is_hd_ensemble(model: Any) -> bool:
    """Whether `model` is a Harrell-Davis ensemble (``osdml.models.ensemble``)."""
    from osdml.models.ensemble import HarrellDavisEnsemble

    return isinstance(model, HarrellDavisEnsemble)


def hd_reference(model, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ensemble's p computed apart from its graph: each member's eager logits ->
    softmax[1] (float64) -> ``scipy.stats.mstats.hdquantiles`` over the members at the
    ensemble's quantile -> clamped to [eps, 1 - eps] as the graph clamps it.

    Parameters
    ----------
    model : HarrellDavisEnsemble
    windows : ndarray of shape (n, 1, L), float32

    Returns
    -------
    (p_ref, member_p)
        ``p_ref`` of shape (n,), float64; ``member_p`` of shape (n_members, n), float64.
        With one member (scipy gives no value for fewer than 2) p_ref is its p.

    Notes
    -----
    Harrell-Davis quantile ensemble: Spahr et al., Epilepsia 2025, doi:10.1111/epi.18406.
    """
    from scipy.stats.mstats import hdquantiles

    member_p = np.stack([_softmax(eager_logits(m, windows).astype(np.float64))[:, 1]
                         for m in model.members]) if len(windows) else \
        np.empty((len(model.members), 0))
    if len(model.members) == 1 or not len(windows):
        hd = member_p[0].copy()
    else:
        hd = np.ma.filled(hdquantiles(member_p, prob=[model.quantile], axis=0), np.nan)
        hd = np.asarray(hd, dtype=np.float64).reshape(-1)
    return np.clip(hd, model.eps, 1.0 - model.eps), member_p


def validate_ensemble(model, artefacts: dict[str, Path], windows: np.ndarray, *,
                      threshold: float = 0.5, p_atol: float = ENSEMBLE_P_ATOL,
                      logits_out: dict[str, np.ndarray] | None = None,
                      raise_input_errors: bool = False) -> list[FormatParity]:
    """Check each artefact of a Harrell-Davis ensemble, in its own runtime, on p.

    The reference is ``hd_reference``: the members' eager p combined by scipy, not the
    ensemble's own graph. Each artefact runs one window at a time; its p = softmax(logits)[1]
    (float64) passes when ``max |p - p_ref| <= p_atol`` and every decision ``p > threshold``
    (strictly, as the app decides) equals the reference's.

    Parameters
    ----------
    model : HarrellDavisEnsemble
        Eager, with the members the artefacts were made from.
    artefacts : dict of format -> path
        ``"pt"``, ``"ptl"``, ``"pte"`` or ``"bpte"``.
    windows : ndarray of shape (n, 1, L), float32
    threshold : float, default=0.5
    p_atol : float, default=ENSEMBLE_P_ATOL (5e-5)
    logits_out : dict, optional
        Filled with each artefact's logits under its format, and the eager ensemble's (its
        own graph in torch) under ``"eager"``.
    raise_input_errors : bool, default=False
        Raise an ``InputError`` (a window the program does not take) instead of recording it.

    Returns
    -------
    list of FormatParity
        ``max_prob_diff`` and ``decision_agreement`` are judged, ``atol`` is `p_atol`,
        ``reference`` names the scipy reference; the logit differences (against
        ``[log(1 - p_ref), log(p_ref)]``) are reported only.
    """
    from osdml.errors import InputError

    p_ref, _ = hd_reference(model, windows)
    ref_logits = np.stack([np.log1p(-p_ref), np.log(p_ref)], axis=1)
    if logits_out is not None:
        logits_out["eager"] = eager_logits(model, windows)
    what = (f"scipy hdquantiles (q={model.quantile:g}) of {len(model.members)} member(s)' "
            "eager p")
    tol = Tolerance(fp32_atol=p_atol)
    results = []
    for fmt, path in artefacts.items():
        runtime = RUNTIMES.get(fmt, fmt)
        try:
            quant = artefact_quantization(fmt, path)
            got = artefact_logits(fmt, path, windows)
            if logits_out is not None:
                logits_out[fmt] = got
            p = _softmax(got.astype(np.float64))[:, 1]
            diff = np.abs(ref_logits - got.astype(np.float64))
            positives = p_ref > threshold
            c = {"max_abs_logit_diff": float(diff.max()) if len(p) else 0.0,
                 "max_rel_logit_diff": float((diff / np.maximum(np.abs(ref_logits), 1e-6)).max())
                 if len(p) else 0.0,
                 "max_prob_diff": float(np.abs(p - p_ref).max()) if len(p) else 0.0,
                 "decision_agreement": float(np.mean(positives == (p > threshold)))
                 if len(p) else 1.0,
                 "positive_agreement": (float(np.mean(p[positives] > threshold))
                                        if positives.any() else None)}
            failure = None
            if c["max_prob_diff"] > p_atol:
                failure = (f"max p difference {c['max_prob_diff']:.3g} against {what} "
                           f"(ensemble p tolerance {p_atol:g})")
            elif c["decision_agreement"] < 1.0:
                failure = (f"decisions (p > {threshold:g}) agree on "
                           f"{c['decision_agreement']:.1%} of windows (needs 100%)")
            results.append(FormatParity(fmt, str(path), runtime, len(windows), **c,
                                        atol=p_atol, passed=failure is None,
                                        quantization=quant, failure=failure, reference=what))
        except InputError:
            if raise_input_errors:
                raise
            results.append(_broken(fmt, path, runtime, windows, tol))
            results[-1].reference = what
        except Exception:  # reported per artefact
            results.append(_broken(fmt, path, runtime, windows, tol))
            results[-1].reference = what
    return results


def run_folder_windows(run_dir: Path, window_samples: int, hop_samples: int,
                       n: int) -> tuple[np.ndarray, str] | None:
    """Up to `n` windows of the test part recorded in an osdml run folder (``config.toml``
    names the data files, ``split.json`` the test events), or None when `run_dir` is not a run
    folder. For an ensemble folder (``members/<name>/`` run folders beside ``ensemble.pt``),
    the windows of the first member that has them.

    Raises
    ------
    InputError
        If the run folder's data files cannot be read any more, or its test events are gone.
    """
    from osdml.config import load_config
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events
    from osdml.data.split import read_manifest
    from osdml.data.windows import make_windows
    from osdml.errors import InputError

    if not ((run_dir / "config.toml").is_file() and (run_dir / "split.json").is_file()):
        # an ensemble folder (osdml.export.ensemble): its members are run folders
        for member in sorted(p for p in (run_dir / "members").glob("*") if p.is_dir()):
            found = run_folder_windows(member, window_samples, hop_samples, n)
            if found is not None:
                return found[0], f"{found[1]}, a member of the ensemble in {run_dir}"
        return None
    cfg = load_config(run_dir / "config.toml")
    if not cfg.data.files:
        return None
    streams = load_streams(cfg.data.files, cfg.data.reader)
    (split, *_) = read_manifest(run_dir / "split.json", streams)
    inp = cfg.data.windows.input
    selection = select_events(streams, cfg.data.selection, need_3d=inp == "xyz")
    try:
        labels = selection.labels_for(split.test)
    except KeyError:
        raise InputError(f"{run_dir}: the test events of split.json are no longer selected by "
                         "its config.toml") from None
    w = make_windows(streams, split.test, labels, window_samples, hop_samples, inp)
    if not len(w):
        return None
    take = np.unique(np.linspace(0, len(w) - 1, min(n, len(w))).round().astype(int))
    return w.batch(take), (f"{len(take)} held-out test windows of the run in {run_dir} "
                           f"({len(split.test)} events)")
