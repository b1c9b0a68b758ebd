"""ModelSpec: the record saved with every artefact."""

from __future__ import annotations

import pytest

from osdml.errors import InputError
from osdml.spec import ModelSpec


def test_json_round_trip_and_rebuild():
    spec = ModelSpec(threshold=0.4, training={"seed": 3}).stamped()
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec
    assert spec.versions["torch"].startswith("2.13") and spec.created_utc
    model = again.build()
    assert model.fc_out.out_features == 2


def test_constant_methods_carry_the_key_numbers():
    c = ModelSpec().constant_methods()
    assert c["input_length"] == 750 and c["num_classes"] == 2
    assert c["sample_rate_hz"] == 25.0 and c["threshold"] == 0.5
    assert ModelSpec.from_json(c["spec_json"]) == ModelSpec()


@pytest.mark.parametrize("bad, why", [
    ({"input_shape": [1, 1, 500]}, "does not end in window_samples 750"),
    ({"class_names": ["a", "b", "c"]}, "class"),
    ({"threshold": 1.5}, "threshold 1.5 is not in [0, 1]"),
])
def test_inconsistent_specs_are_refused_with_the_reason(bad, why):
    with pytest.raises(InputError, match="not a valid osdml model spec") as e:
        ModelSpec.from_dict({**ModelSpec().model_dump(), **bad})
    assert why in str(e.value) and "validation error" not in str(e.value)


def test_not_json_is_refused():
    with pytest.raises(InputError, match="somefile: not a valid"):
        ModelSpec.from_json("<html>", source="somefile")
