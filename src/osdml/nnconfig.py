"""Import an OpenSeizureDetector nnTraining2 ``nnConfig*.json`` as an osdml run configuration.

Every key of the old file is mapped to the osdml key with the same behaviour, or listed with
the reason: ``ignored`` (no effect on what is trained, or no osdml equivalent) or ``differs``
(mapped, but osdml's behaviour is not nnTraining2's: the note says how). Nothing changes
meaning silently. Keys starting with ``_`` or ``#``, and keys ending in ``_desc``, are
comments. Semantics are those of nnTraining2's ``nnTrainer.py``, ``augmentData.py`` and the
model classes (OpenSeizureDatabase, user_tools/nnTraining2, 2026); docs/training.md lists
each mapping.

Meanings that a plain rename would change:

- ``validationProp`` is a share of *all* events (beside ``testProp``); osdml's
  ``val_fraction`` is a share of the non-test events: ``val_fraction = validationProp /
  (1 - testProp)``. 0 (nnTraining2 then validates on the test part) and values that leave no
  training data (such as 1.0, "no separate validation") keep osdml's separate validation part:
  ``differs``.
- ``fBeta`` is used by nnTraining2 as an F-beta of sensitivity and *specificity*:
  ``modelSelectionMetric = "f_beta"`` maps to ``checkpoint_metric = "f_beta_spec"``, ``f1`` to
  the same with beta 1; absent, nnTraining2 uses ``dual_improvement``, which osdml has too.
- ``useLrSchedule = true`` trains for ``totalTrainingSteps`` optimisation steps (epochs do not
  bound it and early stopping is off): ``train.max_steps``; the warm-up starts at ``lrStart``.
  ``useLrSchedule = false`` is ReduceLROnPlateau starting at ``lrStart``.
- ``accSdThreshold`` is measured as the app's movement gate (100 x std / mean of a datapoint,
  %): it fixes ``[app] gate_pct`` (and the gates tuned to that one value); ``differs``, since
  current nnTraining2 no longer reads it.
- ``posWeightMultiplier`` p: nnTrainer.py weighs the loss by [1/p, p]: ``train.class_weights``.
- ``modelClass`` picks the architecture: DeepEpiCnn -> ``deep_epi_cnn``, CnnLstm ->
  ``cnn_lstm``; classes osdml does not have are ``differs`` (DeepEpiCnn is trained instead).

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
from typing import Any, NamedTuple

from pydantic import ValidationError

from osdml.config import RunConfig
from osdml.errors import InputError
from osdml.ids import normalize_id

IMPLEMENTATION = "an implementation detail of nnTraining2 with no osdml equivalent"


class ImportNote(NamedTuple):
    """One nnConfig key that is not a plain mapping: ``kind`` is ``ignored`` or ``differs``."""

    key: str
    kind: str
    why: str


class _Differs(str):
    """A reason that marks the key as mapped with a different behaviour."""


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
    "dataProcessing.useSeizureTimesConstraint": ("data.labels.use_seizure_times", _bool),
    "dataProcessing.seizureTimeMarginSeconds": ("data.labels.margin_s", _float),
    "useSeizureTimesConstraint": ("data.labels.use_seizure_times", _bool),
    "seizureTimeMarginSeconds": ("data.labels.margin_s", _float),
    "modelConfig.sampleFreq": ("data.reader.sample_rate_hz", _float),
    "modelConfig.batchSize": ("train.batch_size", _int),
    "modelConfig.convDropout": ("model.conv_dropout", _float),
    "modelConfig.denseDropout": ("model.dense_dropout", _float),
    "modelConfig.lrPeak": ("train.lr_peak", _float),
    "modelConfig.lrMainEnd": ("train.lr_end", _float),
    "modelConfig.lrStart": ("train.lr_start", _float),
    "modelConfig.warmupSteps": ("train.warmup_steps", _int),
    "modelConfig.cooldownSteps": ("train.cooldown_steps", _int),
    "modelConfig.weightDecay": ("train.weight_decay", _float),
    "modelConfig.useBalancedBatches": ("train.balanced_sampling", _bool),
    "modelConfig.saveBestMinSensitivity": ("train.min_sensitivity", _float),
    "modelConfig.saveBestMaxFpr": ("train.max_fpr", _float),
    "modelConfig.fBeta": ("train.f_beta", _float),
    "modelConfig.saveBestOnFarReduction": ("train.dual_far_reduction", _float),
    "modelConfig.saveBestOnSensitivityTolerance": ("train.dual_sensitivity_tolerance", _float),
    "modelConfig.lrFactor": ("train.plateau_factor", _float),
    "modelConfig.lrPatience": ("train.plateau_patience", _int),
    "modelConfig.lrMin": ("train.lr_min", _float),
    "modelConfig.featureDim": ("model.feature_dim", _int),
    "modelConfig.lstmHiddenDim": ("model.lstm_hidden", _int),
    "modelConfig.lstmNumLayers": ("model.lstm_layers", _int),
    "modelConfig.lstmDropout": ("model.lstm_dropout", _float),
    "modelConfig.cnnWindowSeconds": ("model.cnn_window_s", _float),
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
    "dataProcessing.simpleMagnitudeOnly": "osdml models take the acceleration magnitude "
                                          "(or x/y/z: data.windows.input)",
    "dataProcessing.highPassFreq": "osdml feeds unfiltered magnitude, as the app does",
    "dataProcessing.highPassOrder": "osdml feeds unfiltered magnitude, as the app does",
    "eventFilters.requireO2SatData": "osdml does not select events on oxygen saturation",
    "dataProcessing.seizureTimeRange": "an interval kept for seizure events without "
                                       "seizureTimes, unused by current nnTraining2; osdml "
                                       "keeps the whole-event label for those events "
                                       "([data.labels])",
    "modelConfig.framework": "osdml is PyTorch only (the architecture is the same)",
    "modelConfig.modelFname": "artefacts are always model.pt / .ptl / .pte in the run folder",
    "modelConfig.nLayers": "DeepEpiCnn always has 14 convolution layers",
    "modelConfig.trainingVerbosity": "progress is shown on a terminal; --verbose logs more",
    "modelConfig.dims": "osdml models take (1, channels, samples) windows",
    "modelConfig.inputChannels": "follows data.windows.input (1 for magnitude, 3 for xyz)",
    "modelConfig.saveBestOnBothImprovement": "read by nnTraining2 but not used: "
                                             "dual_improvement always saves when both improve",
    "modelConfig.testBufferPrefill": "how nnTraining2's tester fills an LSTM's buffer at the "
                                     "start of an event; osdml scores whole windows, as the "
                                     "app does",
    "modelConfig.useSubtypeWeighting": "not supported: osdml weights classes, not subtypes",
    "modelConfig.subtypeWeights": "not supported: osdml weights classes, not subtypes",
    "modelConfig.n_estimators": "a scikit-learn (random forest) setting; osdml trains neural "
                                "networks",
    "modelConfig.max_depth": "a scikit-learn (random forest) setting; osdml trains neural "
                             "networks",
    "modelBackend": "osdml is PyTorch only",
    "modelConfig.nnArchitecture": "the architecture is modelConfig.modelClass",
}
_IMPLEMENTATION_KEYS = ("dataProcessing.worker_count", "dataProcessing.batch_size",
                        "dataProcessing.stream_chunksize", "dataProcessing.stream_low_memory",
                        "dataProcessing.stream_dtype_map", "dataProcessing.validateDatapoints",
                        "dataProcessing.addFeatureHistoryLength",
                        "dataProcessing.progress_interval")
_STEPS_MAX_EPOCHS = 100_000  # useLrSchedule: steps bound the run, not epochs


def import_nnconfig(path: str | Path) -> tuple[RunConfig, list[ImportNote]]:
    """Convert an nnTraining2 configuration into a ``RunConfig``.

    Returns
    -------
    (config, notes)
        The validated configuration, and an ``ImportNote(key, kind, why)`` for every nnConfig
        key that is not a plain mapping: ``ignored`` (no osdml equivalent, or no effect on
        training) or ``differs`` (mapped, with a behaviour that is not nnTraining2's).

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
    flat = {k: v for k, v in _flatten(raw) if not _is_comment(k)}
    if not any(k.split(".")[0] in ("modelConfig", "dataProcessing", "eventFilters",
                                   "osdbConfig") for k in flat):
        raise InputError(f"cannot import {path}: no modelConfig, dataProcessing, eventFilters "
                         "or osdbConfig section, so not an nnTraining2 nnConfig")
    out: dict[str, Any] = {}
    notes: list[ImportNote] = []
    origin: dict[str, str] = {}  # osdml key -> the nnConfig key it came from
    try:
        _convert_pairs(flat, out, origin, notes)
        for key, value in flat.items():
            reason = _convert(key, value, out, origin)
            if reason:
                notes.append(ImportNote(key, "differs" if isinstance(reason, _Differs)
                                        else "ignored", str(reason)))
    except _BadValue as e:
        raise InputError(f"cannot import {path}: {e}") from None
    try:
        return RunConfig.model_validate(out), notes
    except ValidationError as e:
        first = e.errors()[0]
        target = ".".join(str(p) for p in first["loc"] if not isinstance(p, int))
        source = next((k for t, k in origin.items() if target.startswith(t)), "?")
        raise InputError(f"cannot import {path}: {source} (osdml {target}): "
                         f"{first['msg'].removeprefix('Value error, ')}") from None


def _is_comment(key: str) -> bool:
    leaf = key.split(".")[-1]
    return leaf.startswith(("_", "#")) or leaf.endswith("_desc") or key.startswith("#")


def _convert_pairs(flat: dict[str, Any], out: dict[str, Any], origin: dict[str, str],
                   notes: list[ImportNote]) -> None:
    """Keys that only mean something together (switch + amount, schedule, split, model);
    removed from `flat`; their notes appended to `notes`."""
    def take(key, conv):
        value = flat.pop(key, None)
        try:
            return None if value is None else conv(value)
        except _BadValue as e:
            raise _BadValue(f"{key}: {e}") from None

    def note(key, why, kind="differs"):
        notes.append(ImportNote(key, kind, why))

    def put(target, value, key):
        _set(out, target, value)
        origin[target] = key

    # ---------------------------------------------------------------- seizure augmentation
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
    if take("dataProcessing.phaseAugmentationFactor", _int) is not None:
        note("dataProcessing.phaseAugmentationFactor", "not read by current nnTraining2 "
             "(phaseAugmentationStep sets the shift)", "ignored")
    user_on = take("dataProcessing.userAugmentation", _bool)
    user_threshold = take("dataProcessing.userAugmentationThreshold", _int)
    if user_on is not None:
        put("data.augment.user_balance", user_on, "dataProcessing.userAugmentation")
    if user_on:
        # nnTraining2 pools users with fewer seizure events than this (default 10)
        put("data.augment.user_balance_threshold", 10 if user_threshold is None
            else user_threshold, "dataProcessing.userAugmentationThreshold")
    elif user_threshold is not None:
        note("dataProcessing.userAugmentationThreshold", "userAugmentation is off", "ignored")
    sr_on = take("dataProcessing.sampleRateAugmentation", _bool)
    sr_factors = take("dataProcessing.sampleRateAugmentationFactors", _floats)
    if sr_on and sr_factors:
        kept = [f for f in sr_factors if f != 1.0]
        put("data.augment.sample_rate_factors", kept,
            "dataProcessing.sampleRateAugmentationFactors")
        if len(kept) < len(sr_factors):
            note("dataProcessing.sampleRateAugmentationFactors", "factor 1.0 dropped: it "
                 "would copy each seizure unchanged", "ignored")
    elif sr_factors is not None and not sr_on:
        note("dataProcessing.sampleRateAugmentationFactors", "sampleRateAugmentation is off",
             "ignored")
    _negative_noise(take, put, note)
    # ---------------------------------------------------------------- split
    test = take("dataProcessing.testProp", _float)
    val = take("dataProcessing.validationProp", _float)
    if test is not None:
        if test == 0:
            note("dataProcessing.testProp", "0: osdml always holds out a test part; "
                 "data.split.test_fraction keeps its default")
        else:
            put("data.split.test_fraction", test, "dataProcessing.testProp")
    if val is not None:
        test_share = test if test else 0.2
        if val == 0:
            note("dataProcessing.validationProp", "0: nnTraining2 then chooses checkpoints on "
                 "the test part; osdml keeps a separate validation part "
                 "(data.split.val_fraction default), so the test part stays unseen")
        elif val + test_share >= 1:
            default = RunConfig().data.split.val_fraction
            note("dataProcessing.validationProp", f"{val:g}: as a share it leaves no training "
                 f"events beside testProp={test_share:g} (nnTraining2 only tests it for 0: "
                 "non-zero means a separate validation part, and k-fold runs ignore it); "
                 f"osdml keeps a separate validation part of data.split.val_fraction = "
                 f"{default:g} of the non-test events (the default)")
        else:
            # a share of all events in nnTraining2, of the non-test events in osdml
            put("data.split.val_fraction", round(val / (1 - test_share), 6),
                "dataProcessing.validationProp")
    # ---------------------------------------------------------------- model and input
    _model(take, put, note)
    # ---------------------------------------------------------------- schedule
    _schedule(take, put, note)
    # ---------------------------------------------------------------- checkpoint choice
    metric = take("modelConfig.modelSelectionMetric",
                  lambda v: v if isinstance(v, str) else _fail("must be a metric name", v))
    metrics = {None: "dual_improvement", "dual_improvement": "dual_improvement",
               "min_fpr": "min_fpr", "youden": "youden", "f_beta": "f_beta_spec",
               "f1": "f_beta_spec", "val_loss": "val_loss"}
    if metric == "f1":
        put("train.f_beta", 1.0, "modelConfig.modelSelectionMetric")
    if metric in metrics:
        put("train.checkpoint_metric", metrics[metric], "modelConfig.modelSelectionMetric")
    else:
        put("train.checkpoint_metric", "dual_improvement", "modelConfig.modelSelectionMetric")
        note("modelConfig.modelSelectionMetric", f"{metric!r} is not one of nnTraining2's "
             "metrics; its default dual_improvement is used")
    # ---------------------------------------------------------------- class weights
    pos = take("modelConfig.posWeightMultiplier", _float)
    if pos is not None:
        if pos <= 0:
            raise _BadValue(f"modelConfig.posWeightMultiplier: must be above 0, got {pos:g}")
        # nnTrainer.py: CrossEntropyLoss(weight=[1 / p, p]) (non-seizure, seizure)
        put("train.class_weights", [1 / pos, pos], "modelConfig.posWeightMultiplier")
    if take("modelConfig.classWeights", lambda v: v) is not None:
        note("modelConfig.classWeights", "read by nnTraining2's random forest (rfModel.py) "
             "only", "ignored")
    # ---------------------------------------------------------------- files
    cache_dir = take("osdbConfig.cacheDir", lambda v: v if isinstance(v, str) else _strings(v))
    files = take("osdbConfig.osdbFiles", _strings)
    origin["data.files"] = "osdbConfig.osdbFiles"
    if files is not None:
        # nnTraining2 looks for osdbFiles in cacheDir
        _set(out, "data.files", [f if cache_dir is None or Path(f).is_absolute()
                                 else str(Path(cache_dir) / f) for f in files])


def _fail(what: str, v: Any):
    raise _BadValue(f"{what}, got {json.dumps(v)}")


def _floats(v: Any) -> list[float]:
    if not isinstance(v, list):
        raise _BadValue(f"must be a list of numbers, got {json.dumps(v)}")
    return [_float(x) for x in v]


def _negative_noise(take, put, note) -> None:
    """noiseAugmentationNonSeizure*: noise copies of chosen non-seizure subtypes."""
    on = take("dataProcessing.noiseAugmentationNonSeizure", _bool)
    copies = take("dataProcessing.noiseAugmentationNonSeizureFactor", _int)
    sigma = take("dataProcessing.noiseAugmentationNonSeizureValue", _float)
    pairs = take("dataProcessing.noiseAugmentationNonSeizurePairs",
                 lambda v: v if isinstance(v, list) else _fail("must be a list of "
                                                               "{type, subType} pairs", v))
    if not on:
        for key, v in (("Factor", copies), ("Value", sigma), ("Pairs", pairs)):
            if v is not None:
                note(f"dataProcessing.noiseAugmentationNonSeizure{key}",
                     "noiseAugmentationNonSeizure is off", "ignored")
        return
    if copies is not None:
        put("data.augment.negative_noise_copies", copies,
            "dataProcessing.noiseAugmentationNonSeizureFactor")
    if sigma is not None:
        put("data.augment.negative_noise_sigma_mg", sigma,
            "dataProcessing.noiseAugmentationNonSeizureValue")
    rules: dict[str, dict[str, Any]] = {}
    skipped = []
    for pair in pairs or []:
        if not isinstance(pair, dict):
            raise _BadValue(f"dataProcessing.noiseAugmentationNonSeizurePairs: {pair!r} is not "
                            "a {type, subType} object")
        sub = pair.get("subType", pair.get("value"))
        if pair.get("type", 0) not in (0, "0") or not isinstance(sub, str):
            skipped.append(json.dumps(pair))
            continue
        rule: dict[str, Any] = {"subtype": sub}
        # upstream's per-pair overrides and their aliases; "value" is the sigma when
        # "subType" names the subtype (else it is the subtype)
        n = pair.get("factor", pair.get("noiseAugmentationFactor", pair.get("noiseFactor")))
        v = pair.get("value") if "subType" in pair else None
        v = pair.get("noiseAugmentationValue", pair.get("noiseValue")) if v is None else v
        if n is not None:
            rule["copies"] = _int(n)
        if v is not None:
            rule["sigma_mg"] = _float(v)
        rules.setdefault(sub.strip().casefold(), rule)  # as augment matches: first wins
    if rules:
        put("data.augment.negative_noise", list(rules.values()),
            "dataProcessing.noiseAugmentationNonSeizurePairs")
    if skipped:
        note("dataProcessing.noiseAugmentationNonSeizurePairs", f"pairs skipped (osdml adds "
             f"noise to class-0 subtypes only): {', '.join(skipped)}")


def _model(take, put, note) -> None:
    """modelClass / modelType / accelInputMode / features / bufferSeconds /
    lstmWindowSeconds -> model.arch, data.windows.input and window_s."""
    cls = take("modelConfig.modelClass", lambda v: v if isinstance(v, str)
               else _fail("must be a module.Class name", v))
    kind = take("modelConfig.modelType", lambda v: str(v))
    top_kind = take("modelType", lambda v: str(v))
    name = (cls or "").lower()
    arch = "cnn_lstm" if "cnnlstm" in name else "deep_epi_cnn"
    if cls is not None:
        put("model.arch", arch, "modelConfig.modelClass")
        if "cnnlstm" not in name and "deepepicnn" not in name:
            note("modelConfig.modelClass", f"{cls!r} has no osdml equivalent (osdml trains "
                 "deep_epi_cnn or cnn_lstm); model.arch = 'deep_epi_cnn'")
    for key, k in (("modelConfig.modelType", kind), ("modelType", top_kind)):
        if k is not None and k.lower() not in ("pytorch", "tensorflow", "nn", "keras"):
            note(key, f"{k!r}: osdml trains neural networks only (model.arch = {arch!r})")
        elif k is not None:
            note(key, "a neural network, as osdml trains (the framework is PyTorch)", "ignored")
    mode = take("modelConfig.accelInputMode", lambda v: str(v).lower())
    features = take("dataProcessing.features", _strings)
    xyz_features = features is not None and {f.lower() for f in features} >= {"accx", "accy",
                                                                                "accz"}
    if mode == "xyz" or (mode is None and xyz_features):
        put("data.windows.input", "xyz", "modelConfig.accelInputMode" if mode
            else "dataProcessing.features")
    elif mode not in (None, "magnitude"):
        note("modelConfig.accelInputMode", f"{mode!r}: osdml takes 'magnitude' or 'xyz'; "
             "magnitude is used")
    if features is not None and not xyz_features and [f.lower() for f in features] != [
            "acc_magnitude"]:
        note("dataProcessing.features", "computed features (spectra, statistics) are inputs "
             "of nnTraining2's feature models; osdml models take the raw acceleration "
             "(data.windows.input)")
    elif features is not None and mode is None:
        note("dataProcessing.features", "the raw acceleration, as osdml takes it", "ignored")
    buffer_s = take("modelConfig.bufferSeconds", _float)
    lstm_s = take("modelConfig.lstmWindowSeconds", _float)
    if arch == "cnn_lstm" and lstm_s is not None:
        # nnTraining2's CnnLstm takes lstmWindowSeconds of samples; bufferSeconds is unused
        put("data.windows.window_s", lstm_s, "modelConfig.lstmWindowSeconds")
        if buffer_s is not None and buffer_s != lstm_s:
            note("modelConfig.bufferSeconds", f"{buffer_s:g}: the CNN-LSTM's input is "
                 f"lstmWindowSeconds ({lstm_s:g} s), as in nnTraining2", "ignored")
    else:
        if buffer_s is not None:
            put("data.windows.window_s", buffer_s, "modelConfig.bufferSeconds")
        if lstm_s is not None:
            note("modelConfig.lstmWindowSeconds", f"a CNN-LSTM setting; the model is {arch}",
                 "ignored")
    if arch != "cnn_lstm":
        for key in ("cnnWindowSeconds", "featureDim", "lstmHiddenDim", "lstmNumLayers",
                    "lstmDropout"):
            if take(f"modelConfig.{key}", lambda v: v) is not None:
                note(f"modelConfig.{key}", f"a CNN-LSTM setting; the model is {arch}",
                     "ignored")


def _schedule(take, put, note) -> None:
    """useLrSchedule and the step / epoch keys: how long training runs and the LR over it."""
    on = take("modelConfig.useLrSchedule", _bool)
    epochs = take("modelConfig.epochs", _int)
    total = take("modelConfig.totalTrainingSteps", _int)
    main = take("modelConfig.mainSteps", _int)
    every = take("modelConfig.evalEverySteps", _int)
    patience = take("modelConfig.earlyStoppingPatience", _int)
    adamw = take("modelConfig.useAdamW", _bool)
    if adamw is False:
        note("modelConfig.useAdamW", "false: nnTraining2 then uses Adam; osdml always trains "
             "with AdamW (train.weight_decay)")
    beta1 = take("modelConfig.adamwBeta1", _float)
    beta2 = take("modelConfig.adamwBeta2", _float)
    if beta1 is not None or beta2 is not None:
        put("train.betas", [0.9 if beta1 is None else beta1, 0.999 if beta2 is None else beta2],
            "modelConfig.adamwBeta1/adamwBeta2")
    if on:
        put("train.schedule", "warmup_cosine", "modelConfig.useLrSchedule")
        # nnTraining2: step-based training to totalTrainingSteps (default 50000); epochs do not
        # bound it and early stopping is off
        steps = 50_000 if total is None else total
        put("train.max_steps", steps, "modelConfig.totalTrainingSteps")
        put("train.max_epochs", _STEPS_MAX_EPOCHS, "modelConfig.totalTrainingSteps")
        put("train.early_stopping_patience", 0, "modelConfig.useLrSchedule")
        if epochs is not None:
            note("modelConfig.epochs", "not used by nnTraining2 with useLrSchedule (it trains "
                 f"totalTrainingSteps = {steps} steps: train.max_steps)", "ignored")
        if patience is not None:
            note("modelConfig.earlyStoppingPatience", "not used by nnTraining2 with "
                 "useLrSchedule (step-based training has no early stopping)", "ignored")
        if main is not None:
            why = ("the cosine phase spans train.max_steps - warmupSteps - cooldownSteps")
            note("modelConfig.mainSteps", why, "ignored")
        if every is not None:
            note("modelConfig.evalEverySteps", f"{every}: nnTraining2 reads it but validates "
                 "after every pass over the training data, as osdml does (every epoch)",
                 "ignored")
        return
    if on is False:
        put("train.schedule", "plateau", "modelConfig.useLrSchedule")
    if epochs is not None:
        put("train.max_epochs", epochs, "modelConfig.epochs")
    if patience is not None:
        put("train.early_stopping_patience", patience, "modelConfig.earlyStoppingPatience")
    for key, v in (("totalTrainingSteps", total), ("mainSteps", main),
                   ("evalEverySteps", every)):
        if v is not None:
            note(f"modelConfig.{key}", "a step-schedule setting; useLrSchedule is off "
                 "(epochs with ReduceLROnPlateau)", "ignored")


def _convert(key: str, value: Any, out: dict[str, Any], origin: dict[str, str]) -> str | None:
    """Map one key into `out`; return why it was ignored (a ``_Differs`` when mapped with a
    different behaviour), or None.

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
        return None if value in (None, False, "none", "None", "", "random") else _Differs(
            f"{value!r}: osdml samples events at random (random over/undersampling)")
    if key == "dataProcessing.accSdThreshold":
        # the measure of the app's movement gate (MlAccelStdThresholdPct): 100 x std / mean of
        # a datapoint's samples, %
        gate = _float(value)
        if not 0 <= gate <= 100:
            raise _BadValue(f"must be a percentage 0-100, got {json.dumps(value)}")
        for target, v in (("app.gate_pct", gate), ("app.tune_gates_pct", [gate])):
            _set(out, target, v)
            origin[target] = key
        return _Differs(
            f"{gate:g} %: the app's movement gate, so [app] gate_pct = {gate:g} (not tuned). "
            "Current nnTraining2 no longer reads it (flattenData.py dropped seizure datapoints "
            "below it until Aug 2025); osdml trains on every window and gates as the app does")
    if key in ("dataProcessing.dcNormalisation", "dataProcessing.dcOffsetAugmentation"):
        return None if value in (False, None) else _Differs(
            f"{value!r}: not supported; osdml feeds the magnitude as the app does (no DC "
            "removal or offset copies)")
    if key.startswith(("dataProcessing.dcNormalisation", "dataProcessing.dcOffsetAugmentation")):
        return "only used with dcNormalisation / dcOffsetAugmentation, which osdml does not have"
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
