"""Executors: the in-process one keeps today's order; the Ray one trains the folds of osdml run
as Ray tasks with the same result; without Ray, --executor ray says how to install it."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import TINY_TRAIN
from osdml.cli import main
from osdml.config import ExecutorConfig, load_config
from osdml.errors import InputError
from osdml.executor import JobFailed, LocalExecutor, make_executor


def cv_config(synth_dir, **executor):
    return load_config(None, {**TINY_TRAIN, "data": {
        **TINY_TRAIN["data"], "files": [str(synth_dir)],
        "split": {"method": "kfold", "n_folds": 2}},
        "export": {"formats": ["pt"]}, "executor": executor})


def test_local_executor_runs_jobs_in_order_in_this_process():
    seen = []
    ex = make_executor(ExecutorConfig())
    assert isinstance(ex, LocalExecutor) and ex.in_process
    with ex:
        out = [(job, r) for job, r in ex.map_unordered(
            lambda j: seen.append(f"run {j}") or j * 10, [3, 1, 2],
            on_start=lambda j: seen.append(f"start {j}"))]
    assert out == [(3, 30), (1, 10), (2, 20)]
    assert seen == ["start 3", "run 3", "start 1", "run 1", "start 2", "run 2"]

    def fail_on_one(j):
        if j == 1:
            raise InputError("bad fold")
        return j

    done = []
    with pytest.raises(JobFailed) as e:
        for job, _ in LocalExecutor().map_unordered(fail_on_one, [3, 1, 2]):
            done.append(job)
    assert done == [3] and e.value.job == 1 and isinstance(e.value.error, InputError)

    def interrupted(j):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # Ctrl-C is not wrapped
        list(LocalExecutor().map_unordered(interrupted, [1]))


def test_ray_executor_without_ray_says_how_to_install_it(synth_dir, tmp_path, monkeypatch,
                                                         capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    cfg = tmp_path / "cv.toml"
    cfg.write_text(cv_config(synth_dir).to_toml())
    out = tmp_path / "runs"
    for extra in (["--executor", "ray"], ["--ray-address", "auto"]):
        assert main(["run", "-c", str(cfg), "-o", str(out), "-q", "--no-cache", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "pip install 'osdml[ray]'" in err[0], err
    assert not out.exists()  # refused before anything was written
    assert main(["run", "-c", str(cfg), "-o", str(out), "--executor", "dask"]) == 2
    assert "choose local or ray" in capsys.readouterr().err
    assert main(["run", "-c", str(cfg), "-o", str(out), "--executor", "local",
                 "--ray-address", "auto"]) == 2
    assert "--executor ray" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_folds_give_the_in_process_result(synth_dir, tmp_path):
    """Two folds as Ray tasks (1 CPU, so 1 torch thread each) on a local Ray instance of 2
    CPUs equal the in-process run with torch limited to 1 thread: the same fold summaries,
    statistics and best fold."""
    ray = pytest.importorskip("ray")
    import torch

    from osdml.crossval import FoldJob, run_crossval, train_fold

    cfg = cv_config(synth_dir, kind="ray", cpus_per_task=1)
    ex = make_executor(cfg.executor, num_cpus=2)
    r = run_crossval(cfg, tmp_path / "ray", progress=False, cache=False, executor=ex)
    assert not ray.is_initialized()  # the instance it started is shut down
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = cfg.model_copy(update={"executor": ExecutorConfig()})
        ref = run_crossval(local, tmp_path / "local", progress=False, cache=False)
    finally:
        torch.set_num_threads(threads)
    a = json.loads((r.run_dir / "summary.json").read_text())
    b = json.loads((ref.run_dir / "summary.json").read_text())
    assert list(a["folds"]) == ["fold0", "fold1"]
    for key in ("folds", "stats", "outer", "best", "best_reason", "best_app_settings"):
        assert a[key] == b[key], key
    for name in ("fold0", "fold1"):
        fa = json.loads((r.run_dir / "folds" / name / "summary.json").read_text())
        fb = json.loads((ref.run_dir / "folds" / name / "summary.json").read_text())
        assert fa["metrics"] == fb["metrics"] and fa["chosen_epoch"] == fb["chosen_epoch"]
        # the driver renamed the fold and pointed its recorded paths at the final folder
        assert ".partial" not in (r.run_dir / "folds" / name / "validation.json").read_text()
    assert not list((r.run_dir / "folds").glob(".*"))
    assert (r.run_dir / "best" / "model.pt").is_file()
    log = (r.run_dir / "run.log").read_text()
    assert "fold0: training on" in log and "fold1: training on" in log

    # an osdml error in a task reaches the driver as itself, not as Ray's wrapper
    job = FoldJob("fold0", str(tmp_path / "nowhere"), str(tmp_path / ".fold0.partial"), cfg,
                  cache=False)
    with make_executor(cfg.executor, num_cpus=1) as ex, pytest.raises(JobFailed) as e:
        list(ex.map_unordered(train_fold, [job]))
    assert type(e.value.error) is InputError and "split manifest" in str(e.value.error)
    assert e.value.job == job
    assert not ray.is_initialized()
