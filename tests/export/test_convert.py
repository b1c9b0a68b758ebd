"""The converter: every input kind converts or fails with its one line; batches; int8; bundles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from osdml.cli import main
from osdml.errors import InputError
from osdml.export.convert import ConvertOptions, convert_file, convert_many
from osdml.export.source import load_source
from osdml.models import create_model
from osdml.spec import ModelSpec

X = torch.linspace(0.5, 1.5, 750).reshape(1, 1, 750)


def _model(conv_dropout=0.0, seed=0):
    torch.manual_seed(seed)
    m = create_model("deep_epi_cnn", conv_dropout=conv_dropout)
    m.train()
    m(torch.randn(8, 1, 750) + 1)  # move batch-norm statistics off their defaults
    return m.eval()


def _same(src, model):
    with torch.no_grad():
        assert torch.allclose(src.module()(X), model(X), atol=1e-6)


@pytest.fixture(scope="module")
def model():
    return _model()


# --------------------------------------------------------------------------- input kinds

@pytest.mark.parametrize("conv_dropout", [0.0, 0.05])
def test_nntraining2_checkpoints_in_both_layouts(tmp_path, conv_dropout):
    m = _model(conv_dropout)
    opt = torch.optim.AdamW(m.parameters())
    path = tmp_path / "nn2.pt"
    torch.save({"model_state_dict": m.state_dict(), "optimizer_state_dict": opt.state_dict(),
                "config": {"modelConfig": {"sampleFreq": 25, "bufferSeconds": 30}},
                "conv_dropout": conv_dropout, "dense_dropout": 0.025, "epoch": 12,
                "val_loss": np.float64(0.31), "history": np.array([0.5, 0.4])}, path)
    src = load_source(path)
    assert src.origin == "nnTraining2 checkpoint"
    assert ("with dropout" if conv_dropout else "without dropout") in src.notes[0]
    assert src.spec.window_samples == 750 and any("bufferSeconds" in n for n in src.notes)
    _same(src, m)


def test_bare_and_wrapped_state_dicts_with_prefixes(tmp_path, model):
    sd = model.state_dict()
    variants = {
        "bare.pt": sd,
        "wrapped.pt": {"state_dict": sd},
        "ddp.pt": {f"module.{k}": v for k, v in sd.items()},
        "compiled.pth": {"state_dict": {f"_orig_mod.{k}": v for k, v in sd.items()}},
        "lightning.ckpt": {"state_dict": {f"model.{k}": v for k, v in sd.items()}},
    }
    for name, obj in variants.items():
        torch.save(obj, tmp_path / name)
        src = load_source(tmp_path / name)
        _same(src, model)
    assert "stripped key prefix 'module.'" in load_source(tmp_path / "ddp.pt").notes


def test_num_batches_tracked_missing_or_extra(tmp_path, model):
    sd = {k: v for k, v in model.state_dict().items() if "num_batches_tracked" not in k}
    sd["fc_out.num_batches_tracked"] = torch.tensor(3)
    torch.save(sd, tmp_path / "nbt.pt")
    src = load_source(tmp_path / "nbt.pt")
    _same(src, model)
    assert any("reconciled num_batches_tracked" in n for n in src.notes)


def test_tensors_saved_on_a_gpu_load_on_the_cpu(tmp_path, model, monkeypatch):
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save(model.state_dict(), tmp_path / "gpu.pt")
    monkeypatch.undo()
    with pytest.raises(RuntimeError):  # what a plain torch.load does on a CPU-only machine
        torch.load(tmp_path / "gpu.pt", weights_only=True)
    _same(load_source(tmp_path / "gpu.pt"), model)


def test_a_pickled_module_needs_trust(tmp_path, model):
    torch.save(model, tmp_path / "whole.pt")
    with pytest.raises(InputError, match="pickled Python object .*--trust"):
        load_source(tmp_path / "whole.pt")
    _same(load_source(tmp_path / "whole.pt", trust=True), model)


def test_torchscript_with_and_without_spec(tmp_path, model):
    from osdml.export.ptl import export_ptl

    spec = ModelSpec()
    export_ptl(model, spec, tmp_path / "m.ptl", optimize=False)
    src = load_source(tmp_path / "m.ptl")
    assert src.model is not None and "rebuilt from the spec" in src.notes[0]
    _same(src, model)
    torch.jit.save(torch.jit.trace(model, X), tmp_path / "ts.pt")
    graph = load_source(tmp_path / "ts.pt")
    assert graph.model is None and "TS2EPConverter" in graph.notes[0]
    _same(graph, model)


def test_torchscript_saved_in_training_mode_is_refused(tmp_path):
    m = _model().train()
    torch.jit.save(torch.jit.trace(m, torch.randn(2, 1, 750), check_trace=False),
                   tmp_path / "train.pt")
    with pytest.raises(InputError, match="saved in training mode"):
        load_source(tmp_path / "train.pt")


@pytest.mark.parametrize("name, content, phrase", [
    ("empty.pt", b"", "is empty"),
    ("lfs.pt", b"version https://git-lfs.github.com/spec/v1\noid sha256:1\nsize 9\n",
     "Git LFS pointer"),
    ("page.pt", b"<!DOCTYPE html><html>Not Found</html>", "HTML page"),
    ("cfg.pt", b'{"modelConfig": {}}', "is JSON"),
    ("notes.pt", b"just some notes\n", "text file"),
    ("zip.pt", b"PK\x03\x04" + b"\0" * 100, "truncated or corrupt archive"),
])
def test_files_that_are_not_models(tmp_path, name, content, phrase):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=phrase):
        load_source(tmp_path / name)


def test_a_truncated_checkpoint(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="half.pt"):
        load_source(tmp_path / "half.pt")


def test_weights_of_another_network(tmp_path):
    torch.save(torch.nn.Linear(3, 4).state_dict(), tmp_path / "linear.pt")
    with pytest.raises(InputError, match="2 weights .* match no registered architecture"):
        load_source(tmp_path / "linear.pt")
    sd = _model().state_dict()
    sd["fc_out.weight"] = torch.zeros(2, 8)  # wrong shape
    del sd["fc4.bias"]
    torch.save(sd, tmp_path / "broken.pt")
    with pytest.raises(InputError, match=r"1 missing \(first: fc4.bias\).*another shape"):
        load_source(tmp_path / "broken.pt")


def test_input_shape_and_class_checks(tmp_path, model):
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    with pytest.raises(InputError, match="cannot take input shape"):
        load_source(tmp_path / "sd.pt", input_shape=(1, 1, 100))
    with pytest.raises(InputError, match="--num-classes says 3"):
        load_source(tmp_path / "sd.pt", num_classes=3)


def test_a_pte_is_not_a_source(tiny_run):
    with pytest.raises(InputError, match="already converted; use `osdml inspect"):
        load_source(tiny_run.out_dir / "model.pte")


# --------------------------------------------------------------------------- conversions

def test_ptl_to_pte_parity_and_untouched_output_on_failure(tiny_run, tmp_path):
    out = tmp_path / "from_ptl.pte"
    result = convert_file(tiny_run.out_dir / "model.ptl", out, ConvertOptions())
    assert result.status == "converted" and result.check["passed"]
    assert result.check["max_abs_logit_diff"] < 1e-4
    meta = json.loads((tmp_path / "from_ptl.pte.json").read_text())
    assert meta["min_cpu_features"] == [] and meta["spec"]["window_samples"] == 750
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"<html></html>")
    out.write_bytes(b"OLD")
    with pytest.raises(InputError):
        convert_file(bad, out, ConvertOptions())
    assert out.read_bytes() == b"OLD"


def test_int8_is_smaller_and_agrees_with_fp32(tiny_run, synth_dir, tmp_path):
    opts = ConvertOptions(quantize="int8", calibration=[str(synth_dir)])
    result = convert_file(tiny_run.out_dir / "model.pt", tmp_path / "q.pte", opts)
    assert result.fp32_size_bytes / result.size_bytes >= 2.5
    assert result.check["decision_agreement"] >= 0.95 and result.check["max_prob_diff"] < 0.2
    assert json.loads((tmp_path / "q.pte.json").read_text())["quantization"] == "int8"
    with pytest.raises(InputError, match="needs --calibration"):
        ConvertOptions(quantize="int8").check()


def test_bundle_checks_itself(tiny_run, synth_dir, tmp_path, capsys):
    opts = ConvertOptions(to="bpte", calibration=[str(synth_dir)], bundle_windows=8)
    result = convert_file(tiny_run.out_dir / "model.pt", tmp_path / "m.bpte", opts)
    assert result.check["passed"] and result.check["windows"] == 8
    assert main(["validate", str(tmp_path / "m.bpte"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["passed"]


def test_batch_with_a_broken_file(tiny_run, tmp_path, capsys):
    folder = tmp_path / "models"
    (folder / "sub").mkdir(parents=True)
    torch.save(_model().state_dict(), folder / "good.pt")
    (folder / "sub" / "broken.pt").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    out = tmp_path / "out"
    code = main(["convert", str(folder), "-r", "-o", str(out), "--to", "ptl", "--json",
                 "--workers", "2"])
    results = json.loads(capsys.readouterr().out)
    assert code == 2
    by_name = {Path(r["input"]).name: r for r in results}
    assert by_name["good.pt"]["status"] == "converted" and (out / "good.ptl").exists()
    assert by_name["broken.pt"]["status"] == "failed"
    assert "Git LFS pointer" in by_name["broken.pt"]["reason"]
    assert not (out / "sub" / "broken.ptl").exists()
    again = convert_many([(folder / "good.pt", out / "good.ptl")], ConvertOptions(to="ptl"))
    assert again[0].status == "skipped"  # up to date


def test_cli_convert_and_inspect_one_line_errors(tmp_path, capsys):
    (tmp_path / "x.pt").write_bytes(b"")
    assert main(["convert", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is empty" in err
    assert main(["convert", str(tmp_path)]) == 2
    assert "--recursive" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "x.pt")]) == 2


def test_inspect_a_pte(tiny_run, capsys):
    assert main(["inspect", str(tiny_run.out_dir / "model.pte"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "pte" and info["forward"]["inputs"][0]["shape"] == [1, 1, 750]
    assert info["constants"]["input_length"] == 750 and info["spec"]["arch"] == "deep_epi_cnn"
    assert info["delegation"]["xnnpack_delegate_calls"] >= 1
    assert info["sidecar"]["sha256_matches"]


# --------------------------------------------------------------------------- found by breaking it

class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.target}",))


def test_a_pickle_that_runs_code_is_never_loaded_without_trust(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    torch.save({"weights": _Evil(marker)}, tmp_path / "evil.pt")
    assert main(["convert", str(tmp_path / "evil.pt")]) == 2
    assert "system" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "evil.pt"), "--json"]) == 0
    assert "system" in json.loads(capsys.readouterr().out)["contents"]
    assert not marker.exists()


def test_no_command_runs_the_code_in_an_untrusted_pickle(tmp_path, capsys, synth_dir,
                                                         tiny_run):
    """Every command that loads a model file (and resume, which loads a training checkpoint)
    refuses the pickle without running it; --trust is the only way, and it does run it."""
    import shutil

    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pt"
    torch.save({"weights": _Evil(marker)}, evil)
    run = tmp_path / "run"
    shutil.copytree(tiny_run.out_dir, run)
    (run / "summary.json").unlink()
    shutil.copy(evil, run / "last.ckpt")  # a planted "checkpoint" in an interrupted run
    for args in (["convert", str(evil)], ["validate", str(evil), "--data", str(synth_dir)],
                 ["validate", str(tiny_run.artefacts["pte"]), "--reference", str(evil),
                  "--data", str(synth_dir)],
                 ["replay", "-m", str(evil), "-d", str(synth_dir), "-o", str(tmp_path / "r")],
                 ["bench", str(evil), "--runs", "2"],
                 ["train", "-o", str(run), "--resume", "-q", "--no-cache"]):
        code = main(args)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, (args, err)
        assert not marker.exists(), args
    assert "could run code" in err[0]  # the planted checkpoint is named for what it is
    (run / "last.ckpt").write_bytes(evil.read_bytes()[:200])
    assert main(["train", "-o", str(run), "--resume", "-q", "--no-cache"]) == 2
    assert "truncated" in capsys.readouterr().err
    # the test can tell: trusting the file runs its code
    main(["convert", str(evil), "--trust", "-o", str(tmp_path / "x.pte")])
    capsys.readouterr()
    assert marker.exists()


def test_a_failed_check_writes_nothing(tmp_path, capsys):
    m = _model()
    with torch.no_grad():
        m.fc_out.weight.mul_(1e6)  # logits so large that fp32 rounding exceeds 1e-4
    torch.save(m.state_dict(), tmp_path / "big.pt")
    out = tmp_path / "big.pte"
    out.write_bytes(b"SENTINEL")
    assert main(["convert", str(tmp_path / "big.pt"), "-o", str(out)]) == 1
    assert "nothing was written" in capsys.readouterr().err
    assert out.read_bytes() == b"SENTINEL" and not (tmp_path / "big.pte.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".converting")]


def test_outputs_never_collide_or_overwrite_inputs(tmp_path, model):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    torch.save(model.state_dict(), tmp_path / "a" / "model.pt")
    torch.save(model.state_dict(), tmp_path / "b" / "model.pt")
    out = tmp_path / "out"
    results = convert_many([(tmp_path / "a" / "model.pt", out / "model.ptl"),
                            (tmp_path / "b" / "model.pt", out / "model.ptl")],
                           ConvertOptions(to="ptl"))
    assert [r.status for r in results] == ["converted", "failed"]
    assert "is also the output of" in results[1].reason
    with pytest.raises(InputError, match="overwrite the input"):
        convert_file(out / "model.ptl", out / "model.ptl", ConvertOptions(to="ptl"))
    again = convert_many([(tmp_path / "a" / "model.pt", out / "model.ptl")],
                         ConvertOptions(to="ptl"))
    assert again[0].status == "skipped"
    other = convert_many([(tmp_path / "a" / "model.pt", out / "model.ptl")],
                         ConvertOptions(to="pte", backend="portable"))
    assert other[0].status == "converted"  # other options: not up to date


def test_damaged_files_and_odd_contents_are_one_line(tmp_path, model, capsys):
    with open(tmp_path / "legacy.pt", "wb") as f:  # a pre-zip torch.save, cut short
        torch.save(model.state_dict(), f, _use_new_zipfile_serialization=False)
    data = (tmp_path / "legacy.pt").read_bytes()
    (tmp_path / "legacy.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="legacy.pt"):
        load_source(tmp_path / "legacy.pt")
    sd = dict(model.state_dict())
    torch.save({"model_state_dict": sd, "extra": np.zeros(3, np.float16),
                "names": np.array(["a", "b"]), "step": np.int16(3)}, tmp_path / "np.pt")
    _same(load_source(tmp_path / "np.pt"), model)
    bad = {k: v.clone() for k, v in sd.items()}
    bad["fc_out.bias"][0] = float("nan")
    torch.save(bad, tmp_path / "nan.pt")
    with pytest.raises(InputError, match="not finite"):
        load_source(tmp_path / "nan.pt")
    with pytest.raises(InputError, match="has 2 channels; the weights take 1"):
        load_source(tmp_path / "np.pt", input_shape=(1, 2, 750))
    with pytest.raises(InputError, match="--backend applies to ExecuTorch"):
        ConvertOptions(to="ptl", backend="portable").check()


def test_a_damaged_bundle_is_refused_not_crashed_on(tiny_run, synth_dir, tmp_path):
    import subprocess
    import sys

    convert_file(tiny_run.out_dir / "model.pt", tmp_path / "m.bpte",
                 ConvertOptions(to="bpte", calibration=[str(synth_dir)], bundle_windows=4))
    data = bytearray((tmp_path / "m.bpte").read_bytes())
    for offset in (40, 200, 3000):
        damaged = bytearray(data)
        damaged[offset:offset + 16] = bytes(b ^ 0xFF for b in damaged[offset:offset + 16])
        path = tmp_path / f"d{offset}.bpte"
        path.write_bytes(damaged)
        # in a child process: a crash in the C++ loader must not take the tests down
        run = subprocess.run([sys.executable, "-m", "osdml.cli", "validate", str(path)],
                             capture_output=True, text=True)
        assert run.returncode in (1, 2), (offset, run.returncode, run.stderr[-300:])
        assert run.stderr.startswith("osdml: error:"), run.stderr[-300:]


def test_int8_bundles_and_graph_inputs(tiny_run, synth_dir, tmp_path, capsys):
    opts = ConvertOptions(to="bpte", quantize="int8", calibration=[str(synth_dir)],
                          bundle_windows=8)
    result = convert_file(tiny_run.out_dir / "model.pt", tmp_path / "q.bpte", opts)
    assert result.check["passed"] and result.check["atol"] >= 0.05
    assert main(["validate", str(tmp_path / "q.bpte")]) == 0
    capsys.readouterr()
    m = _model()
    torch.jit.save(torch.jit.trace(m, X), tmp_path / "ts.pt")
    q = convert_file(tmp_path / "ts.pt", tmp_path / "ts_int8.pte",
                     ConvertOptions(quantize="int8", calibration=[str(synth_dir)]))
    assert q.status == "converted" and "positive_agreement" in q.check


def test_validate_takes_any_source_kind(tiny_run, synth_dir, tmp_path, capsys):
    m = _model()
    torch.jit.save(torch.jit.trace(m, X), tmp_path / "ts.pt")
    torch.save({"model_state_dict": m.state_dict()}, tmp_path / "nn2.pt")
    code = main(["validate", str(tmp_path / "ts.pt"), "--reference", str(tmp_path / "nn2.pt"),
                 "--data", str(synth_dir), "--json"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)[0]["passed"]


def test_models_that_do_not_take_osdb_windows_are_checked_on_random_inputs(tmp_path):
    m = create_model("deep_epi_cnn", in_channels=3).eval()
    torch.save(m.state_dict(), tmp_path / "xyz.pt")
    result = convert_file(tmp_path / "xyz.pt", tmp_path / "xyz.ptl",
                          ConvertOptions(to="ptl", input_shape=(1, 3, 750)))
    assert result.check["passed"] and "random inputs only" in result.check["on"]
