"""The streaming OSDB reader: real-world variants, damaged data and files that are not OSDB."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from factory import T0, event, iso, write_events
from osdml.data.jsonstream import NanToNull
from osdml.data.osdb import parse_time, read_events
from osdml.data.report import DataReport
from osdml.errors import InputError


def read(path):
    report = DataReport()
    return list(read_events(path, report)), report


# --------------------------------------------------------------------------- variants

@pytest.mark.parametrize("text, expected", [
    ("2022-02-17T06:35:30Z", 1645079730.0),
    ("2022-02-17T06:35:30", 1645079730.0),
    ("2022-02-17T06:35:30.250Z", 1645079730.25),
    ("2022-02-17T07:35:30+01:00", 1645079730.0),
    ("17-02-2022 06:35:30", 1645079730.0),
])
def test_parse_time_accepts_iso_and_legacy(text, expected):
    assert parse_time(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["yesterday", "", None, 12345, "31-02-2022 06:35:30"])
def test_parse_time_rejects(bad):
    with pytest.raises((ValueError, TypeError)):
        parse_time(bad)


def test_real_variants_are_read(tmp_path):
    a = event(407, 8, user=39)  # int ids
    b = event("S001", 8, user="1", subtype=None)  # string ids, null subType
    for i, dp in enumerate(b["datapoints"]):
        dp["o2sat"] = 97  # lower-case variant
        dp["hr"] = -1  # missing heart rate
        dp["dataTime"] = dp["dataTime"][:-1] if i % 2 else dp["dataTime"]  # with and without Z
        dp["rawData3D"] = []  # empty 3-D data
    for dp in a["datapoints"]:
        dp["o2Sat"] = 95
        t = parse_time(dp["dataTime"])
        from datetime import UTC, datetime
        dp["dataTime"] = datetime.fromtimestamp(t, UTC).strftime("%d-%m-%Y %H:%M:%S")  # legacy
    events, report = read(write_events(tmp_path / "v.json", [a, b]))
    assert [e.id for e in events] == ["407", "S001"]
    assert [e.user_id for e in events] == ["39", "1"]
    assert events[1].subtype is None
    assert all(len(e.datapoints) == 8 for e in events)
    assert events[0].datapoints[0].o2sat_pct == 95
    assert events[1].datapoints[0].o2sat_pct == 97
    assert math.isnan(events[1].datapoints[0].hr_bpm)
    assert events[0].datapoints[0].hr_bpm == 70
    assert events[1].datapoints[0].accel3d_mg is None
    assert events[0].datapoints[0].time_s == pytest.approx(T0 + 5)
    assert events[1].datapoints[1].time_s == pytest.approx(T0 + 10)
    assert report.events_read == 2 and report.datapoints_read == 16
    assert not report.skipped_datapoints and not report.skipped_events


def test_samples_are_float64_mg_as_written_and_3d_reshaped(tmp_path):
    ev = event(1, 2, xyz=True, value=980)
    (e,), _ = read(write_events(tmp_path / "a.json", [ev]))
    dp = e.datapoints[0]
    assert dp.accel_mg.dtype == np.float64 and dp.accel_mg.shape == (125,)
    assert dp.accel_mg[0] == 980
    assert dp.accel3d_mg.shape == (125, 3) and dp.accel3d_mg[0].tolist() == [0, 0, 980]


@pytest.mark.parametrize("fmt", ["ndjson", "gz"])
def test_ndjson_and_gzip(tmp_path, fmt):
    events = [event(i, 7) for i in range(3)]
    got, report = read(write_events(tmp_path / f"e.{fmt}", events, fmt=fmt))
    assert [e.id for e in got] == ["0", "1", "2"]
    assert report.datapoints_read == 21


def test_bare_nan_tokens_read_as_missing_samples(tmp_path):
    ev = event(1, 4)
    ev["datapoints"][1]["rawData"][3] = math.nan  # json.dumps writes a bare NaN
    ev["datapoints"][2]["rawData"][0] = -math.inf
    ev["desc"] = "value, NaN, in text"
    path = tmp_path / "nan.json"
    path.write_text(json.dumps([ev]))
    assert "NaN" in path.read_text()
    (e,), report = read(path)
    assert len(e.datapoints) == 2
    assert report.skipped_datapoints == {"nan_or_null": 2}


def test_nan_filter_never_splits_a_token():
    # a value cut at every possible read boundary is still rewritten
    text = b'[{"a": [1, NaN, 2, -Infinity, Infinity], "b": "NaN"}]'
    for n in range(1, len(text)):
        w = NanToNull(io.BytesIO(text), Path("x.json"))
        out = b"".join(iter(lambda w=w, n=n: w.read(n), b""))
        assert json.loads(out) == [{"a": [1, None, 2, None, None], "b": "NaN"}], n


# --------------------------------------------------------------------------- damaged data

def test_damaged_datapoints_are_skipped_and_counted(tmp_path):
    ev = event(1, 10)
    dps = ev["datapoints"]
    del dps[1]["rawData"]
    dps[2]["rawData"] = dps[2]["rawData"][:100]
    dps[3]["rawData"][5] = None
    dps[4]["rawData"] = [v / 101.97 for v in dps[4]["rawData"]]  # m/s^2
    dps[5]["rawData"][0] = "x"
    dps[6]["dataTime"] = "not a time"
    dps[7]["rawData3D"] = [1, 2, 3]  # wrong length: 3-D dropped, magnitude kept
    dps[8]["rawData"][9] = 1e300  # finite, but no accelerometer reads it
    (e,), report = read(write_events(tmp_path / "d.json", [ev]))
    assert len(e.datapoints) == 3
    assert report.skipped_datapoints == {"no_rawData": 1, "wrong_length": 1, "nan_or_null": 1,
                                         "implausible_magnitude": 1, "non_numeric": 1,
                                         "bad_time": 1, "implausible_value": 1}
    assert report.notes["rawData3D_dropped"] == 1
    assert report.examples["wrong_length"] == "d.json: event 1 datapoint #2"


def test_events_without_usable_data_are_skipped(tmp_path):
    no_dps = event(1, 3)
    del no_dps["datapoints"]
    all_bad = event(2, 2)
    for dp in all_bad["datapoints"]:
        dp["rawData"] = []
    no_id = event(3, 3)
    del no_id["id"]
    events, report = read(write_events(tmp_path / "e.json", [no_dps, all_bad, no_id, event(4, 6)]))
    assert [e.id for e in events] == ["4"]
    assert report.skipped_events == {"no_datapoints": 1, "no_valid_datapoints": 1,
                                     "missing_id": 1}


def test_all_zero_3d_is_treated_as_absent(tmp_path):
    ev = event(1, 2)
    for dp in ev["datapoints"]:
        dp["rawData3D"] = [0] * 375
    (e,), report = read(write_events(tmp_path / "z.json", [ev]))
    assert e.datapoints[0].accel3d_mg is None
    assert report.notes["rawData3D_zero"] == 2


# --------------------------------------------------------------------------- not OSDB

def _lines(tmp_path, name, content: bytes):
    p = tmp_path / name
    p.write_bytes(content)
    return p


@pytest.mark.parametrize("name, content, phrase", [
    ("empty.json", b"", "is empty"),
    ("blank.json", b"  \n ", "blank"),
    ("page.json", b"<!DOCTYPE html><html><body>404</body></html>", "HTML page"),
    ("lfs.json", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n",
     "Git LFS pointer"),
    ("text.json", b"hello world", "is not JSON"),
    ("model.pte", b"\x1c\x00\x00\x00ET12\x00\x00" + bytes(range(200)),
     "is an ExecuTorch program"),
    ("model.pt", b"PK\x03\x04" + bytes(200), "is a zip archive"),
    ("object.json", b'{\n "events": []\n}\n', "top-level JSON object"),
    ("object1.json", b'{"events": [], "version": 2}\n', "top-level JSON object"),
    ("ints.json", b"[1, 2, 3]", "item #0 is a number"),
    ("foreign.json", b'[{"a": 1}]', "is not an OSDB event"),
    ("accx.json", json.dumps([{"id": 1, "type": "Seizure", "datapoints": [
        {"dataTime": iso(T0), "accX": [1], "accY": [2], "accZ": [3]}]}]).encode(),
     "accX, accY, accZ and no rawData"),
    ("badline.ndjson", (json.dumps(event(1, 6)) + "\n{oops\n").encode(),
     "line 2 is not valid JSON"),
])
def test_files_that_are_not_osdb_raise_one_line(tmp_path, name, content, phrase):
    path = _lines(tmp_path, name, content)
    with pytest.raises(InputError, match=phrase) as err:
        read(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message


def test_truncated_file_names_where_it_failed(tmp_path):
    full = json.dumps([event(i, 6) for i in range(5)]).encode()
    path = _lines(tmp_path, "cut.json", full[: len(full) * 3 // 4])
    with pytest.raises(InputError, match=r"cut.json: file ends after 3 complete events"):
        read(path)


def test_corrupt_json_quotes_the_context(tmp_path):
    text = json.dumps([event(1, 6)]).replace("1001.0, ", "10x01.0, ", 1).encode()
    with pytest.raises(InputError, match=r"invalid JSON in the first event.*10x01"):
        read(_lines(tmp_path, "bad.json", text))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read(tmp_path / "nope.json")
    with pytest.raises(InputError, match="is a folder"):
        read(tmp_path)


def test_one_datapoint_without_rawdata_is_data_not_a_schema_error(tmp_path):
    ev = event(1, 3)
    ev["datapoints"][0] = {"dataTime": iso(T0), "hr": 60}
    _, report = read(write_events(tmp_path / "ok.json", [ev]))
    assert report.skipped_datapoints == {"no_rawData": 1}


def test_reader_streams_without_loading_the_file(tmp_path, monkeypatch):
    # json.load / json.loads on the whole file would defeat streaming for array files
    path = write_events(tmp_path / "s.json", [event(i, 6) for i in range(3)])

    def forbidden(*a, **k):
        raise AssertionError("whole-file JSON parse")

    monkeypatch.setattr(json, "load", forbidden)
    monkeypatch.setattr(json, "loads", forbidden)
    events, _ = read(path)
    assert len(events) == 3



# --------------------------------------------------------------------------- one event object

def _one_synthetic_event() -> dict:
    from osdml.data.synthetic import SynthSpec, generate_events

    spec = SynthSpec(users=1, seizures_per_user=1, false_alarms_per_user=0, nda_per_user=0)
    return next(generate_events(spec, "Seizure"))


@pytest.mark.parametrize("layout", ["pretty", "sorted", "one_line", "gz"])
def test_a_file_holding_one_event_object_is_read_as_one_event(tmp_path, layout):
    # upstream's documentation/Examples/*/rawData.json: one event, not a list of events,
    # pretty-printed with sorted keys (so "datapoints" comes before "id" and "type")
    import gzip

    ev = _one_synthetic_event()
    text = (json.dumps(ev) if layout == "one_line"
            else json.dumps(ev, indent=2, sort_keys=layout == "sorted"))
    path = tmp_path / ("rawData.json.gz" if layout == "gz" else "rawData.json")
    path.write_bytes(gzip.compress(text.encode()) if layout == "gz" else text.encode())
    (e,), report = read(path)
    assert e.id == str(ev["id"]) and e.type == "Seizure" and e.user_id == str(ev["userId"])
    assert len(e.datapoints) == len(ev["datapoints"])
    np.testing.assert_allclose(e.datapoints[3].accel_mg, ev["datapoints"][3]["rawData"])
    assert report.events_read == 1 and not report.skipped_events


@pytest.mark.parametrize("content, phrase", [
    (b'{\n  "foo": 1\n}\n', r"top-level JSON object \(keys: foo\), neither an OSDB event"),
    (b'{"foo": 1}\n', r"top-level JSON object \(keys: foo\), neither an OSDB event"),
    (b'{\n  "id": 1,\n  "datapoints": [\n', "file ends in the first event"),
])
def test_an_object_that_is_not_one_event_is_one_line_naming_the_file(tmp_path, content, phrase):
    path = _lines(tmp_path, "obj.json", content)
    with pytest.raises(InputError, match=phrase) as err:
        read(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_two_event_objects_one_after_the_other_are_refused_with_the_fix(tmp_path):
    text = json.dumps(event(1, 3), indent=2) + json.dumps(event(2, 3), indent=2)
    with pytest.raises(InputError, match="more JSON after the first object .*JSON array"):
        read(_lines(tmp_path, "two.json", text.encode()))


def test_data_summary_counts_a_single_event_file(tmp_path, capsys):
    from osdml.cli import main

    path = tmp_path / "rawData.json"
    path.write_text(json.dumps(_one_synthetic_event(), indent=2))
    assert main(["data", "summary", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["by_type"]["Seizure"]["events"] == 1
    (tmp_path / "foo.json").write_text('{\n  "foo": 1\n}\n')
    assert main(["data", "summary", str(tmp_path / "foo.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "foo.json" in err and "\n" not in err and "Traceback" not in err
