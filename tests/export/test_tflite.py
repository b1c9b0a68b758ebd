""".tflite files run as the app's TFLite path runs them (LiteRT), inspect and validate on them.

The models are the tiny committed fixtures of tests/fixtures (made by make_tiny_tflite.py with
TensorFlow, outside the repository's virtualenv): tiny_app.tflite has the app's interface
(input [1, 125, 1] float32, softmax output [1, 2]); tiny_logits.tflite the same weights without
the softmax; tiny_wrong_layout.tflite takes [1, 1, 125]; tiny_three_class.tflite outputs [1, 3].
LiteRT (ai-edge-litert) comes with the ``litert`` extra, which ``make test`` installs.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from osdml.cli import main
from osdml.errors import InputError
from osdml.export import sniff as sn
from osdml.export.tflite import TfliteRunner, contract_failure

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
APP = FIXTURES / "tiny_app.tflite"
LOGITS = FIXTURES / "tiny_logits.tflite"
WRONG_LAYOUT = FIXTURES / "tiny_wrong_layout.tflite"
THREE_CLASS = FIXTURES / "tiny_three_class.tflite"
EXPECTED = json.loads((FIXTURES / "tiny_app.expected.json").read_text())


def _windows() -> np.ndarray:
    """The fixture's input windows in osdml's layout (n, 1, 125) float32."""
    return np.asarray(EXPECTED["inputs"]["windows"], np.float64).astype(np.float32)[:, None, :]


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- runner

@pytest.mark.parametrize("path", [APP, LOGITS], ids=lambda p: p.name)
def test_the_runner_reproduces_tensorflow_lites_outputs(path):
    runner = TfliteRunner(path)
    assert runner.path == path and runner.input_size == 125
    assert runner.input_shape == (1, 125, 1) and runner.output_shape == (1, 2)
    expected = np.asarray(EXPECTED["outputs"][path.name], np.float32)
    for x, want in zip(_windows(), expected, strict=True):
        got = runner(x[None])
        assert got.shape == (1, 2) and got.dtype == np.float32
        np.testing.assert_allclose(got[0], want, rtol=0, atol=2e-6)
    np.testing.assert_allclose(runner.outputs(_windows()), expected, rtol=0, atol=2e-6)


def test_the_fixture_spans_both_decisions():
    p = np.asarray(EXPECTED["outputs"]["tiny_app.tflite"])[:, 1]
    assert p.min() < 0.5 < p.max()


def test_p_is_output_0_1_as_the_app_reads_it_with_no_softmax():
    for path in (APP, LOGITS):
        runner = TfliteRunner(path)
        for x in _windows():
            p = runner.p(x[None])
            assert isinstance(p, np.float32) and p == runner(x[None])[0, 1]
    # the logits model's "p" is a logit: negative for a still window, which the app would take
    still = _windows()[:1]
    assert TfliteRunner(LOGITS).p(still) < 0 < TfliteRunner(APP).p(still) < 1


@pytest.mark.parametrize("window", [np.ones((1, 125, 1), np.float32),
                                    np.ones((1, 1, 124), np.float32),
                                    np.ones((125,), np.float32),
                                    np.ones((1, 1, 125), np.float64)],
                         ids=["tflite-layout", "short", "flat", "float64"])
def test_a_window_that_is_not_1_1_n_float32_is_refused_in_one_line(window):
    with pytest.raises(InputError) as e:
        TfliteRunner(APP)(window)
    msg = str(e.value)
    assert "\n" not in msg and str(APP) in msg
    assert "expected a window (1, 1, 125) float32" in msg


def test_a_model_whose_input_is_not_1_n_1_is_refused():
    with pytest.raises(InputError) as e:
        TfliteRunner(WRONG_LAYOUT)
    msg = str(e.value)
    assert "\n" not in msg and str(WRONG_LAYOUT) in msg
    assert "[1, 1, 125]" in msg and "[1, N, 1]" in msg and "ExecuTorch" in msg


def test_a_model_whose_output_is_not_1_2_is_refused():
    with pytest.raises(InputError) as e:
        TfliteRunner(THREE_CLASS)
    msg = str(e.value)
    assert "\n" not in msg and str(THREE_CLASS) in msg and "[1, 3]" in msg and "[1, 2]" in msg


def test_a_file_the_interpreter_refuses_is_named(tmp_path):
    broken = tmp_path / "truncated.tflite"
    broken.write_bytes(APP.read_bytes()[:300])  # still "TFL3" at byte 4
    assert sn.sniff(broken).kind == sn.TFLITE
    with pytest.raises(InputError) as e:
        TfliteRunner(broken)
    assert "\n" not in str(e.value) and str(broken) in str(e.value)
    assert "LiteRT refuses it" in str(e.value)
    with pytest.raises(InputError, match="does not exist"):
        TfliteRunner(tmp_path / "missing.tflite")


def test_without_ai_edge_litert_the_error_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    with pytest.raises(InputError) as e:
        TfliteRunner(APP)
    assert 'pip install "osdml[litert]"' in str(e.value) and "\n" not in str(e.value)
    code, _, err = _run(capsys, "validate", APP)
    assert code == 2 and err.count("\n") == 1 and "osdml[litert]" in err
    code, out, err = _run(capsys, "inspect", APP, "--json")  # kind, size, sha256 still
    assert code == 0, err
    info = json.loads(out)
    assert info["kind"] == "tflite" and "osdml[litert]" in info["forward"]["error"]


def test_the_contract_check_on_outputs():
    assert contract_failure(np.array([[0.3, 0.7], [1.0, 0.0]], np.float32)) is None
    assert "logits" in contract_failure(np.array([[0.3, 0.7], [0.4, -0.4]], np.float32))
    assert "not finite" in contract_failure(np.array([[np.nan, 0.5]], np.float32))
    sig = contract_failure(np.array([[0.3, 0.9]], np.float32))  # two sigmoids, say
    assert "do not sum to 1" in sig


def test_a_p_that_never_changes_on_different_windows_fails(monkeypatch):
    # what cnn_v0.24 (made for milli-g) does on windows in g: p = 0 on everything
    from osdml.export import tflite

    still = np.ones((3, 1, 125), np.float32)
    assert tflite.check_tflite(APP, still, "3 identical windows")["passed"]
    assert tflite.check_tflite(APP, _windows(), "the fixture's windows")["passed"]
    monkeypatch.setattr(tflite.TfliteRunner, "outputs",
                        lambda self, x: np.tile(np.float32([1.0, 0.0]), (len(x), 1)))
    r = tflite.check_tflite(APP, _windows(), "windows in g")
    assert not r["passed"] and f"on every one of {len(_windows())} different" in r["failure"]
    assert "--tflite-mg" in r["failure"]
    assert tflite.check_tflite(APP, still, "3 identical windows")["passed"]


# --------------------------------------------------------------------------- sniff

def test_sniff_knows_a_tflite_by_its_content(tmp_path):
    found = sn.sniff(APP)
    assert found.kind == sn.TFLITE == "tflite" and found.size == APP.stat().st_size
    assert "TensorFlow Lite" in found.description
    renamed = tmp_path / "model.pt"  # the extension is not consulted
    renamed.write_bytes(APP.read_bytes())
    assert sn.sniff(renamed).kind == sn.TFLITE


def test_convert_refuses_a_tflite_in_one_line(tmp_path, capsys):
    code, _, err = _run(capsys, "convert", APP, "-o", tmp_path / "x.pte")
    assert code == 2 and err.count("\n") == 1, err
    assert "TensorFlow Lite" in err and "does not convert it" in err
    assert not (tmp_path / "x.pte").exists()


# --------------------------------------------------------------------------- inspect

def test_inspect_says_kind_shapes_size_and_sha256(capsys):
    code, out, err = _run(capsys, "inspect", APP, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["kind"] == "tflite" and info["size_bytes"] == APP.stat().st_size
    assert info["sha256"] == hashlib.sha256(APP.read_bytes()).hexdigest()
    (inp,), (outp,) = info["forward"]["inputs"], info["forward"]["outputs"]
    assert (inp["shape"], inp["dtype"]) == ([1, 125, 1], "float32")
    assert (outp["shape"], outp["dtype"]) == ([1, 2], "float32")
    assert info["app"]["fits"] and "SOFTMAX" in info["operators"]
    code, out, err = _run(capsys, "inspect", APP)
    assert code == 0, err
    assert "TensorFlow Lite" in out and "(1, 125, 1) float32 -> (1, 2) float32" in out


def test_inspect_describes_a_tflite_that_does_not_fit_the_app(capsys):
    code, out, err = _run(capsys, "inspect", WRONG_LAYOUT, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["forward"]["inputs"][0]["shape"] == [1, 1, 125]
    assert not info["app"]["fits"] and "[1, N, 1]" in info["app"]["detail"]


# --------------------------------------------------------------------------- validate

def test_validate_checks_the_apps_contract_on_random_windows(capsys):
    code, out, err = _run(capsys, "validate", APP, "--json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert r["passed"] and r["kind"] == "tflite" and r["input_size"] == 125
    assert r["windows"] == 32 and "32 random windows" in r["summary"]
    assert 0 <= r["p_min"] <= r["p_max"] <= 1 and "reference" not in r


def test_validate_takes_real_windows_of_the_models_length(synth_dir, capsys):
    code, out, err = _run(capsys, "validate", APP, "--data", synth_dir, "--windows", "40",
                          "--random", "3", "--json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert r["passed"] and r["windows"] > 3 + 10
    assert "real windows" in r["summary"] and "+ 3 random windows" in r["summary"]


def test_a_model_that_outputs_logits_fails_validate_in_one_line(capsys):
    code, out, err = _run(capsys, "validate", LOGITS)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("osdml: error:")
    assert str(LOGITS) in err and "outputs logits, not probabilities" in err
    assert "no softmax" in err


@pytest.mark.parametrize("path", [WRONG_LAYOUT, THREE_CLASS], ids=lambda p: p.name)
def test_validate_refuses_a_tflite_the_app_cannot_call(path, capsys):
    code, _, err = _run(capsys, "validate", path)
    assert code == 2 and err.count("\n") == 1 and str(path) in err
    assert "does not fit the app's TFLite call" in err


# --------------------------------------------------------------------------- --reference

def _torch_twin(bias_shift: float = 0.0):
    """The fixture's model in torch, taking (1, 1, 125) and returning logits."""
    import torch

    w = {k: torch.tensor(v, dtype=torch.float32) for k, v in EXPECTED["weights"].items()}

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(1, 4, 5)
            self.dense = torch.nn.Linear(4, 2)
            with torch.no_grad():
                self.conv.weight.copy_(w["kernel"].permute(2, 1, 0))  # (out, in, taps)
                self.conv.bias.copy_(w["conv_bias"])
                self.dense.weight.copy_(w["dense"].T)
                self.dense.bias.copy_(w["dense_bias"] + torch.tensor([0.0, bias_shift]))

        def forward(self, x):
            return self.dense(torch.relu(self.conv(x)).mean(dim=2))

    return Twin().eval()


