"""Splits: invariants (disjoint, covering, grouped, stratified), determinism, manifests."""

from __future__ import annotations

import json
import warnings

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


# --------------------------------------------------------------------------- advice that works

@pytest.fixture(scope="module")
def three_seizures(tmp_path_factory):
    """3 users, each with 1 seizure, 2 false alarms and 2 NDA events: 3 seizure events."""
    from osdml.data.cache import load_streams
    from osdml.data.synthetic import SynthSpec, write_synthetic

    out = tmp_path_factory.mktemp("three")
    write_synthetic(out, SynthSpec(users=3, seizures_per_user=1, false_alarms_per_user=2,
                                   nda_per_user=2, seed=0))
    return out, load_streams([out], cache=False)


def _follow(message: str, cfg: SplitConfig) -> list[SplitConfig]:
    """The configurations the advice in `message` names (every "use KEY=V", "turn off
    group_by_user [with KEY=V]")."""
    import re

    out = [cfg.model_copy(update={k: float(v) if "." in v else int(v)})
           for k, v in re.findall(r"(?<!with )use (\w+)=([\d.]+)", message)]
    out += [cfg.model_copy(update={"group_by_user": False, **(
        {m[1]: float(m[2]) if "." in m[2] else int(m[2])} if m[1] else {})})
        for m in re.finditer(r"turn off group_by_user(?: with (\w+)=([\d.]+))?", message)]
    return out


@pytest.mark.parametrize("method, folds, grouped", [
    ("kfold", 5, True),   # was "use 3 folds or fewer", and 2 folds failed
    ("kfold", 2, True),   # was "add users or turn off group_by_user" (3 folds work)
    ("kfold", 2, False),  # was a manifest whose validation parts hold no seizure
    ("nested", 3, True),  # was "use 2 folds or fewer" (for the inner folds)
    ("holdout", 5, False),
])
def test_every_hint_is_tried_on_the_data_and_works(three_seizures, method, folds, grouped):
    _, streams = three_seizures
    sel = select_events(streams)
    cfg = SplitConfig(method=method, n_folds=folds, group_by_user=grouped)
    with pytest.raises(InputError) as err:
        split_events(streams, sel, cfg)
    message = str(err.value)
    assert "\n" not in message and "or fewer" not in message
    advice = _follow(message, cfg)
    assert advice, message  # these data can be split, and the message says how
    for fixed in advice:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            splits = split_events(streams, sel, fixed)  # raises if the advice were wrong
        assert splits
        # and every split can be trained (osdml run stops at a fold that cannot)
        untrainable = [w for w in caught if "cannot be trained" in str(w.message)]
        assert not untrainable or "some splits can be trained, not all" in message, message


def test_too_many_grouped_folds_names_the_number_that_works(three_seizures):
    _, streams = three_seizures
    sel = select_events(streams)
    for folds in (2, 5):
        with pytest.raises(InputError, match=r"use n_folds=3 .*tried"):
            split_events(streams, sel, SplitConfig(method="kfold", n_folds=folds,
                                                   group_by_user=True))
    assert len(split_events(streams, sel, SplitConfig(method="kfold", n_folds=3,
                                                      group_by_user=True))) == 3


def test_no_hint_when_nothing_works(tmp_path):
    from factory import event, write_events
    from osdml.data.cache import load_streams

    events = [event(1, 8, user=1), *(event(i, 8, type="NDA", user=1) for i in range(2, 5))]
    streams = load_streams([write_events(tmp_path / "one_user.json", events)], cache=False)
    with pytest.raises(InputError, match=r"none splits these data; add events or users$") as e:
        split_events(streams, select_events(streams),
                     SplitConfig(method="kfold", n_folds=2, group_by_user=True))
    assert "use " not in str(e.value)


def test_a_training_part_without_seizures_is_warned_and_recorded(three_seizures, tmp_path,
                                                                 capsys):
    from osdml.cli import main

    folder, _ = three_seizures
    out = tmp_path / "split.json"
    code = main(["data", "split", str(folder), "--out", str(out), "--method", "nested",
                 "--folds", "2", "--no-group-by-user"])
    err = capsys.readouterr().err
    assert code == 0
    line = ("osdml: warning: fold0.0: the training part holds no seizure events, so this split "
            "cannot be trained (training and checkpoint choice need both classes)")
    assert line in err.splitlines()
    manifest = json.loads(out.read_text())
    assert line.removeprefix("osdml: warning: ") in manifest["warnings"]
    fold = next(s for s in manifest["splits"] if s["name"] == "fold0.0")
    assert fold["train"]["by_label"].get("1", 0) == 0


def test_a_split_that_cannot_train_at_all_is_one_line_exit_2(three_seizures, tmp_path, capsys):
    from osdml.cli import main

    folder, _ = three_seizures
    out = tmp_path / "split.json"
    code = main(["data", "split", str(folder), "--out", str(out), "--method", "holdout",
                 "--no-group-by-user"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert err == ("osdml: error: no split can be trained: the validation part holds no seizure "
                   "events; the data hold 3 seizure events; use val_fraction=0.3 (tried: then "
                   "every split has both classes in training and validation)")
    config = tmp_path / "c.toml"
    config.write_text("[data.split]\nval_fraction = 0.3\n")
    assert main(["data", "split", str(folder), "--out", str(out), "--method", "holdout",
                 "--no-group-by-user", "--config", str(config)]) == 0
    assert json.loads(out.read_text())["warnings"] == []
