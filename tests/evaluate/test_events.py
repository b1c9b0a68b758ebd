"""The app's alarm rule, event results, false alarms per 24 h, sweeps and fold statistics on
hand-made inputs whose answers are computed by hand."""

import math

import numpy as np
import pytest

from osdml.alarm import ALARM, OK, WARNING, alarm_states
from osdml.config import EvaluateConfig
from osdml.crossval import choose_best
from osdml.evaluate.events import EventTrace, alarm_onsets, score_trace
from osdml.evaluate.metrics import event_summary, far_per_24h, fold_statistics, threshold_sweep
from osdml.evaluate.replay import app_windows


def trace(p, label=0, recording_s=None, seizure_start_s=None, osd=None, subtype=None,
          user="u1", segment=None, id="e"):
    p = np.asarray(p, dtype=float)
    t = 25.0 + 5.0 * np.arange(len(p))  # first decision after the 6th datapoint
    osd = np.asarray(osd if osd is not None else [-1] * (len(p) + 5), dtype=np.int8)
    return EventTrace(id=id, user=user, type="Seizure" if label else "False Alarm",
                      subtype=subtype, label=label,
                      recording_s=recording_s if recording_s is not None else 5.0 * (len(p) + 5),
                      seizure_start_s=seizure_start_s, t_s=t, p=p,
                      segment=np.zeros(len(p), np.int64) if segment is None
                      else np.asarray(segment), osd_t_s=5.0 * np.arange(len(osd)),
                      osd_state=osd)


# --------------------------------------------------------------------------- the alarm rule

def test_first_positive_changes_nothing_second_warns_third_alarms():
    assert alarm_states([True]) == [OK]
    assert alarm_states([True, True]) == [OK, WARNING]
    assert alarm_states([True, True, True]) == [OK, WARNING, ALARM]


def test_recovery_path_and_cap():
    # ALARM -> one negative drops to WARNING, another to OK
    assert alarm_states([True] * 3 + [False, False]) == [OK, WARNING, ALARM, WARNING, OK]
    # the counter is capped at 15 s: a long run of positives recovers as fast as a short one
    assert alarm_states([True] * 10 + [False, False])[-2:] == [WARNING, OK]
    # an isolated positive between negatives never warns
    assert alarm_states([True, False, True, False, True]) == [OK] * 5


def test_states_restart_at_each_segment():
    t = trace([0.9, 0.9, 0.9, 0.9], segment=[0, 0, 1, 1])
    assert t.states(0.5).tolist() == [OK, WARNING, OK, WARNING]


# --------------------------------------------------------------------------- one event

def test_score_counts_alarm_episodes_and_latency():
    # counter 5 10 15 15 10 5 10 15 15 s -> states 0 1 2 2 1 0 1 2 2: two alarm episodes,
    # the first at decision 2 (t = 35 s)
    p = [0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9]
    row = score_trace(trace(p, label=1, seizure_start_s=20.0), 0.5)
    assert row["states"] == "012210122"
    assert row["alarm"] and row["warning"] and row["alarms"] == 2
    assert row["first_alarm_s"] == 35.0 and row["latency_s"] == 15.0
    assert row["max_p"] == pytest.approx(0.9)


def test_latency_unknown_without_seizure_times_and_no_alarm():
    row = score_trace(trace([0.9, 0.9, 0.1], label=1), 0.5)
    assert row["warning"] and not row["alarm"] and row["latency_s"] is None


def test_osd_baseline_counts_alarm_state_2_and_ignores_manual_5():
    osd = [0, 5, 5, 0, 2, 2, 0, 2, 1, 0]
    row = score_trace(trace([0.1] * 5, osd=osd, seizure_start_s=10.0), 0.5)
    assert row["osd_alarm"] is True and row["osd_alarms"] == 2
    assert row["osd_latency_s"] == 10.0  # first state 2 at datapoint 4 (t = 20 s)
    manual_only = score_trace(trace([0.1] * 5, osd=[0, 5, 5, 0, 0, 0, 0, 0, 0, 0]), 0.5)
    assert manual_only["osd_alarm"] is False and manual_only["osd_alarms"] == 0
    unknown = score_trace(trace([0.1] * 5), 0.5)  # no recorded states at all
    assert unknown["osd_alarm"] is None


# --------------------------------------------------------------------------- false alarms / 24 h

def test_far_per_24h_hand_computed():
    assert far_per_24h(3, 12 * 3600) == 6.0
    assert far_per_24h(0, 3600) == 0.0
    assert far_per_24h(2, 0) is None


