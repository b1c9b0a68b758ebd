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

    ``held_out`` come from other events than ``calibration``; ``source`` says what they are;
    ``calibration_labels`` (n,) int64 are the classes of the calibration windows' events
    (for quantization-aware fine-tuning).
    """

    calibration: np.ndarray
    held_out: np.ndarray
    source: str
    calibration_labels: np.ndarray | None = None


def real_windows(files: Sequence[str | Path], spec: ModelSpec, *, n_calibration: int = 256,
                 n_held_out: int = 256) -> RealWindows:
    """Windows of `spec`'s geometry from OSDB files, divided by event (every third event is
    held out), spread evenly over the events; `n_calibration` <= 0 takes them all. A
    three-axis model (``spec.input == "xyz"``) gets x, y, z windows (n, 3, samples) of the
    events with rawData3D in every datapoint.

    Raises
    ------
    InputError
        If the files are not OSDB, or give fewer than 2 windows on either side, or the model
        takes channels that are neither magnitude (1) nor x, y, z (3, ``input = "xyz"``).
    """
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events
    from osdml.data.windows import make_windows

    channels = 3 if spec.input == "xyz" else 1
    if spec.input_shape[1] != channels:
        raise InputError(f"OSDB windows are 1-channel magnitude or 3-channel x, y, z (spec input "
                         f"\"xyz\"); this model takes {spec.input_shape[1]} channels")
    streams = load_streams(list(files))
    selection = select_events(streams, need_3d=channels == 3)
    idx = np.arange(len(selection))
    parts, labels = [], []
    for chosen, n in ((idx % 3 != 0, n_calibration), (idx % 3 == 0, n_held_out)):
        events = selection.indices[chosen]
        w = make_windows(streams, events, selection.labels[chosen], spec.window_samples,
                         spec.hop_samples, spec.input)
        n = len(w) if n <= 0 else n
        take = np.unique(np.linspace(0, len(w) - 1, min(n, len(w))).round().astype(int))
        labels.append(np.asarray(w.labels, np.int64)[take] if len(w) else np.empty(0, np.int64))
        parts.append(w.batch(take) if len(w) else np.empty((0, channels, spec.window_samples),
                                                           np.float32))
    calibration, held_out = parts
    if len(calibration) < 2 or len(held_out) < 2:
        raise InputError(f"{', '.join(map(str, files))}: too few windows of "
                         f"{spec.window_samples} samples for calibration ({len(calibration)}) "
                         f"and held-out checks ({len(held_out)}); give more OSDB data")
    source = (f"{len(calibration)} calibration and {len(held_out)} held-out windows from "
              f"{streams.n_events} events in {len(streams.report.files)} OSDB file(s)")
    return RealWindows(calibration, held_out, source, labels[0])


OBSERVERS = ("histogram", "minmax", "moving_average")
QUANTIZABLE = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)
BATCH = 64  # calibration and QAT windows per forward pass


@dataclass
class QatSettings:
    """Quantization-aware fine-tuning of an int8 model from its trained weights.

    ``x`` (n, channels, samples) float32 and ``y`` (n,) int64 class labels come from the
    training side of the OSDB files (never the held-out windows); ``epochs`` passes of Adam
    at learning rate ``lr`` in batches of ``batch`` windows, shuffled with ``seed``. The loss
    is cross-entropy on the labels plus ``distill`` x the mean squared difference of the
    logits from the fp32 model's (the decisions to keep).
    """

    x: np.ndarray
    y: np.ndarray
    epochs: int = 3
    lr: float = 1e-5
    batch: int = 32
    seed: int = 0
    distill: float = 1.0


def quantizable_layers(module: torch.nn.Module) -> list[str]:
    """Names (``named_modules``) of the layers int8 quantizes: Conv1d, Conv2d and Linear."""
    return [n for n, m in module.named_modules() if isinstance(m, QUANTIZABLE)]


def fp32_capable_layers(module: torch.nn.Module) -> list[str]:
    """The quantizable layers that can stay fp32 in an XNNPACK int8 program: the Linear
    layers. Measured with ExecuTorch 1.4.1 on DeepEpiCnn: a convolution fed by quantized
    activations left in fp32 fails lowering ("Weight and Input should both be quantized"),
    and the first convolution (fed by the float input) left in fp32 lowers but the program
    does not load ("Failed to load method forward")."""
    mods = dict(module.named_modules())
    return [n for n in quantizable_layers(module) if isinstance(mods[n], torch.nn.Linear)]


def _quantizer(observer: str = "histogram", fp32_layers: Sequence[str] = (),
               is_qat: bool = False):
    """ExecuTorch's ``XNNPACKQuantizer``: symmetric int8, per-channel weights, activations
    observed by `observer`; the nodes of each of `fp32_layers` (module names) left
    unquantized (by the quantizer's filter function)."""
    from osdml.export.pte import quiet_torch_logs

    with quiet_torch_logs():
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e import (
            MinMaxObserver,
            MovingAverageMinMaxObserver,
        )
    if observer not in OBSERVERS:
        raise InputError(f"int8 observer {observer!r}: must be one of {', '.join(OBSERVERS)}")
    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=is_qat)
    if not is_qat and observer != "histogram":  # histogram is the quantizer's own choice
        import dataclasses

        ctr = {"minmax": MinMaxObserver, "moving_average": MovingAverageMinMaxObserver}[observer]
        act = dataclasses.replace(config.input_activation,
                                  observer_or_fake_quant_ctr=ctr.with_args(eps=2 ** -12))
        config = dataclasses.replace(config, input_activation=act, output_activation=act)
    quantizer = XNNPACKQuantizer().set_global(config)
    if fp32_layers:  # set_module_name(name, None) is refused ("not supported yet"): filter
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            get_module_name_filter,
        )

        skip = [get_module_name_filter(name) for name in fp32_layers]
        quantizer.set_filter_function(lambda node: not any(f(node) for f in skip))
    return quantizer


