"""osdml run: k-fold and nested runs on tiny generated data, best-fold choice, resume."""

import hashlib
import json

import pytest

import osdml.pipeline
from conftest import TINY_TRAIN
from osdml.cli import main
from osdml.config import load_config
from osdml.crossval import choose_best, run_crossval
from osdml.errors import InputError


def cv_config(synth_dir, **split):
    return load_config(None, {**TINY_TRAIN, "data": {
        **TINY_TRAIN["data"], "files": [str(synth_dir)],
        "split": {"method": "kfold", "n_folds": 2, **split}}})


@pytest.fixture(scope="module")
def kfold_run(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return run_crossval(cv_config(synth_dir), out, progress=False, cache=False)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_kfold_run_writes_folds_best_summary_and_reports(kfold_run):
    r = kfold_run
    d = r.run_dir
    assert d.name == "run-001"
    for name in ("fold0", "fold1"):
        assert (d / "folds" / name / "summary.json").is_file()
        assert (d / "folds" / name / "events.csv").is_file()
    assert not list((d / "folds").glob(".*"))  # no partial folder left
    for f in ("model.pt", "model.ptl", "model.pte", "model.pte.json", "manifest.json"):
        assert (d / "best" / f).is_file(), f
    manifest = json.loads((d / "best" / "manifest.json").read_text())
    assert manifest["fold"] == r.best
    assert sha(d / "best" / "model.pte") == sha(d / "folds" / r.best / "model.pte")
    assert manifest["files"]["model.pte"]["sha256"] == sha(d / "best" / "model.pte")
    summary = json.loads((d / "summary.json").read_text())
    st = summary["stats"]["test_window_roc_auc"]
    assert st["n"] == 2 and st["mean"] is not None and st["std"] is not None
    assert set(summary["folds"]) == {"fold0", "fold1"}
    assert "osd_event_sensitivity" in summary["stats"]
    html = (d / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6  # sweep, ROC, confusion, users, 2 curves
    assert "src=\"plots/" not in html
    md = (d / "report.md").read_text()
    assert "Mean and standard deviation over folds" in md and "](plots/roc.png)" in md
    log = (d / "run.log").read_text()
    assert "fold0: training" in log and "best fold" in log


def test_best_fold_follows_the_recorded_validation_numbers(kfold_run):
    r = kfold_run
    folds = {n: json.loads((r.run_dir / "folds" / n / "summary.json").read_text())
             for n in ("fold0", "fold1")}
    cfg = load_config(r.run_dir / "config.toml")
    assert r.best == choose_best(folds, cfg.evaluate)[0]
    # a rule on validation loss picks the fold with the lowest recorded validation loss,
    # whatever the test numbers say
    by_loss = min(folds, key=lambda n: folds[n]["metrics"]["validation"]["loss"])
    assert choose_best(folds, cfg.evaluate.model_copy(update={"best_fold": "val_loss"}))[0] \
        == by_loss


def test_interrupted_fold_is_restarted_and_complete_folds_are_kept(kfold_run, synth_dir,
                                                                   tmp_path, monkeypatch,
                                                                   capsys):
    real = osdml.pipeline.train_split

    def killed_in_fold1(streams, selection, split, cfg, out, **kw):
        if split.name == "fold1":
            out.mkdir(parents=True)
            (out / "model.pt").write_bytes(b"half a file")
            raise KeyboardInterrupt
        return real(streams, selection, split, cfg, out, **kw)

    monkeypatch.setattr(osdml.pipeline, "train_split", killed_in_fold1)
    with pytest.raises(KeyboardInterrupt):
        run_crossval(cv_config(synth_dir), tmp_path, progress=False, cache=False)
    d = tmp_path / "run-001"
    assert (d / "folds" / "fold0" / "summary.json").is_file()
    assert not (d / "folds" / "fold1").exists() and (d / "folds" / ".fold1.partial").exists()
    assert not (d / "best").exists() and not (d / "summary.json").exists()
    kept = (d / "folds" / "fold0" / "model.pt").stat().st_mtime_ns
    monkeypatch.setattr(osdml.pipeline, "train_split", real)
    assert main(["run", "--resume", str(d), "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["best"] in ("fold0", "fold1")
    assert (d / "folds" / "fold0" / "model.pt").stat().st_mtime_ns == kept
    assert not (d / "folds" / ".fold1.partial").exists()
    assert "fold1: removing the unfinished attempt" in (d / "run.log").read_text()
    # the resumed fold matches the same fold of an uninterrupted run with the same seed
    for name in ("fold0", "fold1"):
        a = json.loads((d / "folds" / name / "summary.json").read_text())
        b = kfold_run.folds[name]
        assert a["chosen_epoch"] == b["chosen_epoch"]
        assert a["metrics"]["validation"]["loss"] == pytest.approx(
            b["metrics"]["validation"]["loss"], abs=1e-6)
    assert out["best"] == kfold_run.best


def test_resume_refuses_a_different_configuration_or_a_non_run_folder(kfold_run, synth_dir,
                                                                      tmp_path):
    other = cv_config(synth_dir, seed=1)
    with pytest.raises(InputError, match="data.split.seed"):
        run_crossval(other, resume=kfold_run.run_dir, progress=False, cache=False)
    with pytest.raises(InputError, match="not a run folder"):
        run_crossval(None, resume=tmp_path, progress=False, cache=False)


def test_cli_run_without_config_or_resume_is_one_line(capsys):
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--config" in err[0]


def test_nested_run_picks_each_outer_fold_among_its_inner_folds(synth_dir, tmp_path):
    cfg = cv_config(synth_dir, method="nested", n_inner_folds=2)
    cfg = cfg.model_copy(update={"export": cfg.export.model_copy(update={"formats": ["pt"]})})
    r = run_crossval(cfg, tmp_path, progress=False, cache=False)
    assert sorted(r.folds) == ["fold0.0", "fold0.1", "fold1.0", "fold1.1"]
    assert [n.split(".")[0] for n in r.outer] == ["fold0", "fold1"]
    for k, name in enumerate(r.outer):
        inner = {n: r.folds[n] for n in r.folds if n.startswith(f"fold{k}.")}
        assert name == choose_best(inner, cfg.evaluate)[0]
    assert r.stats["test_window_sensitivity"]["n"] == 2  # statistics over outer folds
    assert (r.run_dir / "best" / "model.pt").is_file()
    assert not (r.run_dir / "best" / "model.pte").exists()


def test_resume_names_what_is_missing_and_retrains_an_unreadable_fold(kfold_run, tmp_path,
                                                                     capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(kfold_run.run_dir, copy)
    (copy / "split.json").rename(copy / "split.json.bak")
    assert main(["run", "--resume", str(copy), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "split.json missing" in err[0] and "config.toml" not in err[0]
    (copy / "split.json.bak").rename(copy / "split.json")
    (copy / "folds" / "fold0" / "summary.json").write_text("garbage{")
    stale = copy / ".summary.json.ab12cd.tmp"  # an atomic write killed half-way
    stale.write_text("{half")
    r = run_crossval(None, resume=copy, progress=False, cache=False)
    assert r.skipped == ["fold1"]
    assert not stale.exists()
    assert "fold0: summary.json missing or unreadable" in (copy / "run.log").read_text()
    assert r.folds["fold0"]["chosen_epoch"] == kfold_run.folds["fold0"]["chosen_epoch"]
    # paths recorded in a finished fold point at its final folder, not the partial one
    assert ".partial" not in (copy / "folds" / "fold0" / "validation.json").read_text()
