"""The app's threshold and movement gate chosen on validation events by a sweep."""

import pytest

from factory_traces import trace
from osdml.app.engine import AppSettings
from osdml.app.tune import choose, sweep


def test_sweep_counts_events_and_false_alarms_by_the_engine():
    traces = [
        trace([0.6, 0.6, 0.6], 1, movement=[3.0] * 3),           # subtle seizure: 3 % movement
        trace([0.7, 0.7, 0.7, 0.1, 0.7, 0.7, 0.7], 0, recording_s=86_400),  # 2 episodes
    ]
    rows = {(r["threshold_pct"], r["gate_pct"]): r
            for r in sweep(traces, AppSettings(), [50, 65, 75], [0, 5])}
    assert rows[(50, 0)]["detected"] == 1 and rows[(50, 0)]["false_alarms"] == 2
    assert rows[(50, 0)]["far_24h"] == 2.0
    assert rows[(50, 5)]["detected"] == 0  # the gate silences the subtle seizure
    assert rows[(65, 0)]["sensitivity"] == 0.0 and rows[(65, 0)]["false_alarms"] == 2
    assert rows[(75, 5)]["false_alarms"] == 0
    assert rows[(50, 0)]["decision_sensitivity"] == 1.0


def test_sweep_equals_the_engine_event_by_event():
    from osdml.evaluate.events import score_trace

    traces = [trace([0.9, 0.9, 0.2, 0.9, 0.9, 0.9, 0.1, 0.9], lab, movement=mov)
              for lab, mov in ((1, [9, 9, 1, 9, 9, 4, 9, 9]), (0, [6] * 8))]
    for th, gate in ((50, 0), (50, 5), (85, 4), (95, 0)):
        s = AppSettings(threshold_pct=th, gate_pct=gate)
        (row,) = sweep(traces, s, [th], [gate])
        scored = [score_trace(t, s) for t in traces]
        assert row["detected"] == sum(r["alarm"] for r in scored if r["label"] == 1)
        assert row["false_alarms"] == sum(r["alarms"] for r in scored if r["label"] == 0)


def test_choose_takes_the_most_sensitive_within_the_false_alarm_limit():
    rows = [
        {"threshold_pct": 30.0, "gate_pct": 0.0, "sensitivity": 1.0, "far_24h": 4.0},
        {"threshold_pct": 50.0, "gate_pct": 2.0, "sensitivity": 0.8, "far_24h": 0.5},
        {"threshold_pct": 70.0, "gate_pct": 2.0, "sensitivity": 0.8, "far_24h": 0.5},
        {"threshold_pct": 90.0, "gate_pct": 5.0, "sensitivity": 0.4, "far_24h": 0.0},
    ]
    for r in rows:
        r.update(detected=int(r["sensitivity"] * 5), seizure_events=5, false_alarms=1)
    t = choose(rows, AppSettings(), max_far_24h=1.0)
    # 0.8 at 0.5 / 24 h, twice: the tie goes to the pair nearest the app's defaults
    assert (t.settings.threshold_pct, t.settings.gate_pct) == (50.0, 2.0) and not t.warning
    assert "0.8" in t.reason and t.record()["validation"]["far_24h"] == 0.5
    assert choose(rows, AppSettings(), max_far_24h=10).settings.threshold_pct == 30.0
    strict = choose(rows, AppSettings(), max_far_24h=-1)
    assert strict.settings.threshold_pct == 90.0 and "fewest" in strict.warning


def test_nothing_to_tune_on_keeps_the_settings_with_a_warning():
    t = choose(sweep([trace([0.9] * 4, 0)], AppSettings(), [50], [5]), AppSettings())
    assert t.settings == AppSettings() and "no seizure events" in t.warning
    none = choose([], AppSettings(threshold_pct=60), rule="none")
    assert none.settings.threshold_pct == 60 and none.warning is None
    with pytest.raises(ValueError, match="tuning rule"):
        choose([], AppSettings(), rule="best")


def test_a_model_that_never_alarms_is_tuned_with_a_warning():
    t = choose(sweep([trace([0.1] * 5, 1), trace([0.1] * 5, 0)], AppSettings(), [50, 60],
                     [0, 5]), AppSettings())
    assert t.settings.threshold_pct == 50.0 and "misses every validation seizure" in t.warning
