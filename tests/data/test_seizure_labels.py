"""Seizure-time labels ([data.labels]): windows of seizure events labelled by seizureTimes."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from factory import T0, event, iso, write_events
from osdml.config import LabelConfig, RunConfig, config_difference, load_config
from osdml.data.augment import augment_training
from osdml.data.cache import load_streams
from osdml.data.filters import select_events
from osdml.data.labels import seizure_time_labels, window_times
from osdml.data.split import Split
from osdml.data.windows import make_windows
from osdml.errors import InputError
from osdml.nnconfig import import_nnconfig

ON = LabelConfig(use_seizure_times=True)
N_DP = 30  # 25 windows; window j covers (5j, 5j + 30] s after dataTime (datapoints end at 5(i+1))


def timed_event(event_id, seizure_times=None, n_dp=N_DP, **kw):
    """Datapoint i ends 5 (i + 1) s after the event's dataTime, T0."""
    extra = {} if seizure_times is None else {"seizureTimes": seizure_times}
    return event(event_id, n_dp, dataTime=iso(T0), **extra, **kw)


def streams_of(tmp_path, events):
    return load_streams([write_events(tmp_path / "e.json", events)], cache=False)


def windows_of(streams, labels=None):
    idx = np.arange(streams.n_events)
    return make_windows(streams, idx, np.ones(len(idx), int) if labels is None else labels)


