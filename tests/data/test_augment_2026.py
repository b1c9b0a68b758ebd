"""nnTraining2's 2026 augmentations: sample rate, non-seizure noise, user-balance threshold."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from factory import T0, event, iso, write_events
from osdml.config import AugmentConfig, LabelConfig, SplitConfig, load_config
from osdml.data.augment import _resample_time, augment_training
from osdml.data.cache import load_streams
from osdml.data.filters import select_events
from osdml.data.labels import seizure_time_labels, window_times
from osdml.data.split import split_events
from osdml.data.windows import make_windows

OFF = dict(noise_copies=0, phase_step_samples=0)


def streams_of(tmp_path, events):
    return load_streams([write_events(tmp_path / "e.json", events)], cache=False)


def sine_event(event_id, n_dp=40, hz=2.0, **kw):
    """A seizure event whose magnitude is 1000 + 300 sin(2 pi hz t) mg at 25 Hz."""
    ev = event(event_id, n_dp, **kw)
    t = np.arange(n_dp * 125) / 25.0
    mg = 1000 + 300 * np.sin(2 * np.pi * hz * t)
    for i, dp in enumerate(ev["datapoints"]):
        dp["rawData"] = mg[i * 125:(i + 1) * 125].tolist()
    return ev


def test_only_training_seizures_are_resampled_with_unique_ids(synth_streams):
    sel = select_events(synth_streams)
    (s,) = split_events(synth_streams, sel, SplitConfig(seed=5))
    before = synth_streams.samples.copy()
    aug = augment_training(synth_streams, sel, s.train,
                           AugmentConfig(**OFF, sample_rate_factors=[0.9, 1.1]))
    assert np.array_equal(before, synth_streams.samples)
    train_seizures = {synth_streams.events[i].id for i, lab in
                      zip(s.train, sel.labels_for(s.train), strict=True) if lab == 1}
    assert {e.source_event for e in aug.copies.events} == train_seizures
    assert aug.counts["sample_rate"] == 2 * len(train_seizures) == aug.copies.n_events
    ids = [e.id for e in aug.copies.events]
    assert len(set(ids)) == len(ids) and not set(ids) & {e.id for e in synth_streams.events}
    assert {e.id[len(e.source_event):] for e in aug.copies.events} == {"~r0.9", "~r1.1"}
    assert aug.labels.tolist() == [1] * len(ids)
    assert sorted(aug.train.tolist()) == sorted(s.train.tolist())


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_resampled_copy_has_the_asked_length_and_its_source_resampled(tmp_path, factor):
    streams = streams_of(tmp_path, [sine_event(1), event(2, 8, type="NDA")])
    aug = augment_training(streams, select_events(streams), np.array([0, 1]),
                           AugmentConfig(**OFF, sample_rate_factors=[factor]))
    (copy,) = aug.copies.events
    assert copy.id == f"1~r{factor:g}" and copy.augmentation == f"sample_rate(x{factor:g})"
    src, out = streams.event_samples(0)[0].astype(float), aug.copies.event_samples(0)[0]
    assert len(out) == round(len(src) * factor)  # 1.25: 25 % more samples
    expected = np.interp(np.linspace(0, 1, len(out)), np.linspace(0, 1, len(src)), src)
    assert np.allclose(out, expected, atol=1e-6)  # upstream's np.interp, ends kept
    spectrum = np.abs(np.fft.rfft(out - out.mean()))
    peak_hz = np.argmax(spectrum) * 25.0 / len(out)
    assert peak_hz == pytest.approx(2.0 / factor, abs=0.01)  # more samples: slower movement
    assert aug.source_scales.tolist() == [factor]


def test_resampling_works_on_three_axes(tmp_path):
    a = np.stack([np.arange(10.0), np.arange(10.0) ** 2, -np.arange(10.0)], axis=1)
    r = _resample_time(a, 15)
    assert r.shape == (15, 3)
    for j in range(3):
        assert np.allclose(r[:, j], _resample_time(a[:, j], 15))
    streams = streams_of(tmp_path, [event(1, 8, xyz=True), event(2, 8, type="NDA")])
    aug = augment_training(streams, select_events(streams), np.array([0, 1]),
                           AugmentConfig(**OFF, sample_rate_factors=[1.1]))
    ((s, n, x),) = streams.segment_rows(0)
    ((cs, cn, cx),) = aug.copies.segment_rows(0)
    assert cn == round(n * 1.1) and cx >= 0
    xyz = aug.copies.xyz[cx:cx + cn]
    assert np.array_equal(xyz, np.rint(_resample_time(streams.xyz[x:x + n], cn)))
    mag = np.linalg.norm(xyz.astype(float), axis=1) / 1000
    assert np.allclose(aug.copies.samples[cs:cs + cn], mag, atol=1e-3)  # recomputed


def test_seizure_times_are_scaled_and_label_the_resampled_windows(tmp_path):
    ev = event(1, 30, dataTime=iso(T0), seizureTimes=[60, 100])  # dp i ends 5 (i + 1) s
    streams = streams_of(tmp_path, [ev, event(2, 8, type="NDA")])
    aug = augment_training(streams, select_events(streams), np.array([0, 1]),
                           AugmentConfig(**OFF, sample_rate_factors=[1.5]))
    (copy,) = aug.copies.events
    assert copy.seizure_times == (90.0, 150.0)
    w = make_windows(aug.copies, np.arange(1), aug.labels)
    kw = dict(source=streams, source_starts=aug.source_starts, source_scales=aug.source_scales)
    start, end = window_times(w, **kw)
    first = 1.5 * 0.04  # the source's first sample lies 0.04 s after dataTime
    j = np.arange(len(w))
    assert np.allclose(start, first - 0.04 + 5 * j) and np.allclose(end, first + 5 * j + 29.96)
    labelled, counts = seizure_time_labels(w, LabelConfig(use_seizure_times=True), **kw)
    inside = (end > 90) & (start < 150)
    assert len(labelled) == inside.sum() == counts.windows_in_seizure > 0
    assert counts.events_by_seizure_times == 1
    plain, _ = seizure_time_labels(w, LabelConfig(use_seizure_times=True), source=streams,
                                   source_starts=aug.source_starts)  # without scales: unlike
    assert len(plain) != len(labelled)


def test_negative_noise_touches_only_the_chosen_subtypes_of_class_0(tmp_path):
    events = [event(1, 20), event(2, 20, subtype="Typing"),  # a seizure "Typing": untouched
              event(3, 20, type="NDA", subtype="Typing"),
              event(4, 20, type="NDA", subtype=" typing "),
              event(5, 20, type="NDA", subtype="Walking"),
              event(6, 20, type="NDA", subtype="Sorting")]
    streams = streams_of(tmp_path, events)
    cfg = AugmentConfig(**OFF, negative_noise_copies=2, negative_noise_sigma_mg=10.0,
                        negative_noise=[{"subtype": "TYPING", "copies": 3, "sigma_mg": 40.0},
                                        {"subtype": "walking"}])
    aug = augment_training(streams, select_events(streams), np.arange(6), cfg)
    by_source = Counter(e.source_event for e in aug.copies.events)
    assert by_source == {"3": 3, "4": 3, "5": 2}
    assert aug.counts["negative_noise"] == 8 and aug.labels.tolist() == [0] * 8
    assert {e.id for e in aug.copies.events} >= {"3~nn0", "3~nn2", "5~nn1"}
    index = streams.index_of()
    for i, e in enumerate(aug.copies.events):
        diff = (aug.copies.event_samples(i)[0] - streams.event_samples(index[e.source_event])[0])
        assert diff.std() * 1000 == pytest.approx(40.0 if e.source_event != "5" else 10.0,
                                                  rel=0.1)


def test_threshold_pools_rare_users_before_balancing(tmp_path):
    events = ([event(f"a{i}", 8, user="A") for i in range(6)]
              + [event(f"b{i}", 8, user="B") for i in range(2)]
              + [event("c0", 8, user="C"), event("n", 8, type="NDA", user="A")])
    streams = streams_of(tmp_path, events)
    sel, every = select_events(streams), np.arange(len(events))
    plain = augment_training(streams, sel, every, AugmentConfig(**OFF, user_balance=True))
    assert plain.counts["user_balance"] == 4 + 5  # B and C each up to A's 6
    pooled = augment_training(streams, sel, every, AugmentConfig(
        **OFF, user_balance=True, user_balance_threshold=3))
    assert pooled.counts["user_balance_pooled_users"] == 2
    assert pooled.counts["user_balance"] == 3  # B + C as one user: 3 up to 6
    assert {e.user_id for e in pooled.copies.events} <= {"B", "C"}
    one = augment_training(streams, sel, every, AugmentConfig(
        **OFF, user_balance=True, user_balance_threshold=10))
    assert one.counts["user_balance"] == 0  # everyone pooled: nothing to balance


def test_validation_and_test_windows_are_unchanged(synth_streams):
    from osdml.pipeline import split_windows

    sel = select_events(synth_streams)
    (s,) = split_events(synth_streams, sel, SplitConfig(seed=5))
    train_neg = [synth_streams.events[i] for i, lab in
                 zip(s.train, sel.labels_for(s.train), strict=True) if lab == 0]
    subtype = Counter(e.subtype for e in train_neg).most_common(1)[0][0]
    base = load_config(None, {"data": {"augment": {"noise_copies": 0}}})
    on = load_config(None, {"data": {"augment": {
        "noise_copies": 0, "user_balance": True, "user_balance_threshold": 2,
        "sample_rate_factors": [0.9, 1.15],
        "negative_noise": [{"subtype": subtype, "copies": 1}]}}})
    a, b = split_windows(synth_streams, sel, s, base), split_windows(synth_streams, sel, s, on)
    for x, y in ((a.val, b.val), (a.test, b.test)):
        assert np.array_equal(x.starts, y.starts) and np.array_equal(x.labels, y.labels)
    assert b.augmentation["sample_rate"] > 0 and b.augmentation["negative_noise"] > 0
    assert len(b.train) > len(a.train)
