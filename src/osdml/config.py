"""Run configuration: typed, documented defaults, read from TOML or JSON.

Precedence: the defaults below, then the configuration file, then command-line options (an
option left unset is ``None`` and does not override). The configuration is validated once, at
the entry point; after that typed objects are passed down, never raw dicts.

Defaults follow the OpenSeizureDetector deep-learning configuration (nnTraining2): 25 Hz, 30 s
windows with a 5 s hop, seizure events augmented with 10 noise copies at 30 mg.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from osdml.errors import InputError


class _Section(BaseModel):
    # strict: a TOML true is not a number and "64" is not an int (no silent coercion)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False,
                              strict=True)


class ReaderConfig(_Section):
    """How OSDB datapoints become sample streams (these options key the parse cache)."""

    sample_rate_hz: float = Field(25.0, gt=0, le=1000, description="Accelerometer sample "
                                  "rate, Hz.")
    datapoint_s: float = Field(5.0, gt=0, le=60, description="Seconds of samples per datapoint.")
    max_gap_s: float = Field(
        2.0, ge=0, description="Missing time between datapoints above which an event is split "
        "into segments; no window spans a split."
    )
    duplicate_tol_s: float = Field(
        1.0, ge=0, description="Datapoints closer in time than this are duplicates; the first "
        "(in file order) is kept."
    )
    min_mean_mg: float = Field(
        100.0, ge=0, description="A datapoint whose mean magnitude is below this (mg) is "
        "skipped: the watch rests at about 1000 mg, so such data is in other units (m/s^2)."
    )
    max_abs_mg: float = Field(
        1e6, gt=0, description="A datapoint with a sample beyond +-this (mg) is skipped: no "
        "wrist accelerometer reads 1000 g, so such values are corrupt."
    )

    @property
    def samples_per_datapoint(self) -> int:
        n = self.sample_rate_hz * self.datapoint_s
        if abs(n - round(n)) > 1e-9:
            raise InputError(
                f"reader: sample_rate_hz x datapoint_s = {n:g} is not a whole number of samples"
            )
        return int(round(n))


class WindowConfig(_Section):
    """Model input windows over each event's sample stream."""

    window_s: float = Field(30.0, gt=0, le=600, description="Window length, s (750 samples at "
                            "25 Hz).")
    hop_s: float = Field(5.0, gt=0, le=600, description="Hop between window starts, s (125 "
                         "samples).")
    input: Literal["magnitude", "xyz"] = Field(
        "magnitude", description="Model input: \"magnitude\" (1 channel, rawData / 1000, what "
        "the app feeds) or \"xyz\" (3 channels x, y, z from rawData3D / 1000, g; events "
        "without rawData3D in every datapoint are left out). The app feeds magnitude only: "
        "xyz models are for research and cannot be published.")

    def samples(self, sample_rate_hz: float) -> tuple[int, int]:
        """Return ``(window_samples, hop_samples)`` at `sample_rate_hz`."""
        window, hop = self.window_s * sample_rate_hz, self.hop_s * sample_rate_hz
        for name, n in (("window_s", window), ("hop_s", hop)):
            if abs(n - round(n)) > 1e-9:
                raise InputError(f"windows.{name} x sample rate = {n:g} is not whole samples")
        return int(round(window)), int(round(hop))


