"""Write a Harrell-Davis ensemble of trained members as one model file the app runs unchanged.

``write_ensemble`` loads each member's checkpoint, builds ``HarrellDavisEnsemble``
(``osdml.models.ensemble``: the members' p(seizure) combined by their Harrell-Davis quantile,
Spahr et al., Epilepsia 2025, doi:10.1111/epi.18406) and writes, into one folder:

- ``ensemble.pt``: the checkpoint (``osdml.export.checkpoint``), spec arch ``hd_ensemble`` with
  the members' architectures in ``arch_kwargs`` and the members' weights in the state dict
  (``members.0.*``, ``members.1.*``, ...); ``training`` names the members, the quantile and
  the weights;
- ``ensemble.pte`` and ``ensemble.pte.json``: the ExecuTorch program with the spec as constant
  methods, exactly as for one model (``osdml.export.pte``), loaded and run once after writing;
- ``ensemble.ptl`` (legacy lite interpreter), when tracing works; otherwise the reason is
  recorded.

Given real windows, every file is checked in its own runtime against the ensemble computed
apart from its graph (``osdml.export.validate.validate_ensemble``: the members' eager p and
``scipy.stats.mstats.hdquantiles``) and the ``.pte`` result is recorded in its sidecar under
``validation``, which ``osdml publish`` reads. Each file is written atomically; a format not
written this time leaves no older file of that name behind.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osdml.errors import ExportError, InputError
from osdml.spec import ModelSpec

ARCH = "hd_ensemble"


@dataclass
class EnsembleExport:
    """What ``write_ensemble`` wrote and found.

    Attributes
    ----------
    out_dir : Path
    spec : ModelSpec
        The ensemble's spec (arch ``hd_ensemble``), as stored in every file.
    artefacts : dict of str -> Path
        Format (``"pt"``, ``"pte"``, ``"ptl"``) -> file written.
    missing : dict of str -> str
        Format -> why it was not written.
    parity : list of FormatParity
        One per artefact when windows were given (``osdml.export.validate``), else empty.
    members : list of dict
        Per member: ``name``, ``file``, ``sha256``, ``origin``.
    weights : list of float
        The Harrell-Davis weights over the sorted members' p.
    """

    out_dir: Path
    spec: ModelSpec
    artefacts: dict[str, Path]
    missing: dict[str, str]
    parity: list[Any] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    @property
    def paths(self) -> dict[str, Path]:
        """Alias of ``artefacts``."""
        return self.artefacts

    @property
    def checks(self) -> list[Any]:
        """Alias of ``parity``."""
        return self.parity

    @property
    def checked(self) -> bool:
        """Whether parity was checked (windows were given)."""
        return bool(self.parity)

    @property
    def passed(self) -> bool:
        """Every checked artefact within tolerance (True when nothing was checked)."""
        return all(c.passed for c in self.parity)

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "artefacts": {k: str(v) for k, v in
                                                            self.artefacts.items()},
                "missing": dict(self.missing), "members": self.members,
                "quantile": self.spec.arch_kwargs.get("quantile"), "weights": self.weights,
                "checked": self.checked, "passed": self.passed,
                "parity": [c.to_dict() for c in self.parity]}


def write_ensemble(member_checkpoints: Sequence[str | Path], quantile: float,
                   out_dir: str | Path, *, stem: str = "ensemble", threshold: float = 0.5,
                   app_settings: dict[str, Any] | None = None,
                   training: dict[str, Any] | None = None,
                   metrics: dict[str, Any] | None = None,
                   windows: np.ndarray | None = None, windows_source: str | None = None,
                   backend: str = "xnnpack", ptl: bool = True) -> EnsembleExport:
    """Combine trained members into one Harrell-Davis ensemble and write it as .pt, .pte
    (+ sidecar) and .ptl.

    Parameters
    ----------
    member_checkpoints : sequence of path-like
        The members' model files (osdml ``model.pt``, or anything ``load_source`` reads with
        an eager model: nnTraining2 checkpoints, state dicts). All must take the same input
        (shape, sample rate, window and hop) and output two logits. The member's name is its
        folder's name for ``.../<name>/model.pt``, else the file's stem.
    quantile : float
        q in [0, 1] of the Harrell-Davis estimate over the members' p.
    out_dir : path-like
        Created if missing; ``<stem>.pt``, ``<stem>.pte``, ``<stem>.pte.json``,
        ``<stem>.ptl`` are written (replaced) there.
    stem : str, default="ensemble"
    threshold : float, default=0.5
        Decision threshold on p (the spec's ``threshold``).
    app_settings : dict, optional
        The app's settings tuned for the ensemble (``threshold_pct``, ``gate_pct``, ...), as
        ``osdml.app.tune`` records them; ``osdml publish`` reads them.
    training : dict, optional
        Added to the spec's ``training``; its ``method``, ``source``, ``quantile``,
        ``weights`` and ``members`` are always the ensemble's own.
    metrics : dict, optional
        The spec's ``metrics`` and the checkpoint's.
    windows : ndarray of shape (k, 1, L), optional
        Real windows (g, float32) to check every artefact on in its own runtime against the
        scipy reference; the .pte's result goes into its sidecar as ``validation``.
    windows_source : str, optional
        What the windows are, for the record (default: "k windows given to write_ensemble").
    backend : {"xnnpack", "portable"}, default="xnnpack"
    ptl : bool, default=True
        Also write the legacy ``.ptl``.

    Returns
    -------
    EnsembleExport

    Raises
    ------
    InputError
        If there are no members, a member file cannot be loaded or has no eager model, the
        members disagree on their input or classes, a member is itself an ensemble,
        `quantile` or `threshold` is out of [0, 1], `out_dir` is a file, or `windows` do not
        have the members' input shape.

    Notes
    -----
    Like ``osdml train``, an export that fails is reported, not raised: the .pte is missing
    (with the reason, and a warning) when ExecuTorch is unusable here, when export or lowering
    fails, or when the written program does not load and run in the ExecuTorch runtime (such
    a file is removed); the .ptl when tracing fails.
    """
    from osdml.export.checkpoint import save_pt
    from osdml.export.source import load_source
    from osdml.models.ensemble import SOURCE, harrell_davis_weights

    out = Path(out_dir)
    paths = [Path(p) for p in member_checkpoints]
    if not paths:
        raise InputError("cannot write an ensemble: no member checkpoints given")
    try:
        weights = harrell_davis_weights(len(paths), quantile)
    except ValueError as e:
        raise InputError(f"cannot write an ensemble: {e}") from None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
            or not 0 <= threshold <= 1:
        raise InputError(f"cannot write an ensemble: threshold {threshold!r} is not in [0, 1]")
    if out.exists() and not out.is_dir():
        raise InputError(f"cannot write the ensemble to {out}: it is a file, not a folder")
    if not stem or "/" in stem or stem.startswith("."):
        raise InputError(f"cannot write an ensemble: stem {stem!r} must be a plain file name")
    sources = [load_source(p) for p in paths]
    first = _check_members(sources)
    members = [_member_record(p, s, out) for p, s in zip(paths, sources, strict=True)]
    spec = ModelSpec(
        arch=ARCH,
        arch_kwargs={"members": [{"arch": s.spec.arch, "arch_kwargs": dict(s.spec.arch_kwargs)}
                                 for s in sources],
                     "quantile": float(quantile), "input_length": first.window_samples,
                     "num_classes": 2, "eps": 1e-6},
        input_shape=first.input_shape, input=first.input, input_layout=first.input_layout,
        input_units=first.input_units, sample_rate_hz=first.sample_rate_hz,
        window_samples=first.window_samples, hop_samples=first.hop_samples,
        class_names=list(first.class_names), positive_class=first.positive_class,
        output="logits [log(1 - p), log(p)] of the members' Harrell-Davis quantile p: "
               "softmax them; p[positive_class] is p(seizure)",
        threshold=float(threshold), app_settings=dict(app_settings or {}),
        training={**(training or {}), "method": "Harrell-Davis quantile of the members' "
                  "p(seizure)", "source": SOURCE, "quantile": float(quantile),
                  "weights": [float(w) for w in weights], "members": members},
        metrics=dict(metrics or {}),
    ).stamped()
    model = spec.build().eval()  # the registry's path: what loading ensemble.pt rebuilds
    for i, src in enumerate(sources):
        model.members[i].load_state_dict(src.model.state_dict(), strict=True)
    x = None if windows is None else _check_windows(windows, spec)

    out.mkdir(parents=True, exist_ok=True)
    artefacts: dict[str, Path] = {"pt": save_pt(out / f"{stem}.pt", model, spec,
                                                metrics=metrics,
                                                config={"ensemble": {"members": members,
                                                                     "quantile": float(quantile)}})}
    missing: dict[str, str] = {}
    try:
        artefacts["pte"] = _write_pte(model, spec, out / f"{stem}.pte", backend)
    except ExportError as e:
        missing["pte"] = str(e)
        for stale in (out / f"{stem}.pte", out / f"{stem}.pte.json"):
            stale.unlink(missing_ok=True)
    if ptl:
        from osdml.export.ptl import export_ptl

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # no XNNPACK in the CPU wheel
                artefacts["ptl"] = export_ptl(model, spec, out / f"{stem}.ptl")
        except ExportError as e:
            missing["ptl"] = str(e)
    else:
        missing["ptl"] = "not asked for (ptl=False)"
    if "ptl" in missing:  # an older file of that name must not pass for this ensemble's
        (out / f"{stem}.ptl").unlink(missing_ok=True)
    for fmt, why in missing.items():
        if fmt != "ptl" or ptl:
            warnings.warn(f"{stem}.{fmt} not written: {why}", stacklevel=2)
    parity = []
    if x is not None:
        from osdml.export.pte import update_pte_manifest
        from osdml.export.validate import validate_ensemble

        source = windows_source or f"{len(x)} windows given to write_ensemble"
        parity = validate_ensemble(model, artefacts, x, threshold=spec.threshold)
        check = next((c for c in parity if c.format == "pte"), None)
        if check is not None:  # publish reads the parity result beside the file
            update_pte_manifest(artefacts["pte"], validation={
                "passed": check.passed, "against": check.reference, "windows": check.windows,
                "source": source, "max_prob_diff": check.max_prob_diff, "p_atol": check.atol,
                "max_abs_logit_diff": check.max_abs_logit_diff,
                "decision_agreement": check.decision_agreement,
                "failure": check.failure or check.error})
    return EnsembleExport(out, spec, artefacts, missing, parity, members,
                          [float(w) for w in weights])


def _check_members(sources) -> ModelSpec:
    """The first member's spec, once every member fits it.

    Raises
    ------
    InputError
        Naming the member that differs and how.
    """
    first = sources[0].spec
    for src in sources:
        spec, name = src.spec, src.path
        if src.model is None:
            raise InputError(f"cannot use {name} as an ensemble member: it is {src.origin}, a "
                             "graph without an eager model to rebuild from a spec")
        if spec.arch == ARCH:
            raise InputError(f"cannot use {name} as an ensemble member: it is itself an "
                             "ensemble; give its members instead")
        if spec.num_classes != 2 or spec.positive_class != 1:
            raise InputError(f"cannot use {name} as an ensemble member: it has "
                             f"{spec.num_classes} classes (positive class "
                             f"{spec.positive_class}); members output two logits, p = "
                             "softmax[1]")
        for key in ("input_shape", "sample_rate_hz", "window_samples", "hop_samples",
                    "class_names"):
            if getattr(spec, key) != getattr(first, key):
                raise InputError(f"cannot combine {sources[0].path} and {name}: their "
                                 f"{key} differ ({getattr(first, key)} vs "
                                 f"{getattr(spec, key)}); members must take the same input")
        if spec.quantization:
            raise InputError(f"cannot use {name} as an ensemble member: it is quantized "
                             f"({spec.quantization}); give the fp32 checkpoint")
    return first


def _member_record(path: Path, src, out: Path) -> dict[str, Any]:
    name = path.parent.name if path.name == "model.pt" and path.parent.name else path.stem
    try:
        shown = str(path.resolve().relative_to(out.resolve()))
    except ValueError:
        shown = str(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    record = {"name": name, "file": shown, "sha256": h.hexdigest(), "origin": src.origin}
    for key in ("split", "chosen_epoch", "seed"):
        if key in src.spec.training:
            record[key] = src.spec.training[key]
    return record


def _check_windows(windows: np.ndarray, spec: ModelSpec) -> np.ndarray:
    x = np.asarray(windows)
    if x.ndim != 3 or tuple(x.shape[1:]) != tuple(spec.input_shape[1:]) or not len(x):
        raise InputError(f"cannot check the ensemble: windows of shape {tuple(x.shape)}; the "
                         f"members take (k, {spec.input_shape[1]}, {spec.input_shape[2]}) "
                         "with k >= 1")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError("cannot check the ensemble: the windows hold NaN or infinite values")
    return x


def _write_pte(model, spec: ModelSpec, path: Path, backend: str) -> Path:
    """Export, then load and run the program once: a program that exports but does not load
    (an operator without a kernel in the runtime) is removed and refused.

    Raises
    ------
    ExportError
        ExecuTorch unusable here, a failed export stage, or a program that does not run.
    """
    from osdml.export.pte import PteRunner, executorch_status, export_pte

    status = executorch_status()
    if status is not None:
        raise ExportError(f"cannot write {path}: {status}")
    export_pte(model, spec, path, backend=backend)
    try:
        out = PteRunner(path)(np.ones(spec.input_shape, np.float32))
        if out.shape != (1, 2) or not np.isfinite(out).all():
            raise InputError(f"{path}: forward gives {out.shape} {out.tolist()} on a window of "
                             "ones, not two finite logits")
    except InputError as e:
        path.unlink(missing_ok=True)
        Path(str(path) + ".json").unlink(missing_ok=True)
        raise ExportError(f"the ensemble's program was written but does not run in the "
                          f"ExecuTorch runtime, so it was removed: {e}") from None
    return path