def test_event_summary_hand_computed():
    alarm_twice = [0.9, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9]  # 2 episodes
    alarm_once = [0.9, 0.9, 0.9]
    rows = [score_trace(t, 0.5) for t in [
        # 8 h + 4 h of non-seizure recording with 3 false alarms -> 6 per 24 h
        trace(alarm_twice, 0, recording_s=8 * 3600, user="a"),
        trace(alarm_once, 0, recording_s=4 * 3600, user="b"),
        trace([0.1] * 4, 0, recording_s=12 * 3600, user="b"),
        trace(alarm_once, 1, seizure_start_s=0.0, subtype="Tonic-Clonic", user="a"),
        trace([0.9, 0.2, 0.9], 1, subtype="Aura", user="b"),
    ]]
    s = event_summary(rows)
    m = s["model"]
    assert (m["seizure_events"], m["detected"], m["missed"]) == (2, 1, 1)
    assert m["sensitivity"] == 0.5 and m["sensitivity_any_window"] == 1.0
    assert m["false_alarms"] == 3 and m["false_alarm_events"] == 2
    assert m["non_seizure_hours"] == pytest.approx(24.0)
    assert m["far_24h"] == pytest.approx(3.0)  # 3 false alarms in 24 h of recording
    assert m["latency_mean_s"] == 35.0
    assert s["tonic_clonic"]["sensitivity"] == 1.0
    assert s["per_subtype"]["Aura"]["sensitivity"] == 0.0
    assert s["per_user"]["a"]["far_24h"] == pytest.approx(6.0)  # 2 in 8 h
    assert s["per_user"]["b"]["far_24h"] == pytest.approx(1.5)  # 1 in 16 h
    assert s["osd"]["sensitivity"] is None  # no recorded states: no baseline, not zero


def test_no_false_positive_and_no_negatives_do_not_divide_by_zero():
    only_seizures = event_summary([score_trace(trace([0.9] * 3, 1), 0.5)])
    assert only_seizures["model"]["far_24h"] is None
    assert only_seizures["model"]["fpr_events"] is None
    quiet = event_summary([score_trace(trace([0.1] * 3, 0), 0.5)])
    assert quiet["model"]["far_24h"] == 0.0 and quiet["model"]["sensitivity"] is None


def test_threshold_sweep_trades_sensitivity_for_false_alarms():
    traces = [trace([0.6, 0.6, 0.6], 1), trace([0.4, 0.4, 0.4], 0, recording_s=86_400)]
    rows = {r["threshold"]: r for r in threshold_sweep(traces, [0.3, 0.5, 0.7])}
    assert rows[0.3]["sensitivity"] == 1.0 and rows[0.3]["far_24h"] == 1.0
    assert rows[0.5]["sensitivity"] == 1.0 and rows[0.5]["far_24h"] == 0.0
    assert rows[0.7]["sensitivity"] == 0.0 and rows[0.7]["far_24h"] == 0.0


def test_alarm_onsets_counts_entries_only():
    assert alarm_onsets(np.array([0, 1, 2, 2, 1, 2, 2])).tolist() == [2, 5]


# --------------------------------------------------------------------------- folds

def test_fold_statistics_ignores_undefined_values():
    st = fold_statistics({"sens": [0.5, None, 1.0], "far": [None, None], "one": [2.0]})
    assert st["sens"]["mean"] == 0.75 and st["sens"]["n"] == 2
    assert st["sens"]["std"] == pytest.approx(math.sqrt(0.125))
    assert st["far"]["mean"] is None and st["far"]["std"] is None
    assert st["one"]["std"] == 0.0


def fold(val_sens, val_far, test_sens, val_loss=0.5):
    return {"metrics": {"validation": {"loss": val_loss, "youden": val_sens},
                        "validation_events": {"model": {"sensitivity": val_sens,
                                                        "far_24h": val_far}},
                        "test_app": {"model": {"sensitivity": test_sens}}}}


def test_best_fold_is_chosen_on_validation_never_on_test():
    # fold1 has the best test numbers but the worst validation numbers
    folds = {"fold0": fold(0.8, 0.5, 0.2), "fold1": fold(0.3, 0.2, 1.0),
             "fold2": fold(0.9, 3.0, 0.9)}
    best, reason, warning = choose_best(folds, EvaluateConfig(max_far_24h=1.0))
    assert best == "fold0" and warning is None  # fold2 is more sensitive but over the limit
    assert "0.8" in reason
    assert choose_best(folds, EvaluateConfig(max_far_24h=5.0))[0] == "fold2"


def test_best_fold_falls_back_to_fewest_false_alarms_with_a_warning():
    folds = {"fold0": fold(0.9, 4.0, 0.9), "fold1": fold(0.5, 2.0, 0.1)}
    best, _, warning = choose_best(folds, EvaluateConfig(max_far_24h=1.0))
    assert best == "fold1" and "no fold" in warning


def test_best_fold_other_rules():
    folds = {"fold0": fold(0.2, 0.0, 0.9, val_loss=0.3), "fold1": fold(0.6, 0.0, 0.1, 0.7)}
    assert choose_best(folds, EvaluateConfig(best_fold="val_loss"))[0] == "fold0"
    assert choose_best(folds, EvaluateConfig(best_fold="youden"))[0] == "fold1"


# --------------------------------------------------------------------------- the app's buffer

def test_app_windows_fill_the_buffer_then_slide_one_datapoint():
    samples = np.arange(8 * 125, dtype=np.float32)  # 8 datapoints
    x, dps = app_windows(samples, 750, 125)
    assert x.shape == (3, 1, 750) and x.dtype == np.float32
    assert dps.tolist() == [5, 6, 7]  # first inference once the 6th datapoint arrived
    assert x[0, 0, 0] == 0 and x[0, 0, -1] == 749
    assert x[2, 0, 0] == 250 and x[2, 0, -1] == 999
    empty, none = app_windows(samples[:5 * 125], 750, 125)
    assert empty.shape == (0, 1, 750) and len(none) == 0