class SelectionConfig(_Section):
    """Which events are used, and how event types become labels.

    Users, event ids and data sources match exactly (``"39"`` never matches user 139); types and
    subtypes match case-insensitively (a null subType matches ``"null"``); description filters
    are case-insensitive substrings. Empty include lists include everything.
    """

    include_users: list[str] = Field(default_factory=list)
    exclude_users: list[str] = Field(default_factory=list)
    include_types: list[str] = Field(default_factory=list)
    exclude_types: list[str] = Field(default_factory=list)
    include_subtypes: list[str] = Field(default_factory=list)
    exclude_subtypes: list[str] = Field(default_factory=list)
    include_sources: list[str] = Field(default_factory=list)
    exclude_sources: list[str] = Field(default_factory=list)
    include_desc: list[str] = Field(default_factory=list, description="Substrings, any.")
    exclude_desc: list[str] = Field(default_factory=list, description="Substrings, any.")
    require_3d: bool = Field(False, description="Every datapoint must carry rawData3D.")
    require_hr: bool = Field(False, description="Every datapoint must carry a heart rate.")
    invalid_event_ids: list[str] = Field(default_factory=list, description="Always excluded.")
    labels: dict[str, Annotated[int, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: {"seizure": 1, "false alarm": 0, "nda": 0},
        description="Event type (case-insensitive) -> class 0 or 1; other types are excluded.",
    )

    @model_validator(mode="before")
    @classmethod
    def _ids_as_strings(cls, data: Any) -> Any:
        # OSDB ids are ints in real releases and strings in generated ones: compare as strings
        # (osdml.ids.normalize_id: 39, 39.0 and "39" are the same id).
        from osdml.ids import normalize_id

        if isinstance(data, dict):
            data = dict(data)
            for key in ("include_users", "exclude_users", "invalid_event_ids"):
                if isinstance(data.get(key), list):
                    ids = [normalize_id(v) for v in data[key]]
                    bad = [v for v, i in zip(data[key], ids, strict=True) if i is None]
                    if bad:
                        raise ValueError(f"{key}: {bad[0]!r} is not an id (int or string)")
                    data[key] = ids
        return data


class SplitConfig(_Section):
    """How events are divided into train / validation / test parts."""

    method: Literal["holdout", "kfold", "nested"] = Field(
        "holdout", description="holdout: one split; kfold: k test folds; nested: k outer test "
        "folds, each with inner validation folds."
    )
    n_folds: int = Field(5, ge=2, description="Folds for kfold, outer folds for nested.")
    n_inner_folds: int = Field(3, ge=2, description="Inner (validation) folds for nested.")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="holdout: share of events.")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="Share of the non-test events.")
    group_by_user: bool = Field(False, description="Keep each user on one side of every split.")
    seed: int = Field(42, ge=0, lt=2**32, description="Seed of the event shuffle.")


class NegativeNoiseRule(_Section):
    """Noise copies of the training part's non-seizure (class 0) events of one subtype
    (nnTraining2's ``noiseAugmentationNonSeizurePairs`` entry ``{type: 0, subType, factor,
    value}``). Unset ``copies`` / ``sigma_mg`` take ``negative_noise_copies`` /
    ``negative_noise_sigma_mg``, as a pair without ``factor`` / ``value`` takes upstream's
    ``noiseAugmentationNonSeizureFactor`` / ``...Value``."""

    subtype: str = Field(min_length=1, description="Event subType, matched case-insensitively "
                         "(surrounding spaces ignored) on class-0 events (upstream: subType).")
    copies: int | None = Field(None, ge=0, le=1000, description="Noise copies per matching "
                               "event; 0 = none (upstream: factor).")
    sigma_mg: float | None = Field(None, ge=0, le=10000, description="Noise standard "
                                   "deviation, mg (upstream: value).")


