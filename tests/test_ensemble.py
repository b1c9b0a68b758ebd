"""Ensembles (osdml.ensemble): user-level splits with held-out test users, the members kept by
the paper's rule, the quantile chosen on validation, and a tiny ensemble end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TINY_TRAIN
from osdml.config import load_config
from osdml.data.synthetic import SynthSpec, write_synthetic
from osdml.ensemble import choose_members, choose_quantile, ensemble_splits
from osdml.errors import InputError


@pytest.fixture(scope="module")
def six_users(tmp_path_factory):
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events

    out = tmp_path_factory.mktemp("six")
    write_synthetic(out, SynthSpec(users=6, seizures_per_user=2, false_alarms_per_user=2,
                                   nda_per_user=1, seed=11))
    cfg = load_config(None)
    streams = load_streams([out], cache=False)
    return streams, select_events(streams, cfg.data.selection)


def users_of(streams, idx):
    return {streams.events[i].user_id for i in idx}


def test_no_test_user_in_any_member_and_each_member_has_its_own_split(six_users):
    streams, selection = six_users
    cfg = load_config(None, {"ensemble": {"members": 8, "keep": 3, "val_seizures": 2}})
    splits = ensemble_splits(streams, selection, cfg)
    assert [s.name for s in splits] == [f"member0{i}" for i in range(1, 9)]
    test_users = users_of(streams, splits[0].test)
    assert test_users and all(np.array_equal(s.test, splits[0].test) for s in splits)
    labels = dict(zip(selection.indices.tolist(), selection.labels.tolist(), strict=True))
    served = {}
    for s in splits:
        train_u, val_u = users_of(streams, s.train), users_of(streams, s.val)
        assert not (train_u | val_u) & test_users          # test users never seen
        assert not train_u & val_u                          # split by user
        assert set(s.train) | set(s.val) | set(s.test) == set(selection.indices.tolist())
        val_seizures = sum(labels[int(i)] for i in s.val)
        assert val_seizures >= 2                            # val_seizures reached
        assert any(labels[int(i)] == 1 for i in s.train)    # training keeps seizures
        for u in val_u:
            served[u] = served.get(u, 0) + 1
    # users seldom drawn are drawn first: every non-test user serves in validation
    assert set(served) == users_of(streams, splits[0].train) | users_of(streams, splits[0].val)
    assert len({tuple(s.val) for s in splits}) > 1


def test_splits_are_deterministic_and_follow_the_seed(six_users):
    streams, selection = six_users
    cfg = load_config(None, {"ensemble": {"members": 4, "keep": 2}})
    a, b = (ensemble_splits(streams, selection, cfg) for _ in range(2))
    assert all(np.array_equal(x.val, y.val) for x, y in zip(a, b, strict=True))
    other = ensemble_splits(streams, selection,
                            load_config(None, {"ensemble": {"members": 4, "keep": 2,
                                                            "seed": 5}}))
    assert any(not np.array_equal(x.val, y.val) for x, y in zip(a, other, strict=True))


def test_too_few_users_is_one_clear_error(synth_streams):
    from osdml.data.filters import select_events

    cfg = load_config(None)
    sel = select_events(synth_streams, cfg.data.selection)
    keep = np.isin([synth_streams.events[i].user_id for i in sel.indices],
                   sorted({e.user_id for e in synth_streams.events})[:2])
    sel.indices, sel.labels = sel.indices[keep], sel.labels[keep]
    with pytest.raises(InputError, match="at least 3 users with seizure events"):
        ensemble_splits(synth_streams, sel, cfg)


def test_members_kept_by_distance_to_perfect_on_recorded_validation_numbers():
    numbers = {
        "member01": {"sensitivity": 1.0, "far_24h": 2.0},   # distance 2
        "member02": {"sensitivity": 0.5, "far_24h": 0.0},   # 0.5
        "member03": {"sensitivity": 0.9, "far_24h": 0.3},   # 0.316
        "member04": {"sensitivity": None, "far_24h": None},  # 1 (nothing measured)
        "member05": {"sensitivity": 1.0, "far_24h": 0.1},   # 0.1
    }
    for v in numbers.values():
        v["distance"] = float(np.hypot(1 - (v["sensitivity"] or 0), v["far_24h"] or 0))
    ranked, kept = choose_members(numbers, 3)
    assert ranked == ["member05", "member03", "member02", "member04", "member01"]
    assert kept == ["member02", "member03", "member05"]


def test_quantile_chosen_nearest_to_perfect_ties_to_fewer_false_alarms_then_near_06():
    def r(d, far):
        return {"distance": d, "far_24h": far}

    assert choose_quantile([(0.4, r(0.3, 0.2)), (0.6, r(0.2, 0.1)), (0.8, r(0.5, 0))]) == 0.6
    assert choose_quantile([(0.5, r(0.2, 0.2)), (0.7, r(0.2, 0.0))]) == 0.7
    assert choose_quantile([(0.3, r(0.2, 0.0)), (0.5, r(0.2, 0.0)),
                            (0.8, r(0.2, 0.0))]) == 0.5
    with pytest.raises(ValueError):
        choose_quantile([])


def test_config_takes_one_quantile_or_many_and_refuses_keep_above_members():
    assert load_config(None, {"ensemble": {"quantile": 0.6}}).ensemble.quantile == [0.6]
    with pytest.raises(InputError, match="keep=4 exceeds members=3"):
        load_config(None, {"ensemble": {"members": 3, "keep": 4}})


# --------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def tiny_ensemble(six_users, tmp_path_factory):
    from osdml.ensemble import run_ensemble

    streams, _ = six_users
    data = streams.report.files
    cfg = load_config(None, {**TINY_TRAIN, "export": {"formats": ["pt"]},
                             "ensemble": {"members": 3, "keep": 2, "quantile": [0.4, 0.6]}})
    out = tmp_path_factory.mktemp("ens") / "e"
    lines = []
    return run_ensemble(cfg, out, files=data, progress=False, cache=False, say=lines.append), \
        lines


def test_tiny_ensemble_writes_members_one_pte_and_its_record(tiny_ensemble):
    from osdml.models.ensemble import harrell_davis_weights

    result, lines = tiny_ensemble
    out = result.out_dir
    for name in ("member01", "member02", "member03"):
        assert (out / "members" / name / "model.pt").is_file()
    for name in ("ensemble.pt", "ensemble.pte", "ensemble.pte.json", "ensemble.json",
                 "summary.json", "report.md", "report.html", "split.json", "config.toml"):
        assert (out / name).is_file(), name
    record = json.loads((out / "ensemble.json").read_text())
    assert [m["name"] for m in record["members"]] == ["member01", "member02", "member03"]
    assert sum(m["kept"] for m in record["members"]) == 2
    assert record["quantile"] in (0.4, 0.6)
    np.testing.assert_allclose(record["weights"], harrell_davis_weights(2, record["quantile"]))
    s = result.summary
    assert result.passed and s["parity_passed"]
    assert [r["quantile"] for r in s["quantile_table"]["test"]] == [0.4, 0.6]
    assert {"sensitivity", "far_24h", "tp", "fn", "fp"} <= set(s["test"]["paper"])
    assert {"sensitivity", "far_24h"} <= set(s["test"]["app"])
    assert "Quantiles" in (out / "report.md").read_text()
    assert any("kept 2 of 3" in line for line in lines)


def test_resume_keeps_complete_members_and_refuses_a_complete_ensemble(tiny_ensemble,
                                                                         monkeypatch):
    import osdml.ensemble as ens

    result, _ = tiny_ensemble
    with pytest.raises(InputError, match="complete"):
        ens.run_ensemble(None, result.out_dir, resume=True, progress=False, cache=False)
    # an ensemble stopped after its members: resuming trains none of them again
    summary = result.out_dir / "summary.json"
    saved = summary.read_bytes()
    summary.unlink()
    mtimes = {p: p.stat().st_mtime_ns for p in (result.out_dir / "members").glob("*/model.pt")}
    seen = {}
    monkeypatch.setattr(ens, "_finish", lambda out, splits, cfg, *a: seen.update(
        names=[s.name for s in splits], skipped=a[-1]))
    try:
        ens.run_ensemble(None, result.out_dir, resume=True, progress=False, cache=False)
    finally:
        summary.write_bytes(saved)
    assert seen["skipped"] == ["member01", "member02", "member03"] == seen["names"]
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_a_used_folder_is_refused_without_resume(tiny_ensemble):
    from osdml.ensemble import run_ensemble

    result, _ = tiny_ensemble
    with pytest.raises(InputError, match="not empty"):
        run_ensemble(load_config(None), result.out_dir, progress=False)
