"""Splits: invariants (disjoint, covering, grouped, stratified), determinism, manifests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from osdml.config import SplitConfig
from osdml.data.filters import select_events
from osdml.data.split import read_manifest, split_events, split_manifest, write_manifest
from osdml.errors import InputError


def users_of(streams, idx):
    return {streams.events[i].user_id for i in idx}


def check_disjoint(split):
    parts = [set(split.train.tolist()), set(split.val.tolist()), set(split.test.tolist())]
    assert all(parts), "every part holds events"
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


@pytest.mark.parametrize("method", ["holdout", "kfold", "nested"])
@pytest.mark.parametrize("grouped", [False, True])
def test_split_invariants(synth_streams, method, grouped):
    sel = select_events(synth_streams)
    cfg = SplitConfig(method=method, n_folds=3 if grouped else 4, n_inner_folds=2,
                      group_by_user=grouped, seed=3)
    splits = split_events(synth_streams, sel, cfg)
    n_expected = {"holdout": 1, "kfold": cfg.n_folds, "nested": cfg.n_folds * 2}[method]
    assert len(splits) == n_expected
    for s in splits:
        check_disjoint(s)
        assert set(np.concatenate([s.train, s.val, s.test]).tolist()) == set(sel.indices.tolist())
        if grouped:
            u = [users_of(synth_streams, p) for p in (s.train, s.val, s.test)]
            assert not (u[0] & u[1] or u[0] & u[2] or u[1] & u[2]), s.name
    if method != "holdout":  # test folds cover every event exactly once
        tests = np.concatenate([s.test for s in splits if s.inner in (None, 0)])
        assert sorted(tests.tolist()) == sorted(sel.indices.tolist())
    if method == "nested":  # inner validation folds cover the outer training part
        for k in range(cfg.n_folds):
            inner = [s for s in splits if s.fold == k]
            vals = np.concatenate([s.val for s in inner])
            outer_train = set(inner[0].train.tolist()) | set(inner[0].val.tolist())
            assert sorted(vals.tolist()) == sorted(outer_train)


def test_stratified_every_test_fold_holds_both_classes(synth_streams):
    sel = select_events(synth_streams)
    for s in split_events(synth_streams, sel, SplitConfig(method="kfold", n_folds=4)):
        labels = sel.labels_for(s.test)
        share = labels.mean()
        assert 0.2 < share < 0.6, (s.name, labels.tolist())  # overall share is 12/32


def test_same_seed_same_split_other_seed_other_split(synth_streams):
    sel = select_events(synth_streams)
    a = split_events(synth_streams, sel, SplitConfig(method="kfold", n_folds=4, seed=1))
    b = split_events(synth_streams, sel, SplitConfig(method="kfold", n_folds=4, seed=1))
    c = split_events(synth_streams, sel, SplitConfig(method="kfold", n_folds=4, seed=2))
    assert all(np.array_equal(x.test, y.test) and np.array_equal(x.val, y.val)
               for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x.test, z.test) for x, z in zip(a, c, strict=True))


def test_manifest_round_trip(synth_streams, tmp_path):
    sel = select_events(synth_streams)
    cfg = SplitConfig(method="kfold", n_folds=3, group_by_user=True)
    splits = split_events(synth_streams, sel, cfg)
    manifest = split_manifest(synth_streams, sel, splits, cfg)
    path = write_manifest(tmp_path / "split.json", manifest)
    on_disk = json.loads(path.read_text())
    assert on_disk["config"]["group_by_user"] is True
    first = on_disk["splits"][0]
    assert first["test"]["n_events"] == len(splits[0].test)
    assert set(first["test"]["events"]) == {synth_streams.events[i].id for i in splits[0].test}
    again = read_manifest(path, synth_streams)
    for x, y in zip(splits, again, strict=True):
        assert np.array_equal(x.train, y.train) and np.array_equal(x.test, y.test)


def test_manifest_naming_unknown_events_is_refused(synth_streams, tmp_path):
    sel = select_events(synth_streams)
    splits = split_events(synth_streams, sel, SplitConfig())
    manifest = split_manifest(synth_streams, sel, splits, SplitConfig())
    manifest["splits"][0]["test"]["events"].append("no-such-event")
    path = write_manifest(tmp_path / "m.json", manifest)
    with pytest.raises(InputError, match="not in the data.*no-such-event"):
        read_manifest(path, synth_streams)


def test_too_many_folds_for_users_is_a_clear_error(synth_streams):
    sel = select_events(synth_streams)
    with pytest.raises(InputError, match="n_folds=5 needs 5 users .* only 4"):
        split_events(synth_streams, sel, SplitConfig(method="kfold", n_folds=5,
                                                     group_by_user=True))


def test_too_many_folds_for_events_is_a_clear_error(synth_streams):
    sel = select_events(synth_streams)
    with pytest.raises(InputError, match="n_folds=40 exceeds the 32 events"):
        split_events(synth_streams, sel, SplitConfig(method="kfold", n_folds=40))


def test_smallest_class_smaller_than_folds_warns(synth_streams):
    sel = select_events(synth_streams)
    with pytest.warns(UserWarning, match="smallest class has only 12"):
        split_events(synth_streams, sel, SplitConfig(method="kfold", n_folds=13))


def test_seizure_only_data_still_splits(synth_streams):
    from osdml.config import SelectionConfig

    sel = select_events(synth_streams, SelectionConfig(include_types=["seizure"]))
    (s,) = split_events(synth_streams, sel, SplitConfig())
    check_disjoint(s)
