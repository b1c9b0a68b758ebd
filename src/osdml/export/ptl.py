"""The .ptl file: the model traced in eval mode and saved for the PyTorch Mobile lite
interpreter (legacy; apps that have not moved to ExecuTorch still load it). The spec is stored
inside the archive as ``extra/osdml_spec.json``.

``optimize_for_mobile`` needs torch built with XNNPACK, which the torch 2.13 CPU wheel is not:
then the file is written unoptimised with one warning.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import torch

from osdml.errors import ExportError, InputError
from osdml.spec import PTL_SPEC_NAME, ModelSpec


def torch_has_xnnpack() -> bool:
    """Whether this torch build has XNNPACK (needed by ``optimize_for_mobile``)."""
    check = getattr(torch._C, "_is_xnnpack_enabled", None)
    return bool(check and check())


def export_ptl(model: torch.nn.Module, spec: ModelSpec, path: str | Path, *,
               optimize: bool = True) -> Path:
    """Trace `model` (eval mode) on a zero input of ``spec.input_shape`` and save it for the
    lite interpreter, atomically.

    Parameters
    ----------
    optimize : bool, default=True
        Run ``optimize_for_mobile`` when torch has XNNPACK; without XNNPACK it is skipped with
        a warning.

    Raises
    ------
    ExportError
        If tracing or saving fails (the message names the stage).
    """
    path = Path(path)
    model = model.eval()
    example = torch.zeros(spec.input_shape, dtype=torch.float32)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is legacy: known
            traced = torch.jit.trace(model, example)
    except Exception as e:
        raise ExportError(f".ptl export failed while tracing: {e}") from e
    if optimize:
        if torch_has_xnnpack():
            from torch.utils.mobile_optimizer import optimize_for_mobile

            traced = optimize_for_mobile(traced)
        else:
            warnings.warn("torch has no XNNPACK (CPU wheel): .ptl written without "
                          "optimize_for_mobile", stacklevel=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the .ptl is legacy: known
            traced._save_for_lite_interpreter(tmp, _extra_files={PTL_SPEC_NAME: spec.to_json()})
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None
    except Exception as e:
        Path(tmp).unlink(missing_ok=True)
        raise ExportError(f".ptl export failed while saving {path}: "
                          f"{str(e).splitlines()[0]}") from e
    return path


def read_ptl_spec(path: str | Path) -> ModelSpec | None:
    """The spec stored in a .ptl (or TorchScript) archive, or None when it has none."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(f"extra/{PTL_SPEC_NAME}")]
            if not names:
                return None
            return ModelSpec.from_json(z.read(names[0]), source=str(path))
    except zipfile.BadZipFile:
        raise InputError(f"cannot read {path}: not a zip archive (.ptl files are)") from None


def load_ptl(path: str | Path):
    """Load a .ptl with the lite interpreter; return ``(module, spec or None)``.

    Raises
    ------
    InputError
        If the file cannot be loaded by the lite interpreter.
    """
    from torch.jit.mobile import _load_for_lite_interpreter

    spec = read_ptl_spec(path)
    try:
        module = _load_for_lite_interpreter(str(path))
    except Exception as e:
        raise InputError(f"cannot load {path} with the lite interpreter: "
                         f"{str(e).splitlines()[0]}") from None
    return module, spec
