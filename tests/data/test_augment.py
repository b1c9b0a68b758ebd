"""Augmentation: training seizure events only, unique traceable copies, each step's effect."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from factory import event, write_events
from osdml.config import AugmentConfig, SplitConfig
from osdml.data.augment import augment_training
from osdml.data.cache import load_streams
from osdml.data.filters import select_events
from osdml.data.split import split_events
from osdml.data.windows import make_windows

OFF = dict(noise_copies=0, phase_step_samples=0)


@pytest.fixture
def split(synth_streams):
    sel = select_events(synth_streams)
    (s,) = split_events(synth_streams, sel, SplitConfig(seed=5))
    return sel, s


def test_validation_and_test_events_are_never_touched(synth_streams, split):
    sel, s = split
    before = synth_streams.samples.copy()
    cfg = AugmentConfig(noise_copies=3, phase_step_samples=50, user_balance=True,
                        oversample=True, undersample=True)
    aug = augment_training(synth_streams, sel, s.train, cfg)
    assert np.array_equal(before, synth_streams.samples)  # originals unmodified
    train_ids = {synth_streams.events[i].id for i in s.train}
    held_out = {synth_streams.events[i].id for i in np.concatenate([s.val, s.test])}
    roots = {e.source_event for e in aug.copies.events}
    assert roots and roots <= train_ids and not roots & held_out
    assert set(aug.train.tolist()) <= set(s.train.tolist())


def test_copies_have_unique_ids_and_record_their_source(synth_streams, split):
    sel, s = split
    aug = augment_training(synth_streams, sel, s.train,
                           AugmentConfig(noise_copies=2, phase_step_samples=25, user_balance=True))
    ids = [e.id for e in aug.copies.events]
    original_ids = {e.id for e in synth_streams.events}
    assert len(ids) == len(set(ids)) and not set(ids) & original_ids
    for e in aug.copies.events:
        assert e.id.startswith(e.source_event + "~") and e.augmentation
    seizures = sel.labels_for(s.train).sum()
    assert aug.counts["noise"] == 2 * (seizures + aug.counts["user_balance"])
    assert aug.counts["phase"] == 4 * (seizures + aug.counts["user_balance"])  # 25, 50, 75, 100


def test_noise_on_3d_data_is_per_axis_and_magnitude_recomputed(synth_streams, split):
    sel, s = split
    aug = augment_training(synth_streams, sel, s.train,
                           AugmentConfig(noise_copies=1, noise_sigma_mg=30, seed=1))
    c = aug.copies
    copy = c.events[0]
    orig = synth_streams.events[synth_streams.index_of()[copy.source_event]]
    (s0, n0, x0), = synth_streams.segment_rows(synth_streams.events.index(orig))[:1]
    (s1, n1, x1), = c.segment_rows(0)[:1]
    assert n0 == n1 and x0 >= 0 and x1 >= 0
    diff = c.xyz[x1:x1 + n1].astype(float) - synth_streams.xyz[x0:x0 + n0]
    assert diff.std() == pytest.approx(30, rel=0.1)
    assert abs(diff.mean()) < 3
    mag = np.linalg.norm(c.xyz[x1:x1 + n1].astype(float), axis=1) / 1000
    assert np.allclose(c.samples[s1:s1 + n1], mag, atol=0.002)  # from the noisy axes


def test_noise_without_3d_goes_on_the_magnitude(tmp_path):
    path = write_events(tmp_path / "a.json", [event(1, 40), event(2, 8, type="NDA")])
    streams = load_streams([path], cache=False)
    sel = select_events(streams)
    aug = augment_training(streams, sel, np.array([0, 1]),
                           AugmentConfig(noise_copies=1, noise_sigma_mg=50))
    (copy,) = aug.copies.events
    assert copy.source_event == "1"
    diff = (aug.copies.samples - streams.samples[: 40 * 125]) * 1000
    assert diff.std() == pytest.approx(50, rel=0.1)


def test_phase_copies_start_later(synth_streams, split):
    sel, s = split
    aug = augment_training(synth_streams, sel, s.train, AugmentConfig(**{**OFF,
                           "phase_step_samples": 50}))
    assert {e.augmentation for e in aug.copies.events} == {"phase(+50)", "phase(+100)"}
    copy = aug.copies.events[0]
    src = synth_streams.index_of()[copy.source_event]
    first_src = synth_streams.event_samples(src)[0]
    first_copy = aug.copies.event_samples(0)[0]
    assert np.array_equal(first_copy, first_src[50:])


def test_user_balance_equalises_seizure_events_per_user(synth_streams, split):
    sel, s = split
    aug = augment_training(synth_streams, sel, s.train, AugmentConfig(**OFF, user_balance=True))
    per_user = Counter(synth_streams.events[i].user_id
                       for i, lab in zip(s.train, sel.labels_for(s.train), strict=True) if lab)
    per_user.update(e.user_id for e in aug.copies.events)
    assert len(set(per_user.values())) == 1, per_user


def _windows(streams, idx, labels):
    return len(make_windows(streams, idx, labels))


def test_oversampling_reaches_the_ratio(synth_streams, split):
    sel, s = split
    aug = augment_training(synth_streams, sel, s.train, AugmentConfig(**OFF, oversample=True))
    labels = sel.labels_for(s.train)
    pos = _windows(synth_streams, s.train[labels == 1], labels[labels == 1])
    pos += _windows(aug.copies, np.arange(aug.copies.n_events), np.ones(aug.copies.n_events))
    neg = _windows(synth_streams, s.train[labels == 0], labels[labels == 0])
    assert aug.counts["oversample"] > 0 and pos >= neg


def test_undersampling_drops_negatives_only(synth_streams, split):
    sel, s = split
    aug = augment_training(synth_streams, sel, s.train, AugmentConfig(**OFF, undersample=True,
                                                                      target_ratio=2.0))
    labels = sel.labels_for(aug.train)
    assert (labels == 1).sum() == (sel.labels_for(s.train) == 1).sum()
    assert aug.counts["undersample_dropped"] > 0
    pos = _windows(synth_streams, aug.train[labels == 1], labels[labels == 1])
    kept_neg = aug.train[labels == 0]
    neg = _windows(synth_streams, kept_neg, labels[labels == 0])
    last = _windows(synth_streams, kept_neg[-1:], [0])
    assert neg - last < pos / 2.0 <= neg  # stopped at the first event that reached the bound


def test_augmentation_is_deterministic(synth_streams, split):
    sel, s = split
    cfg = AugmentConfig(noise_copies=2, user_balance=True, oversample=True, seed=9)
    a = augment_training(synth_streams, sel, s.train, cfg)
    b = augment_training(synth_streams, sel, s.train, cfg)
    assert [e.id for e in a.copies.events] == [e.id for e in b.copies.events]
    assert np.array_equal(a.copies.samples, b.copies.samples)
