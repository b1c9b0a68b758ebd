"""The event scoring of Spahr et al. (2025) on hand-built timelines whose answers are counted by
hand: padded seizure intervals, false-alarm events merged over 150 s, Wald intervals."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from osdml.app.engine import AppSettings
from osdml.evaluate.events import EventTrace, event_trace
from osdml.evaluate.paper import (
    fp_events,
    paper_event,
    paper_scores,
    paper_summary,
    paper_table,
    wald_proportion,
    wald_rate_24h,
)

APP = AppSettings()  # threshold 50 %, gate 5 %


def ev(n, positive_s=(), label=0, start=None, end=None, id="e", movement=None, p_pos=0.9):
    """An event of `n` datapoints at t = 5, 10, ..., 5 n s; p = `p_pos` at the times in
    `positive_s`, 0.1 elsewhere; movement 20 % (never gated) unless given."""
    t = 5.0 * (np.arange(n) + 1)
    pos = set(float(x) for x in positive_s)
    assert pos <= set(t.tolist()), "positive times must be datapoint times"
    p = np.array([[p_pos if x in pos else 0.1 for x in t]], dtype=np.float32)
    return EventTrace(
        id=id, user="u1", type="Seizure" if label else "False Alarm", subtype=None,
        label=label, recording_s=5.0 * n, seizure_start_s=start, seizure_end_s=end, t_s=t,
        p=p, models=["m"], movement_pct=np.full(n, 20.0) if movement is None
        else np.asarray(movement, float),
        osd=np.zeros((n, 6), np.int64), recorded_state=np.full(n, -1, np.int8))


def score(trace, settings=APP):
    return paper_scores([trace], settings)["events"][0]


def run(a, b, step=5.0):
    """Datapoint times a, a + 5, ..., b (inclusive)."""
    return np.arange(a, b + step / 2, step)


# --------------------------------------------------------------------------- false alarms

def test_ten_minutes_of_positives_are_four_false_alarms():
    # 120 positives from t = 1000 to 1595 s: FP events open at 1000, 1150, 1300, 1450
    row = score(ev(720, run(1000, 1595)))
    assert row["false_alarms"] == 4 and row["detected"] is None and row["interval"] is None
    assert row["positives"] == 120


@pytest.mark.parametrize(("gap_s", "expected"), [(100, 1), (200, 2)])
def test_two_short_runs_are_one_false_alarm_within_150_s_and_two_beyond(gap_s, expected):
    first = run(100, 115)  # 4 positives
    second = run(115 + gap_s, 130 + gap_s)
    assert score(ev(200, [*first, *second]))["false_alarms"] == expected


def test_fp_events_greedy_boundary():
    assert fp_events(np.array([0.0, 149.9])) == 1
    assert fp_events(np.array([0.0, 150.0])) == 2  # at t0 + 150 s a new one opens
    assert fp_events(np.array([300.0, 0.0, 100.0])) == 2  # any order
    assert fp_events(np.array([])) == 0


# --------------------------------------------------------------------------- detection

def test_detection_100_s_before_onset_counts_with_negative_latency():
    row = score(ev(240, [500], label=1, start=600, end=660))
    assert row["detected"] is True and row["false_alarms"] == 0
    assert row["latency_s"] == -100.0 and row["first_detection_s"] == 500.0
    assert row["interval"] == [480.0, 670.0] and row["interval_from"] == "seizureTimes"


def test_detection_130_s_before_onset_does_not_count_and_is_a_false_alarm():
    row = score(ev(240, [470], label=1, start=600, end=660))
    assert row["detected"] is False and row["latency_s"] is None
    assert row["false_alarms"] == 1


def test_padding_after_the_end_is_10_s():
    ok = score(ev(240, [670], label=1, start=600, end=660))
    assert ok["detected"] is True and ok["false_alarms"] == 0 and ok["latency_s"] == 70.0
    late = score(ev(240, [675], label=1, start=600, end=660))
    assert late["detected"] is False and late["false_alarms"] == 1


def test_latency_is_the_first_detecting_window_and_positives_outside_are_false_alarms():
    # detected from 610 s on; a run long before the interval and one long after it
    pos = [*run(100, 110), *run(610, 640), *run(900, 905)]
    row = score(ev(240, pos, label=1, start=600, end=660))
    assert row["detected"] and row["latency_s"] == 10.0 and row["false_alarms"] == 2


def test_seizure_event_without_seizure_times_is_detected_by_any_positive():
    row = score(ev(100, [*run(10, 20), 400], label=1))
    assert row["detected"] is True and row["false_alarms"] == 0
    assert row["latency_s"] is None and row["interval_from"] == "whole event"
    assert row["interval"] == [5.0, 500.0]
    missed = score(ev(100, [], label=1))
    assert missed["detected"] is False and missed["false_alarms"] == 0


def test_start_without_end_pads_around_the_start():
    row = score(ev(240, [605], label=1, start=600))
    assert row["interval"] == [480.0, 610.0] and row["interval_from"] == "seizure start"
    assert row["detected"] and row["latency_s"] == 5.0


def test_votes_are_the_apps_gate_and_strict_threshold():
    # p 0.9 but gated (movement 2 % < 5 %), and p exactly at the threshold: no positive
    gated = ev(10, [20], movement=[20, 20, 20, 2, 20, 20, 20, 20, 20, 20])
    assert score(gated)["positives"] == 0
    at_threshold = ev(10, [20], p_pos=0.5)
    assert score(at_threshold)["positives"] == 0
    assert score(at_threshold, APP.with_(threshold_pct=40))["positives"] == 1


def test_votes_of_the_wrong_length_or_bad_parameters_are_refused():
    t = ev(10, [20])
    with pytest.raises(ValueError, match="one vote per datapoint"):
        paper_event(t, np.zeros(9, bool))
    with pytest.raises(ValueError, match="t_max_s"):
        paper_event(t, np.zeros(10, bool), t_max_s=0)
    with pytest.raises(ValueError, match="t_before_s"):
        paper_event(t, np.zeros(10, bool), t_before_s=-1)


def test_parameters_change_the_rule():
    t = ev(240, [470], label=1, start=600, end=660)
    row = paper_event(t, t.engine(APP, [0], osd=False).votes[0], t_before_s=130)
    assert row["detected"] and row["latency_s"] == -130.0 and row["t_before_s"] == 130.0


# --------------------------------------------------------------------------- summary

def test_wald_intervals_hand_computed():
    lo, hi = wald_proportion(3, 4)  # p 0.75, 1.96 sqrt(0.75 x 0.25 / 4) = 0.424352
    assert lo == pytest.approx(0.325648, abs=1e-6) and hi == 1.0
    assert wald_proportion(0, 5) == [0.0, 0.0] and wald_proportion(0, 0) is None
    lo, hi = wald_rate_24h(2, 12 * 3600)  # 4 / day +- 1.96 sqrt(2) / 0.5 = 5.543717
    assert lo == 0.0 and hi == pytest.approx(4 + 5.543717, abs=1e-6)
    lo, hi = wald_rate_24h(100, 10 * 86400)  # 10 / day +- 1.96 x 10 / 10
    assert (lo, hi) == pytest.approx((8.04, 11.96))
    assert wald_rate_24h(1, 0) is None


def test_summary_hand_computed_and_far_over_all_recording():
    six_h = 6 * 3600 // 5  # datapoints in 6 h
    traces = [
        ev(240, [500], label=1, start=600, end=660, id="s1"),  # TP, latency -100
        ev(240, [640], label=1, start=600, end=660, id="s2"),  # TP, latency 40
        ev(240, [100], label=1, start=600, end=660, id="s3"),  # FN + 1 FP
        ev(six_h, run(1000, 1595), id="n1"),  # 4 FP
    ]
    res = paper_scores(traces, APP)
    s = res["summary"]
    assert [r["id"] for r in res["events"]] == ["s1", "s2", "s3", "n1"]
    assert (s["events"], s["seizures"], s["tp"], s["fn"], s["fp"]) == (4, 3, 2, 1, 5)
    assert s["sensitivity"] == pytest.approx(2 / 3)
    half = 1.96 * math.sqrt(2 / 3 * 1 / 3 / 3)
    assert s["sensitivity_ci95"] == pytest.approx([2 / 3 - half, 1.0])
    hours = 6 + 3 * 240 * 5 / 3600  # seizure events' recording counts too
    assert s["recording_h"] == pytest.approx(hours)
    assert s["far_24h"] == pytest.approx(5 * 24 / hours)
    ci = s["far_24h_ci95"]
    assert ci == pytest.approx([max(0, (5 - 1.96 * math.sqrt(5)) * 24 / hours),
                                (5 + 1.96 * math.sqrt(5)) * 24 / hours])
    assert (s["latency_n"], s["latency_median_s"]) == (2, -30.0)
    assert (s["latency_min_s"], s["latency_max_s"]) == (-100.0, 40.0)
    assert (s["t_before_s"], s["t_after_s"], s["t_max_s"]) == (120.0, 10.0, 150.0)
    assert s["whole_event_intervals"] == 0 and "10.1111/epi.18406" in s["source"]


def test_no_seizures_leaves_sensitivity_undefined_and_no_recording_far():
    s = paper_scores([ev(10, [20])], APP)["summary"]
    assert s["seizures"] == 0 and s["sensitivity"] is None and s["sensitivity_ci95"] is None
    assert s["fp"] == 1 and s["far_24h"] == pytest.approx(86400 / 50)
    empty = paper_summary([])
    assert empty["far_24h"] is None and empty["far_24h_ci95"] is None
    assert empty["latency_median_s"] is None and empty["t_max_s"] == 150.0


def test_summary_refuses_rows_of_different_parameters():
    t = ev(10, [20])
    v = t.engine(APP, [0], osd=False).votes[0]
    with pytest.raises(ValueError, match="different parameters"):
        paper_summary([paper_event(t, v), paper_event(t, v, t_max_s=60)])


def test_paper_table_rows():
    s = paper_scores([ev(240, [500], label=1, start=600, end=660), ev(10, [20])], APP)
    headers, rows = paper_table([(0.5, s["summary"])])
    assert headers[:4] == ["q", "TP", "FN", "FP"] and len(rows[0]) == len(headers)
    assert rows[0][:5] == [0.5, 1, 0, 1, 1.0]
    assert rows[0][5] == "[1, 1]"  # a Wald interval of p = 1 is degenerate
    assert rows[0][7] == f"[0, {(1 + 1.96) * 86400 / 1250:.3g}]"  # 1 FP in 1250 s
    headers, rows = paper_table([("fold0", paper_summary([]))], label="fold")
    assert headers[0] == "fold" and rows[0][4] is None and rows[0][5] is None


# --------------------------------------------------------------------------- from the data

def test_event_trace_fills_the_seizure_end(synth_streams):
    ei = next(i for i, e in enumerate(synth_streams.events) if e.seizure_times is not None)
    n = len(synth_streams.event_datapoints(ei))
    t = event_trace(synth_streams, ei, 1, np.full((1, n), np.nan, np.float32), ["m"])
    start, end = synth_streams.events[ei].seizure_times
    assert (t.seizure_start_s, t.seizure_end_s) == (start, end)


def test_a_run_reports_the_paper_scoring_beside_the_app_engine(tiny_run):
    m = tiny_run.summary["metrics"]
    for part, app in (("validation_paper", "validation_events"), ("test_paper", "test_app")):
        p = m[part]
        assert p["tp"] + p["fn"] == p["seizures"] == m[app]["model"]["seizure_events"]
        assert p["t_max_s"] == 150.0 and "far_24h_ci95" in p
    with open(tiny_run.out_dir / "events.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {"paper_detected", "paper_false_alarms", "paper_latency_s"} <= set(rows[0])
    test_rows = [r for r in rows if r["part"] == "test"]
    assert sum(int(r["paper_false_alarms"]) for r in test_rows) == m["test_paper"]["fp"]
    assert sum(r["paper_detected"] == "True" for r in test_rows) == m["test_paper"]["tp"]


def test_replay_reports_the_paper_scoring_per_model(synth_dir, tmp_path, capsys):
    from osdml.cli import main

    tflite = Path(__file__).parent.parent / "fixtures" / "tiny_app.tflite"
    out = tmp_path / "replay"
    assert main(["replay", "-m", str(tflite), "-d", str(synth_dir), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "paper sens. / FAR/24h: the event rule of Spahr et al. 2025" in printed

    (m,) = json.loads((out / "replay.json").read_text())["models"]
    assert m["paper"]["seizures"] == m["events"]["model"]["seizure_events"]
    assert m["paper"]["t_before_s"] == 120.0
    with open(out / "replay.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert sum(int(r["paper_false_alarms"]) for r in rows) == m["paper"]["fp"]
    assert "Paper scoring (Spahr et al. 2025)" in (out / "report.md").read_text()


def test_the_run_report_has_the_paper_table_per_fold_and_pooled(tiny_run, synth_streams,
                                                               tmp_path):
    """The cross-validation report over one fold: the tiny run stands in as that fold."""
    import shutil

    from osdml.config import load_config
    from osdml.crossval import CrossValRun, _fold_row, fold_stats
    from osdml.data.filters import select_events
    from osdml.data.split import read_manifest
    from osdml.evaluate.runreport import FOLD_COLUMNS, write_run_report

    cfg = load_config(tiny_run.out_dir / "config.toml")
    run_dir = tmp_path / "run-001"
    (run_dir / "folds").mkdir(parents=True)
    shutil.copy(tiny_run.out_dir / "split.json", run_dir / "split.json")
    (name,) = [s.name for s in read_manifest(run_dir / "split.json", synth_streams)]
    (run_dir / "folds" / name).symlink_to(tiny_run.out_dir)
    s = tiny_run.summary
    row = _fold_row(s)
    assert row["test_paper_sensitivity"] == s["metrics"]["test_paper"]["sensitivity"]
    assert row["test_paper_far_24h"] == s["metrics"]["test_paper"]["far_24h"]
    result = CrossValRun(run_dir, {name: s}, [name], name, "the only fold", None,
                         fold_stats([s]), summary={"method": "holdout", "splits": [name],
                                                   "folds": {name: row}})
    md, _ = write_run_report(result, synth_streams, select_events(synth_streams,
                                                                  cfg.data.selection), cfg)
    text = md.read_text()
    assert "Paper scoring (Spahr et al. 2025)" in text and "paper FAR/24h" in FOLD_COLUMNS
    assert "all folds (out-of-fold)" in text
    pooled = json.loads((run_dir / "pooled_test.json").read_text())
    assert pooled["paper"]["folds"][name] == s["metrics"]["test_paper"]  # same traces, votes
    assert pooled["paper"]["summary"]["fp"] == s["metrics"]["test_paper"]["fp"]
