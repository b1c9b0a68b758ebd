"""Regression tests for hostile and odd input found by trying to break the reader."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time

import numpy as np
import pytest

from factory import event, write_events
from osdml.data.cache import load_streams
from osdml.data.osdb import read_events
from osdml.data.report import DataReport
from osdml.errors import InputError


def read(path):
    report = DataReport()
    return list(read_events(path, report)), report


def test_nested_rawdata_is_skipped_and_never_shifts_later_events(tmp_path):
    bad = event(1, 6)
    bad["datapoints"][2]["rawData"] = [[v, 0, 0] for v in bad["datapoints"][2]["rawData"]]
    bad["datapoints"][3]["rawData"] = [[v] for v in bad["datapoints"][3]["rawData"]]
    good = event(2, 6, value=1234)
    path = write_events(tmp_path / "n.json", [bad, good])
    for cache in (True, False):
        s = load_streams([path], cache=cache)
        assert s.report.skipped_datapoints["non_numeric"] == 2
        second = s.event_samples(1)[0]
        assert second[0] == pytest.approx(1.234) and len(second) == 6 * 125


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "crc"])
def test_broken_gzip_is_one_clear_error(tmp_path, damage):
    raw = gzip.compress(json.dumps([event(i, 8) for i in range(20)]).encode())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "corrupt":
        raw = raw[:100] + bytes(b ^ 0xFF for b in raw[100:140]) + raw[140:]
    else:
        raw = raw[:-8] + b"\0" * 8  # wrong CRC and length
    path = tmp_path / "bad.json.gz"
    path.write_bytes(raw)
    with pytest.raises(InputError, match=r"bad\.json\.gz: .*(gzip|invalid JSON)"):
        read(path)


def test_deep_nesting_fails_fast(tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    t = time.monotonic()
    with pytest.raises(InputError, match="nested more than"):
        read(path)
    assert time.monotonic() - t < 10  # not a timing claim: the run must end at all


def test_deep_nesting_in_ndjson(tmp_path):
    path = tmp_path / "deep.ndjson"
    path.write_text('{"id": 1, "datapoints": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(InputError, match="nested too deep"):
        read(path)


def test_ids_written_as_floats_are_the_same_user_and_event(tmp_path):
    a, b = event(7, 6, user=1), event(7.0, 6, user=1.0)
    s = load_streams([write_events(tmp_path / "a.json", [a, b])], cache=False)
    assert [e.id for e in s.events] == ["7"] and s.report.skipped_events["duplicate_event_id"] == 1
    c = event(8, 6, user=1.0)
    s = load_streams([write_events(tmp_path / "b.json", [event(9, 6, user=1), c])], cache=False)
    assert {e.user_id for e in s.events} == {"1"}


def test_wrong_field_types_are_skipped_or_noted(tmp_path):
    ev_list_id = event([1, 2], 6)
    ev_bool_user = event(3, 6, user=True)
    ev = event(4, 6, seizureTimes=[True, False])
    ev["datapoints"][0]["rawData"] = ["x"] + ev["datapoints"][0]["rawData"][1:]
    ev["datapoints"][1]["alarmState"] = 300
    ev["datapoints"][2]["rawData3D"] = [1e6] * 375
    events, report = read(write_events(tmp_path / "t.json", [ev_list_id, ev_bool_user, ev]))
    assert [e.id for e in events] == ["3", "4"]
    assert report.skipped_events == {"bad_id": 1}
    assert events[0].user_id == "" and report.notes["bad_user_id"] == 1
    assert events[1].seizure_times is None and report.notes["bad_seizure_times"] == 1
    assert report.skipped_datapoints == {"non_numeric": 1}
    assert events[1].datapoints[0].alarm_state == -1  # 300 is not a state
    assert events[1].datapoints[1].accel3d_mg is None and report.notes["rawData3D_dropped"] == 1


def test_utf8_bom_and_lone_cr_line_ends_are_read(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([event(1, 6)]).encode())
    assert len(read(path)[0]) == 1
    cr = tmp_path / "cr.ndjson"
    cr.write_bytes(b"\r".join(json.dumps(event(i, 6)).encode() for i in range(3)) + b"\r")
    assert len(read(cr)[0]) == 3


@pytest.mark.parametrize("content, phrase", [
    ("[1]".encode("utf-16"), "UTF-16 or UTF-32"),
    (bytes(range(256)) * 4, "binary data"),
    (b'"hello"', "single JSON value"),
    (b"null", "single JSON value"),
])
def test_more_things_that_are_not_osdb(tmp_path, content, phrase):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=phrase):
        read(path)


def test_invalid_utf8_line_in_ndjson(tmp_path):
    path = tmp_path / "u.ndjson"
    path.write_bytes(json.dumps(event(1, 6)).encode() + b'\n{"id": "\xff\xfe"}\n')
    with pytest.raises(InputError, match="line 2 is not UTF-8"):
        read(path)


def test_a_pipe_is_read_once_without_the_cache(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    data = json.dumps([event(1, 7), event(2, 7, type="NDA")]).encode()

    def writer():
        with open(fifo, "wb") as f:
            f.write(data)

    t = threading.Thread(target=writer)
    t.start()
    s = load_streams([fifo])  # cache requested: skipped for a pipe
    t.join()
    assert s.n_events == 2 and not s.from_cache
    assert not (tmp_path / "cache").exists()


def test_unusable_cache_folder_falls_back_with_a_warning(tmp_path):
    path = write_events(tmp_path / "a.json", [event(1, 8)])
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="parse cache .* unusable"):
        s = load_streams([path], cache_dir=blocker)
    assert s.n_events == 1


def test_damaged_cache_files_are_detected(tmp_path):
    path = write_events(tmp_path / "a.json", [event(1, 8)])
    first = np.array(load_streams([path]).samples)  # a copy: the file is damaged below
    (tmp_path / "cache" / "file_digests.json").write_text("[1]")  # damaged memo
    entry = next((tmp_path / "cache" / "streams").iterdir())
    samples = entry / "samples.bin"
    samples.write_bytes(b"\0" * samples.stat().st_size)  # zeroed data, same size
    again = load_streams([path])
    assert not again.from_cache  # checksum mismatch: parsed again
    assert np.array_equal(np.asarray(again.samples), first)


def test_line_splitting_is_independent_of_chunk_size():
    import io

    from osdml.data.jsonstream import iter_lines

    data = b"a\nbb\r\nccc\rdddd\r\n\r\neeeee\r"
    expected = [b"a", b"bb", b"ccc", b"dddd", b"", b"eeeee"]
    for size in range(1, len(data) + 2):
        assert list(iter_lines(io.BytesIO(data), size)) == expected, size
