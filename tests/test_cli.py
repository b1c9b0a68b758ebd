"""The command line as a user meets it: results, one-line errors, exit codes, fast --help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from osdml.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_synth_then_summary_agree_with_what_was_asked(tmp_path, capsys):
    code, out, err = run(capsys, "synth", "--out", str(tmp_path), "--users", "3", "--seizures",
                         "2", "--false-alarms", "1", "--nda", "2", "--seed", "5")
    assert code == 0, err
    code, out, err = run(capsys, "data", "summary", str(tmp_path), "--json")
    assert code == 0, err
    s = json.loads(out)
    assert {k: v["events"] for k, v in s["by_type"].items()} == {
        "False Alarm": 3, "NDA": 6, "Seizure": 6}
    assert {k: v["events"] for k, v in s["by_user"].items()} == {"1": 5, "2": 5, "3": 5}
    assert s["by_label"]["1"]["events"] == 6 and s["by_label"]["0"]["events"] == 9
    assert s["by_label"]["1"]["windows"] > 0
    assert s["report"]["skipped_datapoints"] == {}


def test_summary_table_and_cache(tmp_path, capsys):
    run(capsys, "synth", "--out", str(tmp_path), "--users", "2", "--seizures", "1",
        "--false-alarms", "1", "--nda", "1")
    code, first, _ = run(capsys, "data", "summary", str(tmp_path))
    code2, second, _ = run(capsys, "data", "summary", str(tmp_path))
    assert code == code2 == 0
    assert "By user" in first and "Selected, by label" in first
    assert "parse cache" not in first and "read from the parse cache" in second


def test_split_writes_a_manifest(tmp_path, capsys):
    data = tmp_path / "data"
    run(capsys, "synth", "--out", str(data), "--users", "4", "--seizures", "2")
    manifest = tmp_path / "split.json"
    code, out, err = run(capsys, "data", "split", str(data), "--out", str(manifest),
                         "--method", "kfold", "--folds", "2", "--group-by-user")
    assert code == 0, err
    m = json.loads(manifest.read_text())
    assert len(m["splits"]) == 2 and m["config"]["group_by_user"]
    assert "fold0" in out


@pytest.mark.parametrize("content, phrase", [
    ("<html><body>Login</body></html>", "HTML page"),
    ('[{"id": 1, "type": "Seizure", "datapoints": [', "file ends in the first event"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, content, phrase):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, out, err = run(capsys, "data", "summary", str(bad))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("osdml: error: ") and phrase in err
    assert str(bad) in err and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("")
    code, _, err = run(capsys, "--debug", "data", "summary", str(bad))
    assert code == 2 and "Traceback" in err and "is empty" in err


def test_bad_config_is_one_line_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data.split]\nn_folds = 0\n")
    code, _, err = run(capsys, "data", "split", str(tmp_path), "--out", str(tmp_path / "m.json"),
                       "--config", str(cfg))
    assert code == 2 and "data.split.n_folds" in err and err.count("\n") == 1


def test_usage_errors_exit_2(capsys):
    code, _, err = run(capsys, "synth", "--out", "x", "--users", "0")
    assert code == 2 and "users" in err
    code, _, err = run(capsys, "data", "summary", "/no/such/file.json")
    assert code == 2 and "does not exist" in err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("osdml ")


def test_help_does_not_import_heavy_modules():
    code = ("import sys\nfrom osdml.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'lightning', 'executorch', 'numpy', 'sklearn') "
            "if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY []" in out
    assert "synth" in out and "data" in out


def test_interrupt_is_reported_in_one_line(tmp_path, capsys, monkeypatch):
    import osdml.pipeline

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(osdml.pipeline, "train_run", interrupted)
    code, _, err = run(capsys, "train", "--data", str(tmp_path), "--out", str(tmp_path / "r"))
    assert code == 130 and err.startswith("osdml: interrupted") and err.count("\n") == 1


def test_global_flags_work_after_the_command(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("")
    code, _, err = run(capsys, "data", "summary", str(bad), "--debug")
    assert code == 2 and "Traceback" in err


def test_data_text_is_never_read_as_markup(tmp_path, capsys):
    from factory import event, write_events

    path = write_events(tmp_path / "m.json", [event(1, 6, type="[/]", subtype="Other [manual]")])
    code, out, err = run(capsys, "data", "summary", str(path))
    assert code == 0, err
    assert "Other [manual]" in out and "[/]" in out
