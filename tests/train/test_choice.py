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


def test_f_beta_spec_is_nntraining2s_f_beta_on_specificity():
    from osdml.train.choice import f_beta_spec

    # sens 0.6, spec 0.95, beta 2: 5 * 0.57 / (4 * 0.95 + 0.6)
    assert f_beta_spec(0.6, 0.05, 2.0) == pytest.approx(5 * 0.6 * 0.95 / (4 * 0.95 + 0.6))
    assert f_beta_spec(0.0, 1.0, 2.0) == 0.0
    # computed from sensitivity and FPR: beta < 1 favours specificity (epoch 2: 0.6, 0.05),
    # beta > 1 sensitivity (epoch 3: 0.9, 0.2)
    assert best("f_beta_spec", min_sensitivity=0.0, f_beta=0.5) == 2
    assert best("f_beta_spec", min_sensitivity=0.0, f_beta=2.0) == 3


def _dual_choice(rows, **kw):
    """Epochs kept, in order, by CheckpointChoice's dual_improvement path."""
    from osdml.train.choice import CheckpointChoice

    cb = CheckpointChoice(TrainConfig(checkpoint_metric="dual_improvement", **kw))
    kept = []
    for r in rows:
        meets = epoch_score(r, cb.cfg) is not None
        if cb._dual_keeps(r, meets):
            kept.append(r["epoch"])
    return kept, cb


def test_dual_improvement_follows_nntraining2s_rule():
    rows = [row(1, 0.5, 0.10, 0.30),   # below min sensitivity: kept by the fallback
            row(2, 0.5, 0.50, 0.20),   # both improve, meets: kept
            row(3, 0.5, 0.52, 0.15),   # FPR -25 %, sensitivity +0.02: kept
            row(4, 0.5, 0.40, 0.10),   # FPR -33 % but sensitivity -0.12 > tolerance: not kept
            row(5, 0.5, 0.20, 0.01),   # below min sensitivity after one met: never kept
            row(6, 0.5, 0.53, 0.149)]  # both improve (barely): kept
    kept, cb = _dual_choice(rows, min_sensitivity=0.25, dual_far_reduction=0.10,
                            dual_sensitivity_tolerance=0.05)
    assert kept == [1, 2, 3, 6]
    assert cb._dual["best"] == (0.53, 0.149) and cb._dual["kept_meets"]


def test_dual_improvement_fallback_only_carries_a_warning():
    kept, cb = _dual_choice([row(1, 0.5, 0.10, 0.30), row(2, 0.5, 0.15, 0.20)],
                            min_sensitivity=0.5)
    assert kept == [1, 2] and not cb._dual["kept_meets"]


def test_warm_up_from_lr_start_and_steps_that_cannot_fit():
    f = [lr_multiplier(s, 100, 10, 10, 0.1, start_ratio=0.01) for s in range(12)]
    assert f[0] == pytest.approx(0.01) and f[5] == pytest.approx(0.01 + 0.99 * 0.5)
    assert f[10] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cannot fit"):
        TrainConfig(max_steps=100, warmup_steps=60, cooldown_steps=60)


def test_a_chosen_epoch_with_sensitivity_0_carries_a_warning():
    """The fallback (lowest validation loss) may pick weights that find no seizure window: the
    summary's warning must say so, not only that no epoch met the rule."""
    from osdml.train.choice import CheckpointChoice

    cb = CheckpointChoice(TrainConfig(checkpoint_metric="min_fpr", min_sensitivity=0.5))
    cb.history = [row(1, 0.30, 0.0, 0.0), row(2, 0.40, 0.3, 0.1)]
    cb._best_loss = ((0.0,), 1, {})
    with pytest.warns(UserWarning, match="validation sensitivity 0"):
        choice = cb.choice()
    assert choice.epoch == 1 and "no epoch met" in choice.warning
    assert "chosen epoch 1 finds none of the validation seizure windows" in choice.warning
    cb.history[0]["val_sensitivity"] = 0.1  # some seizures found: only the fallback warning
    with pytest.warns(UserWarning) as record:
        choice = cb.choice()
    assert "sensitivity 0" not in choice.warning and len(record) == 1
