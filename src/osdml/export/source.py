"""Load any model file as a model to convert: ``load_source(path) -> Source``.

Accepted, identified by content (``sniff``):

- osdml's own ``.pt`` (spec inside);
- nnTraining2 checkpoints: ``model_state_dict`` with ``config`` (the whole nnConfig: window =
  ``modelConfig.sampleFreq`` x ``bufferSeconds``), ``conv_dropout``, ``dense_dropout``, epoch,
  optimizer state ...; both conv-block layouts (3 modules per block, or 4 with dropout);
- a bare state dict or ``{"state_dict": ...}``, keys prefixed ``module.``, ``_orig_mod.`` or
  ``model.``, with missing or extra ``num_batches_tracked``; tensors saved on a GPU;
- checkpoints holding numpy scalars and arrays (allow-listed: ``weights_only`` loading stays
  on);
- a pickled whole ``nn.Module``: only with ``trust=True`` (unpickling it runs code from the
  file);
- TorchScript ``.pt`` and ``.ptl``: with an osdml spec inside, the eager model is rebuilt and
  the weights loaded; without, the TorchScript graph is converted (``TS2EPConverter``).

Without a spec the architecture is inferred from the weights (classes from the last layer,
input channels from the first convolution, the conv-dropout layout from the key indices) and
every inference is recorded in ``Source.notes``. Weights are always loaded strictly. Two
architectures are recognised: DeepEpiCnn (``conv_stack.*``) and nnTraining2's CnnLstm
(``cnn_extractor.*``, ``lstm.*``; ``cnnLstmModel_torch.py``), whose 1-s CNN window and
window length come from ``modelConfig.cnnWindowSeconds`` and ``lstmWindowSeconds`` when the
checkpoint has its config, else 25 and 750 samples.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from osdml.errors import InputError
from osdml.export import sniff as sn
from osdml.spec import ModelSpec

PREFIXES = ("module.", "_orig_mod.", "model.")


@dataclass
class Source:
    """A model ready to export.

    ``model`` is an eager ``nn.Module`` in eval mode, or None when only a graph is available
    (``exported``, from TorchScript without a spec). ``origin`` says what the file was;
    ``notes`` what had to be inferred or repaired.
    """

    path: Path
    kind: str
    origin: str
    spec: ModelSpec
    model: torch.nn.Module | None = None
    exported: Any = None  # torch.export.ExportedProgram
    notes: list[str] = field(default_factory=list)
    weights: dict[str, Any] | None = None  # TorchScript's state dict, when only a graph

    def module(self) -> torch.nn.Module:
        """Something callable on (1, 1, L) windows: the eager model or the graph's module."""
        return self.model if self.model is not None else self.exported.module()


def load_source(path: str | Path, *, trust: bool = False,
                input_shape: tuple[int, int, int] | None = None,
                num_classes: int | None = None) -> Source:
    """Identify and load a model file for conversion.

    Parameters
    ----------
    path : path-like
    trust : bool, default=False
        Allow unpickling a whole ``nn.Module`` (runs code from the file).
    input_shape : (1, channels, samples), optional
        Input shape when the file has no spec (default (1, 1, 750)).
    num_classes : int, optional
        Expected number of classes; checked against the weights.

    Raises
    ------
    InputError
        One line for every file that is not a convertible model: what it is, and what to do.
    """
    found = sn.sniff(path)
    path = found.path
    if found.kind in (sn.PTE, sn.BPTE):
        raise InputError(f"cannot convert {path}: it is {found.description}, already converted; "
                         f"use `osdml inspect {path}` to see what it holds")
    if found.kind == sn.TFLITE:
        raise InputError(f"cannot convert {path}: it is {found.description}, not a torch model; "
                         f"osdml runs it in LiteRT with `osdml inspect {path}` and `osdml "
                         "validate`, and does not convert it")
    try:
        if found.kind in (sn.PTL, sn.TORCHSCRIPT):
            src = _from_torchscript(found, input_shape)
        else:
            src = _from_checkpoint(found, trust, input_shape)
    except InputError:
        raise
    except Exception as e:  # a damaged file can fail anywhere inside torch's readers
        raise InputError(f"cannot read model: {path}: {found.description} that could not be "
                         f"read ({type(e).__name__}: {str(e).strip().splitlines()[0][:120]}); "
                         "damaged file?") from None
    if input_shape is not None and tuple(input_shape) != tuple(src.spec.input_shape):
        raise InputError(f"cannot convert {path}: --input-shape {tuple(input_shape)} disagrees "
                         f"with the model's input {tuple(src.spec.input_shape)}")
    if num_classes is not None and src.spec.num_classes != num_classes:
        raise InputError(f"cannot convert {path}: the model has {src.spec.num_classes} classes, "
                         f"--num-classes says {num_classes}")
    _check_input(src)
    return src


