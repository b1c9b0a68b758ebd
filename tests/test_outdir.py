"""Nothing a user made is lost: one writer per output (locks, stale takeover), resume and
replace that check the folder's kind, --replace that swaps the new run in only on success."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from osdml.cli import main
from osdml.errors import InputError
from osdml.outdir import (
    check_kind,
    folder_kind,
    hold,
    lock_path,
    record_kind,
    recover,
    staging,
    swap_in,
)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def _holder_process(target):
    """A real process holding the lock on `target` until killed."""
    code = ("import sys, time; from osdml.outdir import hold\n"
            "with hold(sys.argv[1], 'osdml train --out ' + sys.argv[1]):\n"
            "    print('held', flush=True); time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _refused_while_held(out, capsys, args):
    """Run the CLI with `args(out)` while a real process holds `out`'s lock: exit 2, one line
    naming the holder, nothing written."""
    proc = _holder_process(out)
    try:
        rc = main(args(out))
    finally:
        proc.kill()
        proc.wait()
    err = capsys.readouterr().err
    assert rc == 2 and f"pid {proc.pid}" in err and "Traceback" not in err
    assert not out.exists()


# ------------------------------------------------------------------------------- locks

def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    target = tmp_path / "runs" / "x"
    proc = _holder_process(target)
    try:
        with pytest.raises(InputError) as e, hold(target, "osdml train --out x"):
            pass
        msg = str(e.value)
        assert f"pid {proc.pid}" in msg and socket.gethostname() in msg
        assert "osdml train --out" in msg and "\n" not in msg
    finally:
        proc.kill()
        proc.wait()
    # the holder was killed: its lock is stale and taken over, then released
    with hold(target, "osdml train --out x") as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not lock_path(target).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    target = tmp_path / "x"
    lock_path(target).write_text(json.dumps({"pid": int(dead.stdout), "host":
                                             socket.gethostname(), "command": "osdml train"}))
    with hold(target, "osdml train"):
        assert json.loads(lock_path(target).read_text())["pid"] == os.getpid()


def test_lock_of_another_host_is_never_taken_silently(tmp_path):
    target = tmp_path / "x"
    lock_path(target).write_text(json.dumps({"pid": 1, "host": "elsewhere",
                                             "command": "osdml run"}))
    with pytest.raises(InputError, match="elsewhere.*remove .*x.lock"), hold(target, "t"):
        pass
    assert lock_path(target).exists()  # not ours to delete


def test_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError), hold(tmp_path / "x", "t"):
        raise RuntimeError("boom")
    assert not lock_path(tmp_path / "x").exists()


def test_train_into_a_folder_another_process_writes_is_refused(tmp_path, synth_dir, capsys):
    """Two `osdml train --out same` at once: the second gets one line, exit 2, and writes
    nothing into the folder (before: both wrote it, and the first failed its own parity
    check on the second's files)."""
    _refused_while_held(tmp_path / "same", capsys, lambda out: [
        "train", "--out", str(out), "--data", str(synth_dir), "--epochs", "1"])


# ------------------------------------------------------------------------------- kinds

def _fake_run(folder, kind):
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text("")
    (folder / "split.json").write_text("{}")
    if kind == "crossval":
        (folder / "folds").mkdir()
    record_kind(folder, kind)
    return folder


@pytest.mark.parametrize("args, kind, says", [
    (["run", "--resume", "{d}"], "train", "osdml train --resume --out"),
    (["ensemble", "--resume", "--out", "{d}"], "train", "osdml train --resume --out"),
    (["train", "--resume", "--out", "{d}"], "crossval", "osdml run --resume"),
    (["ensemble", "--resume", "--out", "{d}"], "crossval", "osdml run --resume"),
    (["train", "--replace", "--out", "{d}", "--data", "{d}"], "ensemble", "does not replace"),
])
def test_a_folder_of_another_kind_is_refused(tmp_path, capsys, args, kind, says):
    """Before: `osdml run --resume` on an `osdml train` folder retrained it, replaced its
    summary.json with a cross-validation summary and added folders, exit 0."""
    d = _fake_run(tmp_path / "r", kind)
    before = _digest(d)
    rc = main([a.format(d=d) for a in args])
    err = capsys.readouterr().err
    assert rc == 2 and says in err and err.count("\n") == 1, err
    assert _digest(d) == before and sorted(p.name for p in d.iterdir()) == sorted(
        ["config.toml", "split.json", "kind.json"] + (["folds"] if kind == "crossval" else []))


def test_kind_of_folders_written_before_the_record(tmp_path):
    (tmp_path / "ens" / "members").mkdir(parents=True)
    (tmp_path / "cv" / "folds").mkdir(parents=True)
    (tmp_path / "tr").mkdir()
    (tmp_path / "tr" / "split.json").write_text("{}")
    assert [folder_kind(tmp_path / n) for n in ("ens", "cv", "tr", "none")] == [
        "ensemble", "crossval", "train", None]
    check_kind(tmp_path / "none", "train", "resume")  # nothing there: nothing to refuse


def test_tiny_run_records_its_kind(tiny_run):
    assert json.loads((tiny_run.out_dir / "kind.json").read_text())["kind"] == "train"


# ------------------------------------------------------------------------------- replace

@pytest.mark.parametrize("bad", ["missing file", "no seizures"])
def test_failed_replacement_keeps_the_previous_run(tmp_path, tiny_run, synth_dir, capsys, bad):
    """Before: `osdml train --replace` with unusable data exited 2 and left the folder
    empty: the previous model was gone."""
    old = shutil.copytree(tiny_run.out_dir, tmp_path / "x")
    before = _digest(old)
    if bad == "missing file":
        data = tmp_path / "nope.json"
    else:  # a release with no seizure events
        data = tmp_path / "calm.json"
        events = [e for f in sorted(synth_dir.glob("osdb_*.json"))
                  for e in json.loads(f.read_text()) if e.get("type") != "Seizure"]
        data.write_text(json.dumps(events))
    rc = main(["train", "--replace", "--out", str(old), "--data", str(data), "--epochs", "1",
               "--no-cache"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert _digest(old) == before
    assert not staging(old).exists() or not (staging(old) / "summary.json").exists()


def test_replacement_swaps_in_only_when_complete(tmp_path, tiny_run, synth_dir, tiny_config):
    from osdml.pipeline import train_run

    old = shutil.copytree(tiny_run.out_dir, tmp_path / "x")
    (old / "notes.txt").write_text("mine")  # not written by osdml train: never deleted
    cfg = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(
        update={"seed": 11})})
    run = train_run([synth_dir], cfg, old, progress=False, cache=False, replace=True)
    assert (old / "notes.txt").read_text() == "mine"
    assert run.passed and run.out_dir == old
    summary = json.loads((old / "summary.json").read_text())
    assert summary["out_dir"] == str(old)
    assert all(a["path"].startswith(str(old) + os.sep) for a in summary["artefacts"].values())
    assert all(p.parent == old and p.is_file() for p in run.artefacts.values())
    assert "seed = 11" in (old / "config.toml").read_text()
    assert not staging(old).exists() and not (tmp_path / ".x.previous").exists()


def test_recover_finishes_or_undoes_a_killed_swap(tmp_path):
    target = tmp_path / "x"
    prev = tmp_path / ".x.previous"
    # killed after moving the old run aside, with the new one complete: it goes in
    prev.mkdir()
    (prev / "summary.json").write_text("old")
    new = staging(target)
    new.mkdir()
    (new / "summary.json").write_text("new")
    assert "finished" in recover(target)
    assert (target / "summary.json").read_text() == "new" and not prev.exists()
    # killed with the new one incomplete: the old one comes back
    shutil.rmtree(target)
    prev.mkdir()
    (prev / "summary.json").write_text("old")
    staging(target).mkdir()
    assert "put the previous run back" in recover(target)
    assert (target / "summary.json").read_text() == "old"
    # a whole swap leaves nothing beside the target
    shutil.rmtree(staging(target))
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text("newer")
    swap_in(other, target)
    assert (target / "summary.json").read_text() == "newer" and not prev.exists()
    assert recover(target) is None


def test_lock_leaves_no_folder_it_made_for_itself(tmp_path):
    """A command refused for bad input must not leave the folders of its --out behind."""
    with hold(tmp_path / "a" / "b" / "run", "t"):
        assert (tmp_path / "a" / "b").is_dir()
    assert not (tmp_path / "a").exists()
    with hold(tmp_path / "c" / "run", "t"):
        (tmp_path / "c" / "run").mkdir()  # the command wrote its output: the folders stay
    assert (tmp_path / "c" / "run").is_dir()


def test_convert_to_an_output_another_process_writes_is_refused(tmp_path, tiny_run, capsys):
    _refused_while_held(tmp_path / "model.pte", capsys, lambda out: [
        "convert", str(tiny_run.artefacts["pt"]), "-o", str(out)])


def test_remove_stale_lock_only_removes_a_dead_holder(tmp_path):
    from osdml.outdir import remove_stale_lock

    target = tmp_path / "m.pte"
    lock_path(target).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    assert not remove_stale_lock(target) and lock_path(target).exists()  # alive: kept
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    lock_path(target).write_text(json.dumps({"pid": int(dead.stdout),
                                             "host": socket.gethostname()}))
    assert remove_stale_lock(target) and not lock_path(target).exists()


def test_a_conversion_batch_folder_records_its_kind_and_is_not_a_run(tmp_path, capsys):
    empty = tmp_path / "models"
    empty.mkdir()
    run = _fake_run(tmp_path / "run", "train")
    before = _digest(run)
    assert main(["convert", str(empty), "-r", "-o", str(run)]) == 2
    assert "it holds a training run (osdml train)" in capsys.readouterr().err
    assert _digest(run) == before
    out = tmp_path / "converted"
    assert main(["convert", str(empty), "-r", "-o", str(out)]) == 0
    assert folder_kind(out) == "convert"
    capsys.readouterr()
    assert main(["train", "--replace", "--out", str(out), "--data", str(empty)]) == 2
    assert "it holds a conversion batch" in capsys.readouterr().err


def test_a_lock_file_that_is_not_an_osdml_lock_is_taken_over(tmp_path):
    for junk in ("", "{}", '{"pid": "x"}', '{"pid": -1}', "[1]"):
        lock_path(tmp_path / "x").write_text(junk)
        with hold(tmp_path / "x", "t"):
            assert json.loads(lock_path(tmp_path / "x").read_text())["pid"] == os.getpid()


def test_a_forked_child_never_releases_its_parents_lock(tmp_path):
    target = tmp_path / "x"
    lock = hold(target, "t")
    lock.__enter__()
    pid = os.fork()
    if pid == 0:  # a forked worker that leaves the block in its own process
        try:
            lock.__exit__(None, None, None)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert lock_path(target).exists()
    lock.__exit__(None, None, None)
    assert not lock_path(target).exists()
