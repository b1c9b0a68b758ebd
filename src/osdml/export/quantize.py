"""int8 post-training quantization for XNNPACK, calibrated on real windows.

PT2E flow (torchao): capture the eval-mode model with ``torch.export``, ``prepare_pt2e`` with
ExecuTorch's ``XNNPACKQuantizer`` (symmetric, per-channel weights: qc8 weights, qs8
activations), run calibration windows through it, ``convert_pt2e``; the result is exported and
lowered like an fp32 model. Quantizing without calibration data is refused: the activation
ranges would be guesses.

Real windows come from OSDB files: the selected events are divided by event into a calibration
part and a held-out part (every third event), so that the parity of the int8 model against
the fp32 model is measured on windows that did not set its ranges.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from osdml.errors import InputError
from osdml.spec import ModelSpec


@dataclass
class RealWindows:
    """Windows from OSDB files for calibration and checks, shape (n, channels, samples) float32.

    ``held_out`` come from other events than ``calibration``; ``source`` says what they are.
    """

    calibration: np.ndarray
    held_out: np.ndarray
    source: str


def real_windows(files: Sequence[str | Path], spec: ModelSpec, *, n_calibration: int = 256,
                 n_held_out: int = 256) -> RealWindows:
    """Windows of `spec`'s geometry from OSDB files, divided by event (every third event is
    held out), spread evenly over the events.

    Raises
    ------
    InputError
        If the files are not OSDB, or give fewer than 2 windows on either side.
    """
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events
    from osdml.data.windows import make_windows

    if spec.input_shape[1] != 1:
        raise InputError(f"OSDB windows are 1-channel magnitude; this model takes "
                         f"{spec.input_shape[1]} channels")
    streams = load_streams(list(files))
    selection = select_events(streams)
    idx = np.arange(len(selection))
    parts = []
    for chosen, n in ((idx % 3 != 0, n_calibration), (idx % 3 == 0, n_held_out)):
        events = selection.indices[chosen]
        w = make_windows(streams, events, selection.labels[chosen], spec.window_samples,
                         spec.hop_samples)
        take = np.unique(np.linspace(0, len(w) - 1, min(n, len(w))).round().astype(int))
        parts.append(w.batch(take) if len(w) else np.empty((0, 1, spec.window_samples),
                                                           np.float32))
    calibration, held_out = parts
    if len(calibration) < 2 or len(held_out) < 2:
        raise InputError(f"{', '.join(map(str, files))}: too few windows of "
                         f"{spec.window_samples} samples for calibration ({len(calibration)}) "
                         f"and held-out checks ({len(held_out)}); give more OSDB data")
    source = (f"{len(calibration)} calibration and {len(held_out)} held-out windows from "
              f"{streams.n_events} events in {len(streams.report.files)} OSDB file(s)")
    return RealWindows(calibration, held_out, source)


def quantize_int8(module: torch.nn.Module, spec: ModelSpec, calibration: np.ndarray):
    """Quantize `module` (eval mode) to int8 for XNNPACK; return the converted graph module.

    Parameters
    ----------
    module : torch.nn.Module
    spec : ModelSpec
        Supplies the static input shape.
    calibration : np.ndarray of shape (n, channels, samples), float32
        Real windows; each runs once through the observed model.

    Raises
    ------
    InputError
        If `calibration` is empty.
    """
    if calibration is None or len(calibration) == 0:
        raise InputError("int8 quantization needs real calibration windows: pass "
                         "--calibration with OSDB files")
    from osdml.export.pte import quiet_torch_logs

    with quiet_torch_logs():
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    example = (torch.zeros(spec.input_shape, dtype=torch.float32),)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        from osdml.export.pte import _eval

        captured = torch.export.export(_eval(module), example).module()
        quantizer = XNNPACKQuantizer()
        quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True))
        prepared = prepare_pt2e(captured, quantizer)
        for window in calibration:
            prepared(torch.from_numpy(np.ascontiguousarray(window[None])))
        return convert_pt2e(prepared)