# --------------------------------------------------------------------------- checkpoints

def _safe_globals() -> list:
    """Harmless classes that checkpoints carry besides tensors (numpy scalars, arrays)."""
    import numpy as np

    out: list = [np.dtype, np.ndarray]
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            m = __import__(mod, fromlist=["scalar", "_reconstruct"])
            out += [m.scalar, m._reconstruct]
        except (ImportError, AttributeError):
            continue
    out += [getattr(np.dtypes, n) for n in np.dtypes.__all__]  # every dtype class
    return out


def _torch_load(found: sn.Sniffed, trust: bool) -> Any:
    path = found.path
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        message = str(e)
        if "Weights only load failed" not in message and "Unsupported global" not in message:
            raise InputError(f"cannot read model: {path}: {found.description} that torch "
                             f"cannot load ({message.strip().splitlines()[0]})") from None
        blocked = re.findall(r"GLOBAL ([\w.]+)", message)
    if not trust:
        what = f" ({blocked[0]})" if blocked else ""
        raise InputError(f"cannot convert {path}: it holds a pickled Python object{what}, most "
                         "likely a whole nn.Module; loading it runs code from the file. Pass "
                         "--trust if you trust its source, or save model.state_dict() instead")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise InputError(f"cannot read model: {path}: unpickling failed "
                             f"({str(e).strip().splitlines()[0]})") from None


def _from_checkpoint(found: sn.Sniffed, trust: bool, input_shape) -> Source:
    path = found.path
    obj = _torch_load(found, trust)
    if isinstance(obj, torch.nn.Module):
        return _from_module(found, obj, input_shape)
    if not isinstance(obj, dict):
        raise InputError(f"cannot convert {path}: a torch.save file holding "
                         f"{type(obj).__name__}, not model weights")
    if obj.get("format") == "osdml-checkpoint":
        if not isinstance(obj.get("spec"), dict) or not isinstance(obj.get("model_state_dict"),
                                                                   dict):
            raise InputError(f"cannot convert {path}: an osdml checkpoint without its spec or "
                             "its weights (damaged or edited file)")
        spec = ModelSpec.from_dict(obj["spec"], source=str(path))
        model = spec.build()
        _load_strict(model, obj["model_state_dict"], path, [])
        return Source(path, found.kind, "osdml checkpoint", spec, model.eval())
    notes: list[str] = []
    kwargs: dict[str, Any] = {}
    if isinstance(obj.get("model_state_dict"), dict):
        state, origin = obj["model_state_dict"], "nnTraining2 checkpoint"
        kwargs.update(_nntraining2_kwargs(obj, notes))
    elif isinstance(obj.get("state_dict"), dict):
        state, origin = obj["state_dict"], "checkpoint with a state_dict"
    elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, origin = obj, "bare state dict"
    else:
        keys = ", ".join(list(map(str, obj))[:6])
        raise InputError(f"cannot convert {path}: a dict (keys: {keys}) with no weights osdml "
                         "recognises (model_state_dict, state_dict, or tensors)")
    return _from_state_dict(found, state, origin, kwargs, input_shape, notes)


