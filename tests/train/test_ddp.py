"""Training one model with Lightning's DDP: two CPU processes (gloo).

Each rank takes its share of the same seeded batches; validation metrics are computed over the
whole validation part (gathered, in order) and equal one process's evaluation of the same
weights; only rank 0 writes; a run killed between epochs resumes to the same result as one that
never stopped. Device requests this machine cannot honour are refused in one line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import osdml.train.devices as D
from conftest import TINY_TRAIN
from osdml.config import load_config
from osdml.data.filters import select_events
from osdml.data.split import split_events
from osdml.errors import InputError
from osdml.evaluate.metrics import window_metrics
from osdml.pipeline import split_windows
from osdml.train.datamodule import EpochBatches
from osdml.train.fit import CHECKPOINT, fit

pytestmark = pytest.mark.slow

DDP = {**TINY_TRAIN, "train": {**TINY_TRAIN["train"], "max_epochs": 3, "accelerator": "cpu",
                               "devices": 2, "strategy": "ddp"}}


@pytest.fixture(scope="module")
def parts(synth_streams):
    cfg = load_config(None, DDP)
    sel = select_events(synth_streams)
    (split,) = split_events(synth_streams, sel, cfg.data.split)
    return cfg, split_windows(synth_streams, sel, split, cfg)


@pytest.fixture(scope="module")
def ddp_run(parts, tmp_path_factory):
    cfg, p = parts
    out = tmp_path_factory.mktemp("ddp")
    return out, fit(cfg, p.train, p.val, out_dir=out, progress=False)


def test_each_rank_takes_its_share_of_the_same_batches():
    labels = np.array([0, 1] * 50)
    whole = list(EpochBatches(labels, 64, 16, True, seed=5))
    shares = [list(EpochBatches(labels, 64, 16, True, seed=5, rank=r, world=2)) for r in (0, 1)]
    for b, b0, b1 in zip(whole, *shares, strict=True):
        assert sorted(b0 + b1) == sorted(b) and len(b0) == len(b1) == 8


def test_ddp_trains_and_rank_0_alone_writes(ddp_run):
    out, result = ddp_run
    assert result.placement == {"accelerator": "cpu", "devices": 2, "precision": "32-true",
                                "strategy": "ddp"}
    assert sorted(p.name for p in out.iterdir()) == ["last.ckpt", "metrics.csv"]
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 == 1 + result.epochs_run  # one row per epoch, written once
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert all(np.isfinite(r["val_loss"]) for r in result.history)


def test_validation_numbers_are_the_whole_part_not_one_rank(parts, ddp_run):
    cfg, p = parts
    out, result = ddp_run
    # the finished checkpoint holds the weights the last validation pass saw
    state = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
    from osdml.models import create_model

    model = create_model(cfg.model.arch, **result.arch_kwargs)
    model.load_state_dict({k[len("model."):]: v for k, v in state["state_dict"].items()})
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(torch.from_numpy(p.val.batch(np.arange(i, min(i + 64,
                                                                                len(p.val))))))
                            for i in range(0, len(p.val), 64)])
    labels = torch.from_numpy(np.asarray(p.val.labels, dtype=np.int64))
    last = result.history[-1]
    assert last["val_loss"] == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-6)
    single = window_metrics(labels.numpy(), torch.softmax(logits, 1)[:, 1].numpy(),
                            cfg.train.threshold, cfg.train.f_beta)
    for key in ("sensitivity", "fpr", "predicted_classes"):
        assert last[f"val_{key}"] == single[key]


SCRIPT = textwrap.dedent("""
    import json
    import sys
    from pathlib import Path

    from osdml.config import load_config
    from osdml.data.cache import load_streams
    from osdml.data.filters import select_events
    from osdml.data.split import split_events
    from osdml.pipeline import split_windows
    from osdml.train.fit import fit

    if __name__ == "__main__":
        cfg = load_config(None, json.loads(sys.argv[3]))
        streams = load_streams([sys.argv[1]], cache=False)
        sel = select_events(streams)
        (split,) = split_events(streams, sel, cfg.data.split)
        p = split_windows(streams, sel, split, cfg)
        fit(cfg, p.train, p.val, out_dir=Path(sys.argv[2]), progress=False)
""")


def test_ddp_resumes_after_a_kill_to_the_uninterrupted_result(parts, ddp_run, synth_dir,
                                                              tmp_path):
    import json

    cfg, p = parts
    _, reference = ddp_run
    out = tmp_path / "killed"
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(synth_dir), str(out),
                             json.dumps(DDP)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not (out / CHECKPOINT).is_file():  # the first epoch is complete
            assert proc.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 4 minutes"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and both ranks, at once
        proc.wait()
    state = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
    assert not state.get("osdml_finished")
    resumed = fit(cfg, p.train, p.val, out_dir=out, progress=False, resume=True)
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"]
                                                        for r in reference.history]
    a, b = resumed.model.state_dict(), reference.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("train, says", [
    ({"accelerator": "cuda"}, "train.accelerator = 'cuda', but this torch"),
    ({"accelerator": "mps"}, "no Apple MPS device"),
    ({"precision": "16-mixed", "accelerator": "cpu"}, "'16-mixed' needs a CUDA GPU"),
    ({"devices": 3, "strategy": "ddp", "accelerator": "cpu", "batch_size": 64},
     "does not divide among train.devices = 3"),
])
def test_impossible_device_requests_are_one_line(monkeypatch, train, says):
    monkeypatch.setattr(D, "_cuda_count", lambda: 0)
    monkeypatch.setattr(D, "_mps_available", lambda: False)
    with pytest.raises(InputError, match=says) as e:
        D.resolve_placement(load_config(None, {"train": train}).train)
    assert "\n" not in str(e.value)


def test_auto_placement_and_precision(monkeypatch):
    monkeypatch.setattr(D, "_mps_available", lambda: False)
    monkeypatch.setattr(D, "_cuda_count", lambda: 0)
    assert D.resolve_placement(load_config(None).train) == D.Placement("cpu", 1, "32-true",
                                                                       "single")
    monkeypatch.setattr(D, "_cuda_count", lambda: 8)
    monkeypatch.setattr(D, "_bf16_cuda", lambda: True)
    assert D.resolve_placement(load_config(None, {"train": {"devices": 4}}).train) == \
        D.Placement("cuda", 4, "bf16-mixed", "ddp")
    monkeypatch.setattr(D, "_bf16_cuda", lambda: False)
    assert D.resolve_placement(load_config(None).train).precision == "16-mixed"


def test_cuda_on_this_machine_is_refused_by_the_cli(tmp_path, synth_dir, monkeypatch, capsys):
    from osdml.cli import main

    monkeypatch.setattr(D, "_cuda_count", lambda: 0)
    code = main(["train", "-d", str(synth_dir), "-o", str(tmp_path / "o"), "--accelerator",
                 "cuda", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "train.accelerator = 'cuda'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # refused before any work


def test_glibc_is_told_to_keep_freed_memory():
    # what it buys is measured by benchmarks/train_throughput.py (page faults per step), not
    # asserted: a toy allocation's faults depend on the heap's history
    import platform

    if platform.libc_ver()[0] != "glibc":
        assert D.keep_freed_memory() is False
    else:
        assert D.keep_freed_memory() and D.keep_freed_memory()  # mallopt accepted, idempotent
