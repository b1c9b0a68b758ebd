"""Sample streams and windows: ordering, duplicates, gaps, the n - 5 rule, views not copies."""

from __future__ import annotations

import numpy as np
import pytest

from factory import event, write_events
from osdml.data.cache import load_streams
from osdml.data.windows import Windows, event_window_counts, make_windows, window_count


def streams_of(tmp_path, events):
    return load_streams([write_events(tmp_path / "e.json", events)], cache=False)


def windows_of(streams):
    idx = np.arange(streams.n_events)
    return make_windows(streams, idx, np.ones(len(idx), dtype=int))


@pytest.mark.parametrize("n_dp, expected", [(5, 0), (6, 1), (7, 2), (30, 25), (100, 95)])
def test_n_contiguous_datapoints_give_n_minus_5_windows(tmp_path, n_dp, expected):
    s = streams_of(tmp_path, [event(1, n_dp)])
    assert len(windows_of(s)) == expected
    assert window_count(n_dp * 125, 750, 125) == expected


def test_gap_splits_the_event_and_no_window_spans_it(tmp_path):
    ev = event(1, 20)
    for dp in ev["datapoints"][10:]:  # 60 s lost between datapoints 9 and 10
        dp["dataTime"] = dp["dataTime"].replace(dp["dataTime"], _shift(dp["dataTime"], 60))
    s = streams_of(tmp_path, [ev])
    assert s.segments[:, 1].tolist() == [10 * 125, 10 * 125]
    w = windows_of(s)
    assert len(w) == 2 * (10 - 5)
    seg_ends = s.segments[:, 0] + s.segments[:, 1]
    for start in w.starts:  # every window lies inside one segment
        seg = np.searchsorted(s.segments[:, 0], start, side="right") - 1
        assert start + 750 <= seg_ends[seg]
    assert s.report.notes["gap_split"] == 1


def test_small_jitter_is_not_a_gap(tmp_path):
    ev = event(1, 10)
    for i, dp in enumerate(ev["datapoints"]):  # 5 to 7 s apart: datapoints arrive late
        dp["dataTime"] = _shift(dp["dataTime"], 2 * (i % 2))
    s = streams_of(tmp_path, [ev])
    assert len(s.segments) == 1 and len(windows_of(s)) == 5


def test_out_of_order_sorted_and_duplicates_dropped(tmp_path):
    ev = event(1, 8)
    dps = ev["datapoints"]
    dps[2], dps[3] = dps[3], dps[2]
    dps.insert(5, dict(dps[4], rawData=[1500.0] * 125))  # same time, different data: dropped
    s = streams_of(tmp_path, [ev])
    assert s.events[0].n_datapoints == 8
    first = s.samples[::125] * 1000  # first sample of each datapoint: 1000 + index
    assert first.tolist() == pytest.approx([1000 + i for i in range(8)])
    assert s.report.notes["out_of_order"] == 1
    assert s.report.skipped_datapoints["duplicate_time"] == 1


def test_logging_copies_are_dropped_and_counted(tmp_path):
    # a manual alarm logs the datapoint just processed again, a second later (APP_CONTRACT.md)
    ev = event(1, 8)
    dps = ev["datapoints"]
    copy = dict(dps[3], dataTime=_shift(dps[3]["dataTime"], 1), alarmState=5)
    dps.insert(4, copy)
    # the same samples a whole period later: a frozen sensor, which the app does process
    dps.append(dict(dps[-1], dataTime=_shift(dps[-1]["dataTime"], 5)))
    s = streams_of(tmp_path, [ev])
    assert s.events[0].n_datapoints == 9
    assert s.report.skipped_datapoints == {"logging_copy": 1}
    first = s.samples[::125] * 1000
    assert first.tolist() == pytest.approx([1000 + i for i in range(8)] + [1007])
    assert len(s.segments) == 1  # the copy a second later is not a gap either
    assert np.asarray(s.dp_alarm_state).tolist() == [0] * 9


def test_the_app_buffer_over_an_event_spans_gaps(tmp_path):
    from osdml.evaluate.events import buffer_windows

    ev = event(1, 12)
    for dp in ev["datapoints"][6:]:
        dp["dataTime"] = _shift(dp["dataTime"], 60)
    s = streams_of(tmp_path, [ev])
    assert len(s.segments) == 2 and len(windows_of(s)) == 2  # 1 + 1 within the segments
    dp, starts = buffer_windows(s, 0, 750)
    assert dp.tolist() == list(range(5, 12))  # the app runs after every datapoint once full
    assert s.event_sample_range(0) == (0, 12 * 125)
    assert starts.tolist() == [(d + 1) * 125 - 750 for d in range(5, 12)]
    dp125, _ = buffer_windows(s, 0, 125)
    assert dp125.tolist() == list(range(12))


def test_duplicate_event_ids_keep_the_first(tmp_path):
    a, b = event(5, 6), event(5, 6, value=1500)
    files = [write_events(tmp_path / "a.json", [a]), write_events(tmp_path / "b.json", [b])]
    s = load_streams(files, cache=False)
    assert s.n_events == 1 and s.samples[0] == pytest.approx(1.0)
    assert s.report.skipped_events == {"duplicate_event_id": 1}


def test_windows_are_channel_first_views_in_g(tmp_path):
    s = streams_of(tmp_path, [event(1, 7, value=1000)])
    w = windows_of(s)
    x = w[1]
    assert x.shape == (1, 750) and x.dtype == np.float32
    assert np.shares_memory(x, s.samples)  # a view, never a copy
    assert x[0, 0] == pytest.approx(1.001)  # datapoint 1 (1001 mg) starts window 1: g units
    batch = w.batch([0, 1])
    assert batch.shape == (2, 1, 750) and np.array_equal(batch[1], x)


def test_windows_carry_event_labels(tmp_path):
    s = streams_of(tmp_path, [event(1, 8), event(2, 7, type="NDA")])
    w = make_windows(s, [0, 1], [1, 0])
    assert isinstance(w, Windows)
    assert w.count_by_label() == {1: 3, 0: 2}
    assert w.event.tolist() == [0, 0, 0, 1, 1]
    assert event_window_counts(s).tolist() == [3, 2]


def test_make_windows_checks_arguments(tmp_path):
    s = streams_of(tmp_path, [event(1, 8)])
    with pytest.raises(ValueError, match="1 events but 2 labels"):
        make_windows(s, [0], [1, 0])
    with pytest.raises(ValueError, match="must be positive"):
        make_windows(s, [0], [1], hop_samples=0)


def _shift(iso_time: str, seconds: float) -> str:
    from factory import iso
    from osdml.data.osdb import parse_time
    return iso(parse_time(iso_time) + seconds)