def _nntraining2_kwargs(payload: dict, notes: list[str]) -> dict[str, Any]:
    cfg = payload.get("config") if isinstance(payload.get("config"), dict) else {}
    mc = cfg.get("modelConfig") if isinstance(cfg.get("modelConfig"), dict) else {}
    out: dict[str, Any] = {}
    try:
        if "sampleFreq" in mc or "bufferSeconds" in mc:
            rate, seconds = float(mc.get("sampleFreq", 25)), float(mc.get("bufferSeconds", 30))
            out["input_length"] = int(round(rate * seconds))
            out["sample_rate_hz"] = rate
            notes.append(f"window {out['input_length']} samples from config.modelConfig "
                         f"(sampleFreq {rate:g} x bufferSeconds {seconds:g})")
    except (TypeError, ValueError, OverflowError):
        notes.append("config.modelConfig sampleFreq/bufferSeconds unreadable: window 750")
    for key, cfg_key in (("conv_dropout", "convDropout"), ("dense_dropout", "denseDropout")):
        value = payload.get(key, mc.get(cfg_key))
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    # CnnLstm's own timing (used only if the weights are a CnnLstm's): cnn_lstm_* keys
    try:
        rate = float(mc.get("sampleFreq", 25))
        if "cnnWindowSeconds" in mc:
            out["cnn_lstm_window"] = int(round(rate * float(mc["cnnWindowSeconds"])))
        if "lstmWindowSeconds" in mc:
            out["cnn_lstm_length"] = int(round(rate * float(mc["lstmWindowSeconds"])))
    except (TypeError, ValueError, OverflowError):
        notes.append("config.modelConfig cnnWindowSeconds/lstmWindowSeconds unreadable")
    return out


def _from_module(found: sn.Sniffed, module: torch.nn.Module, input_shape) -> Source:
    """A trusted, unpickled whole module: used as it is, in eval mode."""
    from osdml.models.cnn_lstm import CnnLstm
    from osdml.models.deep_epi_cnn import DeepEpiCnn

    module = module.eval()
    notes = ["whole pickled module loaded with --trust"]
    if isinstance(module, DeepEpiCnn | CnnLstm):
        state = {k: v for k, v in module.state_dict().items()}
        kwargs = {"input_length": module.input_length}
        if isinstance(module, CnnLstm):
            kwargs.update(cnn_lstm_window=module.cnn_window_samples,
                          cnn_lstm_length=module.input_length)
        return _from_state_dict(found, state, f"pickled {type(module).__name__} module "
                                "(trusted)", kwargs, input_shape, notes)
    shape = input_shape or (1, 1, 750)
    with torch.no_grad():
        try:
            out = module(torch.zeros(shape))
        except Exception as e:
            raise InputError(f"cannot convert {found.path}: the module cannot take input shape "
                             f"{shape} ({str(e).splitlines()[0]}); pass --input-shape") from None
    spec = ModelSpec(arch=type(module).__name__, arch_kwargs={}, input_shape=shape,
                     window_samples=shape[2],
                     class_names=[f"class {i}" for i in range(out.shape[-1])]
                     if out.shape[-1] != 2 else ["non-seizure", "seizure"])
    return Source(found.path, found.kind, f"pickled {type(module).__name__} module (trusted)",
                  spec, module, notes=notes)


# --------------------------------------------------------------------------- state dicts

