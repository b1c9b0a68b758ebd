"""The app's alarm engine on sequences read from the app's code (SeizureDetector.processData,
SdAlgMl, VotingStrategy): the counter, the gate, the threshold, buffers and voting."""

import numpy as np
import pytest

from osdml.app.engine import (
    ALARM,
    OK,
    WARNING,
    AppSettings,
    alarm_onsets,
    app_probability,
    combine,
    counter_states,
    model_votes,
    movement_pct,
    run_engine,
)

T, F = True, False


def states(votes, **kw):
    return counter_states(votes, **kw).tolist()


# --------------------------------------------------------------------------- the counter

def test_a_single_negative_resets_everything():
    # + + - + : the negative after WARNING resets to OK and 0 s
    assert states([T, T, F, T]) == [OK, WARNING, OK, OK]


def test_two_negatives_after_alarm_reset_and_the_run_starts_again():
    # + + + + + - - + + : ALARM, one negative -> WARNING, the next -> OK; two positives warn
    assert states([T, T, T, T, T, F, F, T, T]) == [OK, WARNING, ALARM, ALARM, ALARM, WARNING,
                                                   OK, OK, WARNING]


def test_one_negative_after_alarm_gives_warning_and_the_next_positive_alarms_at_once():
    assert states([T, T, T, F, T]) == [OK, WARNING, ALARM, WARNING, ALARM]


def test_no_cap_a_long_alarm_recovers_like_a_short_one():
    # the old osdml rule capped the counter at 15 s and took 5 s off per negative
    long = states([T] * 20 + [F, F])
    assert long[-2:] == [WARNING, OK]
    assert states([T] * 20 + [F, T]) [-1] == ALARM


def test_warn_and_alarm_times_are_settings():
    # the app's fallback when its settings cannot be read: WarnTime 5, AlarmTime 15
    assert states([T] * 4, warn_s=5, alarm_s=15) == [OK, WARNING, WARNING, ALARM]
    assert states([T] * 3, warn_s=0, alarm_s=0) == [ALARM, ALARM, ALARM]


def test_alarm_onsets_count_entries_into_alarm():
    s = counter_states([T, T, T, F, T, F, F, T, T, T])
    assert s.tolist() == [0, 1, 2, 1, 2, 1, 0, 0, 1, 2]
    assert alarm_onsets(s).tolist() == [2, 4, 9]


# --------------------------------------------------------------------------- gate, threshold

def test_movement_pct_is_the_population_std_over_the_mean_in_percent():
    x = np.array([950.0] * 62 + [1050.0] * 62 + [1000.0])
    assert movement_pct(x[None, :])[0] == pytest.approx(100 * np.sqrt(124 * 50**2 / 125) / 1000)
    assert movement_pct(np.full((1, 125), 1000.0))[0] == 0.0
    # only the first 125 samples count
    assert movement_pct(np.r_[x, [0.0] * 10][None, :])[0] == movement_pct(x[None, :])[0]


def test_gate_at_its_edge_gates_below_only():
    mov = np.array([4.999, 5.0, 5.001])
    votes, p_app = model_votes(np.full(3, 0.9, np.float32), mov, AppSettings(gate_pct=5.0))
    assert votes.tolist() == [F, T, T] and p_app.tolist()[0] == 0.0


def test_p_exactly_at_the_threshold_is_not_a_vote():
    th = np.float32(0.5)
    p = np.array([th, np.nextafter(th, np.float32(1))], dtype=np.float32)
    votes, _ = model_votes(p, np.full(2, 50.0), AppSettings(threshold_pct=50))
    assert votes.tolist() == [F, T]
    # the threshold is a float32 of pct / 100, as the app holds it
    assert AppSettings(threshold_pct=70).threshold == np.float32(0.7)


def test_a_buffer_not_yet_full_gives_p_zero():
    p = np.array([np.nan, np.nan, 0.99], dtype=np.float32)
    votes, p_app = model_votes(p, np.full(3, 50.0), AppSettings())
    assert votes.tolist() == [F, F, T] and p_app.tolist()[:2] == [0.0, 0.0]


def test_app_probability_is_the_softmax_as_float32():
    p = app_probability(np.array([[0.0, 0.0], [0.0, 100.0], [3.0, 1.0]]))
    assert p.dtype == np.float32
    assert p.tolist() == pytest.approx([0.5, 1.0, 1 / (1 + np.exp(2))], rel=1e-6)


# --------------------------------------------------------------------------- voting

def test_one_algorithm_is_its_own_vote_whatever_the_strategy():
    v = np.array([T, F])
    for strategy in ("any", "majority", "unanimous", "weighted"):
        assert combine([v], [np.array([0.6, 0.1])], strategy).tolist() == [T, F]


def test_voting_strategies_by_hand():
    osd, m1, m2 = np.array([T, T, F, F]), np.array([T, F, T, F]), np.array([F, F, T, F])
    conf = [np.ones(4), np.full(4, 0.9), np.full(4, 0.9)]
    assert combine([osd, m1, m2], conf, "any").tolist() == [T, T, T, F]
    assert combine([osd, m1, m2], conf, "majority").tolist() == [T, F, T, F]  # > 1.5 of 3
    assert combine([osd, m1], conf[:2], "majority").tolist() == [T, F, F, F]  # 1 of 2 is not >
    assert combine([osd, m1, m2], conf, "unanimous").tolist() == [F, F, F, F]
    assert combine([osd, m1], conf[:2], "unanimous").tolist() == [T, F, F, F]


def test_weighted_voting_is_state_times_confidence_over_the_weights():
    osd = np.array([T, T, F])
    model = np.array([T, F, T])
    p = np.array([0.6, 0.4, 0.99], dtype=np.float32)
    # (2 x 1 + 2 x 0.6) / 2 = 1.6 > 1.5; (2 + 0) / 2 = 1; (0 + 2 x 0.99) / 2 = 0.99
    assert combine([osd, model], [np.ones(3), p], "weighted").tolist() == [T, F, F]


def test_run_engine_model_and_osd_any():
    p = np.array([[np.nan, 0.9, 0.9, 0.9, 0.1]], dtype=np.float32)
    mov = np.full(5, 20.0)
    osd = np.array([F, F, F, F, T])
    r = run_engine(p, mov, osd, AppSettings())
    assert r.algorithms == ["osd", "model0"]
    assert r.combined.tolist() == [F, T, T, T, T]
    assert r.states.tolist() == [OK, OK, WARNING, ALARM, ALARM]
    alone = run_engine(p, mov, osd, AppSettings(osd=False))
    assert alone.states.tolist() == [OK, OK, WARNING, ALARM, WARNING]
    with pytest.raises(ValueError, match="no algorithm"):
        run_engine(None, mov, None, AppSettings())


def test_settings_are_checked():
    with pytest.raises(ValueError, match="voting"):
        AppSettings(voting="most")
    with pytest.raises(ValueError, match="percentage"):
        AppSettings(threshold_pct=0.5e3)
