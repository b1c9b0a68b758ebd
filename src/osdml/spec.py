"""ModelSpec: the one record that travels with every artefact.

It says everything needed to rebuild, run and check a model: the architecture and its
constructor arguments, the input contract (shape, layout, dtype, units, sample rate, window and
hop), the classes and decision threshold, what it was trained on and how well it did, and the
library versions. It is stored in the ``.pt`` checkpoint (``spec``), inside the ``.ptl`` archive
(``extra/osdml_spec.json``), in the ``.pte`` as constant methods (readable on the phone without
a sidecar) and in the ``model.pte.json`` sidecar. Loaders read it; they never guess shapes or
dropouts from key names.
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from osdml import __version__
from osdml.errors import InputError

SPEC_VERSION = 1
PTL_SPEC_NAME = "osdml_spec.json"  # extra file inside .ptl archives
# what publish and replay say about a three-axis model (format with what= and path=)
XYZ_REFUSED = ("cannot {what} {path}: it takes three-axis input (x, y, z; spec input \"xyz\") "
               "and the app feeds acceleration magnitude only")


class ModelSpec(BaseModel):
    """What a model is and how to feed it. Every field has a default for DeepEpiCnn on 25 Hz
    OSDB data; ``arch_kwargs`` are passed to ``create_model(arch, **arch_kwargs)``."""

    model_config = ConfigDict(extra="ignore")

    spec_version: int = SPEC_VERSION
    arch: str = "deep_epi_cnn"
    arch_kwargs: dict[str, Any] = Field(default_factory=lambda: {
        "input_length": 750, "num_classes": 2, "in_channels": 1,
        "conv_dropout": 0.0, "dense_dropout": 0.025})
    input_shape: tuple[int, int, int] = (1, 1, 750)  # (batch, channels, samples)
    # what the channels are: "magnitude" (1 channel, what the app feeds) or "xyz" (x, y, z from
    # rawData3D: research models, which the app cannot run); specs before this field: magnitude
    input: Literal["magnitude", "xyz"] = "magnitude"
    input_layout: str = "NCL"
    input_dtype: str = "float32"
    input_units: str = "g: acceleration magnitude (mg / 1000), gravity kept, unfiltered"
    sample_rate_hz: float = 25.0
    window_samples: int = 750
    hop_samples: int = 125
    class_names: list[str] = Field(default_factory=lambda: ["non-seizure", "seizure"])
    positive_class: int = 1
    output: str = "logits: softmax them; p[positive_class] is p(seizure)"
    threshold: float = 0.5
    quantization: str | None = None  # "int8" for PT2E-quantized programs
    # the app's settings for this model, tuned on validation (osdml.app.tune): threshold_pct
    # (MlSeizureProbabilityThresholdPct), gate_pct (MlAccelStdThresholdPct), warn_s, alarm_s,
    # voting, rule and the validation numbers they reached; empty when never tuned
    app_settings: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    created_utc: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.input_shape[2] != self.window_samples:
            raise ValueError(f"input_shape {self.input_shape} does not end in window_samples "
                             f"{self.window_samples}")
        if self.input == "xyz" and self.input_shape[1] != 3:
            raise ValueError(f"input xyz takes 3 channels, not input_shape {self.input_shape}")
        n = self.arch_kwargs.get("num_classes")
        if n is not None and n != len(self.class_names):
            raise ValueError(f"{len(self.class_names)} class names for {n} classes")
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"threshold {self.threshold} is not in [0, 1]")
        return self

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def build(self):
        """A new (untrained) model of this architecture; import torch."""
        from osdml.models import create_model

        return create_model(self.arch, **self.arch_kwargs)

    def stamped(self) -> ModelSpec:
        """A copy with the library versions and the creation time filled in."""
        import torch

        versions = {"osdml": __version__, "python": platform.python_version(),
                    "torch": torch.__version__}
        try:
            from importlib.metadata import version

            versions["executorch"] = version("executorch")
        except Exception:  # not installed: the spec records its absence
            versions["executorch"] = "not installed"
        return self.model_copy(update={"versions": versions,
                                       "created_utc": datetime.now(UTC).isoformat(
                                           timespec="seconds")})

    def to_json(self, indent: int | None = None) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "model spec") -> ModelSpec:
        """Parse a spec; raise ``InputError`` naming `source` when it is not one."""
        try:
            return cls.model_validate(json.loads(text))
        except ValidationError as e:
            raise InputError(f"{source}: not a valid osdml model spec ({_why(e)})") from None
        except ValueError as e:
            first = str(e).strip().splitlines()[0]
            raise InputError(f"{source}: not a valid osdml model spec ({first})") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model spec") -> ModelSpec:
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise InputError(f"{source}: not a valid osdml model spec ({_why(e)})") from None

    def constant_methods(self) -> dict[str, Any]:
        """The values stored as ``.pte`` constant methods, readable on the phone."""
        return {
            "input_length": self.window_samples,
            "sample_rate_hz": float(self.sample_rate_hz),
            "num_classes": self.num_classes,
            "threshold": float(self.threshold),
            "spec_json": self.to_json(),
        }


def _why(e: ValidationError) -> str:
    """The first problem pydantic found, as 'field: message'."""
    err = e.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ()))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    more = f"; {len(e.errors()) - 1} more" if len(e.errors()) > 1 else ""
    return f"{where}: {msg}{more}" if where else f"{msg}{more}"