class AugmentConfig(_Section):
    """Augmentation of the training part only (never validation or test): its seizure events,
    and with ``negative_noise`` chosen subtypes of its non-seizure events."""

    user_balance: bool = Field(
        False, description="Copy seizure events of users with fewer of them until every user "
        "has as many as the user with the most (upstream: userAugmentation)."
    )
    user_balance_threshold: int = Field(
        0, ge=0, le=100000, description="Users with fewer training seizure events than this "
        "are pooled into one pseudo-user before user_balance (0 = no pooling; upstream: "
        "userAugmentationThreshold)."
    )
    sample_rate_factors: list[float] = Field(
        default_factory=list, max_length=32, description="Resample each training seizure event "
        "in time by each factor (1.1 = 10 % more samples, as if recorded at 1.1 x the rate; "
        "each in [0.5, 2], not 1; [] = off; upstream: sampleRateAugmentationFactors)."
    )
    negative_noise: list[NegativeNoiseRule] = Field(
        default_factory=list, max_length=1000, description="Noise copies of non-seizure "
        "events of these subtypes ([] = off; upstream: noiseAugmentationNonSeizurePairs)."
    )
    negative_noise_copies: int = Field(
        5, ge=0, le=1000, description="Noise copies per matching non-seizure event where a "
        "rule sets no copies (upstream: noiseAugmentationNonSeizureFactor)."
    )
    negative_noise_sigma_mg: float = Field(
        5.0, ge=0, le=10000, description="Noise standard deviation, mg, where a rule sets no "
        "sigma_mg (upstream: noiseAugmentationNonSeizureValue)."
    )
    noise_copies: int = Field(10, ge=0, le=1000, description="Gaussian-noise copies per seizure "
                              "event.")
    noise_sigma_mg: float = Field(30.0, ge=0, le=10000, description="Noise standard deviation, "
                                  "mg.")
    phase_step_samples: int = Field(
        0, ge=0, description="Phase-shift copies at every multiple of this step below the hop "
        "(0 = off)."
    )
    oversample: bool = Field(
        False, description="Randomly repeat seizure events until seizure windows reach "
        "target_ratio x non-seizure windows."
    )
    undersample: bool = Field(
        False, description="Randomly drop non-seizure events until non-seizure windows are at "
        "most seizure windows / target_ratio."
    )
    target_ratio: float = Field(1.0, gt=0, description="Seizure : non-seizure window ratio.")
    seed: int = Field(42, ge=0, lt=2**32, description="Seed of the augmentation random numbers.")

    @field_validator("sample_rate_factors")
    @classmethod
    def _factors(cls, v: list[float]) -> list[float]:
        for f in v:
            if not 0.5 <= f <= 2.0 or f == 1.0:
                raise ValueError(f"each factor must be in [0.5, 2] and not 1, got {f:g}")
        if len(set(v)) != len(v):
            raise ValueError(f"factors repeat: {v}")
        return v

    @field_validator("negative_noise")
    @classmethod
    def _rules(cls, v: list[NegativeNoiseRule]) -> list[NegativeNoiseRule]:
        seen = [r.subtype.strip().casefold() for r in v]
        dup = sorted({s for s in seen if seen.count(s) > 1})
        if dup:
            raise ValueError(f"subtype given more than once (case-insensitive): {dup}")
        return v


class LabelConfig(_Section):
    """Window labels of seizure events from their ``seizureTimes`` (``osdml.data.labels``).

    Off by default: every window of a seizure event is a seizure window. When on, a window of a
    seizure event that has ``seizureTimes`` ([start, end] s after the event's ``dataTime``) is
    a seizure window when its 30 s span overlaps [start - margin_s, end + margin_s]; the others are
    left out (``exclude``) or labelled non-seizure (``negative``). Seizure events without
    ``seizureTimes`` keep the whole-event label; non-seizure events are not touched. Applies to
    training (augmented copies included), validation and test windows; alarms (the app's
    engine, per event) do not change. Not to be confused with ``data.selection.labels`` (event
    type -> class).
    """

    use_seizure_times: bool = Field(
        False, description="Label the windows of seizure events that have seizureTimes by "
        "whether they overlap the seizure (false: every window of a seizure event is a seizure "
        "window).")
    margin_s: float = Field(
        0.0, ge=0, le=3600, description="Seconds added before the seizure start and after its "
        "end before windows are compared with it.")
    outside: Literal["exclude", "negative"] = Field(
        "exclude", description="Windows of such a seizure event wholly outside the widened "
        "seizure: exclude (left out of training and window metrics) or negative (labelled 0).")


