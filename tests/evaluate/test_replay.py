"""Replay: the app's buffer and engine over every format of one model; the same alarms."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from osdml.app.engine import AppSettings
from osdml.cli import main
from osdml.data.filters import select_events
from osdml.evaluate.replay import compare_histories, load_model, replay

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture(scope="module")
def replayed(tiny_run, synth_streams):
    sel = select_events(synth_streams)
    models = [load_model(tiny_run.artefacts[fmt], f"model.{fmt}", AppSettings())
              for fmt in ("pt", "ptl", "pte")]
    return sel, replay(models, synth_streams, sel.indices, sel.labels, models[0].settings)


def test_every_format_gives_identical_alarm_histories(replayed):
    sel, result = replayed
    assert compare_histories(result) == []
    for t in result.traces:
        assert np.nanmax(np.abs(t.p[0] - t.p[1]), initial=0) < 1e-4
        assert np.nanmax(np.abs(t.p[0] - t.p[2]), initial=0) < 1e-4
    assert [m.format for m in result.models] == ["pt", "ptl", "pte"]
    assert all(len(rows) == len(sel) for rows in result.rows.values())


def test_formats_carry_the_tuned_settings_of_their_spec(replayed, tiny_run):
    _, result = replayed
    tuned = tiny_run.summary["app_settings"]
    for m in result.models:
        assert (m.settings.threshold_pct, m.settings.gate_pct) == (tuned["threshold_pct"],
                                                                   tuned["gate_pct"])


def test_p_is_zero_until_the_buffer_is_full_then_once_per_datapoint(replayed, synth_streams):
    sel, result = replayed
    for ei, t in zip(sel.indices, result.traces, strict=True):
        n_dp = len(synth_streams.event_datapoints(int(ei)))
        assert t.n == n_dp and t.p.shape == (3, n_dp)
        assert np.isnan(t.p[:, :5]).all()  # 750 samples: full after the 6th datapoint
        assert not np.isnan(t.p[:, 5:]).any()
        assert np.all(np.diff(t.t_s) > 0)


def test_compare_histories_names_the_event_and_first_difference(replayed):
    _, result = replayed
    rows = {k: [dict(r) for r in v] for k, v in result.rows.items()}
    name = result.models[2].name
    rows[name][1]["states"] = rows[name][1]["states"][:3] + "9" + rows[name][1]["states"][4:]
    broken = type(result)(result.models, result.settings, result.traces, rows, result.summary)
    diff = compare_histories(broken)
    assert len(diff) == 1 and diff[0]["id"] == result.traces[1].id
    assert diff[0]["first_difference"] == 3


def test_osd_reproduction_is_counted(replayed):
    _, result = replayed
    rep = result.summary["osd_reproduction"]
    assert rep["with_recorded_powers"] == rep["datapoints"] > 0
    assert rep["share"] == 1.0  # the generator records what the app's algorithm gives


def test_cli_replay_writes_rows_per_event_and_model_and_decisions(tiny_run, synth_dir, tmp_path,
                                                                   capsys):
    out = tmp_path / "replay"
    code = main(["replay", "-m", str(tiny_run.artefacts["pte"]), "-m",
                 str(tiny_run.artefacts["ptl"]), "-m", str(tiny_run.artefacts["pt"]),
                 "-d", str(synth_dir), "-o", str(out), "--json", "--detail",
                 "--threshold-pct", "40", "--gate-pct", "2"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["identical_alarm_histories"] is True
    assert json.loads((out / "parity.json").read_text())["identical"] is True
    assert result["settings"]["threshold_pct"] == 40 and result["settings"]["gate_pct"] == 2
    with open(out / "replay.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * result["n_events"]
    assert {r["model"] for r in rows} == {"model.pte", "model.ptl", "model.pt"}
    assert {"states", "osd_states", "combined_alarm", "combined_states"} <= set(rows[0])
    with open(out / "decisions.csv") as f:
        dec = list(csv.DictReader(f))
    assert {"event_id", "data_time", "p_model.pte", "gate", "osd_spec_power", "osd_roi_power",
            "osd_vote", "combined_vote", "state"} <= set(dec[0])
    first = [r for r in dec if r["event_id"] == rows[0]["id"]]
    assert "".join(r["state"] for r in first) == rows[0]["combined_states"]
    assert "".join(r["state_model.pte"] for r in first) == rows[0]["states"]
    assert first[0]["p_model.pte"] == "" and first[5]["p_model.pte"] != ""
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "OSD algorithm" in html


def test_cli_replay_of_a_tflite_model_uses_its_own_buffer(synth_dir, tmp_path, capsys):
    out = tmp_path / "tfl"
    code = main(["replay", "-m", str(FIXTURES / "tiny_app.tflite"), "-d", str(synth_dir),
                 "-o", str(out), "--json"])
    assert code == 0, capsys.readouterr().err
    s = json.loads(capsys.readouterr().out)
    (m,) = s["models"]
    assert m["format"] == "tflite" and m["input_size"] == 125 and m["runtime"] == "LiteRT"
    assert s["identical_alarm_histories"] is None
    with open(out / "replay.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(r["decisions"] == r["datapoints"] for r in rows)  # full after one datapoint


def test_a_rerun_replaces_every_file_of_the_earlier_replay(synth_dir, tmp_path, capsys):
    out = tmp_path / "again"
    tfl = str(FIXTURES / "tiny_app.tflite")
    assert main(["replay", "-m", tfl, "-d", str(synth_dir), "-o", str(out), "--detail"]) == 0
    assert (out / "decisions.csv").is_file()
    assert main(["replay", "-m", tfl, "-d", str(synth_dir), "-o", str(out)]) == 0
    assert not (out / "decisions.csv").exists()  # not this replay's: never mixed in
    assert {p.name for p in out.iterdir()} == {"replay.csv", "replay.json", "report.md",
                                               "report.html", "plots"}
    capsys.readouterr()


def test_replay_names_tell_files_of_the_same_name_apart():
    from osdml.cli.replay import replay_names

    assert replay_names([Path("a/model.pte"), Path("b/model.ptl")]) == ["model.pte", "model.ptl"]
    assert replay_names([Path("r1/best/model.pte"), Path("r2/best/model.pte")]) == [
        "r1-best-model.pte", "r2-best-model.pte"]
    assert replay_names([Path("a/models/x.pte"), Path("b/models/x.pte")]) == [
        "a-models-x.pte", "b-models-x.pte"]


def test_cli_replay_of_a_file_that_is_not_a_model_is_one_line(synth_dir, tmp_path, capsys):
    bad = tmp_path / "model.pte"
    bad.write_text("<html>not a model</html>")
    code = main(["replay", "-m", str(bad), "-d", str(synth_dir), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(bad) in err[0]


class _Flat(torch.nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc = torch.nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("n_in, n_out, kind, phrase", [
    (750, 1, "pt", "output of shape (1, 1)"),
    (750, 3, "pt", "output of shape (1, 3)"),
    (500, 2, "ptl", "does not take a (1, 1, 750) float32 window"),
])
def test_models_that_do_not_fit_the_app_are_one_line(synth_dir, tmp_path, capsys, n_in, n_out,
                                                     kind, phrase):
    traced = torch.jit.trace(_Flat(n_in, n_out).eval(), torch.zeros(1, 1, n_in))
    path = tmp_path / f"m.{kind}"
    if kind == "ptl":
        traced._save_for_lite_interpreter(str(path))
    else:
        traced.save(str(path))
    code = main(["replay", "-m", str(path), "-d", str(synth_dir), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert phrase in err[0] and str(path) in err[0]


def test_replay_usage_errors_are_caught_before_any_work(tiny_run, synth_dir, tmp_path, capsys):
    pte = str(tiny_run.artefacts["pte"])
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args, phrase in ((["-m", pte, "-m", pte], "given twice"),
                         (["-m", pte, "-o", str(afile)], "is a file"),
                         (["-m", pte, "--alarm-s", "inf"], "give a number from 0 to 3600"),
                         (["-m", pte, "--threshold-pct", "nan"], "from 0 to 100"),
                         (["-m", pte, "--gate-pct", "-1"], "from 0 to 100"),
                         (["-m", str(tmp_path)], "is a folder"),
                         (["-m", pte, "--tflite-mg"], "no --model is a .tflite")):
        code = main(["replay", *args, "-d", str(synth_dir)] + (["-o", str(tmp_path / "o")]
                                                              if "-o" not in args else []))
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and phrase in err[0], err
