"""Export round trips: each artefact in its own runtime against the eager model."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from osdml.errors import InputError
from osdml.export.checkpoint import load_pt, save_pt
from osdml.export.pte import PteRunner, executorch_status, export_pte
from osdml.export.ptl import export_ptl, load_ptl, read_ptl_spec
from osdml.export.validate import artefact_logits, eager_logits, validate_artefacts
from osdml.spec import ModelSpec


@pytest.fixture(scope="module")
def model_and_spec():
    torch.manual_seed(1)
    spec = ModelSpec(threshold=0.5).stamped()
    model = spec.build().eval()
    return model, spec


@pytest.fixture(scope="module")
def windows():
    rng = np.random.default_rng(0)
    return (1.0 + 0.3 * rng.standard_normal((12, 1, 750))).astype(np.float32)


def test_pt_round_trip_is_exact(model_and_spec, windows, tmp_path):
    model, spec = model_and_spec
    path = save_pt(tmp_path / "m.pt", model, spec, metrics={"a": 1})
    again, spec2, payload = load_pt(path)
    assert spec2 == spec and payload["metrics"] == {"a": 1}
    assert np.array_equal(eager_logits(model, windows), eager_logits(again, windows))


def test_ptl_round_trip_carries_the_spec(model_and_spec, windows, tmp_path):
    model, spec = model_and_spec
    with pytest.warns(UserWarning, match="without optimize_for_mobile"):
        path = export_ptl(model, spec, tmp_path / "m.ptl")
    module, spec2 = load_ptl(path)
    assert spec2 == spec and read_ptl_spec(path) == spec
    diff = np.abs(artefact_logits("ptl", path, windows) - eager_logits(model, windows)).max()
    assert diff < 1e-5


def test_pte_round_trip_metadata_and_input_check(model_and_spec, windows, tmp_path):
    model, spec = model_and_spec
    info = export_pte(model, spec, tmp_path / "m.pte")
    assert info.delegated_ops >= 1 and info.min_cpu_features == []
    sidecar = json.loads((tmp_path / "m.pte.json").read_text())
    assert sidecar["size_bytes"] == (tmp_path / "m.pte").stat().st_size
    assert sidecar["sha256"] == info.sha256 and sidecar["spec"]["window_samples"] == 750
    run = PteRunner(tmp_path / "m.pte")
    assert run.constant("input_length") == 750 and run.constant("num_classes") == 2
    assert run.constant("threshold") == pytest.approx(0.5)
    assert ModelSpec.from_json(run.constant("spec_json")) == spec
    diff = np.abs(artefact_logits("pte", tmp_path / "m.pte", windows)
                  - eager_logits(model, windows)).max()
    assert diff < 1e-4
    with pytest.raises(InputError, match=r"expected \(1, 1, 750\) float32, got \(1, 750\)"):
        run(np.zeros((1, 750), np.float32))
    with pytest.raises(InputError, match="float64"):
        run(np.zeros((1, 1, 750)))


def test_parity_fails_for_a_changed_weight(model_and_spec, windows, tmp_path):
    model, spec = model_and_spec
    path = save_pt(tmp_path / "m.pt", model, spec)
    other = spec.build().eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.fc_out.bias += 0.5
    (ok,) = validate_artefacts(model, {"pt": path}, windows)
    (bad,) = validate_artefacts(other, {"pt": path}, windows)
    assert ok.passed and not bad.passed and bad.max_abs_logit_diff == pytest.approx(0.5, 1e-4)


def test_a_broken_artefact_is_a_failed_check_not_a_crash(model_and_spec, windows, tmp_path):
    model, _ = model_and_spec
    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"not a program")
    (result,) = validate_artefacts(model, {"pte": bad}, windows)
    assert not result.passed and "cannot load" in result.error


def test_executorch_unimportable_is_reported(monkeypatch):
    monkeypatch.setitem(sys.modules, "executorch", None)
    assert "executorch is not importable" in executorch_status()
