"""Event results by the app's engine, false alarms per 24 h, sweeps and fold statistics on
hand-made inputs whose answers are computed by hand."""

import math

import pytest

from factory_traces import trace
from osdml.app.engine import AppSettings
from osdml.config import EvaluateConfig
from osdml.crossval import choose_best
from osdml.evaluate.events import score_trace
from osdml.evaluate.metrics import event_summary, far_per_24h, fold_statistics, threshold_sweep

APP = AppSettings()


def score(t, settings=APP):
    return score_trace(t, settings)


# --------------------------------------------------------------------------- one event

def test_score_counts_alarm_episodes_and_latency():
    # + + + + - - + + + : states 0 1 2 2 1 0 0 1 2: two alarm episodes, the first after the
    # third datapoint (t = 15 s)
    p = [0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9]
    row = score(trace(p, label=1, seizure_start_s=5.0))
    assert row["states"] == "012210012"
    assert row["alarm"] and row["warning"] and row["alarms"] == 2
    assert row["first_alarm_s"] == 15.0 and row["latency_s"] == 10.0
    assert row["max_p"] == pytest.approx(0.9) and row["decisions"] == 9


def test_buffer_not_full_and_gated_datapoints_are_counted_and_vote_no():
    row = score(trace([None, None, 0.9, 0.9, 0.9], 1, movement=[20, 20, 20, 2, 20]))
    assert row["decisions"] == 3 and row["gated"] == 1
    assert row["states"] == "00000" and not row["warning"]
    assert row["any_window"] is True  # some datapoint voted


def test_latency_unknown_without_seizure_times_and_no_alarm():
    row = score(trace([0.9, 0.9, 0.1], label=1))
    assert row["warning"] and not row["alarm"] and row["latency_s"] is None


def test_osd_alone_and_model_plus_osd_as_the_app_combines_them():
    p = [0.9, 0.9, 0.1, 0.1, 0.1, 0.1]
    osd = [False, False, True, True, True, False]
    row = score(trace(p, 1, osd=osd, seizure_start_s=0.0))
    assert not row["alarm"] and row["states"] == "010000"
    assert row["osd_states"] == "000121" and row["osd_alarms"] == 1
    assert row["osd_latency_s"] == 25.0
    # any: model or OSD -> five positives in a row, then the negative after ALARM warns
    assert row["combined_states"] == "012221" and row["combined_latency_s"] == 15.0
    no_osd = score(trace(p, 1, osd=osd), AppSettings(osd=False))
    assert no_osd["combined_states"] == no_osd["states"]  # OsdAlarmActive off
    unanimous = score(trace(p, 1, osd=osd), AppSettings(voting="unanimous"))
    assert unanimous["combined_alarm"] is False


def test_recorded_states_count_alarm_state_2_and_ignore_manual_5():
    row = score(trace([0.1] * 10, recorded=[0, 5, 5, 0, 2, 2, 0, 2, 1, 0], seizure_start_s=0))
    assert row["recorded_alarm"] is True and row["recorded_alarms"] == 2
    assert row["recorded_latency_s"] == 25.0  # first state 2 at datapoint 4 (t = 25 s)
    manual = score(trace([0.1] * 4, recorded=[0, 5, 5, 0]))
    assert manual["recorded_alarm"] is False and manual["recorded_alarms"] == 0
    assert score(trace([0.1] * 4))["recorded_alarm"] is None  # no recorded states at all


# --------------------------------------------------------------------------- false alarms / 24 h

def test_far_per_24h_hand_computed():
    assert far_per_24h(3, 12 * 3600) == 6.0
    assert far_per_24h(0, 3600) == 0.0
    assert far_per_24h(2, 0) is None


def test_event_summary_hand_computed():
    alarm_twice = [0.9, 0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9]  # 2 episodes
    alarm_once = [0.9, 0.9, 0.9]
    rows = [score(t) for t in [
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
    assert m["latency_mean_s"] == 15.0
    assert s["tonic_clonic"]["sensitivity"] == 1.0
    assert s["per_subtype"]["Aura"]["sensitivity"] == 0.0
    assert s["per_user"]["a"]["far_24h"] == pytest.approx(6.0)  # 2 in 8 h
    assert s["per_user"]["b"]["far_24h"] == pytest.approx(1.5)  # 1 in 16 h
    assert s["osd"]["sensitivity"] == 0.0 and s["osd"]["far_24h"] == 0.0  # never voted
    assert s["recorded"]["sensitivity"] is None  # no recorded states: no baseline, not zero


def test_no_false_positive_and_no_negatives_do_not_divide_by_zero():
    only_seizures = event_summary([score(trace([0.9] * 3, 1))])
    assert only_seizures["model"]["far_24h"] is None
    assert only_seizures["model"]["fpr_events"] is None
    quiet = event_summary([score(trace([0.1] * 3, 0))])
    assert quiet["model"]["far_24h"] == 0.0 and quiet["model"]["sensitivity"] is None


def test_threshold_sweep_trades_sensitivity_for_false_alarms():
    traces = [trace([0.6, 0.6, 0.6], 1), trace([0.4, 0.4, 0.4], 0, recording_s=86_400)]
    rows = {r["threshold"]: r for r in threshold_sweep(traces, APP, [30, 50, 70])}
    assert rows[0.3]["sensitivity"] == 1.0 and rows[0.3]["far_24h"] == 1.0
    assert rows[0.5]["sensitivity"] == 1.0 and rows[0.5]["far_24h"] == 0.0
    assert rows[0.7]["sensitivity"] == 0.0 and rows[0.7]["far_24h"] == 0.0


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
