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
    assert summary["metrics"]["test_events"]["events"] > 0
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
