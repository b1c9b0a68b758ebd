"""osdml validate and osdml bench on a run's files: parity in each runtime, and measurements."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from osdml.cli import main
from osdml.errors import InputError
from osdml.export.bench import FIELDS
from osdml.export.checkpoint import load_pt
from osdml.export.convert import ConvertOptions, convert_file
from osdml.export.pte import PteRunner, export_pte
from osdml.spec import ModelSpec


@pytest.fixture(scope="module")
def formats(tiny_run, synth_dir, tmp_path_factory):
    """The tiny run's model in every format the app could get: pt, ptl, pte fp32, int8, portable."""
    out = tmp_path_factory.mktemp("formats")
    run = tiny_run.out_dir
    files = {"pt": run / "model.pt", "ptl": run / "model.ptl", "pte": run / "model.pte"}
    for name, opts in {"int8": ConvertOptions(quantize="int8", calibration=[str(synth_dir)]),
                       "portable": ConvertOptions(backend="portable")}.items():
        result = convert_file(run / "model.pt", out / f"model_{name}.pte", opts)
        assert result.status == "converted", result.reason
        files[name] = out / f"model_{name}.pte"
    return files


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- validate

def test_the_run_folder_validates_on_its_held_out_windows(formats, capsys):
    code, out, err = _run(capsys, "validate", formats["pte"], formats["ptl"], formats["pt"],
                          "--json")
    assert code == 0, err
    results = json.loads(out)
    assert [r["format"] for r in results] == ["pte", "ptl", "pt"]
    for r in results:
        assert r["passed"] and r["windows"] > 10
        assert r["max_abs_logit_diff"] < 1e-4 and r["decision_agreement"] == 1.0
        assert r["max_rel_logit_diff"] is not None and r["max_prob_diff"] < 1e-4
        assert "held-out test windows" in r["summary"]


def test_random_windows_are_added_never_instead(formats, capsys):
    code, out, err = _run(capsys, "validate", formats["pte"], "--windows", "8", "--random", "4",
                          "--json")
    assert code == 0, err
    r = json.loads(out)[0]
    assert r["windows"] == 12 and "+ 4 random windows" in r["summary"]


def test_a_perturbed_weight_fails_and_is_named(formats, tmp_path, capsys):
    model, spec, _ = load_pt(formats["pt"])
    # one weight of the output layer, on an input unit that is active (a weight on a unit
    # ReLU keeps at zero would change nothing, and validation would rightly pass)
    out_layer = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    seen = {}
    hook = out_layer.register_forward_hook(lambda m, x, y: seen.setdefault("x", x[0]))
    with torch.no_grad():
        model(torch.linspace(0.5, 1.5, 750).reshape(1, 1, 750))
        hook.remove()
        out_layer.weight[1, int(seen["x"][0].argmax())] += 0.05
    bad = tmp_path / "perturbed.pte"
    export_pte(model, spec, bad)
    code, out, err = _run(capsys, "validate", bad, formats["pte"], "--reference", formats["pt"])
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("osdml: error:")
    assert "perturbed.pte: max logit difference" in err and "fp32 tolerance 0.0001" in err
    assert "model.pte" not in err  # the matching file passed
    assert "FAILED" in out


def test_int8_passes_its_own_tolerance_and_fails_fp32s(formats, capsys):
    # an fp32 tolerance no int8 program meets: int8 files are judged by their own unless
    # --hold-to fp32 (how close the tiny model's int8 logits come varies with its training)
    code, out, err = _run(capsys, "validate", formats["int8"], "--reference", formats["pt"],
                          "--json", "--atol", "1e-9")
    assert code == 0, err
    r = json.loads(out)[0]
    assert r["kind"] == "pte int8" and r["sqnr_db"] > 15 and r["decision_agreement"] >= 0.95
    code, out, err = _run(capsys, "validate", formats["int8"], "--reference", formats["pt"],
                          "--hold-to", "fp32", "--atol", "1e-9")
    assert code == 1 and "model_int8.pte: max logit difference" in err
    assert "(fp32 tolerance 1e-09)" in err
    code, _, err = _run(capsys, "validate", formats["int8"], "--reference", formats["pt"],
                        "--int8-min-sqnr", "200")
    assert code == 1 and "int8 needs 200 dB" in err


