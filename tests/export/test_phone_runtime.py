"""The phone's runtime: the measured table, the sidecar record, and running a .pte in another
interpreter's ExecuTorch (here the project's own python stands in for the 1.0.1 side
environment, so no network and no side environment are needed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from osdml.errors import InputError
from osdml.export import phone_runtime as pr
from osdml.export.pte import PteRunner, export_pte
from osdml.spec import ModelSpec


def test_module_imports_neither_torch_nor_executorch():
    code = ("import sys, osdml.export.phone_runtime; "
            "sys.exit(any(m in sys.modules for m in ('torch', 'executorch')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_kind_of():
    assert pr.kind_of("xnnpack", None) == "xnnpack-fp32"
    assert pr.kind_of("XNNPACK", "int8") == "xnnpack-int8"
    assert pr.kind_of("portable", "fp32") == "portable-fp32"
    assert pr.kind_of("portable", "") == "portable-fp32"


@pytest.mark.parametrize("backend,quantization,kind", [
    ("xnnpack", None, "xnnpack-fp32"), ("xnnpack", "int8", "xnnpack-int8"),
    ("portable", None, "portable-fp32")])
def test_record_of_each_measured_kind(backend, quantization, kind):
    rec = pr.phone_runtime_record(backend, quantization)
    m = pr.MEASURED[kind]
    assert rec == {"runtime": "executorch 1.0.1", "kind": kind, "loads": m["loads"],
                   "agrees": m["agrees"], "max_abs_logit_diff": m["max_abs_logit_diff"],
                   "checked": m["checked"]}
    assert pr.PHONE_RUNTIME == "executorch 1.0.1"


def test_every_kind_was_measured():
    assert set(pr.MEASURED) == set(pr.KINDS)
    for kind, m in pr.MEASURED.items():
        assert isinstance(m["loads"], bool) and isinstance(m["agrees"], bool), kind
        assert m["windows"] > 0 and m["checked"] and "app_runtime.py" in m["command"]
        if m["agrees"]:
            assert m["loads"] and m["max_abs_logit_diff"] <= pr.AGREE_ATOL


def test_unknown_kind_has_no_verdict_and_says_so():
    rec = pr.phone_runtime_record("portable", "int8")
    assert rec["kind"] == "portable-int8" and rec["runtime"] == pr.PHONE_RUNTIME
    assert rec["loads"] is None and rec["agrees"] is None and rec["checked"] is None
    assert "not checked" in rec["note"] and "app_runtime.py" in rec["note"]


# --------------------------------------------------------------------------- check_in_runtime

class _Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv1d(1, 4, 9, stride=5)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=2))


@pytest.fixture(scope="module")
def tiny_pte(tmp_path_factory):
    path = tmp_path_factory.mktemp("pte") / "small.pte"
    export_pte(_Small(), ModelSpec(), path, sidecar=False)
    return path


@pytest.fixture(scope="module")
def windows():
    rng = np.random.default_rng(1)
    return (1.0 + 0.3 * rng.standard_normal((5, 1, 750))).astype(np.float32)


def test_same_logits_as_pte_runner_and_a_broken_file_does_not_stop_the_rest(tmp_path, tiny_pte,
                                                                            windows):
    # one child process per file, so one call covers both (each child imports torch: slow)
    broken = tmp_path / "broken.pte"
    broken.write_bytes(tiny_pte.read_bytes()[:200])
    bad, got = pr.check_in_runtime([broken, tiny_pte], windows, sys.executable)
    assert not bad["loads"] and not bad["ran"] and bad["logits"] is None
    assert isinstance(bad["error"], str) and "\n" not in bad["error"] and bad["error"]
    runner = PteRunner(tiny_pte)
    want = np.concatenate([runner(windows[i:i + 1]) for i in range(len(windows))])
    assert got["loads"] and got["ran"] and got["error"] is None
    assert got["path"] == str(tiny_pte)
    assert got["runtime"].startswith("executorch ") and got["torch"]
    assert got["logits"].dtype == np.float32 and got["logits"].shape == (5, 2)
    np.testing.assert_array_equal(got["logits"], want)


def test_wrong_window_shape_fails_in_forward(tiny_pte):
    x = np.ones((2, 1, 500), np.float32)
    (got,) = pr.check_in_runtime([tiny_pte], x, sys.executable)
    assert got["loads"] and not got["ran"] and got["error"].startswith("forward failed")


def test_missing_interpreter_is_one_input_error(tiny_pte, windows, tmp_path):
    with pytest.raises(InputError, match="no such Python interpreter"):
        pr.check_in_runtime([tiny_pte], windows, tmp_path / "nowhere" / "bin" / "python")
    with pytest.raises(InputError, match="no such Python interpreter"):
        pr.check_in_runtime([tiny_pte], windows, "python-that-does-not-exist-3.11")


def test_interpreter_without_executorch_is_one_input_error(tiny_pte, windows, tmp_path):
    fake = tmp_path / "python"  # a python that cannot import executorch
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -I -S \"$@\"\n")
    fake.chmod(0o755)
    with pytest.raises(InputError, match="cannot import executorch"):
        pr.check_in_runtime([tiny_pte], windows, fake)


def test_bad_inputs_are_refused_before_running(tiny_pte, windows, tmp_path):
    with pytest.raises(InputError, match="float32"):
        pr.check_in_runtime([tiny_pte], windows.astype(np.float64), sys.executable)
    with pytest.raises(InputError, match="float32"):
        pr.check_in_runtime([tiny_pte], windows[0], sys.executable)
    with pytest.raises(InputError, match="no such file"):
        pr.check_in_runtime([tmp_path / "absent.pte"], windows, sys.executable)


def test_load_failure_names_the_code_and_keeps_the_runtime_log():
    child: dict = {}
    exec(compile(pr.CHILD_SCRIPT, "child.py", "exec"), child)  # main() runs only as a script
    log = ("[program.cpp:153] InternalConsistency verification requested but not available\n"
           "cpuinfo probing noise\n"
           "[XNNCompiler.cpp:1474] Unhandled node type: \n"
           "[method.cpp:110] Init failed for backend XnnpackBackend: 0x11\n")
    said = child["reason"](RuntimeError("Failed to load method forward, error: 0x:11"), log)
    assert said.startswith("Failed to load method forward, error: 0x:11 (NotImplemented)")
    assert "Unhandled node type" in said and "Init failed" in said
    assert "InternalConsistency" not in said and "cpuinfo" not in said and "\n" not in said


def test_an_ensemble_has_its_own_record_and_other_arches_none():
    rec = pr.phone_runtime_record("xnnpack", None, "hd_ensemble")
    assert rec["loads"] is True and rec["agrees"] is True and rec["checked"]
    assert pr.MEASURED_ENSEMBLE["xnnpack-fp32"]["max_abs_logit_diff"] <= pr.AGREE_ATOL
    int8 = pr.phone_runtime_record("xnnpack", "int8", "hd_ensemble")
    assert int8["loads"] is None and "not checked" in int8["note"]
    lstm = pr.phone_runtime_record("xnnpack", None, "cnn_lstm")
    assert lstm["loads"] is True and lstm["agrees"] is True
    assert pr.phone_runtime_record("portable", None, "cnn_lstm")["loads"] is None
    other = pr.phone_runtime_record("xnnpack", None, "future_arch")
    assert other["loads"] is None and "future_arch" in other["note"]