class DataConfig(_Section):
    """Everything from OSDB files to labelled, split, augmented windows."""

    files: list[str] = Field(default_factory=list, description="OSDB files or folders, "
                             "relative to the current folder (--data replaces them).")
    reader: ReaderConfig = Field(default_factory=ReaderConfig)
    windows: WindowConfig = Field(default_factory=WindowConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    labels: LabelConfig = Field(default_factory=LabelConfig)


class ModelConfig(_Section):
    """The architecture (``osdml.models``) and its options; an option of another architecture
    is ignored (``arch_options`` passes only the chosen one's)."""

    arch: Literal["deep_epi_cnn", "cnn_lstm"] = Field(
        "deep_epi_cnn", description="Registered architecture name (osdml.models): deep_epi_cnn "
        "(14-layer CNN) or cnn_lstm (1-s CNN features into an LSTM).")
    conv_dropout: float = Field(0.05, ge=0, lt=1, description="Both archs: dropout after each "
                                "conv block.")
    dense_dropout: float = Field(0.025, ge=0, lt=1, description="Both archs: dropout after "
                                 "dense layer 1 (deep_epi_cnn), after each hidden dense layer "
                                 "(cnn_lstm).")
    cnn_window_s: float = Field(1.0, gt=0, le=60, description="cnn_lstm: seconds per CNN "
                                "sub-window; data.windows.window_s must be a whole number of "
                                "them (the LSTM steps).")
    feature_dim: int = Field(64, ge=1, le=4096, description="cnn_lstm: CNN feature size per "
                             "sub-window (LSTM input).")
    lstm_hidden: int = Field(128, ge=1, le=4096, description="cnn_lstm: LSTM hidden units.")
    lstm_layers: int = Field(2, ge=1, le=8, description="cnn_lstm: stacked LSTM layers.")
    lstm_dropout: float = Field(0.2, ge=0, lt=1, description="cnn_lstm: dropout between LSTM "
                                "layers (none with one layer).")

    def arch_options(self, sample_rate_hz: float) -> dict[str, Any]:
        """The constructor options of the chosen ``arch`` (window, classes and channels are
        added by the caller), in samples at `sample_rate_hz`.

        Raises
        ------
        InputError
            If ``cnn_window_s`` (cnn_lstm) is not a whole number of samples.
        """
        options: dict[str, Any] = {"conv_dropout": self.conv_dropout,
                                   "dense_dropout": self.dense_dropout}
        if self.arch == "cnn_lstm":
            n = self.cnn_window_s * sample_rate_hz
            if abs(n - round(n)) > 1e-9:
                raise InputError(f"model.cnn_window_s={self.cnn_window_s:g} s at "
                                 f"{sample_rate_hz:g} Hz is {n:g} samples; it must be a whole "
                                 "number of samples")
            options.update(cnn_window_samples=int(round(n)), feature_dim=self.feature_dim,
                           lstm_hidden=self.lstm_hidden, lstm_layers=self.lstm_layers,
                           lstm_dropout=self.lstm_dropout)
        return options


class TrainConfig(_Section):
    """Training (Lightning): optimiser, learning-rate schedule, sampling and checkpoint choice.

    The checkpoint is chosen on the validation part only. ``checkpoint_metric``:
    ``min_fpr`` (lowest window false-positive rate with sensitivity >= ``min_sensitivity``),
    ``youden`` (sensitivity - FPR), ``f_beta`` (F-beta of the seizure class) or ``val_loss``.
    The metric criteria only consider epochs with sensitivity >= ``min_sensitivity`` and FPR
    <= ``max_fpr`` (when set) that predict both classes; if none qualifies, a warning says so
    and the epoch with the lowest validation loss is used.
    """

    max_epochs: int = Field(100, ge=1, le=100000, description="Upper bound on training passes.")
    batch_size: int = Field(512, ge=2, le=65536, description="Windows per optimisation step.")
    windows_per_epoch: int | None = Field(
        None, ge=2, le=10**9, description="Training windows drawn per epoch (unset: all of them "
        "once).")
    max_steps: int | None = Field(
        None, ge=1, le=10**9, description="Stop after this many optimisation steps (unset: "
        "max_epochs decides); the warmup_cosine schedule then spans them (nnTraining2's "
        "totalTrainingSteps).")
    lr_peak: float = Field(1e-4, gt=0, le=1, description="Peak learning rate (AdamW).")
    lr_start: float | None = Field(
        None, gt=0, le=1, description="warmup_cosine: learning rate at the first warm-up step "
        "(unset: ~0); plateau and constant: the starting learning rate (unset: lr_peak). "
        "nnTraining2's lrStart.")
    lr_end: float = Field(3e-5, ge=0, le=1, description="Learning rate at the end of the cosine "
                          "phase (at most lr_peak); the cool-down then goes linearly to 0.")
    weight_decay: float = Field(1e-4, ge=0, le=1, description="AdamW weight decay.")
    betas: list[Annotated[float, Field(ge=0, lt=1)]] = Field(
        default_factory=lambda: [0.9, 0.999], min_length=2, max_length=2,
        description="AdamW betas, each in [0, 1).")
    schedule: Literal["warmup_cosine", "plateau", "constant"] = Field(
        "warmup_cosine", description="warmup_cosine: per-step linear warm-up, cosine decay, "
        "linear cool-down; plateau: reduce on validation-loss plateau; constant.")
    warmup_steps: int | None = Field(None, ge=0, description="Steps of warm-up (default 5% "
                                     "of all steps).")
    cooldown_steps: int | None = Field(None, ge=0, description="Steps of cool-down (default "
                                       "5% of all steps).")
    plateau_factor: float = Field(0.1, gt=0, lt=1, description="plateau: LR multiplier.")
    plateau_patience: int = Field(5, ge=0, description="plateau: epochs without improvement.")
    lr_min: float = Field(1e-7, ge=0, le=1, description="plateau: lowest learning rate.")
    balanced_sampling: bool = Field(True, description="Draw windows so each class is equally "
                                    "likely in a batch (with replacement).")
    class_weights: Literal["none", "balanced"] | list[Annotated[float, Field(gt=0)]] = Field(
        "none", description="balanced: weight the loss by n / (classes x class count); or one "
        "weight per class, e.g. [0.5, 2.0] (nnTraining2's posWeightMultiplier p is [1/p, p]).")
    early_stopping_patience: int = Field(
        6, ge=0, description="Stop after this many epochs without a lower validation loss "
        "(0: never stop early).")
    checkpoint_metric: Literal["min_fpr", "youden", "f_beta", "f_beta_spec",
                               "dual_improvement", "val_loss"] = Field(
        "min_fpr", description="How the checkpoint is chosen on the validation part: min_fpr, "
        "youden, f_beta (of precision and sensitivity), f_beta_spec (of specificity and "
        "sensitivity, nnTraining2's f_beta), dual_improvement (nnTraining2's rule) or "
        "val_loss.")
    dual_far_reduction: float = Field(
        0.10, ge=0, le=1, description="dual_improvement: relative FPR reduction that saves an "
        "epoch whose sensitivity stays within dual_sensitivity_tolerance "
        "(saveBestOnFarReduction).")
    dual_sensitivity_tolerance: float = Field(
        0.05, ge=0, le=1, description="dual_improvement: largest sensitivity change allowed "
        "with such an FPR reduction (saveBestOnSensitivityTolerance).")
    min_sensitivity: float = Field(0.25, ge=0, le=1, description="Window sensitivity an epoch "
                                   "needs to be chosen by a metric criterion.")
    max_fpr: float | None = Field(None, ge=0, le=1, description="Window FPR an epoch may not "
                                  "exceed to be chosen by a metric criterion.")
    f_beta: float = Field(2.0, gt=0, le=100, description="Beta of f_beta (>1 favours "
                          "sensitivity).")
    threshold: float = Field(0.5, ge=0, le=1, description="Decision threshold on p(seizure) of "
                             "window metrics and checkpoint choice (alarms use [app]).")
    seed: int = Field(42, ge=0, lt=2**32, description="Seed of weights, sampling and dropout.")
    accelerator: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Where to train: auto (a CUDA GPU when there is one, else Apple "
        "MPS, else the CPU), cpu, cuda or mps.")
    devices: int = Field(1, ge=1, le=1024, description="Devices (GPUs, or CPU processes with "
                         "strategy ddp) that train one model together.")
    precision: Literal["auto", "32-true", "bf16-mixed", "16-mixed"] = Field(
        "auto", description="Arithmetic of training: auto (bf16-mixed on a CUDA GPU that has "
        "bf16, 16-mixed on an older one, 32-true on the CPU and MPS), 32-true, bf16-mixed, "
        "16-mixed (CUDA only).")
    strategy: Literal["auto", "ddp"] = Field(
        "auto", description="auto: one process (devices must be 1 unless on GPUs); ddp: "
        "Lightning's distributed data parallel, one process per device.")
    num_workers: int = Field(0, ge=0, le=64, description="Worker processes that gather "
                             "training batches (0: the training process itself).")

    @model_validator(mode="after")
    def _lr_order(self) -> TrainConfig:
        if self.lr_end > self.lr_peak:
            raise ValueError(f"lr_end={self.lr_end:g} is above lr_peak={self.lr_peak:g}")
        if (self.max_steps is not None and self.schedule == "warmup_cosine"
                and (self.warmup_steps or 0) + (self.cooldown_steps or 0) > self.max_steps):
            raise ValueError(f"warmup_steps + cooldown_steps = "
                             f"{(self.warmup_steps or 0) + (self.cooldown_steps or 0)} exceed "
                             f"max_steps={self.max_steps}: the schedule cannot fit")
        return self


class ExportConfig(_Section):
    """Artefacts written after training and the parity check each must pass."""

    formats: list[Literal["pt", "ptl", "pte"]] = Field(
        default_factory=lambda: ["pt", "ptl", "pte"], min_length=1,
        description="Artefacts to write (at least one).")
    pte_backend: Literal["xnnpack", "portable"] = Field(
        "xnnpack", description="xnnpack: lower to the XNNPACK delegate; portable: kernels only.")
    validate_windows: int = Field(256, ge=1, le=1_000_000, description="Held-out windows each "
                                  "artefact is checked on (all test windows if fewer).")
    fp32_atol: float = Field(1e-4, gt=0, description="Largest logit difference allowed for "
                             "fp32 artefacts against the eager model.")


class EvaluateConfig(_Section):
    """Cross-validation runs (``osdml run``): which fold's model is the best, and reports.

    ``best_fold``: ``sensitivity_at_far`` takes the fold with the highest validation event
    sensitivity (app alarm rule) among folds whose validation false alarms per 24 h stay within
    ``max_far_24h`` (ties: fewer false alarms, then lower validation loss); when no fold stays
    within the limit, a warning says so and the fold with the fewest false alarms per 24 h is
    taken. ``youden``: highest validation window sensitivity - FPR. ``val_loss``: lowest
    validation loss. Test results never take part in the choice.
    """

    best_fold: Literal["sensitivity_at_far", "youden", "val_loss"] = Field(
        "sensitivity_at_far", description="How the best fold is chosen from validation results: "
        "sensitivity_at_far, youden or val_loss.")
    max_far_24h: float = Field(1.0, ge=0, description="sensitivity_at_far: the most false "
                               "alarms per 24 h of non-seizure recording a fold may have.")
    timelines: int = Field(4, ge=0, le=100, description="Timelines plotted in a report for each "
                           "of missed seizures and false alarms.")


class AppConfig(_Section):
    """The phone app's settings: every alarm figure comes from the app's engine with them
    (``osdml.app.engine``; APP_CONTRACT.md). Defaults are the app's own.

    The probability threshold and the movement gate are tuned on the validation part
    (``tune``): a sweep of ``tune_thresholds_pct`` x ``tune_gates_pct`` by the app's engine,
    the model alone; ``sensitivity_at_far`` takes the highest validation event sensitivity with
    at most ``tune_max_far_24h`` false alarms per 24 h (ties: fewer false alarms, then nearer
    the app's defaults); ``none`` keeps ``threshold_pct`` and ``gate_pct``. The tuned values
    go into the model's spec and ``osdml publish``'s index entry.
    """

    threshold_pct: float = Field(50.0, ge=0, le=100, description="MlSeizureProbabilityThreshold"
                                 "Pct: a model votes ALARM when p > threshold_pct / 100.")
    gate_pct: float = Field(5.0, ge=0, le=100, description="MlAccelStdThresholdPct: p = 0 when "
                            "100 x std / mean of a datapoint's samples is below it.")
    warn_s: float = Field(5.0, ge=0, le=3600, description="WarnTime: WARNING once the counter "
                          "exceeds it, s.")
    alarm_s: float = Field(10.0, ge=0, le=3600, description="AlarmTime: ALARM once the counter "
                           "exceeds it, s.")
    voting: Literal["any", "majority", "unanimous", "weighted"] = Field(
        "any", description="VotingStrategy across the OSD algorithm and the models.")
    osd_active: bool = Field(True, description="OsdAlarmActive: the built-in OSD algorithm "
                             "votes beside the models (combined results).")
    tune: Literal["sensitivity_at_far", "none"] = Field(
        "sensitivity_at_far", description="How threshold_pct and gate_pct are chosen on the "
        "validation part: sensitivity_at_far or none (keep them).")
    tune_max_far_24h: float = Field(1.0, ge=0, description="sensitivity_at_far: the most "
                                    "validation false alarms per 24 h.")
    tune_thresholds_pct: list[Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=lambda: [float(t) for t in range(5, 100, 5)], min_length=1,
        description="Thresholds tried, %.")
    tune_gates_pct: list[Annotated[float, Field(ge=0, le=100)]] = Field(
        default_factory=lambda: [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0], min_length=1,
        description="Movement gates tried, %.")

    def settings(self):
        """The ``osdml.app.engine.AppSettings`` of this section (before tuning)."""
        from osdml.app.engine import AppSettings

        return AppSettings(threshold_pct=self.threshold_pct, gate_pct=self.gate_pct,
                           warn_s=self.warn_s, alarm_s=self.alarm_s, voting=self.voting,
                           osd=self.osd_active)


class ExecutorConfig(_Section):
    """Where independent trainings (the folds of ``osdml run``) run.

    ``local``: one after the other in this process. ``ray``: each as a Ray task with
    ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs, on a local Ray instance
    (``ray_address`` unset) or an existing cluster (``auto``, ``ray://host:port``); the run
    folder and the data files must then be at the same paths on every node.
    """

    kind: Literal["local", "ray"] = Field("local", description="local (in this process) or "
                                          "ray (pip install 'osdml[ray]').")
    ray_address: str | None = Field(None, description="ray: cluster to join (auto, "
                                    "ray://host:port); unset: start a local Ray instance.")
    cpus_per_task: float = Field(1.0, gt=0, le=1024, description="ray: CPUs reserved for "
                                 "each training (torch uses as many threads).")
    gpus_per_task: float = Field(0.0, ge=0, le=64, description="ray: GPUs reserved for each "
                                 "training (fractions share a GPU).")


PAPER_QUANTILES = [round(0.1 * i, 1) for i in range(11)]


class EnsembleConfig(_Section):
    """Ensembles (``osdml ensemble``): the method of Spahr et al., Epilepsia 2025
    (doi 10.1111/epi.18406).

    The test users (``data.split.test_fraction`` of the users, seed ``data.split.seed``) are
    held out first. Each of ``members`` models trains on its own random user-level
    train / validation split of the other users: users are drawn into validation, those seldom
    drawn before first, until it holds ``val_seizures`` seizure events (unset:
    ``data.split.val_fraction`` of the users). The ``keep`` members nearest to
    (sensitivity 1, 0 false alarms per day) on their own validation part are kept; their
    p(seizure) are combined by the Harrell-Davis quantile ``q``, chosen among ``quantile`` on
    the kept members' validation events; a window is positive when the ensemble's p exceeds
    ``threshold``. ``scoring`` says which event scoring judges members and quantiles: the
    paper's (``paper``: seizure interval padded 120 s before and 10 s after, false alarms in
    150 s pieces) or the app's alarm engine (``app``).
    """

    members: int = Field(30, ge=1, le=200, description="Models trained, each on its own "
                         "random user-level train / validation split.")
    keep: int = Field(10, ge=1, le=200, description="Members kept: the nearest to "
                      "(sensitivity 1, FAR 0) on their validation part.")
    quantile: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: list(PAPER_QUANTILES), min_length=1,
        description="Harrell-Davis quantile(s) q to choose from on validation (one value: "
        "that q).")
    val_seizures: int | None = Field(None, ge=1, description="Seizure events in each member's "
                                     "validation part (unset: data.split.val_fraction of the "
                                     "users).")
    threshold: float = Field(0.5, gt=0, lt=1, description="A window is positive when the "
                             "ensemble's p(seizure) exceeds it (the paper: 0.5).")
    scoring: Literal["paper", "app"] = Field(
        "paper", description="Event scoring that ranks members and chooses q: paper "
        "(Spahr et al. 2025) or app (the app's alarm engine).")
    seed: int = Field(0, ge=0, lt=2**32, description="Seed of the members' train / "
                      "validation splits (member i trains with train.seed + i).")

    @field_validator("quantile", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, int | float) else v

    @model_validator(mode="after")
    def _keep_le_members(self) -> EnsembleConfig:
        if self.keep > self.members:
            raise ValueError(f"keep={self.keep} exceeds members={self.members}")
        return self


