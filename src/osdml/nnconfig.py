"""Import an OpenSeizureDetector nnTraining2 ``nnConfig*.json`` as an osdml run configuration.

Every key of the old file is either mapped to an osdml key or listed as ignored with the
reason, so nothing is dropped silently. Keys starting with ``_`` are comments.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from osdml.config import RunConfig, load_config
from osdml.errors import InputError

IMPLEMENTATION = "an implementation detail of nnTraining2 with no osdml equivalent"

# nnConfig key -> (osdml key path, value conversion); section "modelConfig" etc. are prefixes.
_DIRECT: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "eventFilters.includeUserIds": ("data.selection.include_users", list),
    "eventFilters.excludeUserIds": ("data.selection.exclude_users", list),
    "eventFilters.includeTypes": ("data.selection.include_types", list),
    "eventFilters.excludeTypes": ("data.selection.exclude_types", list),
    "eventFilters.includeSubTypes": ("data.selection.include_subtypes", list),
    "eventFilters.excludeSubTypes": ("data.selection.exclude_subtypes", list),
    "eventFilters.includeDataSources": ("data.selection.include_sources", list),
    "eventFilters.excludeDataSources": ("data.selection.exclude_sources", list),
    "eventFilters.includeText": ("data.selection.include_desc", list),
    "eventFilters.excludeText": ("data.selection.exclude_desc", list),
    "eventFilters.requireHrData": ("data.selection.require_hr", bool),
    "eventFilters.require3dData": ("data.selection.require_3d", bool),
    "osdbConfig.invalidEvents": ("data.selection.invalid_event_ids", list),
    "dataProcessing.noiseAugmentationValue": ("data.augment.noise_sigma_mg", float),
    "dataProcessing.userAugmentation": ("data.augment.user_balance", bool),
    "modelConfig.sampleFreq": ("data.reader.sample_rate_hz", float),
    "modelConfig.bufferSeconds": ("data.windows.window_s", float),
    "modelConfig.epochs": ("train.max_epochs", int),
    "modelConfig.batchSize": ("train.batch_size", int),
    "modelConfig.convDropout": ("model.conv_dropout", float),
    "modelConfig.denseDropout": ("model.dense_dropout", float),
    "modelConfig.lrPeak": ("train.lr_peak", float),
    "modelConfig.lrMainEnd": ("train.lr_end", float),
    "modelConfig.warmupSteps": ("train.warmup_steps", int),
    "modelConfig.cooldownSteps": ("train.cooldown_steps", int),
    "modelConfig.weightDecay": ("train.weight_decay", float),
    "modelConfig.earlyStoppingPatience": ("train.early_stopping_patience", int),
    "modelConfig.useBalancedBatches": ("train.balanced_sampling", bool),
    "modelConfig.saveBestMinSensitivity": ("train.min_sensitivity", float),
    "modelConfig.saveBestMaxFpr": ("train.max_fpr", float),
    "modelConfig.fBeta": ("train.f_beta", float),
    "modelConfig.lrFactor": ("train.plateau_factor", float),
    "modelConfig.lrPatience": ("train.plateau_patience", int),
    "modelConfig.lrMin": ("train.lr_min", float),
}

_IGNORED = {
    "debug": "logging is --verbose / --debug on the command line",
    "dataFileNames": "osdml writes its own run folder (README: run folder)",
    "osdbConfig._cacheDir": "osdml caches parsed files itself ($OSDML_CACHE_DIR)",
    "dataProcessing.window": "a datapoint-feature setting of nnTraining2; osdml windows are "
                             "data.windows (window_s, hop_s)",
    "dataProcessing.step": "a datapoint-feature setting of nnTraining2; osdml windows are "
                           "data.windows (window_s, hop_s)",
    "dataProcessing.splitTestTrainByEvent": "osdml always splits by event",
    "dataProcessing.accSdThreshold": "osdml does not drop low-movement datapoints: the model "
                                     "sees what the app sees",
    "dataProcessing.features": "osdml models take the acceleration magnitude",
    "dataProcessing.simpleMagnitudeOnly": "osdml models take the acceleration magnitude",
    "dataProcessing.highPassFreq": "osdml feeds unfiltered magnitude, as the app does",
    "dataProcessing.highPassOrder": "osdml feeds unfiltered magnitude, as the app does",
    "eventFilters.requireO2SatData": "osdml does not select events on oxygen saturation",
    "modelConfig.framework": "osdml is PyTorch only",
    "modelConfig.modelFname": "artefacts are always model.pt / .ptl / .pte in the run folder",
    "modelConfig.nLayers": "DeepEpiCnn always has 14 convolution layers",
    "modelConfig.trainingVerbosity": "progress is shown on a terminal; --verbose logs more",
    "modelConfig.dims": "osdml models take (1, 1, 750) magnitude windows",
    "modelConfig.mainSteps": "the cosine phase runs from warm-up to cool-down over "
                             "train.max_epochs x batches",
    "modelConfig.totalTrainingSteps": "the schedule length is train.max_epochs x batches",
    "modelConfig.evalEverySteps": "osdml validates after every epoch",
    "modelConfig.saveBestOnBothImprovement": "part of the dual_improvement rule, which osdml "
                                             "replaces by train.checkpoint_metric",
    "modelConfig.saveBestOnFarReduction": "part of the dual_improvement rule, which osdml "
                                          "replaces by train.checkpoint_metric",
    "modelConfig.saveBestOnSensitivityTolerance": "part of the dual_improvement rule, which "
                                                  "osdml replaces by train.checkpoint_metric",
    "modelConfig.useSubtypeWeighting": "not supported: osdml weights classes, not subtypes",
    "modelConfig.subtypeWeights": "not supported: osdml weights classes, not subtypes",
}
_IMPLEMENTATION_KEYS = ("dataProcessing.worker_count", "dataProcessing.batch_size",
                        "dataProcessing.stream_chunksize", "dataProcessing.stream_low_memory",
                        "dataProcessing.stream_dtype_map", "dataProcessing.validateDatapoints",
                        "dataProcessing.addFeatureHistoryLength")


def import_nnconfig(path: str | Path) -> tuple[RunConfig, list[tuple[str, str]]]:
    """Convert an nnTraining2 configuration into a ``RunConfig``.

    Returns
    -------
    (config, ignored)
        The validated configuration, and ``(key, reason)`` for every nnConfig key that has no
        osdml equivalent or was overridden by osdml's rules.

    Raises
    ------
    InputError
        If the file is missing, not JSON, not an object, or a mapped value is invalid (the
        message names the nnConfig key).
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"cannot import {path}: file does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot import {path}: not a JSON file ({e})") from None
    if not isinstance(raw, dict):
        raise InputError(f"cannot import {path}: top level is not an object, so not an nnConfig")
    flat = dict(_flatten(raw))
    if not any(k.split(".")[0] in ("modelConfig", "dataProcessing", "eventFilters",
                                   "osdbConfig") for k in flat):
        raise InputError(f"cannot import {path}: no modelConfig, dataProcessing, eventFilters "
                         "or osdbConfig section, so not an nnTraining2 nnConfig")
    out: dict[str, Any] = {}
    ignored: list[tuple[str, str]] = []
    _convert_pairs(flat, out)
    for key, value in flat.items():
        if key.split(".")[-1].startswith("_"):
            continue  # a comment
        reason = _convert(key, value, out)
        if reason:
            ignored.append((key, reason))
    try:
        return load_config(None, out), ignored
    except InputError as e:
        raise InputError(f"cannot import {path}: {str(e).removeprefix('configuration: ')}"
                         ) from None


