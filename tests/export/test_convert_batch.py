"""Batches of `osdml convert`: inputs that would write one output are settled before any work,
and Ctrl-C stops a batch with worker processes at once (real processes, real signals)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from osdml.cli import main
from osdml.export.checkpoint import save_pt
from osdml.export.convert import ConvertOptions, _plan
from osdml.export.ptl import export_ptl
from osdml.models import create_model
from osdml.spec import ModelSpec
from realproc import ended, wait_for

CLI = [sys.executable, "-m", "osdml.cli"]


def _models(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True)
    for i in range(n):
        torch.manual_seed(i)
        torch.save(create_model("deep_epi_cnn").eval().state_dict(), folder / f"m{i}.pt")
    return sorted(folder.iterdir())


def _run_folder(folder: Path) -> Path:
    """What `osdml train` leaves: model.pt (spec inside) and model.ptl."""
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    model, spec = create_model("deep_epi_cnn").eval(), ModelSpec()
    save_pt(folder / "model.pt", model, spec)
    export_ptl(model, spec, folder / "model.ptl", optimize=False)
    return folder


def _start(args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # its own process group, as at a terminal, with the terminal's Ctrl-C behaviour (a shell
    # without job control starts children with SIGINT ignored)
    return subprocess.Popen(CLI + args, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _kill_all(proc):
    """SIGKILL the group (workers left running would hold stderr open)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _ctrl_c(proc):
    """What Ctrl-C at a terminal does: SIGINT to every process of the group."""
    os.killpg(proc.pid, signal.SIGINT)


def _workers(pid: int) -> set[int]:
    """The worker processes of `pid` (not multiprocessing's resource tracker)."""
    kids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids |= {int(k) for k in (task / "children").read_text().split()}
        except OSError:
            continue
    return {k for k in kids if "spawn_main" in _cmdline(k)}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".")
            or p.name.endswith((".tmp", ".converting"))]


pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc")


def test_ctrl_c_stops_a_batch_at_once_and_a_rerun_converts_the_rest(tmp_path, capsys,
                                                                       monkeypatch):
    _models(tmp_path / "models", 3)
    out = tmp_path / "out"
    proc = _start(["convert", "models", "-r", "-o", "out", "--to", "ptl", "--workers", "2"],
                  tmp_path)
    workers: set[int] = set()

    def first_output():
        workers.update(_workers(proc.pid))
        return any(out.glob("*.ptl.json"))

    wait_for(proc, first_output, kill=_kill_all)
    t0 = time.monotonic()
    _ctrl_c(proc)
    code = ended(proc, 30, "one Ctrl-C did not stop the batch", kill=_kill_all)
    stopped_in = time.monotonic() - t0
    err = proc.stderr.read()
    assert code == 130 and stopped_in < 5, (code, stopped_in, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("osdml: interrupted: ")
    assert "rerun the same command to convert the rest" in lines[0]
    assert workers and not [p for p in workers if _alive(p)]  # no worker outlives the batch
    assert not _leftovers(out)  # no temporary file
    done = sorted(p.name for p in out.glob("*.ptl"))
    assert done and len(done) < 3
    for name in done:  # whatever carries a final name is complete and checked
        assert json.loads((out / f"{name}.json").read_text())["validation"]["passed"]
    # a temporary file of a killed conversion never counts as done, and is cleared
    missing = sorted({"m0.ptl", "m1.ptl", "m2.ptl"} - set(done))
    stale = out / f".{missing[0]}.{proc.pid}.converting"
    stale.write_bytes(b"half")
    monkeypatch.chdir(tmp_path)  # the same command again (outputs record their input's path)
    assert main(["convert", "models", "-r", "-o", "out", "--to", "ptl", "--workers", "1",
                 "--json"]) == 0
    status = {f"{Path(r['input']).stem}.ptl": r["status"]
              for r in json.loads(capsys.readouterr().out)}
    assert status == {n: "skipped" if n in done else "converted" for n in status}
    assert not stale.exists() and not _leftovers(out)
    assert sorted(p.name for p in out.glob("*.ptl")) == ["m0.ptl", "m1.ptl", "m2.ptl"]


def test_two_ctrl_c_never_hang_or_print_worker_tracebacks(tmp_path):
    _models(tmp_path / "models", 4)
    proc = _start(["convert", "models", "-r", "-o", "out", "--to", "ptl", "--workers", "2"],
                  tmp_path)
    workers: set[int] = set()

    def working():
        workers.update(_workers(proc.pid))
        return len(workers) >= 2

    wait_for(proc, working, kill=_kill_all)
    time.sleep(1.0)  # the workers import torch and start converting
    _ctrl_c(proc)
    time.sleep(0.05)
    _ctrl_c(proc)
    code = ended(proc, 20, "two Ctrl-C: the batch hung", kill=_kill_all)
    err = proc.stderr.read()
    assert code == 130 and "Traceback" not in err, err
    assert not [p for p in workers if _alive(p)]
    assert not _leftovers(tmp_path / "out")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def test_a_run_folder_converts_its_checkpoint_and_skips_the_ptl(tmp_path, capsys):
    run = _run_folder(tmp_path / "runs" / "a")
    # beside the inputs (model.pte): model.pt carries the spec and wins, before any work
    items = [(run / "model.pt", run / "model.pte"), (run / "model.ptl", run / "model.pte")]
    results: dict = {}
    assert _plan(items, ConvertOptions(), results) == [0]
    assert results[1].status == "skipped"
    assert results[1].reason == f"same output as {run / 'model.pt'}, which carries the spec"
    # --to ptl beside them: model.pt would overwrite the run's model.ptl, which is refused
    results = {}
    assert _plan([(run / "model.pt", run / "model.ptl"), (run / "model.ptl", run / "model.ptl")],
                 ConvertOptions(to="ptl"), results) == []
    assert results[0].status == "failed" and "overwrite the input" in results[0].reason
    assert results[1].status == "skipped"
    # the whole command on a folder of runs: one converted, one skipped, exit 0
    out = tmp_path / "out"
    code = main(["convert", str(tmp_path / "runs"), "-r", "-o", str(out), "--to", "ptl",
                 "--json"])
    got = {Path(r["input"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert code == 0
    assert got["model.pt"]["status"] == "converted" and (out / "a" / "model.ptl").is_file()
    assert got["model.ptl"]["status"] == "skipped"
    assert "which carries the spec" in got["model.ptl"]["reason"]
