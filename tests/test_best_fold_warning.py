"""osdml run: a best fold whose model found none of its validation seizures carries a warning
(summary.json, best/manifest.json, the printed result). The folds' training is replaced by
recorded summaries, so this runs in seconds."""

from __future__ import annotations

import json

import pytest

import osdml.crossval
import osdml.evaluate.runreport
from conftest import TINY_TRAIN
from osdml.config import EvaluateConfig, load_config
from osdml.crossval import choose_best, run_crossval


def _summary(sensitivity: float, far: float, loss: float, seizures: int = 3) -> dict:
    return {"chosen_epoch": 1, "epochs_run": 2, "metrics": {
        "validation": {"loss": loss, "sensitivity": sensitivity},
        "validation_events": {"model": {"sensitivity": sensitivity, "far_24h": far,
                                        "seizure_events": seizures}}}}


@pytest.mark.parametrize("rule", ["sensitivity_at_far", "val_loss", "youden"])
def test_a_chosen_fold_with_validation_sensitivity_0_is_warned(rule):
    folds = {"fold0": _summary(0.0, 0.0, 0.1), "fold1": _summary(0.0, 0.0, 0.2)}
    cfg = EvaluateConfig().model_copy(update={"best_fold": rule}) if rule != \
        "sensitivity_at_far" else EvaluateConfig()
    best, _, warning = choose_best(folds, cfg)
    assert warning == (f"the chosen fold {best} alarmed on none of its 3 validation seizure "
                       "events (validation event sensitivity 0): its model may detect no "
                       "seizures; look at every fold's numbers before using it")


def test_a_chosen_fold_that_found_seizures_is_not_warned():
    folds = {"fold0": _summary(0.5, 0.0, 0.1), "fold1": _summary(0.0, 0.0, 0.2)}
    assert choose_best(folds, EvaluateConfig()) == (
        "fold0", choose_best(folds, EvaluateConfig())[1], None)


def test_the_warning_reaches_summary_json_and_the_printed_result(synth_dir, tmp_path,
                                                                 monkeypatch, capsys):
    def fake_jobs(executor, jobs, loaded, log, *, started, finished, resume_hint):
        for job in jobs:
            finished(job.name, _summary(0.0, 0.0, 0.3))

    monkeypatch.setattr(osdml.crossval, "run_jobs", fake_jobs)
    monkeypatch.setattr(osdml.evaluate.runreport, "write_run_report", lambda *a, **k: None)
    cfg = load_config(None, {**TINY_TRAIN, "data": {
        **TINY_TRAIN["data"], "files": [str(synth_dir)],
        "split": {"method": "kfold", "n_folds": 2}}})
    with pytest.warns(UserWarning, match="alarmed on none of its 3 validation seizure"):
        result = run_crossval(cfg, tmp_path, progress=False, cache=False)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert "validation event sensitivity 0" in summary["best_warning"]
    manifest = json.loads((result.run_dir / "best" / "manifest.json").read_text())
    assert manifest["warning"] == summary["best_warning"]
    from osdml.cli.train import _render_crossval

    capsys.readouterr()
    _render_crossval(result)
    out = " ".join(capsys.readouterr().out.split())
    assert f"warning: the chosen fold {result.best} alarmed on none" in out