class RunConfig(_Section):
    """The whole run configuration: data, model, training, export, evaluation, the app and
    where trainings run."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    app: AppConfig = Field(default_factory=AppConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)

    @model_validator(mode="after")
    def _whole_samples(self) -> RunConfig:
        # checked here so that the error names the configuration file
        rate = self.data.reader.sample_rate_hz
        for what, seconds in (("data.reader.datapoint_s", self.data.reader.datapoint_s),
                              ("data.windows.window_s", self.data.windows.window_s),
                              ("data.windows.hop_s", self.data.windows.hop_s)):
            n = seconds * rate
            if abs(n - round(n)) > 1e-9 or round(n) < 1:
                raise ValueError(f"{what}={seconds:g} s at {rate:g} Hz is {n:g} samples; it must "
                                 "be a whole number of samples")
        return self

    def to_toml(self, comments: bool = True) -> str:
        """The configuration as TOML, each key preceded by its description (unset optional
        values are left out as comments)."""
        return "".join(_toml_section(self, (), comments)).lstrip("\n")


def _toml_section(section: BaseModel, path: tuple[str, ...], comments: bool):
    lines, tables = [], []
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        if isinstance(value, BaseModel):
            tables.append((name, value))
            continue
        if comments and field.description:
            lines.append(f"# {field.description}\n")
        lines.append(f"# {name} = (unset)\n" if value is None
                     else f"{name} = {_toml_value(value)}\n")
    if lines:
        yield f"\n[{'.'.join(path)}]\n"
        yield from lines
    for name, sub in tables:
        yield from _toml_section(sub, (*path, name), comments)


def _toml_value(value: Any) -> str:
    """One TOML value, arrays and tables inline."""
    import tomli_w

    if isinstance(value, BaseModel):  # a table in a list (data.augment.negative_noise)
        value = value.model_dump(exclude_none=True)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}"
                                for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return tomli_w.dumps({"v": value})[4:].strip()


def format_validation_error(source: str, err: ValidationError) -> str:
    """Turn a pydantic error into one line: ``source: key.path: message (got value)``."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "literal_error":
            msg = f"must be one of {e['ctx']['expected']}"
        got = e.get("input")
        got_s = "" if e["type"] == "missing" or isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{loc}: {msg}{got_s}" if loc else msg)
    return f"{source}: " + "; ".join(parts)


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Read a run configuration from TOML or JSON, apply `overrides`, and validate it.

    Parameters
    ----------
    path : path-like or None
        A ``.toml`` or ``.json`` file. ``None`` gives the defaults.
    overrides : dict or None
        Nested values (for example from command-line options) applied over the file; ``None``
        values are dropped so an unset option never overrides.

    Raises
    ------
    InputError
        If the file is missing or not valid TOML/JSON, or a value is invalid; the message names
        the file and the key path.
    """
    raw: dict[str, Any] = {}
    source = "configuration"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"cannot read configuration: {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read configuration: {path}: {e}") from None
        try:
            if path.suffix.lower() == ".json":
                raw = json.loads(text)
            else:
                raw = tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
            kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
            raise InputError(
                f"cannot read configuration: {path} is not valid {kind}: {e}"
            ) from None
        if not isinstance(raw, dict):
            raise InputError(f"cannot read configuration: {path}: top level must be a table")
    if overrides:
        raw = _merge(raw, _drop_none(overrides))
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        raise InputError(format_validation_error(source, e)) from None


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _drop_none(v)
            if v:
                out[k] = v
        elif v is not None:
            out[k] = v
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# where and how a model trains, not what it learns: a run may resume on another machine
PLACEMENT_KEYS = ("accelerator", "devices", "precision", "strategy", "num_workers")


def config_difference(a: RunConfig, b: RunConfig) -> str | None:
    """The first key where two run configurations differ, as "key: A here, B in the run", or
    None when they are the same. ``data.files`` is not compared (a run records its files
    resolved; the events themselves are checked against the split manifest), nor where it
    trains (``PLACEMENT_KEYS`` of ``[train]`` and ``[executor]``: a run may resume on another
    machine; its numbers then equal an uninterrupted run's only on the same device and
    precision)."""
    def plain(cfg: RunConfig) -> dict:
        d = cfg.model_dump(mode="json")
        d["data"].pop("files", None)
        for key in PLACEMENT_KEYS:
            d["train"].pop(key, None)
        d.pop("executor", None)
        return d

    def walk(x, y, path):
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                found = walk(x.get(k), y.get(k), (*path, k))
                if found:
                    return found
            return None
        return None if x == y else f"{'.'.join(path)}: {x!r} here, {y!r} in the run"
    return walk(plain(a), plain(b), ())