class CentredInput(torch.nn.Module):
    """`model` fed ``x - centre``, with the first layer's bias raised by its weights times
    ``centre``: the same function in fp32 (up to rounding), but the first layer's int8
    weights no longer multiply the constant part of the input.

    Acceleration magnitude sits near 1 g while a seizure moves it by tens of mg; a first
    convolution sees ``W x = W 1g + W dx``, so the rounding error of its int8 weights times
    1 g swamps ``W dx`` (measured on the demo model: leaving only that layer in fp32 in
    simulation lifts positives kept on real seizures from 86 % to 95 %). Centred, the
    rounding error multiplies ``dx`` only. The subtraction runs in fp32 before the input is
    quantized, and XNNPACK takes it with the rest of the program.

    ``centre`` is (1, channels, 1) float32, in g: the per-channel mean of the calibration
    windows.
    """

    def __init__(self, model: torch.nn.Module, centre: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("centre", centre)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x - self.centre)


def centre_input(module: torch.nn.Module, calibration: np.ndarray,
                 tolerance: float = 1e-4) -> torch.nn.Module:
    """`module` wrapped in ``CentredInput`` when its first layer (the first Conv1d, Conv2d or
    Linear that runs) is an unpadded convolution over the input's channels, or a Linear over
    a one-channel input; otherwise `module` itself. The wrapped model's logits are checked
    against `module`'s on up to 64 calibration windows (largest difference within
    `tolerance` x the logits' range), and `module` is returned when they differ, so
    centring never changes what the model computes.

    `module` is not changed (the wrapper holds a copy).
    """
    import copy

    from osdml.export.validate import eager_logits

    x = np.ascontiguousarray(calibration[:64], dtype=np.float32)
    centre = torch.from_numpy(calibration.mean(axis=(0, 2), dtype=np.float64)
                              .astype(np.float32)).view(1, -1, 1)
    seen: list[torch.nn.Module] = []
    hooks = [m.register_forward_pre_hook(lambda m, a: seen.append(m) if not seen else None)
             for m in module.modules() if isinstance(m, QUANTIZABLE)]
    try:
        with torch.no_grad():
            module(torch.from_numpy(x[:2]))
    finally:
        for h in hooks:
            h.remove()
    if not seen or seen[0].bias is None:
        return module
    first = seen[0]
    channels = centre.shape[1]
    if isinstance(first, (torch.nn.Conv1d, torch.nn.Conv2d)):
        if (first.in_channels != channels or first.groups != 1
                or any(p != 0 for p in np.atleast_1d(first.padding))):
            return module
        w = first.weight.detach()
        shift = (w * centre.view(1, channels, *([1] * (w.dim() - 2)))).sum(
            dim=tuple(range(1, w.dim())))
    elif channels == 1:
        shift = first.weight.detach().sum(dim=1) * centre.item()
    else:
        return module
    copied = copy.deepcopy(module)
    target = dict(copied.named_modules())[next(n for n, m in module.named_modules()
                                               if m is first)]
    with torch.no_grad():
        target.bias += shift
    wrapped = CentredInput(copied, centre).eval()
    ref, got = eager_logits(module, x), eager_logits(wrapped, x)
    span = float(np.ptp(ref)) or 1.0
    return wrapped if float(np.abs(ref - got).max()) <= tolerance * span else module


