"""Replay: the app's buffer through every format of one model gives the same alarm history."""

import json

import numpy as np
import pytest
import torch

from osdml.cli import main
from osdml.data.filters import select_events
from osdml.evaluate.replay import Replay, compare_histories, replay


@pytest.fixture(scope="module")
def replays(tiny_run, synth_streams):
    sel = select_events(synth_streams)
    return sel, {fmt: replay(tiny_run.artefacts[fmt], synth_streams, sel.indices, sel.labels)
                 for fmt in ("pt", "ptl", "pte")}


def test_every_format_gives_identical_alarm_histories(replays):
    sel, by_fmt = replays
    assert compare_histories(list(by_fmt.values())) == []
    ref = by_fmt["pt"]
    for fmt in ("ptl", "pte"):
        for a, b in zip(ref.traces, by_fmt[fmt].traces, strict=True):
            assert np.abs(a.p - b.p).max(initial=0) < 1e-4
    assert [r.format for r in by_fmt.values()] == ["pt", "ptl", "pte"]
    assert len(ref.rows) == len(sel)


def test_one_decision_per_datapoint_once_the_buffer_is_full(replays, synth_streams):
    sel, by_fmt = replays
    for ei, t in zip(sel.indices, by_fmt["pte"].traces, strict=True):
        n_dp = sum(int(n) for _, n, _ in synth_streams.segment_rows(int(ei))) // 125
        assert len(t.p) == max(0, n_dp - 5)
        assert np.all(np.diff(t.t_s) > 0)  # decisions in time order
        assert set(t.segment.tolist()) <= {0}  # the app's counters never restart mid-event


def test_compare_histories_names_the_event_and_first_difference(replays):
    _, by_fmt = replays
    a = by_fmt["pt"]
    rows = [dict(r) for r in a.rows]
    rows[1]["states"] = rows[1]["states"][:3] + "9" + rows[1]["states"][4:]
    b = Replay(a.model.with_suffix(".pte"), "pte", "ExecuTorch", a.threshold, a.traces, rows,
               a.summary)
    diff = compare_histories([a, b])
    assert len(diff) == 1 and diff[0]["id"] == a.rows[1]["id"]
    assert diff[0]["first_difference"] == 3


def test_cli_replay_writes_per_event_results_and_checks_parity(tiny_run, synth_dir, tmp_path,
                                                               capsys):
    out = tmp_path / "replay"
    code = main(["replay", "-m", str(tiny_run.artefacts["pte"]), "-m",
                 str(tiny_run.artefacts["ptl"]), "-m", str(tiny_run.artefacts["pt"]),
                 "-d", str(synth_dir), "-o", str(out), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["identical_alarm_histories"] is True
    assert json.loads((out / "parity.json").read_text())["identical"] is True
    csv_lines = (out / "model.pte" / "replay.csv").read_text().splitlines()
    assert csv_lines[0].split(",")[:6] == ["id", "user", "type", "subtype", "label", "alarm"]
    assert len(csv_lines) == 1 + result["replays"][0]["n_events"]
    html = (out / "model.pte" / "report.html").read_text()
    assert "data:image/png;base64," in html and "OSD algorithm" in html


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
                         (["-m", pte, "-o", str(afile)], "is a file")):
        code = main(["replay", *args, "-d", str(synth_dir)] + (["-o", str(tmp_path / "o")]
                                                              if "-o" not in args else []))
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and phrase in err[0], err
