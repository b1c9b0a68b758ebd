"""Import an OpenSeizureDetector nnTraining2 ``nnConfig*.json`` as an osdml run configuration.

Every key of the old file is either mapped to an osdml key or listed as ignored with the
reason, so nothing is dropped silently. Keys starting with ``_`` are comments.

Seizure times. The current nnTraining2 ``flattenData.py`` keeps only the datapoints that overlap
an event's ``seizureTimes`` widened by a margin when ``useSeizureTimesConstraint`` is true;
``seizureTimeMarginSeconds`` is the margin (its example configuration puts both in
``dataProcessing``; a top-level key is read too). They map to ``[data.labels]``
``use_seizure_times`` and ``margin_s``, with ``outside = "exclude"`` (osdml's default: the
windows outside are left out, as nnTraining2 drops the datapoints). Where the two differ:
nnTraining2 measures ``seizureTimes`` from the end of the event's earliest datapoint, osdml from
the event's ``dataTime`` (the OSDB convention; ``osdml.data.labels``); nnTraining2 also
constrains events without ``seizureTimes`` (to [-30, 30] s) and of every type, osdml only
seizure events that have ``seizureTimes`` (the others keep the whole-event label). The older
``dataProcessing.seizureTimeRange`` ([-20, 20]) is not a margin: nnTrainer.py (nnTraining)
and nnTraining2's ``flattenData.py`` of Dec 2024 - Aug 2025 used it as the interval, relative
to the event's ``dataTime``, kept for seizure events *without* ``seizureTimes``; nnTraining2 no
longer reads it. It is listed as ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from osdml.config import RunConfig
from osdml.errors import InputError
from osdml.ids import normalize_id

IMPLEMENTATION = "an implementation detail of nnTraining2 with no osdml equivalent"


class _BadValue(ValueError):
    """A value of the wrong type in the nnConfig file."""


def _ids(v: Any) -> list[str]:
    if not isinstance(v, list):
        raise _BadValue(f"must be a list of ids, got {json.dumps(v)}")
    out = [normalize_id(x) for x in v]
    if None in out:
        raise _BadValue(f"{json.dumps(v[out.index(None)])} is not an id")
    return out


def _strings(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _BadValue(f"must be a list of strings, got {json.dumps(v)}")
    return list(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _BadValue(f"must be true or false, got {json.dumps(v)}")
    return v


def _int(v: Any) -> int:
    if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
        raise _BadValue(f"must be a whole number, got {json.dumps(v)}")
    return int(v)


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or v != v or v in (
            float("inf"), float("-inf")):
        raise _BadValue(f"must be a finite number, got {json.dumps(v)}")
    return float(v)

# nnConfig key -> (osdml key path, value conversion); section "modelConfig" etc. are prefixes.
_DIRECT: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "eventFilters.includeUserIds": ("data.selection.include_users", _ids),
    "eventFilters.excludeUserIds": ("data.selection.exclude_users", _ids),
    "eventFilters.includeTypes": ("data.selection.include_types", _strings),
    "eventFilters.excludeTypes": ("data.selection.exclude_types", _strings),
    "eventFilters.includeSubTypes": ("data.selection.include_subtypes", _strings),
    "eventFilters.excludeSubTypes": ("data.selection.exclude_subtypes", _strings),
    "eventFilters.includeDataSources": ("data.selection.include_sources", _strings),
    "eventFilters.excludeDataSources": ("data.selection.exclude_sources", _strings),
    "eventFilters.includeText": ("data.selection.include_desc", _strings),
    "eventFilters.excludeText": ("data.selection.exclude_desc", _strings),
    "eventFilters.requireHrData": ("data.selection.require_hr", _bool),
    "eventFilters.require3dData": ("data.selection.require_3d", _bool),
    "osdbConfig.invalidEvents": ("data.selection.invalid_event_ids", _ids),
    "dataProcessing.noiseAugmentationValue": ("data.augment.noise_sigma_mg", _float),
    "dataProcessing.userAugmentation": ("data.augment.user_balance", _bool),
    "dataProcessing.useSeizureTimesConstraint": ("data.labels.use_seizure_times", _bool),
    "dataProcessing.seizureTimeMarginSeconds": ("data.labels.margin_s", _float),
    "useSeizureTimesConstraint": ("data.labels.use_seizure_times", _bool),
    "seizureTimeMarginSeconds": ("data.labels.margin_s", _float),
    "modelConfig.sampleFreq": ("data.reader.sample_rate_hz", _float),
    "modelConfig.bufferSeconds": ("data.windows.window_s", _float),
    "modelConfig.epochs": ("train.max_epochs", _int),
    "modelConfig.batchSize": ("train.batch_size", _int),
    "modelConfig.convDropout": ("model.conv_dropout", _float),
    "modelConfig.denseDropout": ("model.dense_dropout", _float),
    "modelConfig.lrPeak": ("train.lr_peak", _float),
    "modelConfig.lrMainEnd": ("train.lr_end", _float),
    "modelConfig.warmupSteps": ("train.warmup_steps", _int),
    "modelConfig.cooldownSteps": ("train.cooldown_steps", _int),
    "modelConfig.weightDecay": ("train.weight_decay", _float),
    "modelConfig.earlyStoppingPatience": ("train.early_stopping_patience", _int),
    "modelConfig.useBalancedBatches": ("train.balanced_sampling", _bool),
    "modelConfig.saveBestMinSensitivity": ("train.min_sensitivity", _float),
    "modelConfig.saveBestMaxFpr": ("train.max_fpr", _float),
    "modelConfig.fBeta": ("train.f_beta", _float),
    "modelConfig.lrFactor": ("train.plateau_factor", _float),
    "modelConfig.lrPatience": ("train.plateau_patience", _int),
    "modelConfig.lrMin": ("train.lr_min", _float),
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
    "dataProcessing.seizureTimeRange": "an interval kept for seizure events without "
                                       "seizureTimes, unused by current nnTraining2; osdml "
                                       "keeps the whole-event label for those events "
                                       "([data.labels])",
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
    origin: dict[str, str] = {}  # osdml key -> the nnConfig key it came from
    try:
        _convert_pairs(flat, out, origin)
        for key, value in flat.items():
            if key.split(".")[-1].startswith("_"):
                continue  # a comment
            reason = _convert(key, value, out, origin)
            if reason:
                ignored.append((key, reason))
    except _BadValue as e:
        raise InputError(f"cannot import {path}: {e}") from None
    try:
        return RunConfig.model_validate(out), ignored
    except ValidationError as e:
        first = e.errors()[0]
        target = ".".join(str(p) for p in first["loc"] if not isinstance(p, int))
        source = next((k for t, k in origin.items() if target.startswith(t)), "?")
        raise InputError(f"cannot import {path}: {source} (osdml {target}): "
                         f"{first['msg'].removeprefix('Value error, ')}") from None


def _convert_pairs(flat: dict[str, Any], out: dict[str, Any], origin: dict[str, str]) -> None:
    """Keys that only mean something together (switch + amount); removed from `flat`."""
    def take(key, conv):
        value = flat.pop(key, None)
        try:
            return None if value is None else conv(value)
        except _BadValue as e:
            raise _BadValue(f"{key}: {e}") from None

    noise_on = take("dataProcessing.noiseAugmentation", _bool)
    noise_n = take("dataProcessing.noiseAugmentationFactor", _int)
    origin["data.augment.noise_copies"] = "dataProcessing.noiseAugmentationFactor"
    if noise_on is False:
        _set(out, "data.augment.noise_copies", 0)
    elif noise_n is not None:
        _set(out, "data.augment.noise_copies", noise_n)
    phase_on = take("dataProcessing.phaseAugmentation", _bool)
    phase_step = take("dataProcessing.phaseAugmentationStep", _int)
    origin["data.augment.phase_step_samples"] = "dataProcessing.phaseAugmentationStep"
    if phase_on and phase_step:
        _set(out, "data.augment.phase_step_samples", phase_step)
    elif phase_on is False:
        _set(out, "data.augment.phase_step_samples", 0)
    beta1 = take("modelConfig.adamwBeta1", _float)
    beta2 = take("modelConfig.adamwBeta2", _float)
    origin["train.betas"] = "modelConfig.adamwBeta1/adamwBeta2"
    if beta1 is not None or beta2 is not None:
        _set(out, "train.betas", [0.9 if beta1 is None else beta1,
                                  0.999 if beta2 is None else beta2])
    cache_dir = take("osdbConfig.cacheDir", lambda v: v if isinstance(v, str) else _strings(v))
    files = take("osdbConfig.osdbFiles", _strings)
    origin["data.files"] = "osdbConfig.osdbFiles"
    if files is not None:
        # nnTraining2 looks for osdbFiles in cacheDir
        _set(out, "data.files", [f if cache_dir is None or Path(f).is_absolute()
                                 else str(Path(cache_dir) / f) for f in files])


def _convert(key: str, value: Any, out: dict[str, Any], origin: dict[str, str]) -> str | None:
    """Map one key into `out`; return why it was ignored, or None.

    Raises
    ------
    _BadValue
        If the value has the wrong type (the message names the nnConfig key).
    """
    try:
        return _convert_one(key, value, out, origin)
    except _BadValue as e:
        raise _BadValue(f"{key}: {e}") from None


def _convert_one(key: str, value: Any, out: dict[str, Any], origin: dict[str, str]):
    if key in _DIRECT:
        target, conv = _DIRECT[key]
        if value is None:
            return "null: the osdml default applies"
        _set(out, target, conv(value))
        origin[target] = key
        return None
    if key == "randomSeed":
        if value is None:
            return "null: the osdml default seeds apply"
        for target in ("data.split.seed", "data.augment.seed", "train.seed"):
            _set(out, target, _int(value))
            origin[target] = key
        return None
    if key in ("dataProcessing.oversample", "dataProcessing.undersample"):
        if value is not None and not isinstance(value, str | bool):
            raise _BadValue(f"must be a method name such as \"none\" or \"random\", got "
                            f"{json.dumps(value)}")
        on = value not in (None, False, "none", "None", "")
        _set(out, f"data.augment.{key.split('.')[1]}", on)
        return None if value in (None, False, "none", "None", "", "random") else (
            f"{value!r}: osdml samples events at random (random over/undersampling)")
    if key in ("dataProcessing.testProp", "dataProcessing.validationProp"):
        target = "test_fraction" if key.endswith("testProp") else "val_fraction"
        if value is None or _float(value) == 0:
            return (f"{value}: osdml always holds out a validation part for checkpoint choice "
                    f"and a test part; data.split.{target} keeps its default")
        _set(out, f"data.split.{target}", _float(value))
        origin[f"data.split.{target}"] = key
        return None
    if key == "modelConfig.useLrSchedule":
        _set(out, "train.schedule", "warmup_cosine" if _bool(value) else "plateau")
        return None
    if key == "modelConfig.lrStart":
        return "osdml's plateau schedule starts at train.lr_peak"
    if key == "modelConfig.useAdamW":
        return None if _bool(value) else "osdml always trains with AdamW"
    if key == "modelConfig.modelSelectionMetric":
        if not isinstance(value, str):
            raise _BadValue(f"must be a metric name, got {json.dumps(value)}")
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
        return f"{_float(value)}: approximated by train.class_weights = 'balanced'"
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