def _save_ptl(model, path: Path) -> Path:
    import torch

    torch.jit.script(model)._save_for_lite_interpreter(str(path))
    return path


def test_the_torch_twin_is_the_same_model():
    import torch

    with torch.no_grad():
        logits = _torch_twin()(torch.from_numpy(_windows())).numpy()
    np.testing.assert_allclose(logits, EXPECTED["outputs"]["tiny_logits.tflite"], atol=1e-5)


def test_validate_against_the_torch_model_it_was_made_from(tmp_path, capsys):
    ref = _save_ptl(_torch_twin(), tmp_path / "twin.ptl")
    code, out, err = _run(capsys, "validate", APP, "--reference", ref, "--random", "64",
                          "--json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert r["passed"] and r["reference"] == str(ref) and r["windows"] == 64
    assert r["max_prob_diff"] < 1e-5 and r["decision_agreement"] == 1.0
    assert "softmax(twin.ptl)[1]" in r["summary"]


def test_a_torchscript_reference_without_a_spec_is_run_at_the_tflites_length(tmp_path, capsys):
    import torch

    ref = tmp_path / "twin.pt"
    torch.jit.script(_torch_twin()).save(str(ref))
    code, out, err = _run(capsys, "validate", APP, "--reference", ref, "--random", "8",
                          "--json")
    assert code == 0, err
    (r,) = json.loads(out)
    assert r["passed"] and r["max_prob_diff"] < 1e-5


def test_validate_fails_when_p_differs_from_the_reference(tmp_path, capsys):
    ref = _save_ptl(_torch_twin(bias_shift=0.3), tmp_path / "shifted.ptl")
    code, _, err = _run(capsys, "validate", APP, "--reference", ref)
    assert code == 1 and err.count("\n") == 1
    assert str(APP) in err and "p differs from the reference by up to" in err


def test_a_reference_of_another_window_length_is_refused(tmp_path, capsys):
    from osdml.export.checkpoint import save_pt
    from osdml.spec import ModelSpec

    spec = ModelSpec()  # DeepEpiCnn on (1, 1, 750)
    save_pt(tmp_path / "model.pt", spec.build().eval(), spec)
    code, _, err = _run(capsys, "validate", APP, "--reference", tmp_path / "model.pt")
    assert code == 2 and err.count("\n") == 1
    assert "takes (1, 1, 750) windows; the .tflite takes 125 samples" in err


def test_another_tflite_is_not_a_reference(capsys):
    code, _, err = _run(capsys, "validate", APP, "--reference", LOGITS)
    assert code == 2 and err.count("\n") == 1 and "not another .tflite" in err