def test_a_wrong_input_shape_is_one_line_not_an_error_code(formats, tiny_run, tmp_path, capsys):
    run = PteRunner(formats["pte"])
    window = np.ones((1, 750), np.float32)
    with pytest.raises(InputError, match=r"expected \(1, 1, 750\) float32, got \(1, 750\) "
                                         r"float32$"):
        run(window)
    with pytest.raises(InputError, match=r"got \(1, 1, 750\) float64"):
        run(np.ones((1, 1, 750)))
    # a program made for 20 s windows, checked against the 30 s model's real windows
    spec = ModelSpec(input_shape=(1, 1, 500), window_samples=500, arch_kwargs={
        "input_length": 500, "num_classes": 2, "in_channels": 1})
    short = tmp_path / "short.pte"
    export_pte(spec.build().eval(), spec, short)
    code, _, err = _run(capsys, "validate", short, "--reference", formats["pt"])
    assert code == 2
    assert err == (f"osdml: error: {short}: expected (1, 1, 500) float32, got (1, 1, 750) "
                   "float32\n")


def test_validate_needs_real_windows(formats, tmp_path, capsys):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(formats["pt"], alone / "model.pt")
    shutil.copy(formats["pte"], alone / "model.pte")
    code, _, err = _run(capsys, "validate", alone / "model.pte")
    assert code == 2 and "not in an osdml run folder; pass --data" in err
    code, _, err = _run(capsys, "validate", formats["pte"], "--hold-to", "int4")
    assert code == 2 and "--hold-to 'int4'" in err


# --------------------------------------------------------------------------- bench

def test_bench_json_has_every_field_for_every_format(formats, capsys):
    files = [formats[k] for k in ("pt", "ptl", "pte", "int8", "portable")]
    code, out, err = _run(capsys, "bench", *files, "--runs", "5", "--warmup", "1", "--json",
                          "--profile")
    assert code == 0, err
    results = json.loads(out)
    assert [r["format"] for r in results] == [
        "pt (eager)", "ptl", "pte xnnpack fp32", "pte xnnpack int8", "pte portable"]
    for r, path in zip(results, files, strict=True):
        assert set(FIELDS) <= set(r), set(FIELDS) - set(r)
        assert r["size_bytes"] == path.stat().st_size and r["runs"] == 5
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"]
        assert r["load_ms"] > 0 and r["first_ms"] > 0 and r["peak_rss_mb"] >= r["import_rss_mb"]
        assert "operators" in r["profile"] or "error" in r["profile"]
    by = {r["format"]: r for r in results}
    assert by["pt (eager)"]["delegated_share"] is None and by["ptl"]["delegated_share"] is None
    assert by["pte xnnpack fp32"]["delegated_share"] > 0.9
    assert by["pte xnnpack int8"]["xnnpack_nodes"] > 0
    assert by["pte portable"]["delegated_share"] == 0.0
    assert by["pte portable"]["portable_calls"] > 14  # every convolution, at least


def test_bench_markdown_and_bad_files(formats, tmp_path, capsys):
    code, out, err = _run(capsys, "bench", formats["pte"], "--runs", "3", "--markdown")
    assert code == 0, err
    assert out.startswith("| file | format |") and "| pte xnnpack fp32 |" in out
    page = tmp_path / "model.pte"
    page.write_text("<html>Sign in</html>")
    code, _, err = _run(capsys, "bench", formats["pte"], page)
    assert code == 2 and err.count("\n") == 1 and str(page) in err and "HTML" in err
