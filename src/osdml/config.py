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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from osdml.errors import InputError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ReaderConfig(_Section):
    """How OSDB datapoints become sample streams (these options key the parse cache)."""

    sample_rate_hz: float = Field(25.0, gt=0, description="Accelerometer sample rate, Hz.")
    datapoint_s: float = Field(5.0, gt=0, description="Seconds of samples per datapoint.")
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

    window_s: float = Field(30.0, gt=0, description="Window length, s (750 samples at 25 Hz).")
    hop_s: float = Field(5.0, gt=0, description="Hop between window starts, s (125 samples).")

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
    labels: dict[str, int] = Field(
        default_factory=lambda: {"seizure": 1, "false alarm": 0, "nda": 0},
        description="Event type (case-insensitive) -> class; other types are excluded.",
    )

    @model_validator(mode="before")
    @classmethod
    def _ids_as_strings(cls, data: Any) -> Any:
        # OSDB ids are ints in real releases and strings in generated ones: compare as strings.
        if isinstance(data, dict):
            data = dict(data)
            for key in ("include_users", "exclude_users", "invalid_event_ids"):
                if isinstance(data.get(key), list):
                    data[key] = [str(v) for v in data[key]]
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
    seed: int = Field(42, description="Seed of the event shuffle.")


class AugmentConfig(_Section):
    """Augmentation of the training part's seizure events only (never validation or test)."""

    user_balance: bool = Field(
        False, description="Copy seizure events of users with fewer of them until every user "
        "has as many as the user with the most."
    )
    noise_copies: int = Field(10, ge=0, description="Gaussian-noise copies per seizure event.")
    noise_sigma_mg: float = Field(30.0, ge=0, description="Noise standard deviation, mg.")
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
    seed: int = Field(42, description="Seed of the augmentation random numbers.")


class DataConfig(_Section):
    """Everything from OSDB files to labelled, split, augmented windows."""

    reader: ReaderConfig = Field(default_factory=ReaderConfig)
    windows: WindowConfig = Field(default_factory=WindowConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)


class RunConfig(_Section):
    """The whole run configuration. Later sections (model, training) extend this record."""

    data: DataConfig = Field(default_factory=DataConfig)


def format_validation_error(source: str, err: ValidationError) -> str:
    """Turn a pydantic error into one line: ``source: key.path: message (got value)``."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "literal_error":
            msg = f"must be one of {e['ctx']['expected']}"
        got = e.get("input")
        got_s = "" if e["type"] == "missing" or isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{loc}: {msg}{got_s}")
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