def _strip_prefixes(state: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    changed = True
    while changed and state:
        changed = False
        for p in PREFIXES:
            if all(k.startswith(p) for k in state):
                state = {k[len(p):]: v for k, v in state.items()}
                notes.append(f"stripped key prefix {p!r}")
                changed = True
    return state


def infer_deep_epi_cnn(state: dict[str, Any]) -> dict[str, Any] | None:
    """DeepEpiCnn constructor arguments that fit the keys and shapes of `state`, or None.

    Classes come from ``fc_out``, input channels from the first convolution, and the
    conv-dropout layout from where the second convolution sits (``conv_stack.3`` without
    dropout, ``conv_stack.4`` with it; with dropout its rate is unknown and set to 0.05, which
    changes nothing in eval mode).
    """
    need = ("conv_stack.0.weight", "fc_out.weight", "fc1.weight")
    if not all(k in state for k in need):
        return None
    kwargs = {"num_classes": int(state["fc_out.weight"].shape[0]),
              "in_channels": int(state["conv_stack.0.weight"].shape[1])}
    if "conv_stack.4.weight" in state and state["conv_stack.4.weight"].dim() == 3:
        kwargs["conv_dropout"] = 0.05
    elif "conv_stack.3.weight" in state and state["conv_stack.3.weight"].dim() == 3:
        kwargs["conv_dropout"] = 0.0
    else:
        return None
    return kwargs


def infer_cnn_lstm(state: dict[str, Any]) -> dict[str, Any] | None:
    """CnnLstm constructor arguments that fit the keys and shapes of `state` (nnTraining2's
    ``cnnLstmModel_torch.CnnLstm`` names), or None.

    Classes come from ``fc_out``, input channels from ``cnn_extractor.conv1``, the feature
    size from ``cnn_extractor.fc_feature``, the LSTM's hidden size and layers from ``lstm.*``.
    The CNN window and the window length leave no trace in the weights (global pooling; the
    LSTM runs any number of steps): the caller supplies them.
    """
    need = ("cnn_extractor.conv1.weight", "cnn_extractor.fc_feature.weight",
            "lstm.weight_hh_l0", "fc1.weight", "fc_out.weight")
    if not all(k in state and state[k].dim() >= 2 for k in need):
        return None
    layers = 0
    while f"lstm.weight_ih_l{layers}" in state:
        layers += 1
    return {"num_classes": int(state["fc_out.weight"].shape[0]),
            "in_channels": int(state["cnn_extractor.conv1.weight"].shape[1]),
            "feature_dim": int(state["cnn_extractor.fc_feature.weight"].shape[0]),
            "lstm_hidden": int(state["lstm.weight_hh_l0"].shape[1]),
            "lstm_layers": layers}


def _from_state_dict(found: sn.Sniffed, state: dict[str, Any], origin: str,
                     kwargs: dict[str, Any], input_shape, notes: list[str]) -> Source:
    path = found.path
    state = _strip_prefixes(dict(state), notes)
    kwargs = dict(kwargs)
    cnn_window = kwargs.pop("cnn_lstm_window", None)
    lstm_length = kwargs.pop("cnn_lstm_length", None)
    name, inferred = "deep_epi_cnn", infer_deep_epi_cnn(state)
    if inferred is None:
        name, inferred = "cnn_lstm", infer_cnn_lstm(state)
    if inferred is None:
        names = ", ".join(list(state)[:4])
        raise InputError(f"cannot convert {path}: {len(state)} weights (first: {names}) match "
                         "no registered architecture (deep_epi_cnn needs conv_stack.*, fc1..fc4, "
                         "fc_out; cnn_lstm needs cnn_extractor.*, lstm.*, fc1..fc3, fc_out)")
    if name == "cnn_lstm":
        inferred["cnn_window_samples"] = cnn_window or 25
        if lstm_length:
            kwargs["input_length"] = lstm_length
            notes.append(f"window {lstm_length} samples from config.modelConfig "
                         "(sampleFreq x lstmWindowSeconds)")
        notes.append(f"CNN window {inferred['cnn_window_samples']} samples "
                     f"({'config.modelConfig.cnnWindowSeconds' if cnn_window else 'default'})")
    if ("conv_dropout" in kwargs and "conv_dropout" in inferred
            and (kwargs["conv_dropout"] > 0) != (inferred["conv_dropout"] > 0)):
        notes.append(f"conv_dropout {kwargs['conv_dropout']} in the file disagrees with the key "
                     "layout; the layout wins")
        kwargs.pop("conv_dropout")
    rate = kwargs.pop("sample_rate_hz", 25.0)
    arch = {**inferred, **kwargs}
    if "input_length" not in arch:
        arch["input_length"] = input_shape[2] if input_shape else 750
        notes.append(f"window {arch['input_length']} samples "
                     f"({'--input-shape' if input_shape else 'default; no spec in the file'})")
    if input_shape and input_shape[1] != arch["in_channels"]:
        raise InputError(f"cannot convert {path}: --input-shape {input_shape} has "
                         f"{input_shape[1]} channels; the weights take {arch['in_channels']}")
    if input_shape and input_shape[2] != arch["input_length"]:
        raise InputError(f"cannot convert {path}: --input-shape {input_shape} disagrees with the "
                         f"file's window of {arch['input_length']} samples")
    if name == "cnn_lstm":
        notes.insert(0, f"inferred cnn_lstm: {arch['num_classes']} classes, "
                        f"{arch['in_channels']} input channel(s), features "
                        f"{arch['feature_dim']}, LSTM {arch['lstm_layers']} x "
                        f"{arch['lstm_hidden']}")
    else:
        notes.insert(0, f"inferred deep_epi_cnn: {arch['num_classes']} classes, "
                        f"{arch['in_channels']} input channel(s), conv blocks "
                        f"{'with' if arch['conv_dropout'] > 0 else 'without'} dropout")
    from osdml.models import create_model

    try:
        model = create_model(name, **arch)
    except ValueError as e:
        raise InputError(f"cannot convert {path}: the model cannot take input shape "
                         f"(1, {arch['in_channels']}, {arch['input_length']}): {e}") from None
    _load_strict(model, state, path, notes)
    n = arch["num_classes"]
    spec = ModelSpec(arch=name, arch_kwargs=arch,
                     input_shape=(1, arch["in_channels"], arch["input_length"]),
                     window_samples=arch["input_length"], sample_rate_hz=rate,
                     hop_samples=max(1, round(rate * 5)),
                     class_names=["non-seizure", "seizure"] if n == 2
                     else [f"class {i}" for i in range(n)])
    return Source(path, found.kind, origin, spec, model.eval(), notes=notes)


def _load_strict(model: torch.nn.Module, state: dict[str, Any], path: Path,
                 notes: list[str]) -> None:
    """Load weights with strict key matching; only ``num_batches_tracked`` is reconciled (a
    counter batch norm keeps during training, absent from some saves, unused in eval)."""
    expected = model.state_dict()
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    extra_nbt = [k for k in state if k.endswith("num_batches_tracked") and k not in expected]
    missing_nbt = [k for k in expected if k.endswith("num_batches_tracked") and k not in state]
    for k in extra_nbt:
        del state[k]
    for k in missing_nbt:
        state[k] = torch.zeros((), dtype=torch.long)
    if extra_nbt or missing_nbt:
        notes.append(f"reconciled num_batches_tracked ({len(missing_nbt)} added, "
                     f"{len(extra_nbt)} dropped)")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:3])})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (first: {k} "
                         f"{tuple(state[k].shape)} vs {tuple(expected[k].shape)})")
        raise InputError(f"cannot convert {path}: weights do not match the architecture: "
                         + "; ".join(parts))
    model.load_state_dict(state, strict=True)


