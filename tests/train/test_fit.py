"""Training: the chosen checkpoint comes from the validation part; same seed, same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from osdml.data.filters import select_events
from osdml.data.split import split_events
from osdml.data.windows import WindowSet, make_windows
from osdml.evaluate.metrics import window_metrics
from osdml.export.validate import eager_logits
from osdml.train.choice import epoch_score
from osdml.train.fit import fit


@pytest.fixture(scope="module")
def parts(synth_streams, tiny_config):
    s = synth_streams
    sel = select_events(s)
    (sp,) = split_events(s, sel, tiny_config.data.split)
    train = WindowSet([make_windows(s, sp.train, sel.labels_for(sp.train))])
    val = make_windows(s, sp.val, sel.labels_for(sp.val))
    return train, val


def _p(model, windows):
    logits = eager_logits(model, windows.batch(range(len(windows))))
    return torch.softmax(torch.from_numpy(logits), dim=1)[:, 1].numpy()


def test_chosen_checkpoint_is_the_best_validation_epoch(parts, tiny_config, tmp_path):
    train, val = parts
    cfg = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={
        "max_epochs": 4, "checkpoint_metric": "val_loss"})})
    result = fit(cfg, train, val, out_dir=tmp_path, progress=False)
    losses = [r["val_loss"] for r in result.history]
    assert len(losses) == 4 and result.chosen_epoch == int(np.argmin(losses)) + 1
    # the returned weights are that epoch's: they reproduce its recorded validation numbers
    m = window_metrics(val.labels, _p(result.model, val), cfg.train.threshold)
    chosen = result.chosen
    assert m["sensitivity"] == pytest.approx(chosen["val_sensitivity"])
    assert m["fpr"] == pytest.approx(chosen["val_fpr"])
    csv = (tmp_path / "metrics.csv").read_text().splitlines()
    assert csv[0].startswith("epoch,lr,train_loss,val_loss") and len(csv) == 5


def test_a_metric_criterion_picks_by_validation_numbers(parts, tiny_config):
    train, val = parts
    cfg = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={
        "max_epochs": 4, "checkpoint_metric": "youden", "min_sensitivity": 0.0})})
    result = fit(cfg, train, val, progress=False)
    scores = [epoch_score(r, cfg.train) for r in result.history]
    eligible = [(s, i) for i, s in enumerate(scores) if s is not None]
    if eligible:
        assert result.criterion == "youden"
        assert result.chosen_epoch == max(eligible)[1] + 1
    else:  # every epoch predicted one class: the fallback says so
        assert result.criterion == "val_loss" and result.warning


def test_same_seed_same_weights(parts, tiny_config):
    train, val = parts
    a = fit(tiny_config, train, val, progress=False).model.state_dict()
    b = fit(tiny_config, train, val, progress=False).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_empty_parts_are_refused(parts, tiny_config):
    train, val = parts
    with pytest.raises(ValueError, match="cannot train on"):
        fit(tiny_config, WindowSet([]), val, progress=False)

