"""Resuming training from last.ckpt, in-process: a resume that is itself interrupted before its
first epoch completes, then resumed again, still equals an uninterrupted run."""

from __future__ import annotations

import signal

import pytest
import torch

import osdml.train.fit as F
from conftest import TINY_TRAIN
from osdml.config import load_config
from osdml.data.filters import select_events
from osdml.data.split import split_events
from osdml.pipeline import split_windows
from osdml.train.module import SeizureClassifier


@pytest.fixture(scope="module")
def setup(synth_streams):
    cfg = load_config(None, {**TINY_TRAIN, "train": {**TINY_TRAIN["train"], "max_epochs": 4}})
    sel = select_events(synth_streams)
    (split,) = split_events(synth_streams, sel, cfg.data.split)
    return cfg, split_windows(synth_streams, sel, split, cfg)


@pytest.fixture(autouse=True)
def _sigint_as_in_a_terminal():
    """Ctrl-C delivers KeyboardInterrupt, whatever started pytest: a job put in the background
    by a non-interactive shell (CI, nohup) starts with SIGINT ignored, and the tests check that
    fit gives back the handler it found."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def same(a, b):
    assert [r["val_loss"] for r in a.history] == [r["val_loss"] for r in b.history]
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_resume_interrupted_before_its_first_epoch_resumes_exactly(setup, tmp_path,
                                                                     monkeypatch):
    cfg, parts = setup
    reference = F.fit(cfg, parts.train, parts.val, out_dir=tmp_path / "ref", progress=False)
    out = tmp_path / "run"
    start = F.EpochCheckpoint.on_train_epoch_start

    def stop_at_epoch_2(self, trainer, module):
        start(self, trainer, module)
        if trainer.current_epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(F.EpochCheckpoint, "on_train_epoch_start", stop_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        F.fit(cfg, parts.train, parts.val, out_dir=out, progress=False)
    monkeypatch.setattr(F.EpochCheckpoint, "on_train_epoch_start", start)
    saved = (out / "last.ckpt").read_bytes()
    step = SeizureClassifier.training_step

    def killed(self, batch, batch_idx):
        raise KeyboardInterrupt

    monkeypatch.setattr(SeizureClassifier, "training_step", killed)
    with pytest.raises(KeyboardInterrupt):  # the resume dies in its first batch
        F.fit(cfg, parts.train, parts.val, out_dir=out, progress=False, resume=True)
    assert (out / "last.ckpt").read_bytes() == saved  # the checkpoint was not rewritten
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # Ctrl-C works again
    monkeypatch.setattr(SeizureClassifier, "training_step", step)
    resumed = F.fit(cfg, parts.train, parts.val, out_dir=out, progress=False, resume=True)
    same(resumed, reference)
