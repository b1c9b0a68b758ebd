"""The main job end to end on tiny generated data: run folder, artefacts, validation gate."""

from __future__ import annotations

import json
import sys
import tomllib

import pytest

from conftest import TINY_TRAIN
from osdml.cli import main
from osdml.config import RunConfig, load_config
from osdml.errors import InputError
from osdml.pipeline import train_run


def test_run_folder_holds_everything(tiny_run):
    out = tiny_run.out_dir
    names = {p.name for p in out.iterdir()}
    assert {"config.toml", "split.json", "data_report.json", "metrics.csv", "training.png",
            "model.pt", "model.ptl", "model.pte", "model.pte.json", "validation.json",
            "summary.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    assert tiny_run.passed and set(tiny_run.artefacts) == {"pt", "ptl", "pte"}
    validation = json.loads((out / "validation.json").read_text())
    assert validation["windows"] >= 256  # test windows, topped up from validation
    assert all(r["passed"] and r["max_abs_logit_diff"] <= 1e-4 for r in validation["results"])
    by_format = validation["test_events_by_format"]
    assert by_format["pt"] == by_format["ptl"] == by_format["pte"]  # same alarms everywhere
    summary = json.loads((out / "summary.json").read_text())
    test_app = summary["metrics"]["test_app"]
    assert test_app["events"] > 0 and set(test_app) >= {"model", "osd", "combined", "recorded"}
    # the app's two settings were tuned on validation and travel with the model
    tuned = summary["app_settings"]
    assert tuned["rule"] == "sensitivity_at_far" and tuned["validation"]["seizure_events"] > 0
    assert tuned["threshold_pct"] in load_config(None).app.tune_thresholds_pct
    sidecar = json.loads((out / "model.pte.json").read_text())
    assert sidecar["spec"]["app_settings"]["threshold_pct"] == tuned["threshold_pct"]
    assert sidecar["validation"]["passed"] is True
    sweep = json.loads((out / "sweep.json").read_text())
    grid = load_config(None).app
    assert len(sweep["tuning (validation)"]) == (len(grid.tune_thresholds_pct)
                                                 * len(grid.tune_gates_pct))
    split = json.loads((out / "split.json").read_text())["splits"][0]
    test_ids = set(split["test"]["events"])
    assert not test_ids & (set(split["train"]["events"]) | set(split["val"]["events"]))
    cfg = RunConfig.model_validate(tomllib.loads((out / "config.toml").read_text()))
    assert cfg.train.max_epochs == TINY_TRAIN["train"]["max_epochs"]
    pte_spec = json.loads((out / "model.pte.json").read_text())["spec"]
    assert pte_spec["training"]["windows"]["test"] and pte_spec["versions"]["executorch"]


def test_without_executorch_pt_and_ptl_are_still_written(synth_dir, tiny_config, tmp_path,
                                                        monkeypatch):
    monkeypatch.setitem(sys.modules, "executorch", None)
    with pytest.warns(UserWarning, match="model.pte not written: executorch is not importable"):
        run = train_run([synth_dir], tiny_config, tmp_path, progress=False, cache=False)
    assert set(run.artefacts) == {"pt", "ptl"} and "pte" in run.missing
    assert run.passed and not (tmp_path / "model.pte").exists()


def test_seizure_only_data_cannot_train(tmp_path, tiny_config):
    from factory import event, write_events

    path = write_events(tmp_path / "s.json", [event(i, 10) for i in range(6)])
    with pytest.raises(InputError, match="6 seizure and 0 non-seizure events"):
        train_run([path], tiny_config, tmp_path / "run", progress=False, cache=False)


def _cfg_file(tmp_path, **train):
    cfg = load_config(None, {**TINY_TRAIN, "train": {**TINY_TRAIN["train"], **train},
                             "export": {"formats": ["pt", "ptl"]}})
    path = tmp_path / "tiny.toml"
    path.write_text(cfg.to_toml())
    return path


def test_cli_train_json(synth_dir, tmp_path, capsys):
    code = main(["train", "--data", str(synth_dir), "--config", str(_cfg_file(tmp_path)),
                 "--out", str(tmp_path / "run"), "--json", "--no-cache"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary["artefacts"]) == {"pt", "ptl"} and summary["validation_passed"]


def test_cli_train_exits_1_and_names_the_format_beyond_tolerance(synth_dir, tmp_path, capsys):
    cfg = _cfg_file(tmp_path)
    text = cfg.read_text().replace("fp32_atol = 0.0001", "fp32_atol = 1e-30")
    cfg.write_text(text)
    code = main(["train", "--data", str(synth_dir), "--config", str(cfg), "--out",
                 str(tmp_path / "run"), "-q", "--no-cache"])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "osdml: error: artefacts out of tolerance" in err and "ptl: max logit difference" in err
    assert (tmp_path / "run" / "validation.json").exists()  # results are kept for inspection


def test_cli_train_needs_data(tmp_path, capsys):
    code = main(["train", "--out", str(tmp_path / "run")])
    assert code == 2 and "no data" in capsys.readouterr().err


def test_a_previous_run_is_not_mixed_with_a_new_one(synth_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "--data", str(synth_dir), "--out", str(run_dir), "-q", "--no-cache"]
    assert main([*args, "--config", str(_cfg_file(tmp_path))]) == 0
    assert (run_dir / "model.ptl").exists()
    capsys.readouterr()
    only_pt = tmp_path / "only_pt.toml"
    only_pt.write_text(_cfg_file(tmp_path).read_text().replace('formats = ["pt", "ptl"]',
                                                               'formats = ["pt"]'))
    assert main([*args, "--config", str(only_pt)]) == 2
    assert "holds a previous run" in capsys.readouterr().err
    assert main([*args, "--config", str(only_pt), "--replace"]) == 0
    assert (run_dir / "model.pt").exists() and not (run_dir / "model.ptl").exists()
    saved = load_config(run_dir / "config.toml")
    assert saved.data.files == [str((synth_dir / n).resolve()) for n in sorted(
        p.name for p in synth_dir.iterdir() if not p.name.startswith("."))]


def test_parts_without_a_class_are_refused(tmp_path, tiny_config):
    from factory import event, write_events

    events = [event(1, 10), event(2, 10, type="NDA"), event(3, 10, type="NDA")]
    path = write_events(tmp_path / "three.json", events)
    with pytest.raises(InputError, match="part (has|holds) (only|no) seizure (windows|events)"):
        train_run([path], tiny_config, tmp_path / "run", progress=False, cache=False)
    assert not (tmp_path / "run").exists()  # nothing created for a run that cannot start


def test_data_that_is_all_skipped_says_why(synth_dir, tmp_path):
    cfg = load_config(None, {**TINY_TRAIN, "data": {"reader": {"sample_rate_hz": 30.0}}})
    with pytest.raises(InputError, match="wrong number of samples"):
        train_run([synth_dir], cfg, tmp_path / "run", progress=False, cache=False)


def test_a_window_the_model_cannot_take_fails_before_reading(tmp_path):
    cfg = load_config(None, {"data": {"windows": {"window_s": 1.0, "hop_s": 1.0}}})
    with pytest.raises(InputError, match="cannot take data.windows.window_s=1"):
        train_run([tmp_path / "missing.json"], cfg, tmp_path / "run", progress=False)


def test_empty_out_and_bare_commands(capsys):
    assert main(["train", "--data", "x", "--out", ""]) == 2
    assert "--out is empty" in capsys.readouterr().err
    assert main(["config"]) == 2
    out, err = capsys.readouterr()
    assert "show" in out + err and "osdml: error:" not in err


def test_divergence_is_reported_not_trained_through(tiny_config):
    import torch

    from osdml.errors import TrainingDiverged
    from osdml.models import create_model
    from osdml.train.module import SeizureClassifier

    module = SeizureClassifier(create_model("deep_epi_cnn"), tiny_config.train, 10)
    module._val_logits = [torch.tensor([[float("nan"), 0.0]])]
    module._val_labels = [torch.tensor([1])]
    module._val_index = [torch.tensor([0])]
    with pytest.raises(TrainingDiverged, match="lower train.lr_peak"):
        module.on_validation_epoch_end()


def test_a_schedule_longer_than_the_run_is_refused(synth_dir, tmp_path, tiny_config):
    """An imported warm-up (nnTraining2's warmupSteps) longer than the run would train at a
    near-zero learning rate throughout: refused with the numbers instead."""
    cfg = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(
        update={"warmup_steps": 1000})})
    with pytest.raises(InputError, match=r"warmup_steps \+ train.cooldown_steps = 1000 exceed "
                                         r"the 4 steps this run makes \(2 epochs of 2 steps\)"):
        train_run([synth_dir], cfg, tmp_path / "run", progress=False, cache=False)
