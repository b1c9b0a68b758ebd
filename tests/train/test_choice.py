"""Checkpoint choice rules and the learning-rate schedule, on scripted numbers."""

from __future__ import annotations

import pytest

from osdml.config import TrainConfig
from osdml.train.choice import epoch_score
from osdml.train.module import lr_multiplier


def row(epoch, loss, sens, fpr, classes=2, youden=None, f_beta=None):
    return {"epoch": epoch, "val_loss": loss, "val_sensitivity": sens, "val_fpr": fpr,
            "val_predicted_classes": classes,
            "val_youden": sens - fpr if youden is None else youden, "val_f_beta": f_beta}


HISTORY = [
    row(0, 0.40, 1.00, 1.00, classes=1),  # constant "seizure" model: lowest loss too
    row(1, 0.50, 0.20, 0.01),             # below min sensitivity
    row(2, 0.55, 0.60, 0.05, f_beta=0.5),
    row(3, 0.60, 0.90, 0.20, f_beta=0.7),
    row(4, 0.58, 0.60, 0.05, f_beta=0.4),  # same FPR as 2, same sensitivity, higher loss
]


def best(metric, **kw):
    cfg = TrainConfig(checkpoint_metric=metric, **kw)
    scored = [(epoch_score(r, cfg), r["epoch"]) for r in HISTORY]
    eligible = [(s, e) for s, e in scored if s is not None]
    return max(eligible)[1] if eligible else None


def test_min_fpr_respects_the_sensitivity_floor_and_breaks_ties_on_loss():
    assert best("min_fpr", min_sensitivity=0.5) == 2
    assert best("min_fpr", min_sensitivity=0.1) == 1


def test_one_class_models_are_never_chosen_by_a_metric():
    assert epoch_score(HISTORY[0], TrainConfig(checkpoint_metric="youden")) is None
    assert best("val_loss") == 0  # only the loss criterion may take it


def test_youden_f_beta_and_max_fpr():
    assert best("youden", min_sensitivity=0.0) == 3
    assert best("f_beta", min_sensitivity=0.0) == 3
    assert best("youden", min_sensitivity=0.0, max_fpr=0.1) == 2


def test_no_eligible_epoch():
    assert best("min_fpr", min_sensitivity=0.95) is None


def test_three_phase_schedule():
    f = [lr_multiplier(s, 100, 10, 10, 0.1) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)  # linear warm-up
    assert all(a >= b for a, b in zip(f[10:90], f[11:90], strict=False))  # cosine decay
    assert f[89] == pytest.approx(0.1, abs=0.01)
    assert f[95] == pytest.approx(0.05) and f[100] == 0.0  # linear cool-down to zero