def _capture(module: torch.nn.Module, spec: ModelSpec):
    """``torch.export`` of `module` with a dynamic batch dimension (calibration and QAT run
    in batches; the exported program is captured again with ``spec.input_shape``)."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    example = (torch.zeros((2, *spec.input_shape[1:]), dtype=torch.float32),)
    return torch.export.export(module, example, dynamic_shapes=({0: batch},)).module()


def quantize_int8(module: torch.nn.Module, spec: ModelSpec, calibration: np.ndarray, *,
                  observer: str = "histogram", fp32_layers: Sequence[str] = (),
                  qat: QatSettings | None = None, centre: bool = True):
    """Quantize `module` to int8 for XNNPACK; return the converted graph module (its
    ``input_centre`` attribute: the per-channel centre subtracted from the input, in g, or
    None when the input was not centred).

    PT2E post-training quantization (torchao ``prepare_pt2e`` / ``convert_pt2e`` with
    ExecuTorch's ``XNNPACKQuantizer``, https://pytorch.org/executorch/stable/
    tutorial-xnnpack-delegate-lowering.html), or with `qat` quantization-aware fine-tuning
    (``prepare_qat_pt2e``, https://pytorch.org/tutorials/prototype/pt2e_quant_qat.html): the
    trained weights are fine-tuned through fake quantization, the graph is moved to eval
    (batch norm on its running statistics) and the activation observers see `calibration`
    before ``convert_pt2e``.

    Parameters
    ----------
    module : torch.nn.Module
        The fp32 model (put in eval mode; not changed).
    spec : ModelSpec
        Supplies the input shape.
    calibration : np.ndarray of shape (n, channels, samples), float32
        Real windows; each runs once through the observed model (in batches of 64).
    observer : str, default "histogram"
        Activation observer: ``histogram`` (torchao ``HistogramObserver``, the quantizer's
        default: range minimising the L2 quantization error), ``minmax`` or
        ``moving_average``. Ignored with `qat` (fake quantization keeps moving averages).
    fp32_layers : sequence of str
        Module names left in fp32 (``fp32_capable_layers``: the Linear layers).
    qat : QatSettings, optional
        Labelled training windows for quantization-aware fine-tuning.
    centre : bool, default True
        Feed the model ``x - mean`` with the first layer's bias compensated
        (``centre_input``): the same fp32 function, far less int8 error on inputs with a
        large constant part such as acceleration magnitude near 1 g.

    Raises
    ------
    InputError
        If `calibration` is empty, `observer` is unknown, or a name in `fp32_layers` is not
        a quantizable layer of `module` that can stay fp32 (``fp32_capable_layers``).
    """
    if calibration is None or len(calibration) == 0:
        raise InputError("int8 quantization needs real calibration windows: pass "
                         "--calibration with OSDB files")
    known = quantizable_layers(module)
    unknown = [n for n in fp32_layers if n not in known]
    if unknown:
        raise InputError(f"--fp32-layers {','.join(unknown)}: not a layer of this model "
                         f"(its layers: {', '.join(known)})")
    capable = fp32_capable_layers(module)
    if any(n not in capable for n in fp32_layers):
        raise InputError(f"--fp32-layers {','.join(n for n in fp32_layers if n not in capable)}"
                         ": only Linear layers can stay fp32 in an XNNPACK int8 program (a "
                         f"float convolution among int8 ones does not lower or load); these "
                         f"can: {', '.join(capable)}")
    from osdml.export.pte import _eval, quiet_torch_logs

    with quiet_torch_logs():
        from torchao.quantization.pt2e import move_exported_model_to_eval
        from torchao.quantization.pt2e.quantize_pt2e import (
            convert_pt2e,
            prepare_pt2e,
            prepare_qat_pt2e,
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = _eval(module)
        if centre:
            eager = centre_input(eager, calibration)
        if isinstance(eager, CentredInput):  # module names inside the wrapper
            fp32_layers = [f"model.{n}" for n in fp32_layers]
        quantizer = _quantizer(observer, fp32_layers, is_qat=qat is not None)
        if qat is None:
            with torch.no_grad():
                prepared = prepare_pt2e(_capture(eager, spec), quantizer)
        else:
            import copy

            trainable = copy.deepcopy(eager).train()
            prepared = prepare_qat_pt2e(_capture(trainable, spec), quantizer)
            move_exported_model_to_eval(prepared)  # frozen batch norm, no dropout
            _fine_tune(prepared, eager, qat)
        with torch.no_grad():
            for i in range(0, len(calibration), BATCH):
                prepared(torch.from_numpy(np.ascontiguousarray(calibration[i:i + BATCH])))
            graph = convert_pt2e(prepared)
    # what centre_input subtracted (g per channel), for the record; None when not centred
    graph.input_centre = (eager.centre.flatten().tolist() if isinstance(eager, CentredInput)
                          else None)
    return graph


def _fine_tune(prepared, teacher: torch.nn.Module, qat: QatSettings) -> None:
    """Adam on the fake-quantized graph: cross-entropy on the labels plus ``qat.distill`` x
    the squared logit difference from the fp32 `teacher`."""
    torch.manual_seed(qat.seed)
    rng = np.random.default_rng(qat.seed)
    x = torch.from_numpy(np.ascontiguousarray(qat.x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(qat.y, dtype=np.int64))
    with torch.no_grad():
        target = torch.cat([teacher(x[i:i + 256]) for i in range(0, len(x), 256)])
    params = [p for p in prepared.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=qat.lr)
    for _ in range(qat.epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for i in range(0, len(x), qat.batch):
            b = order[i:i + qat.batch]
            if len(b) < 2:
                continue
            out = prepared(x[b])
            loss = torch.nn.functional.cross_entropy(out, y[b])
            if qat.distill:
                loss = loss + qat.distill * torch.mean((out - target[b]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()


def int8_logits(graph, windows: np.ndarray) -> np.ndarray:
    """Logits (n, classes) of a converted int8 graph module (eager, simulated int8) for
    windows (n, channels, samples) float32."""
    with torch.no_grad():
        return np.concatenate([graph(torch.from_numpy(np.ascontiguousarray(
            windows[i:i + 256]))).numpy() for i in range(0, len(windows), 256)])


@dataclass
class LayerChoice:
    """Layers kept in fp32 by measured sensitivity (``choose_fp32_layers``).

    ``layers`` the chosen module names; ``ranking`` one row per quantizable layer, worst
    first: ``layer``, ``agreement`` and ``sqnr_db`` of the model with only that layer left in
    fp32 against the fp32 model; ``met`` whether the goal held with ``layers``; ``final``
    that model's own agreement, positives kept and SQNR.
    """

    layers: list[str]
    ranking: list[dict]
    met: bool
    final: dict


def choose_fp32_layers(module: torch.nn.Module, spec: ModelSpec, calibration: np.ndarray, *,
                       observer: str = "histogram", min_agreement: float = 0.99,
                       min_positive_kept: float = 0.98, max_layers: int = 4,
                       threshold: float = 0.5, rank_windows: int = 512) -> LayerChoice:
    """Leave-one-out sensitivity: quantize every layer but one, for each layer that can stay
    fp32 (``fp32_capable_layers``) in turn; rank
    layers by how much leaving them in fp32 helps (agreement, then SQNR, against the fp32
    model on `calibration`, the windows that set the ranges: the held-out windows stay
    unseen), and keep the worst in fp32, one more at a time, until decisions agree on
    `min_agreement` and `min_positive_kept` of the fp32 positives stay positive, or
    `max_layers` are kept. The ranking calibrates and scores on at most `rank_windows` of
    the windows (evenly spread) to bound its cost (one quantization per layer); the choice
    is judged on all of them.

    Parameters
    ----------
    calibration : np.ndarray of shape (n, channels, samples), float32
    observer : str
        As in ``quantize_int8``.
    min_agreement, min_positive_kept : float
        The goal, as shares of windows.
    max_layers : int
        Most layers kept in fp32.

    Returns
    -------
    LayerChoice
    """
    from osdml.export.validate import compare, eager_logits

    sub = calibration[np.unique(np.linspace(0, len(calibration) - 1, min(
        rank_windows, len(calibration))).round().astype(int))]
    refs = {len(sub): eager_logits(module, sub), len(calibration): eager_logits(module,
                                                                               calibration)}

    def score(layers, x=calibration):
        c = compare(refs[len(x)], int8_logits(quantize_int8(module, spec, x, observer=observer,
                                                            fp32_layers=layers), x),
                    threshold=threshold, positive_class=spec.positive_class)
        return {"agreement": c["decision_agreement"],
                "positive_kept": c["positive_agreement"], "sqnr_db": c["sqnr_db"]}

    def good(c):
        return (c["agreement"] >= min_agreement
                and (c["positive_kept"] is None or c["positive_kept"] >= min_positive_kept))

    chosen: list[str] = []
    final = score(chosen)
    ranking: list[dict] = []
    if not good(final):
        candidates = fp32_capable_layers(module)
        ranking = sorted(({"layer": n, **score([n], sub)} for n in candidates),
                         key=lambda r: (-r["agreement"], -(r["positive_kept"] or 0),
                                        -(r["sqnr_db"] or 1e9)))
        for row in ranking[:max_layers]:
            chosen.append(row["layer"])
            final = score(chosen)
            if good(final):
                break
    return LayerChoice(chosen, ranking, good(final), final)
