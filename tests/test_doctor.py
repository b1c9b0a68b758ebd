"""osdml doctor: the installation against the supported matrix, and the same check up front in
every command that needs ExecuTorch."""

from __future__ import annotations

import json

import pytest

from osdml import doctor
from osdml.cli import main


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fake_versions(monkeypatch):
    """Pretend other versions are installed (package metadata only)."""
    real = doctor.installed

    def pretend(**versions):
        monkeypatch.setattr(doctor, "installed",
                            lambda dist: versions[dist] if dist in versions else real(dist))

    return pretend


def test_this_installation_is_healthy(tmp_path, capsys):
    code, out, err = _run(capsys, "doctor", "--json", "--out", tmp_path / "new")
    assert code == 0, err
    checks = {c["name"]: c for c in json.loads(out)}
    assert set(checks) == {"python", "torch", "lightning", "executorch", "torchao",
                           "XNNPACK delegate", "executorch round trip", "torch XNNPACK",
                           "lite interpreter", "output folder"}
    assert all(c["status"] in ("ok", "warn") for c in checks.values()), checks
    assert checks["XNNPACK delegate"]["status"] == "ok"
    assert "will be created" in checks["output folder"]["detail"]
    assert not (tmp_path / "new").exists()  # doctor looks, it does not create


def test_a_torch_that_does_not_match_executorch_is_named(fake_versions, capsys):
    fake_versions(torch="2.12.0")
    code, out, err = _run(capsys, "doctor")
    assert code == 1
    lines = [ln.split(None, 1) for ln in out.splitlines() if not ln.startswith(" ")]
    status = {rest.split("  ")[0]: (st, rest.split("  ")[-1].strip()) for st, rest in lines}
    assert status["executorch"] == (
        "fail", "executorch 1.4.1 needs torch 2.13.x, found torch 2.12.0")
    assert status["torch"] == ("fail", "2.12.0, supported 2.13.x")
    assert "fix: pip install torch==2.13.0" in out
    assert "executorch runtime" in out and "fix the versions first" in out  # no import tried
    assert err.startswith("osdml: error: doctor: 3 check(s) failed: torch, executorch, "
                          "executorch runtime")


def test_an_unsupported_executorch_and_a_missing_torchao(fake_versions, capsys):
    fake_versions(executorch="1.5.0", torchao=None)
    code, out, err = _run(capsys, "doctor", "--json")
    assert code == 1
    checks = {c["name"]: c for c in json.loads(out)}
    assert "executorch 1.5.0 is not supported" in checks["executorch"]["detail"]
    assert checks["executorch"]["fix"].startswith("pip install executorch==1.4.1")
    assert checks["torchao"]["status"] == "fail" and "torchao>=" in checks["torchao"]["fix"]


def test_commands_that_need_executorch_check_the_matrix_first(fake_versions, tiny_run, capsys):
    fake_versions(torch="2.14.1")
    for args in (["convert", tiny_run.out_dir / "model.pt"],
                 ["bench", tiny_run.out_dir / "model.pte"],
                 ["validate", tiny_run.out_dir / "model.pte"],
                 ["inspect", tiny_run.out_dir / "model.pte"]):
        code, _, err = _run(capsys, *args)
        assert code == 2, (args, err)
        assert err == ("osdml: error: executorch 1.4.1 needs torch 2.13.x, found torch 2.14.1; "
                       "run: pip install torch==2.13.0 (osdml doctor checks the whole "
                       "installation)\n"), err
    # a .ptl needs no ExecuTorch: the check does not stand in its way
    code, _, err = _run(capsys, "inspect", tiny_run.out_dir / "model.ptl")
    assert code == 0, err


def test_training_still_writes_pt_and_ptl_on_a_mismatch(fake_versions):
    from osdml.export.pte import executorch_status

    fake_versions(torch="2.12.0")
    assert "needs torch 2.13.x" in executorch_status()


def test_an_output_folder_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    check = doctor.check_output(blocker / "runs")
    assert check.status == "fail" and "is not a folder" in check.detail