def _convert_pairs(flat: dict[str, Any], out: dict[str, Any]) -> None:
    """Keys that only mean something together (switch + amount); removed from `flat`."""
    noise_on = flat.pop("dataProcessing.noiseAugmentation", None)
    noise_n = flat.pop("dataProcessing.noiseAugmentationFactor", None)
    if noise_on is False:
        _set(out, "data.augment.noise_copies", 0)
    elif noise_n is not None:
        _set(out, "data.augment.noise_copies", int(noise_n))
    phase_on = flat.pop("dataProcessing.phaseAugmentation", None)
    phase_step = flat.pop("dataProcessing.phaseAugmentationStep", None)
    if phase_on and phase_step:
        _set(out, "data.augment.phase_step_samples", int(phase_step))
    elif phase_on is False:
        _set(out, "data.augment.phase_step_samples", 0)
    beta1 = flat.pop("modelConfig.adamwBeta1", None)
    beta2 = flat.pop("modelConfig.adamwBeta2", None)
    if beta1 is not None or beta2 is not None:
        _set(out, "train.betas", [0.9 if beta1 is None else float(beta1),
                                  0.999 if beta2 is None else float(beta2)])


def _convert(key: str, value: Any, out: dict[str, Any]) -> str | None:
    """Map one key into `out`; return why it was ignored, or None."""
    if key in _DIRECT:
        target, conv = _DIRECT[key]
        if value is None:
            return "null: the osdml default applies"
        _set(out, target, conv(value))
        return None
    if key == "randomSeed":
        for target in ("data.split.seed", "data.augment.seed", "train.seed"):
            _set(out, target, int(value))
        return None
    if key == "osdbConfig.osdbFiles":
        _set(out, "data.files", [str(v) for v in value])
        return None
    if key in ("dataProcessing.oversample", "dataProcessing.undersample"):
        on = value not in (None, False, "none", "None", "")
        _set(out, f"data.augment.{key.split('.')[1]}", on)
        return None if value in (None, False, "none", "None", "", "random") else (
            f"{value!r}: osdml samples events at random (random over/undersampling)")
    if key in ("dataProcessing.testProp", "dataProcessing.validationProp"):
        target = "test_fraction" if key.endswith("testProp") else "val_fraction"
        if not value:
            return ("0: osdml always holds out a validation part for checkpoint choice and a "
                    f"test part; data.split.{target} keeps its default")
        _set(out, f"data.split.{target}", float(value))
        return None
    if key == "modelConfig.useLrSchedule":
        _set(out, "train.schedule", "warmup_cosine" if value else "plateau")
        return None
    if key == "modelConfig.lrStart":
        return "osdml's plateau schedule starts at train.lr_peak"
    if key == "modelConfig.useAdamW":
        return None if value else "osdml always trains with AdamW"
    if key == "modelConfig.modelSelectionMetric":
        mapping = {"min_fpr": "min_fpr", "youden": "youden", "f_beta": "f_beta", "f1": "f_beta"}
        if value == "f1":
            _set(out, "train.f_beta", 1.0)
        _set(out, "train.checkpoint_metric", mapping.get(value, "min_fpr"))
        return None if value in mapping else (
            f"{value!r} has no osdml equivalent; train.checkpoint_metric = 'min_fpr'")
    if key == "modelConfig.posWeightMultiplier":
        if value is None:
            return None
        _set(out, "train.class_weights", "balanced")
        return f"{value}: approximated by train.class_weights = 'balanced'"
    if key == "modelConfig.modelClass":
        return None if "deepepicnn" in str(value).lower() else (
            f"{value!r}: osdml has deep_epi_cnn only; model.arch keeps it")
    if key in _IGNORED:
        return _IGNORED[key]
    if key in _IMPLEMENTATION_KEYS or key.startswith("dataFileNames."):
        return IMPLEMENTATION if not key.startswith("dataFileNames.") else _IGNORED[
            "dataFileNames"]
    return "not a known nnTraining2 key"


def _flatten(d: dict[str, Any], prefix: str = ""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k in ("osdbConfig", "eventFilters", "dataProcessing",
                                         "modelConfig", "dataFileNames"):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _set(out: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = out
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
