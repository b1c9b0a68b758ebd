"""The .pt checkpoint: ``torch.save`` of a dict with the state dict, the spec and the metrics.

Layout: ``{"format": "osdml-checkpoint", "format_version": 1, "model_state_dict": ...,
"spec": ModelSpec as a dict, "metrics": ..., "config": ...}``. It is loaded with
``weights_only=True`` and ``map_location="cpu"``: it holds only tensors and plain data, so no
code in the file can run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from osdml.errors import InputError
from osdml.fileio import atomic_write
from osdml.spec import ModelSpec

FORMAT = "osdml-checkpoint"
FORMAT_VERSION = 1


def save_pt(path: str | Path, model: torch.nn.Module, spec: ModelSpec, *,
            metrics: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> Path:
    """Write `model`'s weights with `spec` to `path` atomically and return the path."""
    payload = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model_state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "spec": spec.model_dump(mode="json"),
        "metrics": metrics or {},
        "config": config or {},
    }
    with atomic_write(path, "wb") as f:
        torch.save(payload, f)
    return Path(path)


def load_pt(path: str | Path) -> tuple[torch.nn.Module, ModelSpec, dict[str, Any]]:
    """Rebuild the model saved by ``save_pt``, in eval mode, with strict key matching.

    Returns
    -------
    (model, spec, payload)

    Raises
    ------
    InputError
        If the file is missing, not a torch file, or not an osdml checkpoint, or its weights do
        not match the architecture its spec names.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cannot load checkpoint: {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a file that is not a checkpoint
        raise InputError(f"cannot load checkpoint: {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"cannot load checkpoint: {path} is not an osdml checkpoint (no "
                         "'spec'); use `osdml convert` for other model files")
    spec = ModelSpec.from_dict(payload["spec"], source=str(path))
    model = spec.build()
    try:
        model.load_state_dict(payload["model_state_dict"], strict=True)
    except RuntimeError as e:
        raise InputError(f"cannot load checkpoint: {path}: weights do not match {spec.arch} "
                         f"({str(e).splitlines()[0]})") from None
    return model.eval(), spec, payload
