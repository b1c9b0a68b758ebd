"""Real signals: SIGKILL during training and during export, SIGINT during a cross-validation
run. Afterwards no half-written file carries a final name, and --resume gives the same result
as a run that was never interrupted (same data, configuration and seed)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tomllib

import pytest
import torch

from conftest import TINY_TRAIN
from osdml.cli import main
from osdml.config import load_config
from osdml.crossval import run_crossval
from osdml.pipeline import train_run
from realproc import wait_for

CLI = [sys.executable, "-m", "osdml"]  # what the console script runs: osdml.cli.entry
ARTEFACTS = ("model.pt", "model.ptl", "model.pte", "model.pte.json", "summary.json")


def slow_config(synth_dir, **split):
    """Long enough epochs (~0.5 s) to be interrupted in the middle of training."""
    train = {**TINY_TRAIN["train"], "max_epochs": 4, "windows_per_epoch": 384}
    data = {**TINY_TRAIN["data"], "files": [str(synth_dir)], "split": split or {}}
    return load_config(None, {"data": data, "train": train})


def write_config(cfg, path):
    path.write_text(cfg.to_toml())
    assert tomllib.loads(path.read_text())  # valid TOML
    return path


def _default_sigint():
    # a shell without job control starts background jobs with SIGINT ignored, and children
    # inherit that: give the child the Ctrl-C behaviour a terminal user has
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(CLI + args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def epochs_done(folder):
    path = folder / "metrics.csv"
    try:
        return len(list(csv.DictReader(path.open()))) if path.is_file() else 0
    except OSError:
        return 0


def same_training(a, b):
    """Same epochs, same validation numbers, same chosen weights."""
    rows_a = list(csv.DictReader((a / "metrics.csv").open()))
    rows_b = list(csv.DictReader((b / "metrics.csv").open()))
    assert [r["val_loss"] for r in rows_a] == [r["val_loss"] for r in rows_b]
    wa = torch.load(a / "model.pt", weights_only=True)["model_state_dict"]
    wb = torch.load(b / "model.pt", weights_only=True)["model_state_dict"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def reference(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    train_run([synth_dir], slow_config(synth_dir), out, progress=False, cache=False)
    return out


def test_sigkill_during_training_then_resume_from_the_last_epoch(synth_dir, reference,
                                                                  tmp_path):
    cfg = write_config(slow_config(synth_dir), tmp_path / "cfg.toml")
    run = tmp_path / "run"
    proc = start(["train", "-c", str(cfg), "-o", str(run), "-q", "--no-cache"], tmp_path)
    wait_for(proc, lambda: epochs_done(run) >= 2 and (run / "last.ckpt").is_file())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not any((run / n).exists() for n in ARTEFACTS)  # killed while training
    killed_at = epochs_done(run)
    assert 2 <= killed_at < 4
    assert main(["train", "-o", str(run), "--resume", "-q", "--no-cache"]) == 0
    assert not (run / "last.ckpt").exists()  # complete: nothing left to resume
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temporary file
    same_training(run, reference)


def test_sigkill_during_export_then_resume(synth_dir, reference, tmp_path):
    cfg = write_config(slow_config(synth_dir), tmp_path / "cfg.toml")
    run = tmp_path / "run"
    proc = start(["train", "-c", str(cfg), "-o", str(run), "-q", "--no-cache"], tmp_path)
    wait_for(proc, lambda: (run / "model.pt").is_file())  # export has begun
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "summary.json").exists()
    # whatever has a final name is complete: the checkpoint loads
    torch.load(run / "model.pt", weights_only=True)
    assert main(["train", "-o", str(run), "--resume", "-q", "--no-cache"]) == 0
    same_training(run, reference)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["validation_passed"] and set(summary["artefacts"]) == {"pt", "ptl", "pte"}


def test_sigint_during_a_cross_validation_run_then_resume(synth_dir, tmp_path):
    cfg = slow_config(synth_dir, method="kfold", n_folds=2)
    cfg = cfg.model_copy(update={"export": cfg.export.model_copy(update={"formats": ["pt"]})})
    reference = run_crossval(cfg, tmp_path / "ref", progress=False, cache=False)
    path = write_config(cfg, tmp_path / "cv.toml")
    proc = start(["run", "-c", str(path), "-o", str(tmp_path / "runs"), "-q", "--no-cache"],
                 tmp_path)
    run = tmp_path / "runs" / "run-001"
    partial = run / "folds" / ".fold1.partial"
    wait_for(proc, lambda: epochs_done(partial) >= 1 and (partial / "last.ckpt").is_file())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    assert "interrupted" in proc.stderr.read()
    assert (run / "folds" / "fold0" / "summary.json").is_file()
    assert not (run / "folds" / "fold1").exists() and not (run / "best").exists()
    r = run_crossval(None, resume=run, progress=False, cache=False)
    assert r.skipped == ["fold0"]
    assert "fold1: resuming the unfinished fold" in (run / "run.log").read_text()
    for name in ("fold0", "fold1"):
        same_training(run / "folds" / name, reference.run_dir / "folds" / name)
    assert r.best == reference.best


@pytest.mark.parametrize("status", [130, 0])
def test_after_ctrl_c_exit_handlers_run_and_the_slow_teardown_is_skipped(tmp_path, status):
    """`entry` ends an interrupted process once the exit handlers (Ray's shutdown,
    multiprocessing's worker clean-up, logging) have run, without the interpreter's teardown
    of torch and Lightning that kept `osdml train` alive 2-3 s after Ctrl-C; other exits are
    left as they were."""
    code = ("import atexit\nimport osdml.cli as cli\n"
            "atexit.register(lambda: open('handler_ran', 'w').close())\n"
            "class Late:\n    def __del__(self, open=open):\n"
            "        open('teardown_ran', 'w').close()\n"
            f"keep = Late()\ncli.main = lambda: {status}\ncli.entry()\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == status, p.stderr
    assert (tmp_path / "handler_ran").exists()
    assert (tmp_path / "teardown_ran").exists() == (status != 130)


def test_train_resume_refuses_what_cannot_be_resumed(tiny_run, tmp_path, capsys):
    import shutil

    interrupted = tmp_path / "interrupted"
    shutil.copytree(tiny_run.out_dir, interrupted)
    (interrupted / "summary.json").unlink()
    (interrupted / ".summary.json.x1y2.tmp").write_text("{half")
    # the run's own settings given as a k-fold file (train records it as holdout) with one
    # real difference: the message names that key, not the split method
    other = tmp_path / "other.toml"
    other.write_text(tomllib_dump(tiny_run.out_dir / "config.toml", method="kfold",
                                  lr_peak=0.5))
    for args, phrase in ((["-o", str(interrupted), "-c", str(other)], "train.lr_peak: 0.5"),
                         (["-o", str(interrupted), "--seed", "4"], "cannot change a run"),
                         (["-o", str(tiny_run.out_dir)], "the run is complete"),
                         (["-o", str(tmp_path / "nope")], "no such folder"),
                         (["-o", str(tmp_path)], "config.toml and split.json missing"),
                         (["-o", str(tmp_path), "--replace"], "give one of them")):
        assert main(["train", "--resume", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and phrase in err[0], err


def tomllib_dump(config_toml, method, lr_peak):
    """The run's configuration file with split.method and train.lr_peak replaced."""
    cfg = load_config(config_toml)
    cfg = cfg.model_copy(update={
        "data": cfg.data.model_copy(update={"split": cfg.data.split.model_copy(
            update={"method": method})}),
        "train": cfg.train.model_copy(update={"lr_peak": lr_peak})})
    return cfg.to_toml()


def test_sigkill_during_a_replacement_keeps_the_old_run_then_resume_swaps_it_in(
        synth_dir, reference, tmp_path):
    """`osdml train --replace` killed mid-training: the previous run is byte for byte as it
    was (before: its files were deleted first); `--resume` finishes the replacement beside
    it and swaps it in; the dead process's lock is taken over."""
    import hashlib
    import shutil

    def digest(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in folder.iterdir() if p.is_file()}

    old = shutil.copytree(reference, tmp_path / "run")
    before = digest(old)
    cfg = write_config(slow_config(synth_dir), tmp_path / "cfg.toml")
    proc = start(["train", "-c", str(cfg), "-o", str(old), "--replace", "-q", "--no-cache"],
                 tmp_path)
    stage = tmp_path / ".run.replacing"
    wait_for(proc, lambda: epochs_done(stage) >= 2 and (stage / "last.ckpt").is_file())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert digest(old) == before
    assert (tmp_path / ".run.lock").exists()  # left by the killed process
    assert main(["train", "-o", str(old), "--resume", "-q", "--no-cache"]) == 0
    assert not stage.exists() and not (tmp_path / ".run.lock").exists()
    assert not (tmp_path / ".run.previous").exists()
    summary = json.loads((old / "summary.json").read_text())
    assert summary["out_dir"] == str(old)  # the copied run named the reference's folder
    assert json.loads((reference / "summary.json").read_text())["out_dir"] != str(old)
    same_training(old, reference)