def kept_windows(w) -> list[int]:
    """Window number j (start 5j s) of each window, from its first sample."""
    return ((w.starts - w.streams.segments[w.event, 0]) // 125).tolist()


def test_window_times_follow_the_datapoint_times(tmp_path):
    s = streams_of(tmp_path, [timed_event(1)])
    start, end = window_times(windows_of(s))
    assert start.tolist() == pytest.approx([5.0 * j for j in range(25)])
    assert end.tolist() == pytest.approx([5.0 * j + 30 for j in range(25)])


@pytest.mark.parametrize("times, margin, inside", [
    ([60, 100], 0.0, range(7, 20)),  # window 6 ends at 60 and window 20 starts at 100: outside
    ([59.96, 100.04], 0.0, range(6, 21)),  # each overlaps by one sample (40 ms)
    ([60, 100], 10.0, range(5, 22)),  # [50, 110]: window 4 ends at 50, window 22 starts at 110
    ([0, 1], 0.0, range(0, 1)),  # only the first window reaches 1 s
    ([200, 300], 0.0, range(0)),  # after the recording: every window wholly before
])
def test_windows_overlapping_the_widened_seizure_are_seizure_windows(tmp_path, times, margin,
                                                                    inside):
    s = streams_of(tmp_path, [timed_event(1, times)])
    w, counts = seizure_time_labels(windows_of(s), LabelConfig(use_seizure_times=True,
                                                               margin_s=margin))
    assert kept_windows(w) == list(inside) and set(w.labels.tolist()) <= {1}
    assert counts.windows_in_seizure == len(inside)
    assert counts.windows_excluded == 25 - len(inside) and counts.windows_negative == 0
    assert (counts.events_by_seizure_times, counts.events_whole_event) == (1, 0)
    assert counts.events_no_window_in_seizure == (len(inside) == 0)
    assert w.streams is s  # still views into the same streams


def test_outside_negative_labels_them_0_and_keeps_every_window(tmp_path):
    s = streams_of(tmp_path, [timed_event(1, [60, 100])])
    w, counts = seizure_time_labels(windows_of(s), LabelConfig(use_seizure_times=True,
                                                               outside="negative"))
    assert len(w) == 25
    assert np.flatnonzero(w.labels).tolist() == list(range(7, 20))
    assert (counts.windows_negative, counts.windows_excluded) == (12, 0)


def test_events_without_seizure_times_and_non_seizure_events_are_untouched(tmp_path):
    s = streams_of(tmp_path, [timed_event(1), timed_event(2, [60, 100], type="False Alarm"),
                              timed_event(3, [60, 100])])
    before = windows_of(s, labels=[1, 0, 1])
    w, counts = seizure_time_labels(before, LabelConfig(use_seizure_times=True,
                                                        outside="negative"))
    assert w.labels[w.event == 0].tolist() == [1] * 25  # no seizureTimes: whole event
    assert w.labels[w.event == 1].tolist() == [0] * 25  # not a seizure event
    assert w.labels[w.event == 2].sum() == 13
    assert (counts.events_by_seizure_times, counts.events_whole_event) == (1, 1)


def test_off_by_default_changes_nothing(tmp_path):
    s = streams_of(tmp_path, [timed_event(1, [60, 100])])
    before = windows_of(s)
    w, counts = seizure_time_labels(before, LabelConfig())
    assert w is before and counts.to_dict() == dict.fromkeys(counts.to_dict(), 0)


def test_without_data_time_times_count_from_the_first_datapoint(tmp_path):
    ev = timed_event(1, [55, 95])  # the first datapoint ends 5 s after T0: [60, 100] after T0
    del ev["dataTime"]
    s = streams_of(tmp_path, [ev])
    assert s.events[0].time_s is None
    w, counts = seizure_time_labels(windows_of(s), ON)
    assert kept_windows(w) == list(range(7, 20)) and counts.events_by_seizure_times == 1


def test_copies_are_labelled_like_their_source(tmp_path):
    from osdml.config import AugmentConfig

    s = streams_of(tmp_path, [timed_event(1, [60, 100]), timed_event(2, type="NDA")])
    sel = select_events(s)
    aug = augment_training(s, sel, np.array([0, 1]), AugmentConfig(
        noise_copies=1, phase_step_samples=25), 750, 125)
    c = aug.copies
    by_id = {e.id: i for i, e in enumerate(c.events)}
    w = make_windows(c, np.arange(c.n_events), np.ones(c.n_events, int))
    start, end = window_times(w, source=s, source_starts=aug.source_starts)
    noisy, shifted = w.event == by_id["1~n0"], w.event == by_id["1~p25"]
    assert start[noisy].tolist() == pytest.approx([5.0 * j for j in range(25)])
    assert start[shifted].tolist() == pytest.approx([5.0 * j + 1 for j in range(24)])
    lw, counts = seizure_time_labels(w, ON, source=s, source_starts=aug.source_starts)
    assert kept_windows(lw)[:13] == list(range(7, 20))  # the noise copy: as the original
    # the phase copies (+1, +2, +3, +4 s): window k covers (5k + d, 5k + 30 + d], so k = 6
    # (ends at 60 + d) .. 19 (starts at 95 + d) overlap [60, 100]
    assert (lw.event == by_id["1~p25"]).sum() == (lw.event == by_id["1~p100"]).sum() == 14
    assert counts.events_by_seizure_times == 5 and counts.windows_excluded == 12 + 4 * 10
    # a copy whose time axis is unknown keeps the whole-event label
    unknown = np.full_like(aug.source_starts, -1)
    lw, counts = seizure_time_labels(w, ON, source=s, source_starts=unknown)
    assert len(lw) == len(w) and counts.events_whole_event == 5
    with pytest.raises(ValueError, match="source_starts"):
        seizure_time_labels(w, ON, source=s)


def test_split_windows_labels_every_part_and_reports_the_counts(tmp_path):
    from osdml.pipeline import split_windows

    evs = [timed_event(1, [60, 100]), timed_event(2), timed_event(3, type="NDA"),
           timed_event(4, [60, 100]), timed_event(5, type="False Alarm"),
           timed_event(6, [60, 100]), timed_event(7, type="NDA")]
    s = streams_of(tmp_path, evs)
    sel = select_events(s)
    split = Split(train=np.array([0, 1, 2]), val=np.array([3, 4]), test=np.array([5, 6]))
    cfg = RunConfig.model_validate({"data": {
        "augment": {"noise_copies": 1}, "labels": {"use_seizure_times": True}}})
    parts = split_windows(s, sel, split, cfg)
    assert parts.labels["train"] == {
        "events_by_seizure_times": 1, "events_whole_event": 1, "events_no_window_in_seizure": 0,
        "windows_in_seizure": 13, "windows_excluded": 12, "windows_negative": 0}
    assert parts.labels["train_copies"]["events_by_seizure_times"] == 1
    assert parts.labels["train_copies"]["events_whole_event"] == 1
    assert parts.labels["validation"]["windows_excluded"] == 12
    assert parts.labels["test"]["windows_in_seizure"] == 13
    # 13 + 25 seizure windows of the originals, as many of the copies; 25 of the NDA event
    assert parts.train.count_by_label() == {0: 25, 1: 2 * (13 + 25)}
    assert parts.val.count_by_label() == parts.test.count_by_label() == {0: 25, 1: 13}
    off = split_windows(s, sel, split, RunConfig.model_validate(
        {"data": {"augment": {"noise_copies": 1}}}))
    assert off.labels == {} and off.val.count_by_label() == {0: 25, 1: 25}


def test_config_section_round_trips_and_is_compared(tmp_path):
    cfg = RunConfig.model_validate({"data": {"labels": {
        "use_seizure_times": True, "margin_s": 15, "outside": "negative"}}})
    assert cfg.data.labels.margin_s == 15.0
    assert cfg.data.selection.labels == {"seizure": 1, "false alarm": 0, "nda": 0}  # kept
    text = cfg.to_toml()
    assert "\n[data.labels]\n" in text and 'labels = { "seizure" = 1' in text
    again = RunConfig.model_validate(tomllib.loads(text))
    assert again == cfg and config_difference(again, cfg) is None
    assert config_difference(RunConfig(), cfg) == \
        "data.labels.margin_s: 0.0 here, 15.0 in the run"
    path = tmp_path / "c.toml"
    for bad, phrase in (("margin_s = -1", "data.labels.margin_s"),
                        ('outside = "zero"', "data.labels.outside: must be one of")):
        path.write_text(f"[data.labels]\n{bad}\n")
        with pytest.raises(InputError, match=phrase):
            load_config(path)


def test_nnconfig_seizure_time_keys_map_to_data_labels(tmp_path):
    path = tmp_path / "nnConfig.json"
    path.write_text(json.dumps({"dataProcessing": {
        "useSeizureTimesConstraint": True, "seizureTimeMarginSeconds": 10,
        "seizureTimeRange": [-20, 20]}}))
    cfg, notes = import_nnconfig(path)
    assert cfg.data.labels == LabelConfig(use_seizure_times=True, margin_s=10.0)
    keys = {n.key: n.why for n in notes}
    assert "seizureTimes" in keys["dataProcessing.seizureTimeRange"]
    assert "dataProcessing.useSeizureTimesConstraint" not in keys
    path.write_text(json.dumps({"dataProcessing": {"seizureTimeMarginSeconds": -5}}))
    with pytest.raises(InputError, match="seizureTimeMarginSeconds .osdml data.labels.margin_s"):
        import_nnconfig(path)


def test_data_summary_counts_what_the_labels_do(tmp_path, capsys):
    from osdml.cli import main

    data = write_events(tmp_path / "e.json", [timed_event(1, [60, 100]), timed_event(2),
                                              timed_event(3, type="NDA")])
    config = tmp_path / "c.toml"
    config.write_text("[data.labels]\nuse_seizure_times = true\n")
    assert main(["data", "summary", str(data), "--config", str(config), "--json",
                 "--no-cache"]) == 0
    counts = json.loads(capsys.readouterr().out)["seizure_time_labels"]
    assert counts["events_by_seizure_times"] == counts["events_whole_event"] == 1
    assert (counts["windows_in_seizure"], counts["windows_excluded"]) == (13, 12)
    assert main(["data", "summary", str(data), "--config", str(config), "--no-cache"]) == 0
    assert "Seizure-time labels" in capsys.readouterr().out
    assert main(["data", "summary", str(data), "--json", "--no-cache"]) == 0
    assert json.loads(capsys.readouterr().out)["seizure_time_labels"] is None