# --------------------------------------------------------------------------- TorchScript

def _from_torchscript(found: sn.Sniffed, input_shape) -> Source:
    from osdml.export.ptl import read_ptl_spec

    path = found.path
    spec = read_ptl_spec(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise InputError(f"cannot read model: {path}: {found.description} that TorchScript "
                         f"cannot load ({str(e).strip().splitlines()[0]})") from None
    if scripted.training:
        raise InputError(f"cannot convert {path}: the TorchScript model was saved in training "
                         "mode, so its graph holds training-mode dropout and batch norm; "
                         "re-export it after model.eval()")
    if spec is not None:
        model = spec.build()
        _load_strict(model, dict(scripted.state_dict()), path, [])
        return Source(path, found.kind, f"{found.description} with an osdml spec", spec,
                      model.eval(), notes=["eager model rebuilt from the spec inside the file"])
    shape = input_shape or (1, 1, 750)
    from torch._export.converter import TS2EPConverter  # private API: wrapped and tested

    from osdml.export.pte import quiet_torch_logs

    example = (torch.zeros(shape),)
    try:
        with warnings.catch_warnings(), quiet_torch_logs():
            warnings.simplefilter("ignore")
            converted = TS2EPConverter(scripted, example).convert()
            # the converter marks dimensions dynamic; the app feeds one fixed shape
            exported = torch.export.export(converted.module(), example)
    except Exception as e:
        raise InputError(f"cannot convert {path}: converting its TorchScript graph failed "
                         f"({type(e).__name__}: {str(e).strip().splitlines()[0]})") from None
    check_eval_graph(exported, path)
    with torch.no_grad():
        n = int(exported.module()(torch.zeros(shape)).shape[-1])
    spec = ModelSpec(arch="torchscript", arch_kwargs={}, input_shape=shape,
                     window_samples=shape[2],
                     class_names=["non-seizure", "seizure"] if n == 2
                     else [f"class {i}" for i in range(n)])
    return Source(path, found.kind, f"{found.description} without a spec", spec, None, exported,
                  notes=["TorchScript graph converted with TS2EPConverter (no spec inside); "
                         f"input shape {shape}"], weights=dict(scripted.state_dict()))


def eager_from_weights(src: Source) -> Source:
    """The eager model a graph-only source's weights fit (for steps a converted graph does not
    support, such as int8 quantization), or `src` unchanged when they fit no architecture."""
    if src.model is not None or not src.weights:
        return src
    found = sn.Sniffed(src.path, src.kind, 0)
    try:
        rebuilt = _from_state_dict(found, src.weights, src.origin,
                                   {"input_length": src.spec.window_samples}, None, [])
    except InputError:
        return src
    rebuilt.notes = [*src.notes, f"eager {rebuilt.spec.arch} rebuilt from the TorchScript "
                     "weights (" + rebuilt.notes[0] + ")"]
    return rebuilt


def check_eval_graph(exported, path: Path) -> None:
    """Refuse a graph that still runs dropout or batch norm in training mode.

    Raises
    ------
    InputError
        Naming the operator found.
    """
    for node in exported.graph.nodes:
        if node.op != "call_function":
            continue
        name = str(node.target)
        training = (("dropout" in name and len(node.args) > 2 and node.args[2] is True)
                    or ("batch_norm" in name and "no_training" not in name
                        and len(node.args) > 5 and node.args[5] is True))
        if training:
            raise InputError(f"cannot convert {path}: its graph runs {name} in training mode; "
                             "re-export the model after model.eval()")


def _check_input(src: Source) -> None:
    shape = tuple(src.spec.input_shape)
    try:
        with torch.no_grad():
            out = src.module()(torch.zeros(shape))
    except Exception as e:
        raise InputError(f"cannot convert {src.path}: the model cannot take input shape {shape} "
                         f"({str(e).strip().splitlines()[0]}); pass --input-shape") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        raise InputError(f"cannot convert {src.path}: the model returns "
                         f"{getattr(out, 'shape', type(out).__name__)} for {shape}; osdml "
                         "expects logits of shape (1, classes)")
    if not torch.isfinite(out).all():
        raise InputError(f"cannot convert {src.path}: the model's outputs are not finite "
                         "(NaN or infinite weights?)")
